"""A grade and how it is shown: one line per check, JSON, a CSV row per student."""

import csv
import dataclasses
import json
import pathlib


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
        }

    def report(self):
        """The text a student or a teacher reads: a line per check, the message on failure, the total."""
        width = max([len(c.name) for c in self.checks] + [5])
        lines = [f"{self.assignment}: {self.submission}"]
        for c in self.checks:
            mark = "ok" if c.earned == c.points else "--"
            lines.append(f"  {mark} {c.name:<{width}} {c.earned}/{c.points}" + (f"  {c.message}" if c.message else ""))
        if self.error:
            lines.append(f"  note: {self.error}")
        lines.append(f"  total {self.score}/{self.max}")
        return "\n".join(lines)

    def __repr__(self):  # short: check() has printed the report already
        return f"<{self.assignment}: {self.score}/{self.max} points>"


def to_json(results):
    data = [r.to_dict() for r in results]
    return json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)


def write_csv(results, path, check_names):
    """One row per submission: student (the file stem), score, max, the points of each check, error."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "score", "max", *check_names, "error"])
        for r in results:
            earned = {c.name: c.earned for c in r.checks}
            writer.writerow([pathlib.Path(r.submission).stem, r.score, r.max, *(earned.get(n, 0) for n in check_names), r.error or ""])
