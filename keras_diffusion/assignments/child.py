"""The grader's child process: confine itself, run a submission's definitions, call them on the inputs.

    python -I child.py IN_DIR OUT_DIR

Copied by ``grade.py`` into IN_DIR together with the assignment's harness
(``harness.py``: the calls to make, toy denoisers, nothing that knows an
answer), the submission (``payload.json``), the inputs (``inputs.npz``,
drawn by the grader from a seed the child never sees) and its orders
(``config.json``). It never imports keras_diffusion: nothing in this
process's memory can tell a submission what the right output is.

Before the first line of the submission runs, it confines itself (see
``confine``): resource limits, then, as the grader decided, a Landlock
ruleset and a switch to an unprivileged uid, and, outside bubblewrap's PID
namespace, a supervisor process that outlives the submission and kills
whatever it left behind. Then, for each check i to run, it writes a line
"i" to OUT_DIR/progress before the check starts, and OUT_DIR/i.npz (plain,
uncompressed arrays) and OUT_DIR/i.json (the errors raised) after it. The
grader trusts none of these files: it judges them.
"""

import ast
import builtins
import ctypes
import importlib.abc
import importlib.util
import json
import os
import pathlib
import resource
import signal
import sys
import traceback

import numpy as np

# the student's code may rebind these names in its own modules; keep ours
_savez, _dumps = np.savez, json.dumps
PACKAGE = "keras_diffusion"


class Missing(Exception):
    """The submission does not define a name a check calls."""


class NoPackage(importlib.abc.MetaPathFinder):
    """keras_diffusion is not there while grading: say so plainly (in a sandbox its files are out of reach anyway)."""

    def __init__(self):
        self.tried = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == PACKAGE:
            self.tried.append(name)
            raise ModuleNotFoundError(f"{name} is not available to graded code: the assignment asks you to write it yourself")
        return None


# ---- confinement ---------------------------------------------------------------------------

_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS, _PR_SET_CHILD_SUBREAPER = 38, 36
# access rights (Linux uapi landlock.h); bit 13 (ABI 2) refer, 14 (ABI 3) truncate, 15 (ABI 5) ioctl_dev
_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read_file, read_dir
_FS_WRITE_ABI1 = (1 << 1) | sum(1 << b for b in range(4, 13))  # write_file, remove_*, make_*
_NET_TCP = (1 << 0) | (1 << 1)  # bind, connect
_SCOPES = (1 << 0) | (1 << 1)  # abstract unix sockets, signals (ABI 6)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock(read, write):
    """Allow reads beneath ``read``, reads and writes beneath ``write``, nothing else: no other file, no TCP,
    no signal to a process outside this domain (the supervisor, the grader). Irreversible for this process
    and every process it starts."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        raise OSError(ctypes.get_errno(), "Landlock is not available")
    fs_write = _FS_WRITE_ABI1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    attr = _RulesetAttr(_FS_READ | fs_write, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    for paths, access in ((read, _FS_READ), (write, _FS_READ | fs_write)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path this machine does not have
            rights = access if os.path.isdir(path) else access & ((1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15))
            rule = _PathBeneath(rights, fd)
            if libc.syscall(_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            os.close(fd)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(ruleset)
    return abi


def limit_resources(limits):
    """rlimits: memory, CPU seconds, file size, open files, processes (only for a uid of the grader's own)."""
    for name, value in limits.items():
        which = getattr(resource, f"RLIMIT_{name.upper()}")
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def drop_privileges(uid, gid):
    """Become uid:gid with no supplementary groups; a uid change from root clears every capability."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.geteuid() == 0 or os.getegid() == 0:
        raise OSError("could not leave root")


def supervise():
    """Fork: the parent stays outside the submission as its subreaper and returns only to exit with the
    submission's code, after killing every process the submission left (a ``setsid()`` grandchild included)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    pid = os.fork()
    if pid == 0:
        return  # the submission's side
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1) or _kill_children(os.getpid()))
    code = 1
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if done == pid:
            code = os.waitstatus_to_exitcode(status)
            _kill_children(os.getpid())
    os._exit(code if code >= 0 else 128 - code)


def _kill_children(me):
    """SIGKILL every process whose parent is ``me`` (with PR_SET_CHILD_SUBREAPER, the orphans are ours)."""
    for _ in range(100):
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                    children.append(int(entry))
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass


def confine(config):
    """Everything that must happen before the submission's first line, in this order."""
    preload(config.get("preload", []))
    if config.get("supervise"):
        supervise()
    limit_resources(config.get("rlimits", {}))
    if config.get("landlock"):
        landlock(config["landlock"]["read"], config["landlock"]["write"])
    if config.get("uid") is not None:
        drop_privileges(config["uid"], config["gid"])
    os.environ["TMPDIR"] = os.environ["HOME"] = config["work"]


