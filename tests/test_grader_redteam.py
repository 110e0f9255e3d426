"""The grader against a class that tries: every attack of issue 23, each graded as it deserves.

A class folder of hostile ``forward`` submissions is graded on the command
line, as a teacher would (``--csv``, ``--json > file``, ``--jobs 2``), under
the strongest sandbox layer this machine has, and again under each weaker
one for the operating-system attacks (surviving processes, file tampering,
classmates' payloads). Every hostile file defines honest versions of the
functions it does not attack, so the score it deserves is known exactly,
and so are its classmates'. After the run, nothing the class touched has
changed: the teacher's CSV and JSON, the classmates' files, the package,
and no process of the children's uid is left.

The answers-in-memory attacks, memorised inputs, the fake layer, malformed
notebooks and the restart deadline have tests of their own below.
"""

import csv
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest

from keras_diffusion.assignments import registry, sandbox
from keras_diffusion.assignments.checks import forward
from keras_diffusion.assignments.grade import Options, grade
from keras_diffusion.assignments.report import printable

LAYERS = sandbox.available()
STRONGEST = LAYERS[0]
CONFINING = [layer for layer in LAYERS if layer != "rlimits"]  # those that hide the package's files
TIMEOUT = 8  # per submission: every honest child here takes well under a second
PACKAGE_FILES = [registry.get("forward").checks_file, registry.get("forward").harness_file, registry.get("forward").source_file, sandbox.HERE / "child.py"]

HONEST = {
    "linear_betas": """
        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            step = (beta_end - beta_start) / (timesteps - 1)
            return beta_start + step * np.arange(timesteps)
    """,
    "cosine_betas": """
        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            grid = np.linspace(0.0, 1.0, timesteps + 1)
            level = np.cos((grid + s) / (1 + s) * np.pi / 2) ** 2
            return np.clip(1.0 - level[1:] / level[:-1], None, max_beta)
    """,
    "alpha_bars_from_betas": """
        def alpha_bars_from_betas(betas):
            return np.exp(np.cumsum(np.log1p(-np.asarray(betas, float))))
    """,
    "q_sample": """
        def q_sample(x0, t, noise, alpha_bars):
            keep = np.take(np.asarray(alpha_bars), np.asarray(t))[:, None, None, None]
            return keep**0.5 * x0 + (1.0 - keep) ** 0.5 * noise
    """,
}
POINTS = {name: points for name, points, _ in registry.get("forward").checks}


def submission(**attacks):
    """A forward submission: the honest functions, except those given (name -> source); module code first."""
    head = textwrap.dedent(attacks.pop("head", ""))
    body = [textwrap.dedent(attacks.get(name, honest)) for name, honest in HONEST.items()]
    return "import numpy as np\n" + head + "\n" + "\n".join(body)


def deserved(*lost):
    return sum(points for name, points in POINTS.items() if name not in lost)


# ---- the hostile class ---------------------------------------------------------------------


