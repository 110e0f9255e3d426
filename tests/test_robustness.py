"""Never lose a run, never crash on bad input, never run code from a file (issue 5).

A run killed at any moment resumes; damaged files, bad flags, bad configs and
bad API arguments each give one line that says what is wrong (exit code 2 on
the command line); nothing is ever unpickled or evaluated.
"""

import ast
import csv
import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_diffusion
from keras_diffusion import checkpoint, cli, sample, train
from keras_diffusion.forward import q_sample, q_step
from keras_diffusion.schedule import NoiseSchedule
from keras_diffusion.training import FIGURES, build_training

TINY = ["--model", "mlp", "--model-kwargs", '{"hidden": 32, "blocks": 1}', "--timesteps", "20"]
TINY += ["--limit", "256", "--batch-size", "64", "--n-samples", "2"]


def tensorflow_noise(line):
    # TensorFlow's C++ start-up notices (CUDA probing) are not ours to silence
    return line.startswith(("WARNING: All log messages", "I0000", "E0000", "W0000"))


def our_lines(text):
    return [line for line in text.splitlines() if line.strip() and not tensorflow_noise(line)]


def run_cli(main, argv, capsys):
    """cli.run in-process, as ``python -m`` would: (exit code, stderr lines)."""
    try:
        code = cli.run(main, argv)
    except SystemExit as exit:  # argparse's errors
        code = exit.code
    return code, our_lines(capsys.readouterr().err)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fake_data_dir):
    """One epoch of a tiny model, trained with --deterministic (op determinism is switched off again after)."""
    from tensorflow.python.framework import config as tf_config

    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert train.main(TINY + ["--epochs", "1", "--deterministic", "--data-dir", str(fake_data_dir), "--out", str(out)]) == 0
    assert tf_config.is_op_determinism_enabled()
    yield out
    tf_config.disable_op_determinism()


def copy_run(run, tmp_path, name="copy"):
    return pathlib.Path(shutil.copytree(run, tmp_path / name))


# ---- 1. a killed or interrupted run resumes -------------------------------------


def start_training(run, data_dir, epochs=6):
    """``python -m keras_diffusion.train`` in the background; its stderr goes to <run>.err (a pipe could fill up)."""
    argv = TINY + ["--epochs", str(epochs), "--data-dir", str(data_dir), "--out", str(run)]
    with open(stderr_file(run), "w") as err:
        command = [sys.executable, "-m", "keras_diffusion.train", *argv]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)


def stderr_file(run):
    return run.parent / f"{run.name}.err"


