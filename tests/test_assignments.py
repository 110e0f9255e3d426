"""The grader checks itself, as ``nbgrader validate`` does: sources score full marks, released
notebooks score 0, planted bugs lose exactly the checks they should, and no submission can hang,
crash or fool it. Expected values are checked against the package's own core.

Every child process here is plain NumPy (under a second) except those of unet_block, which import
Keras; the whole file takes about a minute on a 2-core CPU.
"""

import concurrent.futures
import csv
import dataclasses
import json
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keras_diffusion import cli
from keras_diffusion.assignments import IDS, check, registry, sandbox
from keras_diffusion.assignments import __main__ as assignments_cli
from keras_diffusion.assignments.checks import forward
from keras_diffusion.assignments.grade import TIMEOUT, Options, grade
from keras_diffusion.assignments.release import BEGIN, END, MarkerError, read_cells, release, strip_solutions

SOURCES = {i: registry.get(i).source_file for i in IDS}
# the inputs of seed 0 (what a notebook's check() shows), and the references and their variants graded
# as work: a class run gives copies of the shipped solution 0 (tests/test_grader_redteam.py)
OPTIONS = Options(seed=0, allow_reference=True)


def graded(assignment_id, path, timeout=TIMEOUT):
    return grade(assignment_id, path, options=dataclasses.replace(OPTIONS, timeout=timeout))


def source(assignment_id):
    return SOURCES[assignment_id].read_text()


def variant(tmp_path, assignment_id, *edits, name=None):
    """The reference source with edits (old, new) applied, each exactly once, written as a .py submission."""
    text = source(assignment_id)
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / f"{name or assignment_id}.py"
    path.write_text(text)
    return path


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def earned(result):
    return {c.name: c.earned for c in result.checks}


def lost(result):
    return {c.name for c in result.checks if c.earned < c.points}


