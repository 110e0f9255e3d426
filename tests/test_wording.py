"""The README, the docs and the tutorials are written for the reader who arrives today.

Measured results carry the command that made them; how the work went lives in git.
A phrase from a lab notebook ("before the fix", "the issue that asked for this")
tells a learner about a history they cannot see, so none may appear.
"""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Case-insensitive. Each one points at a history the reader does not have.
LAB_NOTEBOOK_PHRASES = (
    "before the fix",
    "an earlier run",
    "earlier version of",
    "the issue that",
    "the issue allowed",
    "the issue's",
    "issue asked",
    "has since",
    "since measured",
    "measured since",
    "now ships",
    "this session",
    "the last session",
    "the old default",
)

# A ```text block in the docs is a command's --help, copied verbatim: its words are the
# program's, not the page's ("--seed: to reproduce an earlier run" is about grading).
VERBATIM_OUTPUT = re.compile(r"^```text\n.*?^```", re.MULTILINE | re.DOTALL)


def prose_files():
    files = [ROOT / "README.md", ROOT / "tutorials" / "README.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += sorted((ROOT / "tutorials").glob("*.py"))
    return [path for path in files if path.is_file()]


def prose(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".md":
        text = VERBATIM_OUTPUT.sub("", text)
    return text


def lab_notebook_lines(text):
    """Returns "line N: 'phrase' in 'the line'" for every phrase found, case-insensitively."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for phrase in LAB_NOTEBOOK_PHRASES:
            if phrase in line.lower():
                found.append(f"line {number}: {phrase!r} in {line.strip()!r}")
    return found


@pytest.mark.parametrize(
    "path", prose_files(), ids=lambda path: path.relative_to(ROOT).as_posix()
)
def test_no_lab_notebook_wording(path):
    found = lab_notebook_lines(prose(path))
    assert not found, (
        f"{path.relative_to(ROOT)} reads like a lab notebook; say what is true today:\n"
        + "\n".join(found)
    )


def test_the_phrases_are_found():
    # The check itself: a phrase in any case is caught, and a --help block is skipped.
    assert lab_notebook_lines("ok\nSampled Before The Fix.") == [
        "line 2: 'before the fix' in 'Sampled Before The Fix.'"
    ]
    page = "Prose.\n```text\n--seed  to reproduce an earlier run\n```\nAn earlier run said so.\n"
    assert lab_notebook_lines(VERBATIM_OUTPUT.sub("", page)) == [
        "line 3: 'an earlier run' in 'An earlier run said so.'"
    ]