def hostile_class(folder, targets, layer):
    """Write the class: {file name: score it deserves}. ``targets``: the paths an attacker aims at."""
    hit = f"""
        import os
        TARGETS = {[str(p) for p in targets]!r}

        def _hit(value=None, *args, **kwargs):
            for path in TARGETS:
                try:
                    with open(path, "w") as f:
                        f.write("student,score\\nHACKED,10\\n")
                except Exception:
                    pass
            return value
    """
    files = {}

    def add(name, text, score):
        (folder / name).write_text(text)
        files[name] = score

    add("alice.py", submission(), 10)
    add("bob.py", submission(q_sample="def q_sample(x0, t, noise, alpha_bars):\n    return x0\n"), deserved("q_sample"))
    # answers from the grader's memory: frames, gc, sys.modules (nothing there knows one)
    add("frames.py", submission(q_sample=ANSWERS_FROM_MEMORY), deserved("q_sample"))
    # code at load time, in each of the ways a definition runs code, aimed at the teacher's and classmates' files
    add("loadtime.py", submission(head=textwrap.dedent(hit) + textwrap.dedent(LOAD_TIME_VECTORS)), 10)
    # a grandchild in its own session that outlives the child and rewrites the CSV and the JSON output
    add("grandchild.py", submission(head=textwrap.dedent(hit) + textwrap.dedent(SURVIVOR)), 10)
    # classmates' payloads in the other job's folders, and anything under the temp folder
    add("payloads.py", submission(head=SWAP_PAYLOADS), 10)
    # results the parent must not choke on: strings, objects, huge, compressed, deeply nested JSON, long progress lines
    add("results.py", submission(**BAD_RESULTS), deserved(*BAD_RESULTS))
    # a FIFO where the child writes its progress: the child hangs until the deadline, the parent never does
    add("fifo.py", submission(head=FIFO), 0)
    # a big file of constants: the source scan is linear
    add("constants.py", submission(head="\n".join(f"C{i} = C{i - 1} if {i} % 2 else {i}" if i else "C0 = 0" for i in range(20000))), 10)
    # file names and entries a terminal or a spreadsheet must not take as instructions
    add("\x1b[2K\rmallory 10 of 10.py", submission(q_sample="def q_sample(x0, t, noise, alpha_bars):\n    return noise\n"), deserved("q_sample"))
    add("=HYPERLINK(1).py", submission(), 10)
    os.symlink(folder / "alice.py", folder / "link.py")
    os.symlink(registry.get("forward").source_file, folder / "solution.py")
    files["link.py"] = files["solution.py"] = 0
    (folder / "dir.py").mkdir()
    (folder / ".hidden.py").write_text(submission())
    if layer in CONFINING:  # with rlimits only, the package's files are readable: the documented limitation
        add("sources.py", submission(cosine_betas=EXEC_THE_SOURCES.format(source=str(registry.get("forward").source_file)[::-1])), deserved("cosine_betas"))
    return files


ANSWERS_FROM_MEMORY = """
    def q_sample(x0, t, noise, alpha_bars):
        import gc, sys, types

        def answer(obj):
            if isinstance(obj, types.ModuleType) and obj.__name__.startswith("keras_" + "diffusion"):  # unseen by the source scan
                return getattr(obj, "q_sample", None)
            if isinstance(obj, types.FunctionType) and obj.__name__ in ("q_sample", "expected") and obj.__module__ != "submission":
                return obj
            return None

        frame, seen = sys._getframe(), list(sys.modules.values()) + gc.get_objects()
        while frame is not None:
            seen += list(frame.f_globals.values()) + list(frame.f_locals.values())
            frame = frame.f_back
        for obj in seen:
            found = answer(obj)
            if found is not None:
                return found(x0, t, noise, alpha_bars) if found.__name__ == "q_sample" else None
        return np.zeros_like(x0)
"""

LOAD_TIME_VECTORS = """
    def _deco(f):  # a decorator
        return _hit(f)

    @_deco
    def decorated(a=_hit(1)):  # and a default argument
        return a

    def annotated(a: _hit(int)) -> _hit(int):  # parameter and return annotations
        return a

    class Body:  # a class body
        _hit()

    class Meta(type):
        def __new__(mcs, name, bases, ns):
            _hit()
            return super().__new__(mcs, name, bases, ns)

        def __getitem__(cls, key):  # a subscript
            return _hit(key)

    class WithMeta(metaclass=Meta):
        pass

    class Base:
        def __init_subclass__(cls, **kwargs):
            _hit()

    class Sub(Base):
        pass

    HINTED: _hit(int) = 1  # the annotation of an annotated assignment
    SUBSCRIPTED = WithMeta[0]
"""

SURVIVOR = """
    class _Fork:
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # a grandchild, reparented away from the child
                import glob, time
                for _ in range(60):
                    _hit()
                    for fd in glob.glob("/proc/*/fd/1"):  # the grader's stdout, redirected to the teacher's file
                        try:
                            with open(fd, "a") as out:
                                out.write("HACKED 10/10")
                        except Exception:
                            pass
                    time.sleep(0.1)
            os._exit(0)
"""

SWAP_PAYLOADS = """
    import glob, os, time
    class _Swap:
        for _ in range(20):
            for path in glob.glob("/tmp/kd-grade-*/in/*") + glob.glob("/tmp/kd-grade-*/attempt-*/*"):
                try:
                    with open(path, "w") as f:
                        f.write("{}")
                except Exception:
                    pass
            time.sleep(0.05)
"""

