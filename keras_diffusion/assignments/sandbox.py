"""Where a submission runs: an operating-system sandbox, in layers, around the grader's child process.

The strongest layer this machine has is used unless the teacher asks for
another (``grade --sandbox``):

- ``bubblewrap`` (the ``bwrap`` command, Debian package ``bubblewrap``): new
  PID, network, IPC and UTS namespaces; a read-only view of the system and
  the Python installation with keras_diffusion itself masked by an empty
  folder; the submissions, the teacher's files and the other children's
  folders not there at all; a private 64 MB /tmp; ``--die-with-parent``.
  When the child ends, the PID namespace ends every process it started.
- ``landlock`` (Linux >= 5.13, a few ``ctypes`` calls in the child): reads
  only beneath the system's library folders, the standard library and the
  packages the assignment and the submission import (not the whole
  site-packages: the package's sources stay unreadable), writes only to the
  child's own folders, no TCP, and (ABI >= 6) no signal to a process
  outside the sandbox. A supervisor process, outside the ruleset, is the
  subreaper of the submission and kills whatever it leaves.
- ``rlimits``: resource limits and the unprivileged user only. Grading works,
  and the report says that the submission could read and, as this user,
  write what the user can.

Every layer adds: a dedicated unprivileged uid and gid when the grader runs
as root (one per concurrent job, so that the grader can end every process
of that uid after each run), resource limits (memory, CPU seconds, file
size, open files, processes) and a session of its own.
"""

import dataclasses
import fcntl
import functools
import importlib.metadata
import importlib.util
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading

from keras_diffusion.cli import UsageError

LAYERS = ("bubblewrap", "landlock", "rlimits")
HERE = pathlib.Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent  # keras_diffusion/
UID_BASE = 64000  # the uids a root grader gives its children: UID_BASE + job slot, skipping any that /etc/passwd names
TIMEOUT = 120.0  # seconds for everything one submission does; unet_block's Keras import takes 5-15 of them
UID_LOCKS = pathlib.Path("/run/lock" if os.path.isdir("/run/lock") else "/tmp") / "keras-diffusion-grade-uids"  # whatever TMPDIR says
MEMORY = 4 << 30  # address space: TensorFlow's import needs about 2 GB
FILE_SIZE = 128 << 20
TMP_SIZE = 64 << 20
DESCRIPTIONS = {
    "bubblewrap": "bubblewrap (new PID, network and IPC namespaces; the package, the submissions and your files invisible)",
    "landlock": "Landlock (reads only of the interpreter, the standard library and the packages it needs; writes only to its own folders)",
    "rlimits": "rlimits only (no bubblewrap or Landlock here: the submission could read, and write, what this user can)",
}


class SandboxError(UsageError):
    """A sandbox layer that was asked for is not available here."""


def is_root():
    return os.geteuid() == 0


@functools.lru_cache(maxsize=None)
def available():
    """The layers this machine offers, strongest first."""
    layers = []
    if _bubblewrap_works():
        layers.append("bubblewrap")
    if _landlock_abi() >= 1:
        layers.append("landlock")
    return tuple(layers + ["rlimits"])


def choose(requested=None, require=False):
    """The layer to use: ``requested`` if it is available (SandboxError if not), else the strongest;
    ``require``: refuse to grade with rlimits only."""
    layers = available()
    if requested not in (None, "auto"):
        if requested not in LAYERS:
            raise SandboxError(f"unknown sandbox {requested!r}; choose one of auto, {', '.join(LAYERS)}")
        if requested not in layers:
            hint = "install bubblewrap (apt-get install bubblewrap)" if requested == "bubblewrap" else "it needs Linux >= 5.13 with Landlock enabled"
            raise SandboxError(f"the {requested} sandbox is not available on this machine: {hint}")
        layer = requested
    else:
        layer = layers[0]
    if require and layer == "rlimits":
        if requested == "rlimits":
            raise SandboxError("--require-sandbox refuses --sandbox rlimits: choose auto, bubblewrap or landlock")
        raise SandboxError("--require-sandbox: neither bubblewrap nor Landlock is available here (install bubblewrap: apt-get install bubblewrap)")
    return layer


def _landlock_abi():
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))


