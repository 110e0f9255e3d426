"""A grade and how it is shown: one line per check, JSON, a CSV row per student.

Everything a submission chose (its file name, the text of its exceptions) is
escaped before it reaches a terminal or a spreadsheet: no control character
reaches the teacher's terminal, and no CSV field starts like a formula.
"""

import csv
import dataclasses
import json
import os
import pathlib
import tempfile
import unicodedata

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def printable(text, escape=True):
    """``text`` with control, format and line/paragraph-separator characters shown as ``\\x1b``-style escapes
    (``escape=False``: replaced by spaces), so that it cannot move the cursor or fake a line."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") and ch != " ":
            out.append(ch.encode("unicode_escape").decode("ascii") if escape else " ")
        else:
            out.append(ch)
    return "".join(out)


def spreadsheet_safe(value):
    """A CSV field no spreadsheet runs as a formula: a leading =, +, -, @, tab or CR gets a ' before it."""
    text = printable(value) if isinstance(value, str) else value
    return "'" + text if isinstance(text, str) and text.startswith(FORMULA_STARTS) else text


@dataclasses.dataclass
class CheckResult:
    name: str
    points: int
    earned: int
    message: str = ""  # empty when the check passed


@dataclasses.dataclass
class Result:
    assignment: str
    submission: str
    checks: list
    error: str = None  # what stopped or hindered grading as a whole (unreadable file, time limit, ...)
    sandbox: str = None  # the layer the child ran in (see sandbox.LAYERS)
    seed: int = None  # the inputs' seed: grading again with it reproduces this result
    reference_copy: bool = False  # the submission is a copy of the shipped reference solution

    @property
    def score(self):
        return sum(c.earned for c in self.checks)

    @property
    def max(self):
        return sum(c.points for c in self.checks)

    def to_dict(self):
        return {
            "assignment": self.assignment,
            "submission": self.submission,
            "score": self.score,
            "max": self.max,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "error": self.error,
            "sandbox": self.sandbox,
            "seed": self.seed,
            "reference_copy": self.reference_copy,
        }

    def report(self):
        """The text a student or a teacher reads: a line per check, the message on failure, the total."""
        width = max([len(c.name) for c in self.checks] + [5])
        lines = [f"{self.assignment}: {printable(self.submission)}"]
        for c in self.checks:
            mark = "ok" if c.earned == c.points else "--"
            lines.append(f"  {mark} {c.name:<{width}} {c.earned}/{c.points}" + (f"  {printable(c.message)}" if c.message else ""))
        if self.error:
            lines.append(f"  note: {printable(self.error)}")
        if self.sandbox:
            seed = f"; inputs: seed {self.seed} (grade again with --seed {self.seed})" if self.seed is not None else ""
            lines.append(f"  sandbox: {self.sandbox}{seed}")
        lines.append(f"  total {self.score}/{self.max}")
        return "\n".join(lines)

    def __repr__(self):  # short: check() has printed the report already
        return f"<{self.assignment}: {self.score}/{self.max} points>"


def to_json(results):
    data = [r.to_dict() for r in results]
    return json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=True)


def write_csv(results, path, check_names):
    """One row per submission: student (the file stem), score, max, the points of each check, the seed, the
    sandbox, whether it copies the reference, the error. Written to a temporary file, then renamed over ``path``."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.resolve().parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["student", "score", "max", *check_names, "seed", "sandbox", "reference_copy", "error"])
            for r in results:
                earned = {c.name: c.earned for c in r.checks}
                row = [pathlib.PurePath(r.submission).stem, r.score, r.max, *(earned.get(n, 0) for n in check_names)]
                row += [r.seed if r.seed is not None else "", r.sandbox or "", "yes" if r.reference_copy else "", r.error or ""]
                writer.writerow([spreadsheet_safe(v) for v in row])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
