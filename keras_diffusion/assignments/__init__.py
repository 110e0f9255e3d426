"""Homework on the core ideas of diffusion, graded by a grader that cannot be fooled.

In a notebook::

    from keras_diffusion.assignments import check
    check("forward")

For a class: ``python -m keras_diffusion.assignments release|grade|list``
(see tutorials/assignments/README.md). Grading runs the student's code in a
sandboxed child process (``sandbox``: bubblewrap, else Landlock, else
resource limits only, always as an unprivileged user when run as root)
that holds nothing that knows an answer, on inputs drawn from a secret
seed, under one deadline; the score is computed in this process.
"""

from keras_diffusion.assignments.grade import grade, grade_folder  # noqa: F401
from keras_diffusion.assignments.notebook import check  # noqa: F401
from keras_diffusion.assignments.registry import IDS  # noqa: F401
