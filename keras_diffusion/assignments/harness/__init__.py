"""The child's side of each assignment: which calls of the student's code a check makes, nothing more.

``grade.py`` copies ``harness/<id>.py`` next to ``child.py`` into the
sandbox; the child imports it by path, never as part of keras_diffusion.
So a harness module imports NumPy only (Keras inside the cases that need
it), holds no expected value and no reference formula, and is no secret:
the toy denoisers and the weight-filling rule are the inputs of the
checks, like the arrays. ``cases(student, inp)`` gives, for each check, a
list of calls; ``inp`` is the flat dict of arrays the grader drew.
``PRELOAD``: modules the cases import (read before the child drops its
rights). The grader's side, ``checks/<id>.py``, computes what each call
should return.
"""
