"""Grade a submission: its code runs in a child process, the verdict is computed here.

The child (``child.py``) runs the submission's definitions and hands back
plain arrays; this process loads them with ``allow_pickle=False``, computes
the expected values itself (``checks.<id>.expected``, NumPy float64) and
scores. A submission that patches NumPy or pytest, prints a score or writes
files changes nothing here. A check that ends the child (``os._exit``, a
crash) costs that check; the child is started again for the checks after
it. The time limit is for the whole assignment.
"""

import concurrent.futures
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras_diffusion.assignments import registry, submission
from keras_diffusion.assignments.compare import compare
from keras_diffusion.assignments.report import CheckResult, Result
from keras_diffusion.cli import UsageError

CHILD = pathlib.Path(__file__).resolve().parent / "child.py"
TIMEOUT = 60.0  # seconds for a whole assignment
SUFFIXES = (".py", ".ipynb")


def grade(assignment_id, path, timeout=TIMEOUT):
    """Grade one .py or .ipynb file. Raises UsageError for an unknown ID or a missing file; anything
    wrong with the submission itself is part of the Result."""
    assignment, path = registry.get(assignment_id), pathlib.Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix not in SUFFIXES:
        raise UsageError(f"{path} is not a .py or .ipynb file")
    try:
        units, problems = submission.read(path)
    except (OSError, UnicodeDecodeError, submission.SubmissionError) as error:
        return _nothing_ran(assignment, str(path), f"could not read the submission: {error}")
    return grade_units(assignment_id, units, str(path), timeout, one_module=path.suffix == ".py", problems=problems)


def grade_folder(assignment_id, folder, timeout=TIMEOUT, jobs=1):
    """Grade every .py and .ipynb in a folder, sorted by name; one bad submission never stops the others."""
    registry.get(assignment_id)
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file() and not p.name.startswith("."))
    if not paths:
        raise UsageError(f"{folder} holds no .py or .ipynb submissions")
    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(lambda p: grade(assignment_id, p, timeout), paths))


def grade_units(assignment_id, units, name, timeout=TIMEOUT, only=None, one_module=False, problems=()):
    """Grade source units (see ``submission``); ``only`` restricts to the checks of some function or check names."""
    assignment = registry.get(assignment_id)
    if not timeout > 0:
        raise UsageError(f"timeout must be > 0 seconds, got {timeout}")
    selected = _select(assignment, only)
    try:
        plan = submission.plan(units, one_module=one_module)
    except submission.SubmissionError as error:
        return _nothing_ran(assignment, name, str(error), selected)
    with tempfile.TemporaryDirectory(prefix="kd-grade-") as tmp:
        outcome, notes = _run_child(assignment, plan, pathlib.Path(tmp), timeout, selected)
    checks = [_judge(assignment, i, plan, outcome.get(i)) for i in selected]
    error = "; ".join([*problems, *plan.problems, *notes]) or None
    return Result(assignment.id, name, checks, error)


def _select(assignment, only):
    if only is None:
        return list(range(len(assignment.checks)))
    wanted = {only} if isinstance(only, str) else set(only)
    selected = [i for i, (check, _, uses) in enumerate(assignment.checks) if check in wanted or wanted & set(uses)]
    if not selected:
        names = ", ".join(assignment.functions + tuple(c for c, _, _ in assignment.checks))
        raise UsageError(f"no check of {assignment.id} is about {sorted(wanted)}; choose from {names}")
    return selected


def _nothing_ran(assignment, name, error, selected=None):
    selected = range(len(assignment.checks)) if selected is None else selected
    checks = [CheckResult(assignment.checks[i][0], assignment.checks[i][1], 0, "not run") for i in selected]
    return Result(assignment.id, name, checks, error)