BAD_RESULTS = {
    "linear_betas": """
        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return np.array(["beta"] * timesteps)
    """,
    "cosine_betas": """
        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            return np.zeros(4_000_000)  # 32 MB: more than the grader reads
    """,
    "alpha_bars_from_betas": """
        def alpha_bars_from_betas(betas):
            return np.array([object()] * len(betas))
    """,
    "q_sample": """
        def q_sample(x0, t, noise, alpha_bars):
            import sys, zipfile
            child = sys.modules["__main__"]

            def bomb(path, **arrays):  # 100 MB of zeros in 100 kB, and JSON nested past any recursion limit
                with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                    z.writestr("0.npy", b"\\0" * 100_000_000)

            child._savez = bomb
            child._dumps = lambda value: "[" * 200_000 + "]" * 200_000
            with open(sys.argv[2] + "/progress", "a") as progress:
                progress.write("9" * 5000 + "\\n")
            return np.zeros_like(x0)
    """,
}

FIFO = """
    import os, sys
    class _Fifo:  # a class body runs at load time
        os.mkfifo(sys.argv[2] + "/progress")
"""

EXEC_THE_SOURCES = """
    def cosine_betas(timesteps, s=0.008, max_beta=0.999):
        import importlib, sys
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "NoPackage"]  # the child's import guard
        for name in ("keras_" + "diffusion.assignments.checks.forward", "keras_" + "diffusion.assignments.sources.forward"):
            try:
                module = importlib.import_module(name)
                return getattr(module, "cosine", None)(timesteps, s, max_beta) if hasattr(module, "cosine") else module.cosine_betas(timesteps, s, max_beta)
            except Exception:
                pass
        try:
            text = open({source!r}[::-1]).read()
        except Exception:
            return np.zeros(timesteps)
        namespace = {{"check": lambda *a, **k: None}}
        exec(text.replace("from keras_" + "diffusion.assignments import check", ""), namespace)
        return namespace["cosine_betas"](timesteps, s, max_beta)
"""


def fingerprint(paths):
    return {str(p): hashlib.sha256(pathlib.Path(p).read_bytes()).hexdigest() for p in paths}


def leftover_processes():
    """Orphans of the uids the grader gives its children (it runs as root here): processes no grader's child
    or sandbox is the parent of. (Another grading run on this machine has children of those uids too.)"""
    found = []
    for entry in os.listdir("/proc"):
        try:
            uid = os.stat(f"/proc/{entry}").st_uid if entry.isdigit() else None
            if uid is None or not sandbox.UID_BASE <= uid < sandbox.UID_BASE + 64:
                continue
            ppid = pathlib.Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
            parent = pathlib.Path(f"/proc/{ppid}/cmdline").read_bytes()
        except OSError:
            continue
        if not any(word in parent for word in (b"child.py", b"bwrap", b"keras_diffusion.assignments")):
            found.append(int(entry))
    return found


def run_grader(argv, stdout):
    return subprocess.run(
        [sys.executable, "-m", "keras_diffusion.assignments", *argv], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=600
    )


