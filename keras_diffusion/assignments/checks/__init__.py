"""One module per assignment: what its checks call and what they expect.

Each module is read by both processes of the grader, so it imports NumPy
only (and Keras inside the few cases that need it):

- ``TITLE``, and ``CHECKS``: (name, points, the student's names the check calls);
- ``inputs()``: the grader's fixed inputs, from fixed seeds;
- ``cases(student, inp)``: in the child process, for each check a list of
  calls of the student's code (``student.q_sample`` is the submission's
  function), each returning what the student's code returned;
- ``expected(inp)``: in the grader's own process, for each check a list of
  (label, expected) in the same order, where expected is an array (compared
  within the float32 tolerance) or a function of the returned value that
  gives None when it is right and the reason when it is not. Expected values
  are independent NumPy float64 formulas; tests/test_assignments.py checks
  them against the package's own implementation.
"""