def wait_for_epoch(run, process, epoch, timeout=180):
    """Poll state.json until it reports ``epoch`` completed epochs; return what it reports."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = checkpoint.read_state_epoch(run) if (run / checkpoint.STATE_EPOCH).exists() else 0
        if done >= epoch:
            return done
        if process.poll() is not None:
            pytest.fail(f"training ended (code {process.returncode}) before epoch {epoch}: {stderr_file(run).read_text()}")
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"no epoch {epoch} after {timeout} s")


def history_epochs(run):
    with open(run / checkpoint.HISTORY) as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def test_a_killed_run_resumes_where_it_stopped(tmp_path, fake_data_dir, capsys):
    run = tmp_path / "run"
    process = start_training(run, fake_data_dir)
    wait_for_epoch(run, process, 2)
    process.kill()  # SIGKILL: no handler, no clean-up, as a power cut or the OOM killer
    process.wait()
    killed_at = checkpoint.read_state_epoch(run)
    assert 2 <= killed_at < 6, "the kill came after training ended: nothing is left to resume"
    # what a kill during a save leaves: ignored, with one warning
    (run / ".weights.weights.tmp-k1ll3d.weights.h5").write_bytes(b"\x89HDF half a file")

    code, lines = run_cli(train.main, ["--resume", str(run)], capsys)
    assert code == 0
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and ".weights.weights.tmp-k1ll3d.weights.h5" in warnings[0]
    assert history_epochs(run) == [0, 1, 2, 3, 4, 5]
    assert checkpoint.read_state_epoch(run) == 6
    for name in (checkpoint.WEIGHTS, checkpoint.STATE) + FIGURES:
        assert (run / name).is_file(), name


def test_ctrl_c_exits_130_with_a_resume_hint_and_a_resumable_run(tmp_path, fake_data_dir):
    run = tmp_path / "run"
    process = start_training(run, fake_data_dir)
    wait_for_epoch(run, process, 1)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    err = stderr_file(run).read_text()
    assert process.returncode == 130, err
    lines = our_lines(err)
    assert len(lines) == 1, err
    assert "interrupted" in lines[0] and f"python -m keras_diffusion.train --resume {run}" in lines[0]
    # resumable: the saved state loads into the model its config describes
    done = checkpoint.read_state_epoch(run)
    assert 1 <= done < 6 and f"{done} of 6 epochs" in lines[0]
    config, _, image_shape = checkpoint.read_config(run)
    _, _, model = build_training(config, image_shape)
    checkpoint.load_state(run, model)
    # 4 steps an epoch; one epoch more when Ctrl-C fell between the state's two files (it is then run again)
    assert done * 4 <= int(model.optimizer.iterations.numpy()) <= (done + 1) * 4


def test_a_diverging_run_stops_with_exit_code_1_and_keeps_nothing_broken(tmp_path, fake_data_dir, capsys):
    out = tmp_path / "nan"
    argv = TINY + ["--epochs", "2", "--lr", "1e30", "--data-dir", str(fake_data_dir), "--out", str(out)]
    code, lines = run_cli(train.main, argv, capsys)
    assert code == 1 and len(lines) == 1 and "non-finite" in lines[0], lines
    assert not (out / checkpoint.WEIGHTS).exists()  # nothing of the bad epoch was written


# ---- 2. half-written files --------------------------------------------------------


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def test_truncated_weights_give_one_line_naming_the_file(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path)
    truncate(run / checkpoint.WEIGHTS)
    code, lines = run_cli(sample.main, ["--run", str(run), "--n", "1", "--npz", str(tmp_path / "s.npz")], capsys)
    assert code == 2 and len(lines) == 1
    assert str(run / checkpoint.WEIGHTS) in lines[0] and "damaged" in lines[0]


def test_truncated_training_state_gives_one_line(tiny_run, tmp_path, capsys):
    run = copy_run(tiny_run, tmp_path)
    truncate(run / checkpoint.STATE)
    code, lines = run_cli(train.main, ["--resume", str(run), "--epochs", "2"], capsys)
    assert code == 2 and len(lines) == 1
    assert str(run / checkpoint.STATE) in lines[0] and "cannot be resumed" in lines[0]


def test_leftover_temp_files_are_ignored_with_a_warning(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path)
    (run / ".state.weights.tmp-abc123.weights.h5").write_bytes(b"")
    (run / ".config.tmp-x9.json").write_text("{")
    with pytest.warns(checkpoint.RunWarning, match=r"2 half-written file\(s\).*\.config\.tmp-x9\.json") as record:
        denoiser, schedule, config = checkpoint.load_run(run)
    assert len(record) == 1
    assert schedule.timesteps == 20 and config.model == "mlp"


# ---- 3. safe loading -----------------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
UNSAFE_KEYWORDS = {("allow_pickle", True), ("safe_mode", False)}


# The grader's child process imports and runs a student's submission: that is its job, done in a
# separate process whose only output is arrays, which the grader loads with allow_pickle=False.
GRADER_CHILD = {"assignments/child.py"}


def test_the_package_never_unpickles_or_evaluates():
    """Read as code (not text, so a docstring saying "no pickle" is fine)."""
    package = pathlib.Path(keras_diffusion.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).as_posix() in GRADER_CHILD:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(package)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                found += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"{where} from {node.module} import")
            elif isinstance(node, ast.Call):
                if isinstance(node.func, ast.Name) and node.func.id in UNSAFE_CALLS:
                    found.append(f"{where} {node.func.id}()")
                for kw in node.keywords:
                    if isinstance(kw.value, ast.Constant) and (kw.arg, kw.value.value) in UNSAFE_KEYWORDS:
                        found.append(f"{where} {kw.arg}={kw.value.value}")
            elif isinstance(node, ast.Attribute) and node.attr == "enable_unsafe_deserialization":
                found.append(f"{where} {node.attr}")
    assert not found


def test_a_keras_file_with_a_lambda_layer_is_refused(tmp_path):
    path = tmp_path / "lambda.keras"
    x = keras.Input((3,))
    keras.Model(x, keras.layers.Lambda(lambda v: v * 2)(x)).save(path)
    with pytest.raises(ValueError, match="Lambda"):
        keras.saving.load_model(path, safe_mode=True)
    with pytest.raises(checkpoint.RunError) as error:
        checkpoint.load_keras_model(path)
    assert str(path) in str(error.value) and "Lambda" in str(error.value) and "\n" not in str(error.value)


def test_load_keras_model_reads_our_denoisers_and_refuses_other_files(tmp_path):
    path = tmp_path / "mlp_seed.keras"
    keras_diffusion.build_model("mlp_seed", hidden=8, timesteps=20).save(path)
    model = checkpoint.load_keras_model(path)
    assert model.name == "mlp_seed" and model.output_shape == (None, 28, 28, 1)
    (tmp_path / "fake.keras").write_bytes(b"not a zip")
    with pytest.raises(checkpoint.RunError, match="is not a .keras file"):
        checkpoint.load_keras_model(tmp_path / "fake.keras")
    with pytest.raises(checkpoint.RunError, match="does not exist"):
        checkpoint.load_keras_model(tmp_path / "none.keras")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(extra=1), r"unknown keys \['extra'\]"),
        (lambda c: c.pop("schedule"), r"missing keys \['schedule'\]"),
        (lambda c: c.update(version="0.0.1"), "written by keras_diffusion 0.0.1"),
        (lambda c: c["train"].update(colour="red"), r"train: unknown config keys \['colour'\]"),
        (lambda c: c["train"].update(epochs="5"), "train: config key 'epochs' must be int, got '5'"),
        (lambda c: c["train"].update(epochs=True), "train: config key 'epochs' must be int, got True"),
        (lambda c: c["train"].update(timesteps=None), "train: config key 'timesteps' must be int, got None"),
        (lambda c: c["train"].update(deterministic="yes"), "train: config key 'deterministic' must be bool"),
        (lambda c: c["train"].update(model="gan"), "train: model must be one of mlp_seed, mlp, unet, .*; got 'gan'"),
        (lambda c: c["train"].update(model_kwargs={"widht": 3}), "train: model_kwargs: model 'mlp' has no argument 'widht'"),
        (lambda c: c["train"].update(timesteps=30), "schedule has T=20 but train.timesteps is 30"),
        (lambda c: c.update(train=[1, 2]), "train: must be a JSON object"),
        (lambda c: c.update(schedule="cosine"), "schedule: must be a JSON object"),
        (lambda c: c["schedule"].update(name="sigmoid"), "schedule: schedule must be one of"),
        (lambda c: c.update(image_shape=[28, 28]), r"image_shape: must be 3 positive integers .* got \[28, 28\]"),
        (lambda c: c.update(image_shape=[28, 28, 0]), "image_shape: must be 3 positive integers"),
        (lambda c: c.update(image_shape=[28, "28", 1]), "image_shape: must be 3 positive integers"),
    ],
)
def test_bad_config_json_is_a_run_error_naming_the_field(tiny_run, tmp_path, change, message):
    data = json.loads((tiny_run / checkpoint.CONFIG).read_text())
    change(data)
    (tmp_path / checkpoint.CONFIG).write_text(json.dumps(data))
    with pytest.raises(checkpoint.RunError, match=message) as error:
        checkpoint.read_config(tmp_path)
    assert str(tmp_path / checkpoint.CONFIG) in str(error.value) and "\n" not in str(error.value)


# ---- 4. bad input everywhere -------------------------------------------------------------


@pytest.fixture
def places(tiny_run, tmp_path, fake_data_dir):
    """What the table's {placeholders} stand for."""
    old = copy_run(tiny_run, tmp_path, "old")
    config = json.loads((old / checkpoint.CONFIG).read_text())
    (old / checkpoint.CONFIG).write_text(json.dumps({**config, "version": "0.0.1"}))
    (tmp_path / "empty").mkdir()
    return {"run": str(tiny_run), "old": str(old), "empty": str(tmp_path / "empty"), "data": str(fake_data_dir), "tmp": str(tmp_path)}