def _run_child(assignment, plan, tmp, timeout, selected):
    """Run the child until every selected check has an outcome: {index: (arrays, errors, calls) or message}."""
    (tmp / "payload.json").write_text(plan.payload())
    (tmp / "work").mkdir()  # the child's working directory: whatever it writes is deleted with tmp
    env = dict(os.environ, MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    deadline, outcome, notes, todo = time.monotonic() + timeout, {}, [], list(selected)
    for attempt in range(len(selected)):
        out = tmp / f"run{attempt}"
        out.mkdir()
        todo_arg = ",".join(str(i) for i in todo)
        argv = [sys.executable, str(CHILD), str(assignment.checks_file), str(tmp / "payload.json"), str(out), todo_arg]
        timed_out, code = _run(argv, tmp, env, deadline - time.monotonic())
        started = [int(line) for line in _read(out / "progress").split() if line.isdigit() and int(line) in todo]
        outcome.update({i: _load(out, i) for i in started if (out / f"{i}.json").is_file()})
        if attempt == 0:
            notes += [f"could not run {e}" for e in _json(out / "load.json", [])[:5] if isinstance(e, str)]
        running = started[-1] if started and started[-1] not in outcome else None
        if timed_out:
            if running is not None:
                outcome[running] = f"stopped after the time limit of {timeout:g} s (an endless loop?)"
            notes.append(f"the time limit of {timeout:g} s ran out" + ("" if started else " before the submission's definitions were loaded"))
            break
        if not started:
            notes.append(f"the grading process ended before any check (exit code {code}): {_tail(tmp / 'child.log')}")
            break
        if running is not None:
            outcome[running] = f"the submission ended the grading process (exit code {code}: os._exit, or a crash)"
        todo = [i for i in todo if i not in outcome]
        if not todo:
            break
    for i in selected:
        outcome.setdefault(i, "not run: " + ("the time limit ran out" if notes else "the grading process stopped"))
    return outcome, notes


def _run(argv, cwd, env, seconds):
    """Run the child in its own process group; kill the whole group on time-out (and after: no stray children)."""
    if seconds <= 0:
        return True, None
    with open(cwd / "child.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd / "work", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        try:
            return False, proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return True, None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, AttributeError):
                pass
            proc.wait()


def _load(out, i):
    """The child's arrays for check i (never unpickled), its errors and the package functions it called."""
    info = _json(out / f"{i}.json", {})
    try:
        with np.load(out / f"{i}.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        return f"its results could not be read: {error}"
    errors = info.get("errors", {}) if isinstance(info, dict) else {}
    calls = info.get("calls", []) if isinstance(info, dict) else []
    return arrays, {str(k): str(v)[:500] for k, v in errors.items()}, [str(c) for c in calls]


def _judge(assignment, i, plan, outcome):
    """The points of check i: all of them when every case matches, none otherwise, with the first failure."""
    name, points, uses = assignment.checks[i]
    if isinstance(outcome, str):
        return CheckResult(name, points, 0, outcome)
    arrays, errors, calls = outcome
    used = {u for f in uses for u in plan.package_uses.get(f, [])} | set(calls)
    used = sorted(u for u in used if not any(other.startswith(u + ".") for other in used))  # the most specific name
    if used:
        who = " and ".join(f for f in uses)
        return CheckResult(name, points, 0, f"{who} uses {', '.join(used)}: the assignment asks you to write it yourself")
    expected = assignment.module.expected(assignment.module.inputs())[name]
    for j, (label, want) in enumerate(expected):
        if str(j) in errors:
            return CheckResult(name, points, 0, f"{label}: {_hint(errors[str(j)], plan)}")
        keys = [k for k in arrays if k == str(j) or k.startswith(f"{j}.")]
        got = arrays[str(j)] if str(j) in arrays else {k.split(".", 1)[1]: arrays[k] for k in keys}
        problem = want(got) if callable(want) else compare(want, got)
        if problem:
            return CheckResult(name, points, 0, f"{label}: {problem}")
    return CheckResult(name, points, points)


def _hint(message, plan):
    """A NameError for a name a skipped top-level statement sets: say why it is not there."""
    match = re.match(r"NameError: name '(\w+)' is not defined", message)
    if match and match.group(1) in plan.skipped:
        return (
            f"{message}; {match.group(1)} is set at {plan.skipped[match.group(1)]}, which the grader does not run "
            "(it runs imports, definitions and constant assignments only): compute it inside your function"
        )
    return message


def _read(path):
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""


def _json(path, default):
    try:
        return json.loads(_read(path) or "null") or default
    except ValueError:
        return default


def _tail(path):
    lines = [line for line in _read(path).splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
