"""Latent diffusion: the autoencoder, its scale factor, and a latent run through the standard command lines."""

import json
import shutil

import keras
import numpy as np
import pytest

from keras_diffusion import checkpoint, cli, evaluate, latent, sample, train
from keras_diffusion.config import TrainConfig
from keras_diffusion.models.autoencoder import Autoencoder
from keras_diffusion.schedule import NoiseSchedule
from keras_diffusion.training import FIGURES

TINY = ["--latent", "--limit", "256", "--epochs", "1", "--autoencoder-epochs", "1", "--timesteps", "20", "--no-xla", "--n-samples", "4"]
TINY += ["--model-kwargs", '{"widths": [8], "attention": false}']


def blobs(n, seed=0):
    """Smooth images in [-1, 1] (n, 28, 28, 1): something an autoencoder can learn in a few steps."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-1, 1, 28)
    centers, widths = rng.uniform(-0.5, 0.5, (n, 2)), rng.uniform(0.2, 0.5, (n, 1, 1))
    d2 = (grid[None, :, None] - centers[:, 0, None, None]) ** 2 + (grid[None, None, :] - centers[:, 1, None, None]) ** 2
    return (2 * np.exp(-d2 / widths**2) - 1)[..., None].astype(np.float32)


def test_the_autoencoder_round_trips_shapes():
    autoencoder = Autoencoder(latent_channels=3, seed=0)
    x = blobs(5)
    mean, log_var = autoencoder.encode(x)
    assert mean.shape == log_var.shape == (5, 7, 7, 3) and autoencoder.latent_shape == (7, 7, 3)
    assert autoencoder.decode(mean).shape == autoencoder(x).shape == (5, 28, 28, 1)
    assert Autoencoder.from_config(autoencoder.get_config()).latent_shape == (7, 7, 3)


def test_the_kl_term_is_the_closed_form_of_two_gaussians():
    autoencoder = Autoencoder(seed=0)
    x = blobs(4)
    mean, log_var = (np.asarray(v, np.float64) for v in autoencoder.encode(x))
    _, _, kl = autoencoder.losses_of(x)
    # KL(N(μ, σ²) ‖ N(0, 1)) = log(1/σ) + (σ² + μ²)/2 − 1/2, written another way than in the model
    sigma = np.exp(log_var / 2)
    expected = np.mean(-np.log(sigma) + (sigma**2 + mean**2) / 2 - 0.5)
    assert float(kl) == pytest.approx(expected, rel=1e-4)


def test_the_autoencoder_trains_a_few_steps():
    keras.utils.set_random_seed(0)
    autoencoder = Autoencoder(seed=0)
    autoencoder.compile(optimizer=keras.optimizers.Adam(2e-3))
    x = blobs(64)
    losses = [float(autoencoder.train_on_batch(x, return_dict=True)["mse"]) for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_scale_factor_gives_latents_unit_variance():
    autoencoder = Autoencoder(seed=0)
    x = blobs(200, seed=1)
    scale = latent.scale_factor(autoencoder, x)
    z = latent.encode(autoencoder, scale, x)  # (200, 7, 7, 4)
    assert z.shape == (200, 7, 7, 4) and np.std(z) == pytest.approx(1.0, rel=1e-5)
    assert np.std(latent.encode(autoencoder, scale, blobs(200, seed=2))) == pytest.approx(1.0, rel=0.2)  # other images of the same kind
    # decoding divides by the factor again: D(z / s) is the plain reconstruction D(μ)
    np.testing.assert_allclose(latent.decode(autoencoder, scale, z), np.asarray(autoencoder(x)), atol=1e-5)


@pytest.fixture(scope="module")
def latent_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "latent"
    assert train.main(TINY + ["--data-dir", str(fake_data_dir), "--out", str(out)]) == 0
    return out


def test_a_latent_run_holds_both_parts(latent_run):
    config = json.loads((latent_run / "config.json").read_text())
    assert config["train"]["latent"] is True and config["image_shape"] == [7, 7, 4]
    assert config["train"]["clip"] is False  # latents are not bounded like pixels
    for name in ("weights.weights.h5", "history.csv", *FIGURES):
        assert (latent_run / name).is_file(), name
    for name in latent.FILES:
        assert (latent_run / "autoencoder" / name).is_file(), name
    info = json.loads((latent_run / "autoencoder" / "autoencoder.json").read_text())
    assert info["scale_factor"] > 0 and info["scaling"] == "minus_one_one" and "test_psnr" in info
    denoiser, _, loaded = checkpoint.load_run(latent_run)  # the latent U-Net, as for any run
    assert loaded.latent and denoiser.inputs[0].shape[1:] == (7, 7, 4)


def test_sample_decodes_a_latent_run(latent_run, tmp_path):
    npz = tmp_path / "s.npz"
    assert sample.main(["--run", str(latent_run), "--n", "5", "--npz", str(npz), "--out", str(tmp_path / "s.png"), "--seed", "3"]) == 0
    with np.load(npz) as data:
        images = data["images"]
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    again = tmp_path / "again.npz"
    assert sample.main(["--run", str(latent_run), "--n", "5", "--npz", str(again), "--seed", "3"]) == 0
    with np.load(again) as data:
        np.testing.assert_array_equal(data["images"], images)
    assert sample.main(["--run", str(latent_run), "--n", "3", "--npz", str(again), "--sampler", "ddim", "--steps", "5"]) == 0


def test_evaluate_scores_a_latent_run(latent_run, fake_data_dir, capsys):
    argv = ["--run", str(latent_run), "--n", "130", "--sampler", "ddim", "--steps", "5", "--data-dir", str(fake_data_dir)]
    assert evaluate.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 130 and np.isfinite(result["fid"]) and 0 <= result["class_entropy"] <= 1


def test_a_second_run_reuses_the_autoencoder(latent_run, fake_data_dir, tmp_path, capsys):
    out = tmp_path / "again"
    argv = TINY + ["--autoencoder", str(latent_run), "--data-dir", str(fake_data_dir), "--out", str(out), "--seed", "1"]
    assert train.main(argv) == 0
    printed = capsys.readouterr().out
    assert "training the autoencoder" not in printed and "reusing the autoencoder" in printed
    for name in latent.FILES:  # copied whole: the run directory stands on its own
        assert (out / "autoencoder" / name).read_bytes() == (latent_run / "autoencoder" / name).read_bytes(), name
    assert json.loads((out / "config.json").read_text())["train"]["autoencoder"] == str(latent_run)


def _pixel_run(folder):
    """A folder with a pixel run's config.json (no weights needed to be refused)."""
    folder.mkdir()
    config = TrainConfig(model="unet").resolved()
    checkpoint.save_config(folder, config, NoiseSchedule.cosine(200), (28, 28, 1))
    return folder


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "mlp"], "--latent trains a U-Net on the latents; drop --model mlp"),
        (["--clip"], "latents are not bounded like pixels: drop --clip"),
        (["--model-kwargs", '{"widths": [16, 32]}'], "give the U-Net one width, e.g. [64], got widths [16, 32]"),
        (["--fid-every", "1"], "--fid-every cannot score latents during training"),
        (["--latent-channels", "0"], "latent_channels must be >= 1, got 0"),
    ],
)
def test_latent_settings_that_cannot_work_are_refused(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--latent", *extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_autoencoder_errors_are_one_line(latent_run, fake_data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--autoencoder", str(latent_run)])
    assert "needs --latent" in capsys.readouterr().err
    base = TINY + ["--data-dir", str(fake_data_dir)]
    pixel = _pixel_run(tmp_path / "pixel")
    cases = [
        (["--autoencoder", str(pixel)], f"--autoencoder {pixel} is a unet run without an autoencoder; pass a run trained with --latent"),
        (["--autoencoder", str(tmp_path / "nothing")], "does not exist; pass a run trained with --latent"),
        (["--autoencoder", str(tmp_path)], "holds no autoencoder (no autoencoder/autoencoder.json)"),
        (["--autoencoder", str(latent_run), "--latent-channels", "3"], "has 4 latent channels; pass --latent-channels 4"),
        (["--autoencoder", str(latent_run), "--scaling", "zero_one"], "was trained on minus_one_one pixels; this run uses zero_one"),
    ]
    for k, (extra, message) in enumerate(cases):
        assert cli.run(train.main, base + extra + ["--out", str(tmp_path / f"run{k}")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_sample_and_evaluate_refuse_what_a_latent_run_cannot_do(latent_run, fake_data_dir, capsys):
    assert cli.run(sample.main, ["--run", str(latent_run), "--n", "2", "--clip"]) == 2
    assert "a latent run samples latents: drop --clip" in capsys.readouterr().err
    assert cli.run(evaluate.main, ["--run", str(latent_run), "--n", "130", "--no-fid", "--bpd", "--data-dir", str(fake_data_dir)]) == 2
    assert "is a latent run, whose bound is over latents" in capsys.readouterr().err


def test_a_latent_run_without_its_autoencoder_is_refused_in_one_line(latent_run, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(latent_run, broken, ignore=shutil.ignore_patterns("autoencoder"))
    assert cli.run(sample.main, ["--run", str(broken), "--n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a latent run without its autoencoder/autoencoder.json" in err and len(err.splitlines()) == 1


def test_plot_latents_shows_every_channel(tmp_path):
    autoencoder = Autoencoder(latent_channels=3, seed=0)
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    fig = latent.plot_latents(autoencoder, 1.0, images, path=tmp_path / "latents.png")
    assert (tmp_path / "latents.png").stat().st_size > 0
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["x", "z channel 1", "z channel 2", "z channel 3", "D(z / s)"]
