"""The command lines: a tiny training run writes a full run directory, sample reads it back."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_diffusion import checkpoint, sample, train
from keras_diffusion.training import FIGURES

RUN_FILES = ("config.json", "weights.weights.h5", "history.csv") + FIGURES


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    argv = ["--model", "mlp_seed", "--epochs", "1", "--limit", "512", "--batch-size", "64"]
    argv += ["--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "8"]
    assert train.main(argv) == 0
    return out


def test_train_writes_every_file_of_the_run_directory(tiny_run):
    for name in RUN_FILES:
        assert (tiny_run / name).is_file(), name
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["train"]["model"] == "mlp_seed" and config["train"]["limit"] == 512
    assert config["train"]["scaling"] == "zero_one"  # mlp_seed's default: the classic demo's [0, 1]
    assert config["schedule"] == {"name": "linear", "timesteps": 200, "beta_start": 1e-4, "beta_end": 0.02}
    assert "version" in config and config["image_shape"] == [28, 28, 1]
    lines = (tiny_run / "history.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,loss,seconds") and len(lines) == 2  # Keras adds val_* columns, NA here
    assert float(lines[1].split(",")[2]) > 0  # the epoch's wall time


def test_sample_reads_the_run_back(tiny_run, tmp_path):
    png, npz = tmp_path / "s.png", tmp_path / "s.npz"
    assert sample.main(["--run", str(tiny_run), "--n", "5", "--out", str(png), "--npz", str(npz), "--seed", "3"]) == 0
    assert png.stat().st_size > 0
    with np.load(npz, allow_pickle=False) as data:
        images = data["images"]
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    # same seed, same images
    again = tmp_path / "again.npz"
    sample.main(["--run", str(tiny_run), "--n", "5", "--npz", str(again), "--seed", "3"])
    with np.load(again, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["images"], images)


def test_sample_with_ddim(tiny_run, tmp_path):
    npz = tmp_path / "d.npz"
    assert sample.main(["--run", str(tiny_run), "--n", "3", "--npz", str(npz), "--sampler", "ddim", "--steps", "10"]) == 0


def test_load_run_refuses_a_mismatch(tiny_run, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((tiny_run / "config.json").read_text())
    config["train"]["model_kwargs"] = {"hidden": 64}
    (broken / "config.json").write_text(json.dumps(config))
    (broken / "weights.weights.h5").write_bytes((tiny_run / "weights.weights.h5").read_bytes())
    with pytest.raises(checkpoint.RunError, match="does not fit model 'mlp_seed'"):
        checkpoint.load_run(broken)
    config["version"] = "0.0.1"
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(checkpoint.RunError, match="written by keras_diffusion 0.0.1"):
        checkpoint.load_run(broken)


def test_train_refuses_to_overwrite_a_run(tiny_run, fake_data_dir, capsys):
    from keras_diffusion import cli

    code = cli.run(train.main, ["--epochs", "1", "--limit", "64", "--data-dir", str(fake_data_dir), "--out", str(tiny_run)])
    assert code == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("train", ["--epochs", "-1"], "epochs must be >= 1, got -1"),
        ("train", ["--batch-size", "0"], "batch_size must be >= 1, got 0"),
        ("train", ["--model", "gan"], "invalid choice: 'gan'"),
        ("train", ["--lr", "fast"], "invalid float value: 'fast'"),
        ("train", ["--model-kwargs", "{hidden"], "not valid JSON"),
        ("sample", ["--run", "no/such/run"], "no/such/run is not a run directory"),
        ("sample", ["--run", "x", "--sampler", "ddpm", "--steps", "50"], "--steps needs one of the samplers ddim, dpmpp_2m"),
        ("sample", ["--run", "x", "--sampler", "heun", "--eta", "1"], "--eta is DDIM's amount of fresh noise; sampler 'heun' does not take it (use --sampler ddim)"),
        ("sample", ["--run", "x", "--sampler", "ddim", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
        ("evaluate", ["--run", "x", "--sampler", "ddpm", "--steps", "10", "20"], "--steps needs one of the samplers"),
        ("sample", ["--run", "x", "--sampler", "euler"], "invalid choice: 'euler'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(module, argv, message):
    result = subprocess.run([sys.executable, "-m", f"keras_diffusion.{module}", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _tensorflow_noise(line)]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def _tensorflow_noise(line):
    # TensorFlow's C++ start-up notices (CUDA probing) are not ours to silence
    return line.startswith(("WARNING: All log messages", "I0000", "E0000", "W0000"))


def test_help_shows_examples():
    result = subprocess.run([sys.executable, "-m", "keras_diffusion.train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--model mlp_seed --epochs 5" in result.stdout


@pytest.mark.parametrize("model, kwargs", [("mlp", '{"hidden": 64, "blocks": 1}'), ("unet", '{"widths": [8, 16, 16]}')])
def test_each_rung_trains_and_writes_its_run_directory(model, kwargs, fake_data_dir, tmp_path):
    out = tmp_path / model
    argv = ["--model", model, "--model-kwargs", kwargs, "--epochs", "1", "--limit", "256", "--timesteps", "20"]
    assert train.main(argv + ["--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]) == 0
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    denoiser, schedule, config = checkpoint.load_run(out)
    assert config.model == model and schedule.name == "cosine" and schedule.timesteps == 20
    assert config.scaling == "minus_one_one"
