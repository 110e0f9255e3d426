"""The grader's side of each assignment: its checks, its inputs and what they should give.

These modules run in the grader's own process only; the child that runs a
submission never imports them (it gets ``harness/<id>.py``, the calls to
make, and the arrays ``inputs`` drew). Each has:

- ``TITLE``, and ``CHECKS``: (name, points, the student's names the check calls);
- ``inputs(seed)``: a flat dict of arrays drawn from ``seed`` (``grade``
  draws a secret one per run, so no output can be memorised; a notebook's
  ``check()`` uses ``FEEDBACK_SEED``, so its feedback is reproducible);
- ``expected(inp)``: for each check a list of (label, expected) in the order
  of the harness's cases, where expected is an array (compared within the
  float32 tolerance) or a function of the returned value that gives None
  when it is right and the reason when it is not. Expected values are
  independent NumPy float64 formulas; tests/test_assignments.py checks them
  against the package's own implementation.
"""

FEEDBACK_SEED = 0