def run_cli(argv, capsys):
    code = cli.run(assignments_cli.main, argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout")
    release(out)
    return out


@pytest.fixture(scope="module")
def keras_graded(tmp_path_factory, handout):
    """The submissions whose child loads Keras (seconds each), graded side by side."""
    folder = tmp_path_factory.mktemp("keras")
    submissions = {
        "unet source": ("unet_block", SOURCES["unet_block"]),
        "unet handout": ("unet_block", handout / "unet_block.ipynb"),
        "unet bug": ("unet_block", variant(folder, "unet_block", *BUGS[UNET_BUG][1], name="bug")),
        "sampling keras.ops": ("sampling", write(folder, "keras_ops.py", FLOAT32["sampling"])),
    }
    with concurrent.futures.ThreadPoolExecutor(len(submissions)) as pool:
        # a generous limit: CI machines are shared, and four children load TensorFlow at once
        futures = {key: pool.submit(graded, *args, timeout=600) for key, args in submissions.items()}
        return {key: future.result() for key, future in futures.items()}


# ---- the expected values are the package's own ---------------------------------------------


def test_expected_values_agree_with_the_package_core():
    from keras_diffusion import NoiseSchedule
    from keras_diffusion.assignments.checks import forward, loss, sampling
    from keras_diffusion.forward import q_sample
    from keras_diffusion.reverse import ddim_step, ddpm_step

    np.testing.assert_allclose(forward.linear(200, 1e-4, 0.02), NoiseSchedule.linear(200).betas, rtol=1e-12)
    for T, s, max_beta in ((200, 0.008, 0.999), (20, 0.02, 0.5)):
        np.testing.assert_allclose(forward.cosine(T, s, max_beta), NoiseSchedule.cosine(T, s, max_beta).betas, rtol=1e-9)
    inp = forward.inputs()
    schedule = NoiseSchedule.linear(200)
    np.testing.assert_allclose(forward.alpha_bars(schedule.betas), schedule.alpha_bars, rtol=1e-12)
    package = np.asarray(q_sample(schedule, inp["x0"], inp["t"], inp["noise"]))
    np.testing.assert_allclose(forward.q_sample(inp["x0"], inp["t"], inp["noise"], schedule.alpha_bars), package, atol=1e-5)

    inp = loss.inputs()
    schedule = NoiseSchedule(1 - inp["alpha_bars"] / np.append(1, inp["alpha_bars"][:-1]))
    np.testing.assert_allclose(loss.x_t_of(inp), np.asarray(q_sample(schedule, inp["x0"], inp["t"], inp["noise"])), atol=1e-5)

    inp = sampling.inputs()
    schedule = NoiseSchedule(inp["betas"])
    args = inp["x_t"], inp["eps_pred"], inp["noise"]
    T = len(inp["betas"])
    for t in (T - 1, T // 2, 0):
        mine = sampling.ddpm_step(inp["x_t"], t, inp["eps_pred"], inp["noise"], inp["betas"], inp["alpha_bars"])
        np.testing.assert_allclose(mine, np.asarray(ddpm_step(schedule, args[0], t, args[1], args[2])), atol=1e-5)
    for t, t_prev in inp["ddim_t"].tolist() + inp["ddim_to_data"].tolist():
        mine = sampling.ddim_step(inp["x_t"], t, t_prev, inp["eps_pred"], inp["alpha_bars"])
        np.testing.assert_allclose(mine, np.asarray(ddim_step(schedule, args[0], t, t_prev, args[1])), atol=1e-5)


def test_unet_block_references_agree_with_the_package_layers():
    import keras

    from keras_diffusion.assignments.checks import unet_block
    from keras_diffusion.models.embeddings import SinusoidalEmbedding
    from keras_diffusion.models.unet import res_block

    inp = unet_block.inputs()
    for t, dim in unet_block.embeddings(inp):
        package = np.asarray(SinusoidalEmbedding(dim)(np.array(t)))
        np.testing.assert_allclose(unet_block.embedding(t, dim), package, atol=2e-5)
    for c_in, channels, groups in unet_block.BLOCKS:
        x, emb = keras.Input((4, 4, c_in)), keras.Input((unet_block.EMB_DIM,))
        model = keras.Model([x, emb], res_block(x, emb, channels, groups))
        assert model.count_params() == sum(unet_block.parameters(c_in, channels).values())
        for variable in model.weights:
            variable.assign(unet_block.fill(variable.name, tuple(variable.shape)).astype("float32"))
        package = np.asarray(model([inp[f"x{c_in}"], inp["emb"]]))
        np.testing.assert_allclose(unet_block.block(inp[f"x{c_in}"], inp["emb"], channels, groups), package, atol=1e-4)


# ---- sources, released notebooks, planted bugs ---------------------------------------------


@pytest.mark.parametrize("assignment_id", IDS)
def test_the_source_scores_full_marks(assignment_id, request):
    if assignment_id == "unet_block":
        result = request.getfixturevalue("keras_graded")["unet source"]
    else:
        result = graded(assignment_id, SOURCES[assignment_id])
    assert result.score == result.max > 0, result.report()
    assert result.reference_copy and result.error.endswith("graded because copies are allowed here"), result.error


@pytest.mark.parametrize("assignment_id", IDS)
def test_the_released_notebook_scores_zero_without_crashing(assignment_id, handout, request):
    if assignment_id == "unet_block":
        result = request.getfixturevalue("keras_graded")["unet handout"]
    else:
        result = graded(assignment_id, handout / f"{assignment_id}.ipynb")
    assert result.score == 0 and result.error is None, result.report()
    assert all("NotImplementedError" in c.message for c in result.checks), result.report()


UNET_BUG = "sin/cos swapped, and no time in the block"
BUGS = {
    "alpha_bar for sqrt(alpha_bar)": (
        "forward",
        [("np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * noise", "alpha_bar * x0 + np.sqrt(1.0 - alpha_bar) * noise")],
        {"q_sample"},
    ),
    "off-by-one in t": ("forward", [("alpha_bars)[np.asarray(t)]", "alpha_bars)[np.asarray(t) - 1]")], {"q_sample"}),
    "noise added at t=0": ("sampling", [("    if t == 0:\n        return mean\n", "")], {"ddpm_step_t0", "ddpm_sample"}),
    "alpha_bar_prev of t_prev=-1 read from the array": (
        "sampling",
        [("alpha_bars[t_prev] if t_prev >= 0 else 1.0", "alpha_bars[t_prev]")],
        {"ddim_step_to_data"},
    ),
    "the denoiser is shown x0": ("loss", [("np.asarray(denoiser(x_t, t))", "np.asarray(denoiser(x0, t))")], {"ddpm_loss", "denoiser_inputs"}),
    # two bugs in one submission, so that Keras is loaded once
    UNET_BUG: (
        "unet_block",
        [
            ("[ops.sin(angles), ops.cos(angles)]", "[ops.cos(angles), ops.sin(angles)]"),
            ("        h = h + self.time(emb)[:, None, None, :]", "        pass"),
            ("        self.time = layers.Dense(channels)\n", ""),
        ],
        {"embedding_values", "block_parameters", "block_uses_emb", "block_output"},
    ),
}


@pytest.mark.parametrize("bug", BUGS)
def test_a_planted_bug_loses_exactly_its_checks(bug, tmp_path, request):
    assignment_id, edits, expected_lost = BUGS[bug]
    if bug == UNET_BUG:
        result = request.getfixturevalue("keras_graded")["unet bug"]
    else:
        result = graded(assignment_id, variant(tmp_path, assignment_id, *edits))
    assert lost(result) == expected_lost, result.report()
    failed = [c for c in result.checks if c.earned == 0]
    assert all(c.message and "Error" not in c.message for c in failed), result.report()  # wrong values, not a crash


def test_a_failure_says_which_input_and_how_far_off(tmp_path):
    path = variant(tmp_path, "forward", ("np.minimum(1 - f[1:] / f[:-1], max_beta)", "1 - f[1:] / f[:-1]"))
    message = {c.name: c.message for c in graded("forward", path).checks}["cosine_betas"]
    T = int(forward.inputs(OPTIONS.seed)["timesteps"][0])
    assert message.startswith(f"cosine_betas({T}): expected 0.999 at index ({T - 1},), got 1; max abs error 0.001 (1 of {T} values off)")


# ---- independent solutions: float32, keras.ops, other names --------------------------------

FLOAT32 = {
    "forward": """
        import numpy as onp
        F32 = onp.float32

        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return onp.linspace(beta_start, beta_end, timesteps, dtype=F32)

        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            u = onp.arange(timesteps + 1, dtype=F32) / F32(timesteps)
            f = onp.cos((u + F32(s)) / F32(1 + s) * F32(onp.pi / 2)) ** 2
            return onp.clip(1 - f[1:] / f[:-1], 0, max_beta).astype(F32)

        def alpha_bars_from_betas(betas):
            return onp.cumprod(1 - onp.asarray(betas, F32))

        def q_sample(x0, t, noise, alpha_bars):
            a = onp.asarray(alpha_bars, F32)[t][:, None, None, None]
            return onp.sqrt(a) * onp.asarray(x0, F32) + onp.sqrt(1 - a) * onp.asarray(noise, F32)
    """,
    "loss": """
        import numpy as np

        def _noisy(x0, t, eps, abar):
            a = np.asarray(abar, np.float32)[t].reshape(-1, 1, 1, 1)
            return np.sqrt(a) * x0.astype(np.float32) + np.sqrt(1 - a) * eps.astype(np.float32)

        def ddpm_loss(denoiser, x0, t, noise, alpha_bars):
            err = noise.astype(np.float32) - np.asarray(denoiser(_noisy(x0, t, noise, alpha_bars), t), np.float32)
            return float(np.mean(np.square(err)))
    """,
    "sampling": """
        from keras import ops

        def ddpm_step(x_t, t, eps_pred, noise, betas, alpha_bars):
            b, ab = float(betas[t]), float(alpha_bars[t])
            mu = (ops.cast(x_t, "float32") - b / (1 - ab) ** 0.5 * ops.cast(eps_pred, "float32")) / (1 - b) ** 0.5
            return mu + b**0.5 * ops.cast(noise, "float32") if t > 0 else mu

        def ddpm_sample(denoiser, x_T, noises, betas, alpha_bars):
            x = ops.convert_to_tensor(x_T, "float32")
            for t in range(len(betas) - 1, -1, -1):
                x = ddpm_step(x, t, denoiser(x, t), noises[t], betas, alpha_bars)
            return x

        def ddim_step(x_t, t, t_prev, eps_pred, alpha_bars):
            ab, ab_prev = float(alpha_bars[t]), float(alpha_bars[t_prev]) if t_prev >= 0 else 1.0
            eps = ops.cast(eps_pred, "float32")
            x0 = (ops.cast(x_t, "float32") - (1 - ab) ** 0.5 * eps) / ab**0.5
            return ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps
    """,
}


@pytest.mark.parametrize("assignment_id", FLOAT32)
def test_an_independent_float32_solution_gets_full_marks(assignment_id, tmp_path, request):
    if assignment_id == "sampling":  # written with keras.ops
        result = request.getfixturevalue("keras_graded")["sampling keras.ops"]
    else:
        result = graded(assignment_id, write(tmp_path, "student.py", FLOAT32[assignment_id]))
    assert result.score == result.max, result.report()


def test_check_grades_what_a_notebook_namespace_defines(tmp_path, capsys):
    module_path = write(tmp_path, "notebook_like.py", textwrap.dedent(FLOAT32["forward"]) + "\nmy_q = q_sample\nT = 200\n")
    namespace = {"__name__": "notebook_like", "__file__": str(module_path)}
    exec(compile(module_path.read_text(), str(module_path), "exec"), namespace)
    namespace["np_array"] = np.zeros(3)  # not a constant: left out
    result = check("forward", namespace=namespace)
    assert result.score == result.max == 10
    assert "total 10/10" in capsys.readouterr().out
    only = check("forward", only="q_sample", namespace=namespace)
    assert [c.name for c in only.checks] == ["q_sample"]
    with pytest.raises(cli.UsageError, match="no check of forward is about"):
        check("forward", only="nothing", namespace=namespace)


# ---- what cannot fool it ---------------------------------------------------------------------

HONEST = textwrap.dedent("""
    def alpha_bars_from_betas(betas):
        return np.cumprod(1 - np.asarray(betas))

    def q_sample(x0, t, noise, alpha_bars):
        a = np.asarray(alpha_bars)[t].reshape(-1, 1, 1, 1)
        return np.sqrt(a) * x0 + np.sqrt(1 - a) * noise
""")


def test_an_endless_loop_is_stopped_by_the_timeout(tmp_path):
    path = write(tmp_path, "loop.py", """
        import numpy as np

        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return np.linspace(beta_start, beta_end, timesteps)

        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            while True:
                pass
    """)
    result = graded("forward", path, timeout=3)
    assert earned(result) == {"linear_betas": 2, "cosine_betas": 0, "alpha_bars_from_betas": 0, "q_sample": 0}
    messages = {c.name: c.message for c in result.checks}
    assert messages["cosine_betas"] == "stopped after the time limit of 3 s (an endless loop?)"
    assert messages["q_sample"] == "not run: the time limit ran out"
    assert "time limit of 3 s ran out" in result.error

    hangs_on_load = write(tmp_path, "class_body.py", """
        class Stuck:
            while True:
                pass
    """)
    result = graded("forward", hangs_on_load, timeout=2)
    assert result.score == 0 and result.error == "the submission's definitions did not load within the time limit of 2 s"


def test_exit_crash_and_syntax_errors_cost_only_what_they_break(tmp_path):
    path = write(tmp_path, "exits.py", "import os, sys\nimport numpy as np\n" + textwrap.dedent("""
        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            sys.exit(0)

        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            os._exit(3)
    """) + HONEST)
    result = graded("forward", path)
    assert earned(result) == {"linear_betas": 0, "cosine_betas": 0, "alpha_bars_from_betas": 2, "q_sample": 3}
    messages = {c.name: c.message for c in result.checks}
    assert messages["linear_betas"].endswith("called sys.exit(0) (exits.py, line 5)")
    assert "ended the grading process (exit code 3" in messages["cosine_betas"]

    broken = write(tmp_path, "broken.py", "def q_sample(x0, t, noise, alpha_bars:\n    pass\n")
    result = graded("forward", broken)
    assert result.score == 0 and result.error == "SyntaxError (broken.py, line 1): '(' was never closed"


def test_a_name_only_skipped_code_sets_gets_a_hint(tmp_path):
    path = write(tmp_path, "globals.py", """
        import numpy as np

        betas = np.linspace(1e-4, 0.02, 200)  # a call: not run during grading
        T = 200  # a constant: run

        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return betas[:timesteps] * (T / 200)
    """)
    message = graded("forward", path, timeout=20).checks[0].message
    T = int(forward.inputs(OPTIONS.seed)["timesteps"][0])
    assert message == (
        f"linear_betas({T}): NameError: name 'betas' is not defined (globals.py, line 8); betas is set at globals.py, "
        "line 4, which the grader does not run (it runs imports, definitions and constant assignments only): "
        "compute it inside your function"
    )


def test_patching_numpy_or_printing_a_score_does_not_change_the_grade(tmp_path):
    path = write(tmp_path, "cheat.py", """
        import numpy as np
        np.allclose = lambda *args, **kwargs: True  # top-level statements do not even run

        def q_sample(x0, t, noise, alpha_bars):
            import numpy, numpy.testing
            numpy.allclose = lambda *args, **kwargs: True
            numpy.testing.assert_allclose = lambda *args, **kwargs: None
            numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(numpy.broadcast(a, b).shape, bool)
            print("forward: 10/10 points -- all checks passed")
            open("grades.csv", "w").write("student,score\\ncheat,10\\n")
            return np.zeros_like(x0)
    """)
    result = graded("forward", path)
    assert result.score == 0 and "expected" in {c.name: c.message for c in result.checks}["q_sample"]
    assert not np.allclose(0, 1) and not (tmp_path / "grades.csv").exists()


def test_handing_the_work_to_the_package_earns_nothing(tmp_path):
    path = write(tmp_path, "delegate.py", textwrap.dedent("""
        import importlib
        import numpy as np
        from keras_diffusion.schedule import NoiseSchedule

        def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
            return NoiseSchedule.linear(timesteps, beta_start, beta_end).betas

        def _package():
            return importlib.import_module("keras_" + "diffusion.schedule")  # hidden from a reading of the source

        def cosine_betas(timesteps, s=0.008, max_beta=0.999):
            try:
                return _package().NoiseSchedule.cosine(timesteps, s, max_beta).betas
            except BaseException:
                return np.zeros(timesteps)
    """) + HONEST)
    result = graded("forward", path)
    assert earned(result) == {"linear_betas": 0, "cosine_betas": 0, "alpha_bars_from_betas": 2, "q_sample": 3}
    messages = {c.name: c.message for c in result.checks}
    assert messages["linear_betas"] == (
        "linear_betas uses keras_diffusion.schedule.NoiseSchedule: the assignment asks you to write it yourself"
    )
    assert messages["cosine_betas"].startswith("cosine_betas uses keras_diffusion:")  # the import the child refused


# ---- a class at a time: release, a folder, the command line ----------------------------------


def test_nothing_between_the_markers_reaches_the_handout(handout):
    released = "\n".join(p.read_text() for p in handout.iterdir())
    inside, outside = {}, set()  # a line also given outside the markers (loss gives forward's q_sample) is public
    for assignment_id in IDS:
        solution = False
        for line in source(assignment_id).splitlines():
            if line.strip() in (BEGIN, END):
                solution = line.strip() == BEGIN
            elif solution:
                inside.setdefault(assignment_id, set()).add(line.strip())
            else:
                outside.add(line.strip())
    for assignment_id in IDS:
        secret = {line for line in inside[assignment_id] - outside if line}
        assert len(secret) > 2, assignment_id
        for line in secret:
            assert json.dumps(line)[1:-1] not in released, (assignment_id, line)
    for path in handout.iterdir():
        notebook = json.loads(path.read_text())
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_the_handout_is_valid_nbformat_and_reads_like_jupytext(handout):
    nbformat = pytest.importorskip("nbformat")
    jupytext = pytest.importorskip("jupytext")
    for assignment_id in IDS:
        nbformat.validate(nbformat.read(handout / f"{assignment_id}.ipynb", as_version=4))
        theirs = [(c.cell_type, c.source.strip()) for c in jupytext.read(SOURCES[assignment_id]).cells]
        mine = [(kind, "\n".join(lines).strip()) for kind, lines, _ in read_cells(source(assignment_id))]
        assert mine == theirs, assignment_id


@pytest.mark.parametrize(
    "text, error",
    [
        (f"# %%\ndef f():\n    {BEGIN}\n    {BEGIN}\n    {END}\n", "x.py line 5: ### BEGIN SOLUTION inside the solution opened at line 4"),
        (f"# %%\ndef f():\n    {BEGIN}\n    return 1\n# %%\n{END}\n", "x.py line 4: ### BEGIN SOLUTION is not closed in its cell"),
        (f"# %%\nx = 1\n{END}\n", "x.py line 4: ### END SOLUTION without a ### BEGIN SOLUTION before it"),
    ],
)
def test_bad_markers_are_an_error_naming_file_and_line(text, error):
    with pytest.raises(MarkerError) as info:
        strip_solutions(read_cells("\n" + text), "x.py")
    assert str(info.value) == error


def test_a_folder_of_mixed_submissions_grades_to_the_right_csv(tmp_path, handout, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.py").write_text(source("forward"))
    released = json.loads((handout / "forward.ipynb").read_text())
    # bob ran shell and magic lines and left a broken cell: all skipped, his notebook still grades
    released["cells"].insert(1, {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1, "source": "%pip install numpy\n!ls\nx = ("})
    (folder / "bob.ipynb").write_text(json.dumps(released))
    (folder / "carol.py").write_text("def linear_betas(:\n")
    variant(folder, "forward", ("alpha_bars)[np.asarray(t)]", "alpha_bars)[np.asarray(t) - 1]"), name="dave")
    (folder / "erin.ipynb").write_text("not json")
    (folder / "notes.txt").write_text("not a submission")
    grades = tmp_path / "grades.csv"
    code, out, _ = run_cli(["grade", "forward", str(folder), "--csv", str(grades), "--jobs", "2"], capsys)
    assert code == 0 and f"wrote {grades} (5 submissions)" in out
    rows = list(csv.DictReader(grades.open()))
    assert [r["student"] for r in rows] == ["alice", "bob", "carol", "dave", "erin"]
    # alice handed in the shipped solution: a class run gives it 0 and says so
    assert [r["score"] for r in rows] == ["0", "0", "0", "7", "0"] and {r["max"] for r in rows} == {"10"}
    assert [r["reference_copy"] for r in rows] == ["yes", "", "", "", ""]
    assert rows[0]["error"] == "a copy of the shipped reference solution (alpha_bars_from_betas, cosine_betas, linear_betas, q_sample): 0 points"
    header = ["student", "score", "max", "linear_betas", "cosine_betas", "alpha_bars_from_betas", "q_sample", "seed", "sandbox", "reference_copy", "error"]
    assert list(rows[0]) == header
    assert len({r["seed"] for r in rows}) == 1 and rows[0]["seed"].isdigit() and f"--seed {rows[0]['seed']}" in out
    assert {r["sandbox"] for r in rows} == {sandbox.choose()}
    assert "skipped notes.txt: not a .py or .ipynb file" in out
    assert rows[3]["q_sample"] == "0" and rows[3]["cosine_betas"] == "3"
    assert "SyntaxError (bob.ipynb cell 2, line 3)" in rows[1]["error"]
    assert rows[2]["error"].startswith("SyntaxError (carol.py, line 1)")
    assert rows[4]["error"].startswith("could not read the submission: erin.ipynb is not a Jupyter notebook")


def test_grade_json_has_the_documented_fields(capsys):
    code, out, _ = run_cli(["grade", "loss", str(SOURCES["loss"]), "--json", "--allow-reference", "--seed", "7"], capsys)
    data = json.loads(out)
    assert code == 0 and set(data) == {"assignment", "submission", "score", "max", "checks", "error", "sandbox", "seed", "reference_copy"}
    assert (data["score"], data["max"], data["seed"], data["reference_copy"]) == (6, 6, 7, True)
    assert data["sandbox"] in sandbox.LAYERS and data["error"].startswith("a copy of the shipped reference solution")
    assert set(data["checks"][0]) == {"name", "points", "earned", "message"}


def test_list_and_release_on_the_command_line(capsys, tmp_path):
    code, out, _ = run_cli(["list", "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == list(IDS)
    assert {r["id"]: r["points"] for r in rows} == {"forward": 10, "loss": 6, "sampling": 10, "unet_block": 10}
    assert rows[3]["functions"] == ["sinusoidal_embedding", "ResidualBlock"]
    code, out, _ = run_cli(["release", "--out", str(tmp_path / "new"), "--ids", "loss"], capsys)
    assert code == 0 and out == f"wrote {tmp_path / 'new' / 'loss.ipynb'}\n"


@pytest.mark.parametrize(
    "argv, error",
    [
        (["grade", "nope", "x.py"], "error: unknown assignment 'nope'; choose one of forward, loss, sampling, unet_block"),
        (["grade", "forward", "missing.py"], "error: no such file: missing.py"),
        (["release", "--out", "unused", "--ids", "forward,nope"], "error: unknown assignment 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, error, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and err.startswith(error) and len(err.strip().splitlines()) == 1 and not out
    assert not (tmp_path / "unused").exists()


def test_python_dash_m_runs_the_command_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "keras_diffusion.assignments", "grade", "forward", str(tmp_path / "none.py")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.strip() == f"error: no such file: {tmp_path / 'none.py'}"
    done = subprocess.run([sys.executable, "-m", "keras_diffusion.assignments", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "grade forward submissions/ --csv grades.csv" in done.stdout
