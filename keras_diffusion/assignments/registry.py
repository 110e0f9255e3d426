"""The assignments: their IDs (fixed: teachers' tests call them), titles, checks and sources."""

import dataclasses
import importlib
import pathlib

from keras_diffusion.cli import UsageError

IDS = ("forward", "loss", "sampling", "unet_block")
HERE = pathlib.Path(__file__).resolve().parent
# The sources ship inside the package (sources/ is a package, so pip installs its .py files):
# release works the same from a checkout, an editable install and a wheel.
SOURCES = HERE / "sources"


@dataclasses.dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    checks: tuple  # (name, points, the student's names it calls)
    module: object  # keras_diffusion.assignments.checks.<id>: the grader's side only

    @property
    def points(self):
        return sum(points for _, points, _ in self.checks)

    @property
    def functions(self):
        return tuple(dict.fromkeys(name for _, _, uses in self.checks for name in uses))

    @property
    def checks_file(self):
        return HERE / "checks" / f"{self.id}.py"

    @property
    def harness_file(self):
        """The child's side of the checks: copied into the sandbox, never imported there as part of the package."""
        return HERE / "harness" / f"{self.id}.py"

    @property
    def harness_preload(self):
        return importlib.import_module(f"keras_diffusion.assignments.harness.{self.id}").PRELOAD

    @property
    def source_file(self):
        return SOURCES / f"{self.id}.py"


def get(assignment_id):
    """The assignment with this ID, or a one-line UsageError naming the IDs there are."""
    if assignment_id not in IDS:
        raise UsageError(f"unknown assignment {assignment_id!r}; choose one of {', '.join(IDS)}")
    module = importlib.import_module(f"keras_diffusion.assignments.checks.{assignment_id}")
    return Assignment(assignment_id, module.TITLE, tuple(module.CHECKS), module)


def all_assignments():
    return [get(i) for i in IDS]