def _bubblewrap_works():
    """bwrap is installed and can make its namespaces here (a container may forbid them)."""
    if shutil.which("bwrap") is None:
        return False
    try:
        done = subprocess.run(_bwrap_argv() + ["--", "/bin/true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        return done.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


# ---- what the child may see --------------------------------------------------------------


def _system_paths():
    paths = [p for p in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32") if os.path.lexists(p)]
    return paths + [p for p in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives") if os.path.exists(p)]


def _python_paths():
    """The interpreter and its installation: base prefix, the virtual environment, their site folders."""
    paths = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sysconfig.get_paths().values()}
    return sorted(p for p in paths if p and os.path.exists(p) and not any(p != q and p.startswith(q.rstrip("/") + "/") for q in paths))


def _bwrap_argv(in_dir=None, out_dir=None, hide=()):
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "grader"]
    if is_root():  # privileged bubblewrap: only what the child needs to become its unprivileged uid
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    made = {"/"}
    targets = [p for p in _system_paths() if not os.path.islink(p)] + _python_paths()
    for target in sorted(set(targets)):
        parents = [str(p) for p in reversed(pathlib.PurePosixPath(target).parents)]
        for parent in parents:
            if parent not in made and not any(parent == t or parent.startswith(t.rstrip("/") + "/") for t in targets if t != target):
                argv += ["--perms", "0755", "--dir", parent]  # bubblewrap's own folders are 0700: the child's uid must pass
                made.add(parent)
    for link in (p for p in _system_paths() if os.path.islink(p)):
        argv += ["--symlink", os.readlink(link), link]
    for target in sorted(set(targets)):
        argv += ["--ro-bind", target, target]
    for path in hide:
        if any(str(path).startswith(t.rstrip("/") + "/") for t in targets) and os.path.isdir(path):
            argv += ["--tmpfs", str(path)]  # an empty folder in its place
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--size", str(TMP_SIZE), "--tmpfs", "/tmp"]
    if in_dir is not None:
        argv += ["--perms", "0755", "--dir", "/grader", "--ro-bind", str(in_dir), "/grader/in", "--bind", str(out_dir), "/grader/out"]
    argv += ["--chdir", "/tmp"]
    return argv


def _distributions_for(modules):
    """The installed distributions that provide these top-level modules, and everything they require."""
    providers = importlib.metadata.packages_distributions()
    todo = [d for m in modules for d in providers.get(m, [])]
    seen = {}
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen or key == "keras-diffusion":
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        seen[key] = dist
        for requirement in dist.requires or []:
            if "extra ==" in requirement:
                continue
            todo.append(requirement.split(";")[0].split("[")[0].split("(")[0].strip().split(" ")[0].rstrip("<>=!~"))
    return list(seen.values())


def _package_paths(modules):
    """Landlock's read rules for these modules: each distribution's top-level files and folders, never keras_diffusion."""
    paths = set()
    for dist in _distributions_for(modules):
        for file in dist.files or []:
            top = file.parts[0] if file.parts else ""
            if top and top != ".." and not top.startswith("keras_diffusion"):
                paths.add(str(dist.locate_file(top)))
    installed = [pathlib.Path(p).resolve() for p in _python_paths()]
    for name in modules:  # a module no distribution claims (a standalone file), found where Python would find it
        spec = importlib.util.find_spec(name) if name.isidentifier() and name != "keras_diffusion" else None
        if spec and spec.origin and spec.origin not in ("built-in", "frozen"):
            origin = pathlib.Path(spec.origin)
            found = origin.parent if origin.name == "__init__.py" else origin
            # only what is installed: never a file of the teacher's current folder that shares the name
            if any(found.resolve().is_relative_to(root) for root in installed):
                paths.add(str(found))
    return sorted(p for p in paths if not pathlib.Path(p).resolve().is_relative_to(PACKAGE_DIR))


def _stdlib_paths():
    return sorted({sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"], os.path.dirname(os.path.realpath(sys.executable)), sys.executable})


# ---- one submission's jail ---------------------------------------------------------------

_slots_lock = threading.Lock()
_slots_taken = {}  # uid -> the open lock file that reserves it


def _take_uid():
    """A uid no other job has: not in /etc/passwd, not taken by a thread of this process, and not by another
    grading process on this machine (each holds an exclusive lock on a root-only file for its uid while it
    runs), so that no two children share a uid and one job's sweep never ends another's children."""
    locks = UID_LOCKS
    locks.mkdir(mode=0o700, exist_ok=True)
    if locks.is_symlink() or locks.stat().st_uid != 0:
        raise SandboxError(f"{locks} is not root's own folder: remove it and grade again")
    with _slots_lock:
        uid = UID_BASE
        while True:
            if uid not in _slots_taken and not _uid_exists(uid):
                fd = os.open(locks / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    _slots_taken[uid] = fd
                    return uid
                except OSError:
                    os.close(fd)
            uid += 1


def _give_back_uid(uid):
    with _slots_lock:
        fd = _slots_taken.pop(uid, None)
        if fd is not None:
            os.close(fd)


def _uid_exists(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


@dataclasses.dataclass
class Jail:
    """The folders and the process of one submission's child. Use as a context manager."""

    layer: str
    harness: pathlib.Path
    hide: tuple = ()  # folders the child must not see (the submissions' folder, ...)
    uid: int = None
    tmp: pathlib.Path = None

    def __enter__(self):
        self.uid = _take_uid() if is_root() else None
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="kd-grade-"))
        self.inbox = self.tmp / "in"
        self.inbox.mkdir()
        self.work = self.tmp / "work"
        self.work.mkdir()
        shutil.copyfile(HERE / "child.py", self.inbox / "child.py")
        shutil.copyfile(self.harness, self.inbox / "harness.py")
        if self.uid is not None:
            os.chmod(self.tmp, 0o711)  # the child may pass through, not list or create
            os.chown(self.inbox, 0, self.uid)
            os.chmod(self.inbox, 0o750)
            os.chown(self.work, self.uid, self.uid)
            os.chmod(self.work, 0o700)
        return self

    def __exit__(self, *exc):
        self.sweep()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.uid is not None:
            _give_back_uid(self.uid)

    def put(self, name, data):
        """Write a file of the child's inbox (the child may read it, not change it)."""
        path = self.inbox / name
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
        if self.uid is not None:
            os.chown(path, 0, self.uid)
            os.chmod(path, 0o640)
        return path

    def new_attempt(self):
        """A fresh folder for one run's results, made by the grader with a name no child can guess or pre-create."""
        out = pathlib.Path(tempfile.mkdtemp(dir=self.tmp, prefix="attempt-"))
        if self.uid is not None:
            os.chown(out, self.uid, self.uid)
        return out

    def config(self, checks, todo, preload, cpu_seconds, out):
        """The child's orders: what to run and how to confine itself."""
        inside = self.layer == "bubblewrap"
        rlimits = {"as": MEMORY, "cpu": int(cpu_seconds) + 2, "fsize": FILE_SIZE, "nofile": 256, "core": 0}
        if self.uid is not None:
            rlimits["nproc"] = 512  # counts this uid's threads only: it is the job's own (TensorFlow starts dozens)
        config = {
            "checks": list(checks),
            "todo": sorted(todo),
            "preload": [] if inside else sorted(set(preload)),
            "supervise": not inside,
            "rlimits": rlimits,
            "uid": self.uid,
            "gid": self.uid,
            "work": "/tmp" if inside else str(self.work),
            "landlock": None,
        }
        if self.layer == "landlock":
            read = _system_paths() + _stdlib_paths() + _package_paths(["numpy", *preload]) + ["/dev", "/proc", "/sys", str(self.inbox)]
            config["landlock"] = {"read": read, "write": [str(self.work), str(out), "/dev/null"]}
        return config

    def argv(self, out):
        """The command that runs the child for the results folder ``out``."""
        if self.layer == "bubblewrap":
            return _bwrap_argv(self.inbox, out, self.hide) + ["--", sys.executable, "-I", "-B", "/grader/in/child.py", "/grader/in", "/grader/out"]
        return [sys.executable, "-I", "-B", str(self.inbox / "child.py"), str(self.inbox), str(out)]

    def start(self, out, log):
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg",
            "CUDA_VISIBLE_DEVICES": "",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": "/tmp" if self.layer == "bubblewrap" else str(self.work),
        }
        if "KERAS_BACKEND" in os.environ:
            env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]
        cwd = self.work if self.layer != "bubblewrap" else self.tmp
        return subprocess.Popen(self.argv(out), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def stop(self, proc):
        """End the child and everything it started: the supervisor kills its orphans on SIGTERM, then the group dies."""
        if proc.poll() is None and self.layer != "bubblewrap":
            try:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(timeout=1.0)
            except (OSError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        self.sweep()

    def sweep(self):
        """As root: end every process of this job's uid, wherever it hid (a setsid() grandchild, a double fork)."""
        if self.uid is None:
            return
        pid = os.fork()
        if pid == 0:  # pragma: no cover -- the child of a fork
            try:
                os.setresgid(self.uid, self.uid, self.uid)
                os.setresuid(self.uid, self.uid, self.uid)
                for _ in range(3):
                    os.kill(-1, signal.SIGKILL)  # every process this uid may signal, that is, its own
            except OSError:
                pass
            os._exit(0)
        os.waitpid(pid, 0)


def describe(layer):
    return DESCRIPTIONS[layer] + (", as an unprivileged uid" if is_root() else "")
