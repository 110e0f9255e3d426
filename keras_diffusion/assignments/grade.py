"""Grade a submission: its code runs in a sandboxed child process, the verdict is computed here.

The child (``child.py``, with the assignment's ``harness``) gets the
submission's source, the names to call and the inputs, drawn here from a
seed it never sees; it hands back plain arrays. Nothing that knows an answer
is in its memory or within its reach (``sandbox``). This process reads what
the child wrote as untrusted data (regular files only, size-capped, never
unpickled, uncompressed), computes the expected values itself
(``checks.<id>.expected``, NumPy float64) and judges each check on its own:
a value it cannot judge costs that check, never the run. A check that ends
the child (``os._exit``, a crash) costs that check; the child is started
again for the checks after it. One deadline covers the whole submission:
loading it, every check and every restart.
"""

import concurrent.futures
import dataclasses
import io
import json
import os
import pathlib
import re
import secrets
import stat
import time
import zipfile

import numpy as np

from keras_diffusion.assignments import reference, registry, sandbox, submission
from keras_diffusion.assignments.compare import compare
from keras_diffusion.assignments.report import CheckResult, Result, printable
from keras_diffusion.cli import UsageError

TIMEOUT = sandbox.TIMEOUT
SUFFIXES = (".py", ".ipynb")
MAX_SOURCE_BYTES = 1 << 20  # a submission is a few kB of code
MAX_RESULT_BYTES = 16 << 20  # the checks' inputs are tiny; more than this is not an answer
MAX_TEXT_BYTES = 1 << 20  # load.json, i.json, progress


@dataclasses.dataclass(frozen=True)
class Options:
    """How to grade: the time limit, the inputs' seed, the sandbox, whether copies of the reference count."""

    timeout: float = TIMEOUT
    seed: int = None  # None: a fresh secret seed for this run
    sandbox: str = None  # None or "auto": the strongest layer available
    require_sandbox: bool = False
    allow_reference: bool = False

    def resolved(self):
        """The same options with the seed drawn and the sandbox layer chosen (UsageError if it cannot be had)."""
        if not self.timeout > 0:
            raise UsageError(f"timeout must be > 0 seconds, got {self.timeout}")
        seed = secrets.randbelow(2**31) if self.seed is None else int(self.seed)
        return dataclasses.replace(self, seed=seed, sandbox=sandbox.choose(self.sandbox, self.require_sandbox))