@pytest.mark.parametrize("layer", LAYERS)
def test_a_hostile_class_gets_the_grades_it_deserves_and_changes_nothing(layer, tmp_path):
    if layer == "rlimits" and not sandbox.is_root():
        pytest.skip("with rlimits only and no uid of its own, a submission may write what the grader's user can (documented)")
    folder, teacher = tmp_path / "submissions", tmp_path / "teacher"
    folder.mkdir()
    teacher.mkdir()
    grades, output = teacher / "grades.csv", teacher / "grades.json"
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    files = hostile_class(folder, [grades, output, folder / "alice.py", folder / "zzz.py", outside, *PACKAGE_FILES], layer)
    before = fingerprint([*PACKAGE_FILES, outside, *(folder / name for name in files if not (folder / name).is_symlink())])

    started, wall_started = time.monotonic(), time.time()
    with open(output, "w") as stdout:
        done = run_grader(["grade", "forward", str(folder), "--csv", str(grades), "--json", "--jobs", "2", "--timeout", str(TIMEOUT), "--sandbox", layer], stdout)
    finished = time.time()
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    csv_text, json_text = grades.read_text(), output.read_text()
    time.sleep(2.0)  # a survivor would strike now, after the grader has exited

    # nothing changed: the teacher's files, the classmates', the package; no process of the children is left
    assert grades.read_text() == csv_text and output.read_text() == json_text and "HACKED" not in csv_text + json_text
    assert fingerprint(before) == before
    assert not (folder / "zzz.py").exists()
    if sandbox.is_root():
        assert leftover_processes() == []
    assert not [p for p in pathlib.Path(tempfile.gettempdir()).glob("kd-grade-*") if wall_started < p.stat().st_mtime < finished]

    # the grades the work deserves, each in its row, names escaped and formula-safe
    rows = {row["student"]: row for row in csv.DictReader(grades.open())}
    stems = {pathlib.Path(name).stem: name for name in files}
    assert set(rows) == {printable(stem) if not stem.startswith("=") else "'" + stem for stem in stems}
    for stem, name in stems.items():
        row = rows[printable(stem) if not stem.startswith("=") else "'" + stem]
        assert int(row["score"]) == files[name], (name, row)
        assert row["sandbox"] == layer
    assert {row["seed"] for row in rows.values()} == {next(iter(rows.values()))["seed"]}
    assert rows["link"]["error"] == rows["solution"]["error"] == "refused: a symbolic link (submit the file itself)"
    assert "did not load" in rows["fifo"]["error"] or "time limit" in rows["fifo"]["error"]
    results = {pathlib.Path(r["submission"]).name: r for r in json.loads(json_text)}
    messages = {c["name"]: c["message"] for c in results["results.py"]["checks"]}
    assert messages["linear_betas"].startswith("linear_betas(")  # judged, and wrong: not a crash of the run
    assert "larger than" in messages["cosine_betas"] and "not an array of numbers" in messages["alpha_bars_from_betas"]
    assert "compressed" in messages["q_sample"]
    for entry in ("dir.py: a folder", ".hidden.py: a hidden entry"):
        assert f"skipped {entry}" in done.stderr
    assert "\x1b" not in done.stderr + json_text + csv_text
    # bounded: the FIFO costs its deadline, the rest a second or so each, two at a time
    assert elapsed < TIMEOUT * 2 + len(files) * 2 + 30


# ---- attacks with tests of their own -------------------------------------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_memorised_outputs_score_only_on_the_inputs_they_memorised(tmp_path):
    """The released notebook shows seed 0's inputs; a class run draws a secret seed, so memorising earns nothing."""
    inp = forward.inputs(0)
    (T, T_kw), (b0, b1) = inp["timesteps"].tolist(), inp["linear_args"].tolist()
    memo = {0: forward.linear(T, 1e-4, 0.02).tolist(), 1: forward.linear(T_kw, b0, b1).tolist()}
    path = write(tmp_path, "memo.py", submission(linear_betas=f"""
        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return np.array({memo[0]!r} if beta_start == 1e-4 else {memo[1]!r})
    """))
    assert grade("forward", path, options=Options(seed=0)).score == 10  # what the notebook's check() shows
    class_run = grade("forward", path, options=Options(seed=1))  # a class run's seed: any but 0
    assert {c.name: c.earned for c in class_run.checks}["linear_betas"] == 0 and class_run.score == 8
    assert len({Options().resolved().seed for _ in range(3)}) == 3  # and each run draws its own


def test_a_restart_does_not_reset_the_deadline(tmp_path):
    """Each check ends the child, and loading takes 2.5 s: four restarts would need 10 s, the limit is 3."""
    path = write(tmp_path, "slow.py", "import time, os\nimport numpy as np\nclass Slow:\n    time.sleep(2.5)\n" + "".join(
        f"\ndef {name}(*args, **kwargs):\n    os._exit(1)\n" for name in HONEST
    ))
    started = time.monotonic()
    result = grade("forward", path, timeout=3)
    assert time.monotonic() - started < 6 and result.score == 0
    assert "time limit of 3 s" in result.error


@pytest.mark.parametrize(
    "notebook, error",
    [
        ({"cells": 5}, "it has no list of cells"),
        ([1, 2, 3], "it has no list of cells"),
        ("[" * 100_000 + "]" * 100_000, "RecursionError"),
        ({"cells": [{"cell_type": "code", "source": [1, 2]}, {"cell_type": "code", "source": {"a": 1}}, 7]}, None),
    ],
)
def test_a_malformed_notebook_is_an_error_not_a_crash(notebook, error, tmp_path):
    path = write(tmp_path, "nb.ipynb", notebook if isinstance(notebook, str) else json.dumps(notebook))
    result = grade("forward", path, timeout=TIMEOUT)
    assert result.score == 0
    if error:
        assert error in result.error
    else:
        assert "its source is not text; skipped" in result.error


