"""The command lines answer --help without TensorFlow, and run without TensorFlow's own log lines."""

import re
import subprocess
import sys

import pytest

COMMANDS = ("train", "sample", "evaluate", "bench")
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
import sys
from keras_diffusion import cli, {command} as command
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
    result = subprocess.run([sys.executable, "-m", f"keras_diffusion.{command}", *map(str, argv)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def _noise(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


@pytest.fixture(scope="module")
def quiet_run(fake_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("quiet") / "run"
    argv = ["--model", "mlp_seed", "--model-kwargs", '{"hidden": 16}', "--epochs", "1", "--limit", "64", "--batch-size", "32"]
    result = _run("train", *argv, "--timesteps", "10", "--n-samples", "4", "--data-dir", fake_data_dir, "--out", out)
    return out, result


def test_train_prints_no_tensorflow_log_lines(quiet_run):
    _, result = quiet_run
    assert _noise(result) == []
    assert "done in" in result.stdout


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