def grade(assignment_id, path, timeout=TIMEOUT, options=None, hide=()):
    """Grade one .py or .ipynb file. Raises UsageError for an unknown ID or a missing file; anything
    wrong with the submission itself is part of the Result."""
    assignment, path = registry.get(assignment_id), pathlib.Path(path)
    options = (options or Options(timeout=timeout)).resolved()
    if path.suffix not in SUFFIXES:
        raise UsageError(f"{path} is not a .py or .ipynb file")
    if not path.is_file() and not path.is_symlink():
        raise UsageError(f"no such file: {path}")
    try:
        text = read_regular(path, MAX_SOURCE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return _nothing_ran(assignment, str(path), f"could not read the submission: {_why(error)}", options)
    return grade_text(assignment_id, text, path, options, hide=hide)


def grade_text(assignment_id, text, path, options, hide=()):
    """Grade the text of a submission read earlier (``grade_folder`` reads a whole class before running any)."""
    assignment, path = registry.get(assignment_id), pathlib.Path(path)
    try:
        units, problems = submission.read_text(text, path)
    except submission.SubmissionError as error:
        return _nothing_ran(assignment, str(path), f"could not read the submission: {error}", options)
    return grade_units(assignment_id, units, str(path), options=options, one_module=path.suffix == ".py", problems=problems, hide=hide)


@dataclasses.dataclass
class Folder:
    """What a folder of submissions holds: files to grade, entries refused (a row each), entries skipped."""

    submissions: list  # (path, text or None, error or None)
    skipped: list  # "name: why"


def scan_folder(folder):
    """Every entry of a folder, sorted: .py/.ipynb files are read now, before any child runs, so that no
    submission can change a classmate's; symbolic links are refused with a row, the rest listed as skipped."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise UsageError(f"no such folder: {folder}")
    found = Folder([], [])
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path, name = pathlib.Path(entry.path), printable(entry.name)
        if entry.is_symlink():
            if path.suffix in SUFFIXES:
                found.submissions.append((path, None, "refused: a symbolic link (submit the file itself)"))
            else:
                found.skipped.append(f"{name}: a symbolic link")
        elif entry.name.startswith("."):
            found.skipped.append(f"{name}: a hidden entry")
        elif entry.is_dir(follow_symlinks=False):
            found.skipped.append(f"{name}: a folder")
        elif path.suffix not in SUFFIXES:
            found.skipped.append(f"{name}: not a .py or .ipynb file")
        else:
            try:
                found.submissions.append((path, read_regular(path, MAX_SOURCE_BYTES).decode("utf-8"), None))
            except (OSError, UnicodeDecodeError) as error:
                found.submissions.append((path, None, f"could not read the submission: {_why(error)}"))
    if not found.submissions:
        raise UsageError(f"{folder} holds no .py or .ipynb submissions")
    return found


def grade_folder(assignment_id, folder, timeout=TIMEOUT, jobs=1, options=None, scanned=None):
    """Grade every .py and .ipynb in a folder, sorted by name; one bad submission never stops the others.
    Every submission of the run gets the same inputs (one seed), and none of them sees the folder."""
    assignment = registry.get(assignment_id)
    options = (options or Options(timeout=timeout)).resolved()
    scanned = scanned or scan_folder(folder)
    hide = (pathlib.Path(folder).resolve(),)

    def one(item):
        path, text, error = item
        if error:
            return _nothing_ran(assignment, str(path), error, options)
        return grade_text(assignment_id, text, path, options, hide=hide)

    with concurrent.futures.ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, scanned.submissions))


def grade_units(assignment_id, units, name, timeout=TIMEOUT, only=None, one_module=False, problems=(), options=None, hide=()):
    """Grade source units (see ``submission``); ``only`` restricts to the checks of some function or check names."""
    assignment = registry.get(assignment_id)
    options = (options or Options(timeout=timeout)).resolved()
    selected = _select(assignment, only)
    try:
        plan = submission.plan(units, one_module=one_module)
    except submission.SubmissionError as error:
        return _nothing_ran(assignment, name, str(error), options, selected)
    copies = reference.copies(assignment, units)
    notes = []
    if copies and not options.allow_reference:
        result = _nothing_ran(assignment, name, f"a copy of the shipped reference solution ({', '.join(copies)}): 0 points", options, selected)
        result.reference_copy = True
        return result
    if copies:
        notes.append(f"a copy of the shipped reference solution ({', '.join(copies)}), graded because copies are allowed here")
    inputs = assignment.module.inputs(options.seed)
    with sandbox.Jail(options.sandbox, assignment.harness_file, hide=(sandbox.PACKAGE_DIR, *hide)) as jail:
        outcome, run_notes = _run_child(assignment, plan, inputs, jail, options.timeout, selected)
    expected = _expected(assignment, inputs)
    checks = [_judge(assignment, i, plan, outcome.get(i), expected) for i in selected]
    error = "; ".join([*problems, *plan.problems, *notes, *run_notes]) or None
    return Result(assignment.id, name, checks, error, sandbox=options.sandbox, seed=options.seed, reference_copy=bool(copies))


def _expected(assignment, inputs):
    try:
        return assignment.module.expected(inputs)
    except Exception as error:  # noqa: BLE001 -- a bug of ours: every check says so rather than the run stopping
        return error


def _select(assignment, only):
    if only is None:
        return list(range(len(assignment.checks)))
    wanted = {only} if isinstance(only, str) else set(only)
    selected = [i for i, (check, _, uses) in enumerate(assignment.checks) if check in wanted or wanted & set(uses)]
    if not selected:
        names = ", ".join(assignment.functions + tuple(c for c, _, _ in assignment.checks))
        raise UsageError(f"no check of {assignment.id} is about {sorted(wanted)}; choose from {names}")
    return selected


def _nothing_ran(assignment, name, error, options, selected=None):
    selected = range(len(assignment.checks)) if selected is None else selected
    checks = [CheckResult(assignment.checks[i][0], assignment.checks[i][1], 0, "not run (see the note)") for i in selected]
    return Result(assignment.id, name, checks, error, sandbox=options.sandbox, seed=options.seed)


def _preload(assignment, plan):
    """What the child imports before it confines itself: the harness's modules and the submission's imports."""
    modules = set(assignment.harness_preload) | {m for m in plan.imports if m != submission.PACKAGE and m.isidentifier()}
    if "keras" in modules:
        modules.add({"jax": "jax", "torch": "torch"}.get(os.environ.get("KERAS_BACKEND", "tensorflow"), "tensorflow"))
    return sorted(modules - {"antigravity", "this"})


def _run_child(assignment, plan, inputs, jail, timeout, selected):
    """Run the child until every selected check has an outcome or the deadline passes:
    {index: (arrays, errors, imports) or message}, and notes for the whole submission."""
    jail.put("payload.json", plan.payload())
    buffer = io.BytesIO()
    np.savez(buffer, **inputs)  # stored, not compressed
    jail.put("inputs.npz", buffer.getvalue())
    names = [name for name, _, _ in assignment.checks]
    preload = _preload(assignment, plan)
    deadline = time.monotonic() + timeout
    outcome, notes, todo, stopped, loaded_once = {}, [], list(selected), None, False
    for attempt in range(len(selected)):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stopped = "load" if not loaded_once else "checks"
            break
        out = jail.new_attempt()
        jail.put("config.json", json.dumps(jail.config(names, todo, preload, remaining, out)))
        stopped, code = _run(jail, out, deadline)
        loaded = _is_file(out / "load.json")
        loaded_once |= loaded
        started = [i for i in _progress(out) if i in todo]
        outcome.update({i: _load(out, i) for i in started if _is_file(out / f"{i}.json")})
        if attempt == 0 and loaded:
            notes += [f"could not run {_line(e)}" for e in _json(out / "load.json", [])[:5] if isinstance(e, str)]
        running = started[-1] if started and started[-1] not in outcome else None
        if stopped:
            stopped = "checks" if loaded else "load"
            if running is not None:
                outcome[running] = f"stopped after the time limit of {timeout:g} s (an endless loop?)"
            break
        if not started:
            notes.append(f"the grading process ended before any check (exit code {code}): {_tail(jail.tmp / 'child.log')}")
            break
        if running is not None:
            outcome[running] = f"the submission ended the grading process (exit code {code}: os._exit, or a crash)"
        todo = [i for i in todo if i not in outcome]
        if not todo:
            break
    if stopped == "load":
        notes.append(f"the submission's definitions did not load within the time limit of {timeout:g} s")
    elif stopped == "checks":
        notes.append(f"the time limit of {timeout:g} s ran out")
    for i in selected:
        reason = {"load": "the definitions did not load in time", "checks": "the time limit ran out"}.get(stopped, "the grading process stopped")
        outcome.setdefault(i, f"not run: {reason}")
    return outcome, notes


def _run(jail, out, deadline):
    """Run one child until it exits or the deadline passes; then nothing it started lives on.
    Returns ("deadline" or None, exit code)."""
    with open(jail.tmp / "child.log", "ab") as log:
        proc = jail.start(out, log)
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return None, proc.returncode
        except Exception:  # noqa: BLE001 -- TimeoutExpired, or an interrupt: stop the child either way
            return "deadline", None
        finally:
            jail.stop(proc)


# ---- reading what the child wrote: it is the submission's, so nothing in it is trusted ---------


def read_regular(path, cap):
    """The bytes of a regular file, never through a symbolic link, a FIFO or a device; at most ``cap``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{printable(os.path.basename(path))} is not a regular file")
        if info.st_size > cap:
            raise OSError(f"{printable(os.path.basename(path))} is larger than {cap >> 10} kB")
        chunks, size = [], 0
        while size <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise OSError(f"{printable(os.path.basename(path))} is larger than {cap >> 10} kB")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _why(error):
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def _is_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _text(path, cap=MAX_TEXT_BYTES):
    try:
        return read_regular(path, cap).decode("utf-8", "replace")
    except OSError:
        return ""


def _json(path, default):
    try:
        value = json.loads(_text(path) or "null")
    except Exception:  # noqa: BLE001 -- malformed, or nested deep enough to exhaust the recursion limit
        return default
    return value if isinstance(value, type(default)) else default


def _progress(out):
    """The checks the child said it started, in order: short lines of digits only."""
    return [int(line) for line in _text(out / "progress", 64 << 10).split() if line.isdigit() and len(line) <= 4]


def _load(out, i):
    """The child's arrays for check i (uncompressed members only, never unpickled) and its errors."""
    try:
        data = read_regular(out / f"{i}.npz", MAX_RESULT_BYTES)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if any(m.compress_type != zipfile.ZIP_STORED or m.file_size > MAX_RESULT_BYTES for m in members) or len(members) > 1000:
                return "returned results in a form the grader does not read (compressed, or too many)"
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except OSError as error:
        return f"its results could not be read ({_why(error)})"
    except Exception as error:  # noqa: BLE001 -- the file comes from the submission's process: any damage is its failure
        return f"its results could not be read ({type(error).__name__})"
    if any(type(a) is not np.ndarray or a.dtype.kind not in "biufU" for a in arrays.values()):
        return "returned something that is not an array of numbers"
    info = _json(out / f"{i}.json", {})
    errors = info.get("errors") if isinstance(info.get("errors"), dict) else {}
    imports = info.get("imports") if isinstance(info.get("imports"), list) else []
    return arrays, {str(k)[:20]: _line(v) for k, v in list(errors.items())[:100]}, [_line(m) for m in imports[:20]]


def _line(text):
    """The child's text on one printable line: it comes from the student's exceptions."""
    return " ".join(printable(str(text)[:2000], escape=False).split())[:500]


def _judge(assignment, i, plan, outcome, expected):
    """The points of check i: all of them when every case matches, none otherwise, with the first failure.
    Whatever the child returned, judging it costs at most this check."""
    name, points, uses = assignment.checks[i]
    if isinstance(outcome, str):
        return CheckResult(name, points, 0, outcome)
    arrays, errors, imports = outcome
    used = _package_names(imports, {u for f in uses for u in plan.package_uses.get(f, [])})
    if used:
        who = " and ".join(f for f in uses)
        return CheckResult(name, points, 0, f"{who} uses {', '.join(used)}: the assignment asks you to write it yourself")
    if isinstance(expected, Exception):
        return CheckResult(name, points, 0, f"the grader could not compute the expected values ({type(expected).__name__}): please report this")
    for j, (label, want) in enumerate(expected[name]):
        if str(j) in errors:
            return CheckResult(name, points, 0, f"{label}: {_hint(errors[str(j)], plan)}")
        keys = [k for k in arrays if k == str(j) or k.startswith(f"{j}.")]
        if not keys:
            return CheckResult(name, points, 0, f"{label}: returned nothing the grader could read")
        got = arrays[str(j)] if str(j) in arrays else {k.split(".", 1)[1]: arrays[k] for k in keys}
        try:
            problem = want(got) if callable(want) else compare(want, got)
        except Exception as error:  # noqa: BLE001 -- a value of a kind the judgement does not expect
            problem = f"returned a value the grader cannot compare ({type(error).__name__})"
        if problem:
            return CheckResult(name, points, 0, f"{label}: {problem}")
    return CheckResult(name, points, points)


def _package_names(imported_at_run_time, imported_in_source):
    """What to quote: the package modules the code tried to import as it ran, and those its source imports."""
    return sorted(set(imported_at_run_time) | set(imported_in_source))


def _hint(message, plan):
    """A NameError for a name a skipped top-level statement sets: say why it is not there."""
    match = re.match(r"NameError: name '(\w+)' is not defined", message)
    if match and match.group(1) in plan.skipped:
        return (
            f"{message}; {match.group(1)} is set at {plan.skipped[match.group(1)]}, which the grader does not run "
            "(it runs imports, definitions and constant assignments only): compute it inside your function"
        )
    return message


def _tail(path, size=20000):
    """The last line of the child's log (the grader made that file; the child only wrote into it)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - size))
            lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return _line(lines[-1])[:300] if lines else "no output"