def preload(modules):
    """Import what the submission and the harness will import, before this process loses the right to read
    the folders they live in (an interpreter under a folder only root may enter); a failure is the student's."""
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 -- reported when the submission imports it
            pass


# ---- the submission ------------------------------------------------------------------------


class Student:
    """``student.q_sample`` is the submission's q_sample, or a clear error when it has none."""

    def __init__(self, namespace):
        self._namespace = namespace

    def __getattr__(self, name):
        if name not in self._namespace:
            raise Missing(f"{name} is not defined in the submission")
        return self._namespace[name]


def load_submission(payload, namespace, unit_names):
    """Execute the kept top-level statements, one at a time: one failing import does not stop the rest."""
    flags = 0
    for feature in payload.get("future", []):
        flags |= getattr(__import__("__future__"), feature).compiler_flag
    errors = []
    for unit in payload["units"]:
        unit_names.add(unit["name"])
        body = ast.parse(unit["source"], unit["name"]).body
        for index in unit["keep"]:
            code = compile(ast.Module([body[index]], type_ignores=[]), unit["name"], "exec", flags=flags, dont_inherit=True)
            try:
                exec(code, namespace)
            except BaseException as error:  # noqa: BLE001 -- whatever the submission raises is reported, never fatal
                errors.append(describe(error, unit_names))
    return errors


def describe(error, unit_names):
    """One line: what the student's code raised, and where in the submission."""
    try:
        frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename in unit_names]
        where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
        if isinstance(error, Missing):
            return str(error)
        if isinstance(error, SystemExit):
            return f"called sys.exit({error.code!r}){where}"
        text = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {text}{where}"[:500]
    except BaseException:  # noqa: BLE001 -- a student's exception whose str() or code fails
        return "an exception that cannot be described"


def to_arrays(value, prefix):
    """What the student's code returned, as plain arrays (float64, or str for names); refuses anything else."""
    items = [(f"{prefix}.{key}", item) for key, item in value.items()] if isinstance(value, dict) else [(prefix, value)]
    arrays = {}
    for key, item in items:
        if item is None:
            raise TypeError("returned None (is a return statement missing?)")
        array = np.array(item)
        if type(array) is not np.ndarray or array.dtype.kind not in "biufU":
            raise TypeError(f"returned {type(item).__name__}, not an array of numbers")
        arrays[key] = array if array.dtype.kind == "U" else array.astype(np.float64)
    return arrays


def run_check(harness, student, name, load_inputs, unit_names):
    """Call every case of one check; each gets fresh inputs, so a case that writes into its arguments harms only itself."""
    arrays, errors = {}, {}
    for j in range(len(harness.cases(student, load_inputs())[name])):
        case = harness.cases(student, load_inputs())[name][j]
        try:
            arrays.update(to_arrays(case(), str(j)))
        except BaseException as error:  # noqa: BLE001 -- reported as this case's failure
            errors[str(j)] = describe(error, unit_names)
    return arrays, errors


def main(in_dir, out_dir):
    here, out = pathlib.Path(in_dir), pathlib.Path(out_dir)
    config = json.loads((here / "config.json").read_text())
    payload = json.loads((here / "payload.json").read_text())
    with np.load(here / "inputs.npz", allow_pickle=False) as data:
        inputs = {key: data[key] for key in data.files}
    spec = importlib.util.spec_from_file_location("_assignment_harness", here / "harness.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    checks, todo = config["checks"], set(config["todo"])

    confine(config)
    blocker = NoPackage()
    sys.meta_path.insert(0, blocker)
    namespace, unit_names = {"__name__": "submission", "__builtins__": builtins}, set()
    load_errors = load_submission(payload, namespace, unit_names)
    # written whole, then renamed: the grader knows the definitions loaded when this file appears
    (out / "load.tmp").write_text(_dumps(load_errors))
    (out / "load.tmp").rename(out / "load.json")
    student = Student(namespace)
    with open(out / "progress", "a") as progress:
        for i, name in enumerate(checks):
            if i not in todo:
                continue
            progress.write(f"{i}\n")
            progress.flush()
            blocker.tried = []
            arrays, errors = run_check(harness, student, name, lambda: {k: v.copy() for k, v in inputs.items()}, unit_names)
            _savez(out / f"{i}.npz", **arrays)
            (out / f"{i}.json").write_text(_dumps({"errors": errors, "imports": sorted(set(blocker.tried))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