BAD_INPUT = [
    ("train", ["--epochs", "-1"], "epochs must be >= 1, got -1"),
    ("train", ["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    ("train", ["--limit", "0"], "limit must be >= 1, got 0"),
    ("train", ["--ema", "1.5"], "ema must be in [0, 1), got 1.5"),
    ("train", ["--lr", "inf"], "lr must be a finite number > 0, got inf"),
    ("train", ["--timesteps", "0"], "timesteps must be >= 1, got 0"),
    ("train", ["--model", "mlp_seed", "--beta-start", "2"], "beta_start must be in (0, 1), got 2.0"),
    ("train", ["--model-kwargs", "{hidden"], "not valid JSON"),
    ("train", ["--model-kwargs", "[256]"], "must be a JSON object"),
    ("train", ["--model", "mlp", "--model-kwargs", '{"widht": 8}'], "model 'mlp' has no argument 'widht'"),
    ("train", ["--deterministic=yes"], "ignored explicit argument 'yes'"),
    ("train", TINY + ["--epochs", "1", "--data-dir", "{empty}", "--out", "{tmp}/r"], "data_dir {empty} does not hold"),
    ("train", TINY + ["--epochs", "1", "--data-dir", "{data}", "--out", "{run}/config.json"], "is a file, not a folder"),
    ("train", ["--resume", "{old}"], "written by keras_diffusion 0.0.1"),
    ("train", ["--resume", "{run}", "--lr", "0.1"], "--resume takes its settings from the run; drop --lr"),
    ("train", ["--resume", "{empty}"], "{empty} is not a run directory"),
    ("sample", ["--run", "{run}", "--sampler", "ddim", "--steps", "21"], "--steps must be <= T=20 of this run, got 21"),
    ("sample", ["--run", "{run}", "--sampler", "ddim", "--steps", "0"], "--steps must be >= 1, got 0"),
    ("sample", ["--run", "{run}", "--sampler", "euler"], "invalid choice: 'euler'"),
    ("sample", ["--run", "{run}", "--n", "0"], "--n must be >= 1, got 0"),
    ("sample", ["--run", "{run}", "--eta", "nan"], "--eta must be >= 0, got nan"),
    ("sample", ["--run", "{run}", "--out", "{tmp}/no/such/x.png"], "no/such does not exist"),
    ("sample", ["--run", "{empty}"], "{empty} is not a run directory"),
]


@pytest.mark.parametrize("module, argv, message", BAD_INPUT, ids=[f"{m}: {text[:40]}" for m, _, text in BAD_INPUT])
def test_bad_input_exits_2_with_one_line(places, capsys, module, argv, message):
    main = {"train": train.main, "sample": sample.main}[module]
    code, lines = run_cli(main, [fill(arg, places) for arg in argv], capsys)
    assert code == 2
    assert len(lines) == 1, lines
    assert fill(message, places) in lines[0]


def fill(text, places):
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


def test_debug_shows_the_traceback(tmp_path):
    """A damaged run with --debug: the full traceback, from a real process.

    (A folder without config.json is refused by the parser itself, before
    TensorFlow loads: a usage error, which has no traceback to show.)
    """
    (tmp_path / "config.json").write_text("{")
    argv = ["--run", str(tmp_path), "--debug"]
    result = subprocess.run([sys.executable, "-m", "keras_diffusion.sample", *argv], capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "RunError: " in result.stderr and "is not valid JSON" in result.stderr


def test_debug_lets_the_error_through_in_process(tmp_path):
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(checkpoint.RunError, match="is not valid JSON"):
        cli.run(sample.main, ["--run", str(tmp_path), "--debug"])


def fail_with(error):
    def main(argv):
        raise error

    return main


@pytest.mark.parametrize(
    "error, code, line",
    [
        (OSError(28, "No space left on device"), 1, "error: [Errno 28] No space left on device"),
        (KeyboardInterrupt(), 130, "interrupted"),
        (cli.UsageError("--n must be >= 1, got 0"), 2, "error: --n must be >= 1, got 0"),
    ],
)
def test_cli_run_maps_errors_to_exit_codes(capsys, error, code, line):
    assert cli.run(fail_with(error), []) == code
    assert capsys.readouterr().err == line + "\n"
    with pytest.raises(type(error)):
        cli.run(fail_with(error), ["--debug"])


def test_a_bug_is_not_hidden_behind_one_line():
    with pytest.raises(ZeroDivisionError):
        cli.run(fail_with(ZeroDivisionError("division by zero")), [])


SCHEDULE = NoiseSchedule.linear(20)
X = np.zeros((3, 4, 4, 1), np.float32)
WITH_NAN = np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X).astype(np.float32)
T_OK = np.array([0, 7, 19])

BAD_API = [
    (q_sample, dict(t=20), r"t must be in \[0, 19\] for a schedule of T=20, got t=20"),
    (q_sample, dict(t=-1), r"got t=-1"),
    (q_step, dict(t=np.array([0, 25, 3])), r"t must be in \[0, 19\].*got t=25"),
    (q_sample, dict(t=tf.constant([0, 99, 1])), r"got t=99"),  # eager: checked
    (q_sample, dict(t=[0.5, 1, 2]), r"t must be integer timesteps, got t=\[0.5, 1.0, 2.0\]"),
    (q_sample, dict(x=WITH_NAN), r"x0 holds 1 non-finite values \(NaN or inf\), e.g. nan"),
    (q_step, dict(x=tf.constant(WITH_NAN)), r"x_prev holds 1 non-finite values"),
    (q_sample, dict(noise=np.zeros((2, 4, 4, 1))), r"noise must have the shape of x0 \(3, 4, 4, 1\), got \(2, 4, 4, 1\)"),
    (q_step, dict(noise=np.zeros((3, 16))), r"noise must have the shape of x_prev \(3, 4, 4, 1\), got \(3, 16\)"),
    (q_sample, dict(t=np.array([0, 1])), r"t must be a scalar or one timestep per image, shape \(3,\); got shape \(2,\)"),
    (q_sample, dict(t=np.zeros((3, 1), int)), r"got shape \(3, 1\)"),
]


@pytest.mark.parametrize("function, change, message", BAD_API)
def test_bad_api_input_is_a_value_error_quoting_the_value(function, change, message):
    args = {"x": X, "t": T_OK, "noise": np.zeros_like(X), **change}
    with pytest.raises(ValueError, match=message):
        function(SCHEDULE, args["x"], args["t"], args["noise"])


def test_compiled_code_is_not_checked_at_run_time_but_shapes_are_at_trace_time():
    """Inside tf.function t is symbolic: no value check (it would cost a host round trip a step)."""
    spec_x, spec_t = tf.TensorSpec([None, 4, 4, 1]), tf.TensorSpec([None], tf.int32)

    @tf.function
    def noisy(x, t, noise):
        return q_sample(SCHEDULE, x, t, noise)

    noisy.get_concrete_function(spec_x, spec_t, spec_x)  # traces without reading any value
    with pytest.raises(ValueError, match="noise must have the shape of x0"):
        noisy.get_concrete_function(spec_x, spec_t, tf.TensorSpec([None, 5, 5, 1]))
    np.testing.assert_allclose(noisy(X + 1, tf.constant(T_OK), X), q_sample(SCHEDULE, X + 1, T_OK, X))


# ---- 5. determinism ------------------------------------------------------------------------


def losses(run):
    with open(run / checkpoint.HISTORY) as f:
        return [row["loss"] for row in csv.DictReader(f)]


def test_two_seeded_deterministic_runs_are_identical(tiny_run, tmp_path, fake_data_dir):
    assert json.loads((tiny_run / checkpoint.CONFIG).read_text())["train"]["deterministic"] is True
    again = tmp_path / "again"
    assert train.main(TINY + ["--epochs", "1", "--deterministic", "--data-dir", str(fake_data_dir), "--out", str(again)]) == 0
    assert losses(again) == losses(tiny_run)
    images = []
    for run in (tiny_run, again):
        npz = tmp_path / f"{run.name}.npz"
        assert sample.main(["--run", str(run), "--n", "3", "--npz", str(npz), "--seed", "1"]) == 0
        with np.load(npz, allow_pickle=False) as data:
            images.append(data["images"])
    np.testing.assert_array_equal(images[0], images[1])
