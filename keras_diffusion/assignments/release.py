"""Release: turn an assignment's source (the reference solution) into the student's notebook.

Each source is a jupytext percent-format .py file. Every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes
``raise NotImplementedError(...)`` at the marker's indentation; the notebook
is written as plain nbformat 4 JSON with no outputs, so releasing needs
neither jupytext nor nbformat.
"""

import json
import pathlib
import re

from keras_diffusion.assignments import registry
from keras_diffusion.cli import UsageError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
_CELL = re.compile(r"^# %%(.*)$")
_DEF = re.compile(r"^(\s*)(?:async\s+)?(?:def|class)\s+(\w+)")
_COMMENTED_MAGIC = re.compile(r"^# (%|!)")


class MarkerError(UsageError):
    """Unbalanced solution markers: the message names the file and the line."""


def read_cells(text):
    """(kind, lines, first line number) of every cell of a percent-format source; the YAML header is skipped."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0] == "# ---":  # jupytext's header, up to the next "# ---"
        start = lines.index("# ---", 1) + 1
    cells, kind, body, first = [], "code", [], start + 1
    for number, line in enumerate(lines[start:], start + 1):
        match = _CELL.match(line)
        if match:
            cells.append((kind, body, first))
            kind, body, first = ("markdown" if "[markdown]" in match.group(1) else "code"), [], number + 1
        else:
            body.append(line)
    cells.append((kind, body, first))
    result = []
    for kind, body, first in cells:
        if kind == "markdown":
            body = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in body]
        else:
            body = [_COMMENTED_MAGIC.sub(r"\1", line) for line in body]  # "# %matplotlib inline" runs in Jupyter
        while body and not body[0].strip():
            body, first = body[1:], first + 1
        while body and not body[-1].strip():
            body = body[:-1]
        if body:
            result.append((kind, body, first))
    return result


def strip_solutions(cells, filename):
    """The cells with every solution region replaced; MarkerError on a nested, unclosed or stray marker."""
    result = []
    for kind, lines, first in cells:
        out, opened = [], None
        for offset, line in enumerate(lines):
            number, marker = first + offset, line.strip()
            if marker == BEGIN:
                if opened is not None:
                    raise MarkerError(f"{filename} line {number}: {BEGIN} inside the solution opened at line {opened}")
                opened, indent = number, line[: len(line) - len(line.lstrip())]
                out += _placeholder(kind, indent, lines[:offset])
            elif marker == END:
                if opened is None:
                    raise MarkerError(f"{filename} line {number}: {END} without a {BEGIN} before it")
                opened = None
            elif opened is None:
                out.append(line)
        if opened is not None:
            raise MarkerError(f"{filename} line {opened}: {BEGIN} is not closed in its cell")
        result.append((kind, out, first))
    return result


def _placeholder(kind, indent, before):
    if kind == "markdown":
        return ["*Your answer here.*"]
    # name what the student is to write: the enclosing def, and its class if it is a method
    names, level = [], len(indent)
    for match in map(_DEF.match, reversed(before)):
        if match and len(match.group(1)) < level:
            names.insert(0, match.group(2))
            level = len(match.group(1))
    what = f"write {'.'.join(names[-2:])}" if names else "write this part"
    return [f"{indent}# YOUR CODE HERE (then delete the raise)", f'{indent}raise NotImplementedError("{what}")']


def to_notebook(cells, stem):
    """nbformat 4.5 JSON: no outputs, no execution counts, cell ids from the file name and position."""
    notebook_cells = []
    for index, (kind, lines, _) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"{stem}-{index}", "metadata": {}, "source": _source(lines)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        notebook_cells.append(cell)
    metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return {"cells": notebook_cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def _source(lines):
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def student_notebook(source):
    """The student's notebook (a JSON-ready dict) made from one source file."""
    source = pathlib.Path(source)
    cells = strip_solutions(read_cells(source.read_text(encoding="utf-8")), source.name)
    return to_notebook(cells, source.stem)


def release(out_dir, ids=None):
    """Write out_dir/<id>.ipynb for the given assignment IDs (all by default); return the paths.

    Every source is checked before anything is written, so a marker error leaves out_dir as it was.
    """
    assignments = [registry.get(i) for i in (ids or registry.IDS)]
    notebooks = {a.id: student_notebook(a.source_file) for a in assignments}
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for assignment_id, notebook in notebooks.items():
        path = out_dir / f"{assignment_id}.ipynb"
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
