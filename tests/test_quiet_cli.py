"""The command lines answer --help without TensorFlow, run without TensorFlow's own log lines, and show progress in logs."""

import io
import os
import pathlib
import re
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_diffusion"
# every command line: train, sample, evaluate, bench and the newer ones (packages run by their __main__)
COMMANDS = sorted(path.stem for path in PACKAGE.glob("*.py") if "cli.Parser(" in path.read_text())
COMMANDS += sorted(f"{path.parent.name}.__main__" for path in PACKAGE.glob("*/__main__.py"))
# what TensorFlow's C++ and absl logging print on a machine without a GPU
NOISE = re.compile(
    r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuda|cuInit|oneDNN|TF_ENABLE_ONEDNN_OPTS|"
    r"This TensorFlow binary is optimized|rebuild TensorFlow|WARNING:tensorflow",
    re.IGNORECASE,
)


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_and_argument_errors_do_not_import_tensorflow(command):
    code = f"""
import importlib, sys
command = importlib.import_module("keras_diffusion.{command}")
for argv in (["--help"], ["--no-such-flag"]):
    try:
        command.main(argv)
    except SystemExit as stop:
        assert stop.code == (0 if argv == ["--help"] else 2), stop.code
print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", f"{command} imported {result.stdout.splitlines()[-1]}"


def test_package_names_load_on_first_use():
    code = """
import sys
import keras_diffusion as kd
before = "tensorflow" in sys.modules
schedule = kd.NoiseSchedule.linear(10)  # NumPy only
after_schedule = "tensorflow" in sys.modules
kd.build_model, kd.q_sample, kd.DiffusionModel, kd.ddim_step
print(before, after_schedule, "tensorflow" in sys.modules, schedule.timesteps)
"""
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "True", "10"]


def test_unknown_package_attribute_is_an_attribute_error():
    import keras_diffusion

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        keras_diffusion.nope


def _run(command, *argv):
    # stdout is a pipe, as under nohup or | tee; a progress line may come at every chance
    env = {**os.environ, "KERAS_DIFFUSION_PROGRESS_SECONDS": "0"}
    result = subprocess.run([sys.executable, "-m", f"keras_diffusion.{command}", *map(str, argv)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return result


def _noise(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


@pytest.fixture(scope="module")
def quiet_run(fake_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("quiet") / "run"
    argv = ["--model", "mlp_seed", "--model-kwargs", '{"hidden": 16}', "--epochs", "1", "--limit", "96", "--batch-size", "32", "--steps-per-execution", "1"]
    result = _run("train", *argv, "--timesteps", "10", "--n-samples", "4", "--data-dir", fake_data_dir, "--out", out)
    return out, result


def test_train_prints_no_tensorflow_log_lines_but_its_progress(quiet_run):
    _, result = quiet_run
    assert _noise(result) == []
    assert "done in" in result.stdout
    # 96 images in batches of 32: a line after steps 1 and 2 (the last step's is Keras' epoch line);
    # speed and ETA are measured after the first step, which pays for tracing
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch 1/1")]
    assert len(lines) == 2 and re.fullmatch(r"epoch 1/1  step 1/3  loss \d\.\d{4}", lines[0]), result.stdout
    assert re.fullmatch(r"epoch 1/1  step 2/3  [\d,]+ images/s  loss \d\.\d{4}  ETA \d+s", lines[1]), result.stdout


def test_sample_is_quiet_but_our_warnings_still_show(quiet_run, tmp_path):
    run, _ = quiet_run
    (run / ".weights.weights.h5.tmp-123").write_bytes(b"")  # what a killed save leaves: the package warns
    try:
        result = _run("sample", "--run", run, "--n", "2", "--npz", tmp_path / "s.npz")
    finally:
        (run / ".weights.weights.h5.tmp-123").unlink()
    assert _noise(result) == []
    assert "warning:" in result.stderr and "half-written" in result.stderr


def test_verbose_lets_tensorflow_speak(quiet_run, tmp_path):
    run, _ = quiet_run
    result = _run("sample", "--run", run, "--n", "2", "--npz", tmp_path / "s.npz", "--verbose")
    # whether TensorFlow has anything to say depends on the machine: only report what came through
    print(f"{len(_noise(result))} TensorFlow log lines with --verbose")


def test_sampling_reports_progress_after_each_long_batch(quiet_run, tmp_path):
    run, _ = quiet_run
    result = _run("sample", "--run", run, "--n", "3", "--batch-size", "1", "--npz", tmp_path / "s.npz")
    lines = [line for line in result.stderr.splitlines() if line.startswith("sampling:")]
    assert [line.split(",")[0] for line in lines] == ["sampling: 1/3 images", "sampling: 2/3 images"]  # not after the last
    assert all(re.search(r"[\d.,]+ images/s, ETA \d+s$", line) for line in lines)


def test_progress_interval_and_durations(monkeypatch):
    from keras_diffusion import progress

    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    assert progress.interval() == 30 and progress.interval(5) == 5
    monkeypatch.setenv(progress.ENV_VAR, "0.5")
    assert progress.interval() == 0.5
    monkeypatch.setenv(progress.ENV_VAR, "soon")
    with pytest.raises(ValueError, match="KERAS_DIFFUSION_PROGRESS_SECONDS must be a number of seconds, got 'soon'"):
        progress.interval()
    assert [progress.duration(s) for s in (0.4, 42, 725, 3720)] == ["0s", "42s", "12m05s", "1h02m"]


def test_sampling_progress_is_silent_while_batches_are_quick():
    from keras_diffusion.progress import SamplingProgress

    stream = io.StringIO()
    report = SamplingProgress(512, every=3600, stream=stream)
    report(256)
    assert stream.getvalue() == ""