def test_nothing_in_the_child_knows_an_answer(tmp_path):
    """Frames, gc and sys.modules hold no expected value and no reference: the attack gets zeros, and scores 0."""
    result = grade("forward", write(tmp_path, "memory.py", submission(q_sample=ANSWERS_FROM_MEMORY)), timeout=TIMEOUT)
    messages = {c.name: c.message for c in result.checks}
    assert result.score == 7 and "expected" in messages["q_sample"], result.report()


@pytest.mark.parametrize("layer", CONFINING)
def test_the_package_is_out_of_reach(layer, tmp_path):
    """Its reference solutions, the checks and the submissions folder: not readable, not importable."""
    probe = f"""
        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            import importlib, sys
            sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "NoPackage"]
            found = []
            for path in {[str(p)[::-1] for p in PACKAGE_FILES] + [str(tmp_path / "other.py")[::-1]]!r}:  # unseen by the source scan
                try:
                    open(path[::-1]).read(1)
                    found.append(path)
                except OSError:
                    pass
            try:
                importlib.import_module("keras_" + "diffusion.assignments.checks.forward")
                found.append("import")
            except Exception:
                pass
            if found:
                raise RuntimeError("reached " + " ".join(found))
            return np.zeros(timesteps)
    """
    (tmp_path / "other.py").write_text("classmate")
    result = grade("forward", write(tmp_path, "probe.py", submission(cosine_betas=probe)), options=Options(timeout=TIMEOUT, sandbox=layer))
    message = {c.name: c.message for c in result.checks}["cosine_betas"]
    assert "reached" not in message and "expected" in message, message


def test_a_copy_of_the_reference_earns_nothing_whatever_its_names(tmp_path):
    from keras_diffusion.assignments import reference

    text = registry.get("forward").source_file.read_text()
    renamed = re.sub(r"\balpha_bar\b", "keep", text.replace("timesteps", "n_steps")).replace('"""', '"""Mine. ', 1)
    assert renamed.count("keep") > 1
    result = grade("forward", write(tmp_path, "renamed.py", renamed), timeout=TIMEOUT)
    assert result.score == 0 and result.reference_copy and "copy of the shipped reference" in result.error
    allowed = grade("forward", write(tmp_path, "renamed.py", renamed), options=Options(timeout=TIMEOUT, allow_reference=True))
    assert allowed.score == 10 and allowed.reference_copy
    honest = grade("forward", write(tmp_path, "honest.py", submission()), timeout=TIMEOUT)
    assert honest.score == 10 and not honest.reference_copy
    assert reference.LONG > 84 + 62  # cosine_betas and q_sample written as the reference writes them are not a copy


FAKE_BLOCK = '''
import keras
import numpy as np
from keras import layers, ops


def sinusoidal_embedding(t, dim):
    half = dim // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / half)
    args = np.asarray(t, dtype="float64").reshape(-1, 1) * freqs
    return np.concatenate([np.sin(args), np.cos(args)], axis=-1)


class ResidualBlock(layers.Layer):
    """One weight of exactly the block's size, and an output of the right shape that depends on emb."""

    def __init__(self, channels, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def build(self, x_shape, emb_shape=None):
        c, w, e = x_shape[-1], self.channels, 12
        n = 2 * c + 9 * c * w + w + e * w + w + 2 * w + 9 * w * w + w + (c * w + w if c != w else 0)
        self.flat = self.add_weight(shape=(n,), initializer="ones", name="kernel")

    def call(self, x, emb):
        scale = ops.mean(self.flat) * ops.mean(emb, axis=-1)[:, None, None, None]
        return ops.repeat(ops.mean(x, axis=-1, keepdims=True), self.channels, axis=-1) * scale
'''


def test_a_fake_layer_with_one_weight_of_the_right_size_earns_nothing(tmp_path):
    result = grade("unet_block", write(tmp_path, "fake.py", FAKE_BLOCK), timeout=300)
    earned = {c.name: c.earned for c in result.checks}
    assert earned == {"embedding_shape": 1, "embedding_values": 2, **{name: 0 for name in earned if name.startswith("block")}}, result.report()
    assert all("lacks the block's convolution kernels" in c.message or c.name == "block_output" for c in result.checks if c.earned == 0)
