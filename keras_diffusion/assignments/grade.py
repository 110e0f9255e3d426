"""Grade a submission: its code runs in a child process, the verdict is computed here.

The child (``child.py``) runs the submission's definitions and hands back
plain arrays; this process loads them with ``allow_pickle=False``, computes
the expected values itself (``checks.<id>.expected``, NumPy float64) and
scores. A submission that patches NumPy or pytest, prints a score or writes
files changes nothing here. A check that ends the child (``os._exit``, a
crash) costs that check; the child is started again for the checks after
it. The time limit is for all the checks together; loading the submission
(its imports) has a limit of its own, as long.
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
TIMEOUT = 60.0  # seconds for all the checks of one submission
SUFFIXES = (".py", ".ipynb")
MAX_RESULT_BYTES = 64 << 20  # the checks' inputs are tiny; more than this is not an answer


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
    # whatever the submission wrote lands in tmp and goes with it, even files it made read-only
    with tempfile.TemporaryDirectory(prefix="kd-grade-", ignore_cleanup_errors=True) as tmp:
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
    checks = [CheckResult(assignment.checks[i][0], assignment.checks[i][1], 0, "not run (see the note)") for i in selected]
    return Result(assignment.id, name, checks, error)


def _run_child(assignment, plan, tmp, timeout, selected):
    """Run the child until every selected check has an outcome: {index: (arrays, errors, calls) or message}.

    ``timeout`` bounds the checks, all together; loading the submission (its imports: TensorFlow takes
    seconds, more on a busy machine) has a limit of its own, as long, so that it never eats the checks' time.
    """
    (tmp / "payload.json").write_text(plan.payload())
    (tmp / "work").mkdir()  # the child's working directory: whatever it writes is deleted with tmp
    env = dict(os.environ, MPLBACKEND="Agg", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1")
    budget, outcome, notes, todo, stopped = timeout, {}, [], list(selected), None
    for attempt in range(len(selected)):
        out = tmp / f"run{attempt}"
        out.mkdir()
        argv = [sys.executable, str(CHILD), str(assignment.checks_file), str(tmp / "payload.json"), str(out), ",".join(map(str, todo))]
        stopped, code, used = _run(argv, tmp, env, out / "load.json", timeout, budget)
        budget -= used
        started = [int(line) for line in _read(out / "progress").split() if line.isdigit() and int(line) in todo]
        outcome.update({i: _load(out, i) for i in started if (out / f"{i}.json").is_file()})
        if attempt == 0:
            notes += [f"could not run {_line(e)}" for e in _json(out / "load.json", [])[:5] if isinstance(e, str)]
        running = started[-1] if started and started[-1] not in outcome else None
        if stopped == "load":
            notes.append(f"the submission's definitions did not load within {timeout:g} s")
            break
        if stopped == "checks":
            if running is not None:
                outcome[running] = f"stopped after the time limit of {timeout:g} s (an endless loop?)"
            notes.append(f"the time limit of {timeout:g} s ran out")
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
        reason = {"load": "the definitions did not load in time", "checks": "the time limit ran out"}.get(stopped, "the grading process stopped")
        outcome.setdefault(i, f"not run: {reason}")
    return outcome, notes


def _run(argv, cwd, env, loaded, load_seconds, check_seconds):
    """Run the child in its own process group: ``load_seconds`` until it writes ``loaded``, then ``check_seconds``.

    Returns (None, or "load"/"checks" for the limit that stopped it; exit code; seconds spent on checks).
    The whole group is killed at the end, so nothing the submission started lives on.
    """
    if check_seconds <= 0:
        return "checks", None, 0.0
    with open(cwd / "child.log", "ab") as log:
        proc = subprocess.Popen(argv, cwd=cwd / "work", env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        try:
            load_end = time.monotonic() + load_seconds
            while proc.poll() is None and not loaded.exists():
                if time.monotonic() > load_end:
                    return "load", None, 0.0
                time.sleep(0.02)
            start = time.monotonic()
            try:
                return None, proc.wait(timeout=check_seconds), time.monotonic() - start
            except subprocess.TimeoutExpired:
                return "checks", None, check_seconds
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # the group is gone already
            except AttributeError:
                proc.kill()  # no process groups (Windows): the child at least
            proc.wait()


def _load(out, i):
    """The child's arrays for check i (never unpickled), its errors and the package functions it called."""
    info = _json(out / f"{i}.json", {})
    try:
        if (out / f"{i}.npz").stat().st_size > MAX_RESULT_BYTES:
            return f"returned more than {MAX_RESULT_BYTES >> 20} MB of results"
        with np.load(out / f"{i}.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:  # noqa: BLE001 -- the file comes from the submission's process: any damage is its failure
        return f"its results could not be read ({type(error).__name__})"
    info = info if isinstance(info, dict) else {}
    errors = info.get("errors") if isinstance(info.get("errors"), dict) else {}
    calls = info.get("calls") if isinstance(info.get("calls"), list) else []
    return arrays, {str(k): _line(v) for k, v in errors.items()}, [_line(c) for c in calls]


def _line(text):
    """The child's text on one printable line: it comes from the student's exceptions."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())[:500]


def _judge(assignment, i, plan, outcome):
    """The points of check i: all of them when every case matches, none otherwise, with the first failure."""
    name, points, uses = assignment.checks[i]
    if isinstance(outcome, str):
        return CheckResult(name, points, 0, outcome)
    arrays, errors, calls = outcome
    used = _package_names(calls, {u for f in uses for u in plan.package_uses.get(f, [])})
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


def _package_names(called, imported):
    """What to quote: the functions called (most specific), then imports the calls do not already name."""
    called = [c for c in called if not any(other.startswith(c + ".") for other in called)]
    parts = {part for c in called for part in c.split(".")}
    return sorted(called) + sorted(i for i in imported if i.split(".")[-1] not in parts)


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
