"""Image-to-image translation (DDIB): DDIM inversion, its exactness, translate, the metrics it is judged by, and edit translate."""

import re

import keras
import numpy as np
import pytest

from keras_diffusion import cli, edit, editing, train
from keras_diffusion.metrics import silhouette_iou, ssim
from keras_diffusion.models import build_model
from keras_diffusion.reverse import ddim_step, sample
from keras_diffusion.schedule import NoiseSchedule

SHAPE = (8, 8, 1)
T = 20
SCHEDULE = NoiseSchedule.cosine(T)


def images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n,) + SHAPE).astype(np.float32)


def label_denoiser(classes=3, shape=SHAPE):
    """A fake class-conditional denoiser whose ε̂ depends on the label only: (y + 1)/10 everywhere.

    With ε̂ constant along the chain, DDIM's steps up and down are exact inverses of each other.
    """
    x_t = keras.Input(shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    y = keras.Input((), dtype="int32", name="y")
    level = keras.layers.Lambda(lambda y: (keras.ops.cast(y, "float32") + 1.0) / 10.0)(y)  # (B,)
    unused = keras.layers.Embedding(classes + 1, 1, name="label_embedding")(y)  # how num_classes_of knows the classes
    eps = keras.layers.Lambda(lambda a: keras.ops.zeros_like(a[0]) + keras.ops.reshape(a[1], (-1, 1, 1, 1)) + 0.0 * keras.ops.reshape(a[2], (-1, 1, 1, 1)))(
        [x_t, level, unused]
    )
    return keras.Model([x_t, t, y], eps)


@pytest.fixture(scope="module")
def cond_unet():
    """A tiny class-conditional U-Net, random weights everywhere: ε̂ changes with x_t, t and y, as a trained one's does.

    (Untrained, its last layer starts at zero, and ε̂ ≡ 0 would make every inversion exact.)
    """
    model = build_model("unet", image_shape=SHAPE, timesteps=T, widths=[8, 16], blocks=1, attention=False, num_classes=3)
    rng = np.random.default_rng(0)
    last = [layer for layer in model.layers if layer.get_weights()][-1]
    last.set_weights([rng.normal(0, 0.02, w.shape).astype(np.float32) for w in last.get_weights()])
    return model


# --- the step and the inversion --------------------------------------------------------------


@pytest.mark.parametrize("t, t_next", [(-1, 0), (-1, 12), (0, 5), (7, 8), (3, T - 1)])
def test_ddim_inverse_step_is_undone_by_ddim_step(t, t_next):
    rng = np.random.default_rng(t_next)
    x, eps = rng.standard_normal((2,) + SHAPE).astype(np.float32), rng.standard_normal((2,) + SHAPE).astype(np.float32)
    up = editing.ddim_inverse_step(SCHEDULE, x, np.full(2, t), np.full(2, t_next), eps)
    down = ddim_step(SCHEDULE, up, np.full(2, t_next), np.full(2, t), eps)
    np.testing.assert_allclose(np.asarray(down), x, atol=2e-4)


def test_ddim_inverse_step_from_the_data_is_the_forward_mean_plus_noise():
    """From t = −1 (ᾱ = 1), x_{t'} = sqrt(ᾱ_{t'})·x_0 + sqrt(1−ᾱ_{t'})·ε̂: DDPM eq. 4 with ε̂ as the noise."""
    x, eps = images(2), images(2, seed=1)
    up = np.asarray(editing.ddim_inverse_step(SCHEDULE, x, np.full(2, -1), np.full(2, 9), eps))
    a = SCHEDULE.alpha_bars[9]
    np.testing.assert_allclose(up, np.sqrt(a) * x + np.sqrt(1 - a) * eps, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("steps, spacing, start", [(T, "uniform", None), (7, "uniform", None), (6, "karras", None), (5, "uniform", 12)])
def test_inversion_then_ddim_under_the_same_label_gives_the_images_back(steps, spacing, start):
    denoiser, x = label_denoiser(), images(5)
    labels = np.array([0, 1, 2, 1, 0])
    latents = editing.invert(denoiser, SCHEDULE, x, labels, steps=steps, spacing=spacing, start=start)
    assert latents.shape == x.shape and latents.dtype == np.float32
    back = sample(denoiser, SCHEDULE, len(x), sampler="ddim", steps=steps, spacing=spacing, x_T=latents, labels=labels, start=start)
    np.testing.assert_allclose(back, x, atol=1e-4)
    np.testing.assert_allclose(editing.translate(denoiser, SCHEDULE, x, labels, labels, steps, spacing, start=start or T - 1), x, atol=1e-4)


def test_inversion_ends_at_the_forward_marginal_of_the_constant_noise():
    """With ε̂ ≡ c the DDIM path is x_t = sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·c at every visited t, so at the top too."""
    denoiser, x = label_denoiser(), images(3)
    latents = editing.invert(denoiser, SCHEDULE, x, 1, steps=5)
    a = SCHEDULE.alpha_bars[-1]
    np.testing.assert_allclose(latents, np.sqrt(a) * x + np.sqrt(1 - a) * 0.2, atol=1e-5)


def test_round_trip_error_of_a_real_network_falls_with_the_step_size(cond_unet):
    """With ε̂ that changes along the path, inversion is exact only as the steps shrink: first order, as DDIM is.

    Measured with this network: 0.072, 0.036, 0.018 (largest pixel error, data in [-1, 1]) at 3, 6, 11 steps to t = 10.
    """
    x = images(4)
    errors = [float(np.abs(editing.translate(cond_unet, SCHEDULE, x, 1, 1, steps=steps, start=10) - x).max()) for steps in (3, 6, 11)]
    assert errors[0] > 1.5 * errors[1] > 1.5 * 1.5 * errors[2], errors
    assert errors[2] < 0.03, errors


def test_translate_changes_what_the_target_changes(cond_unet):
    x = images(4)
    same = editing.translate(cond_unet, SCHEDULE, x, 0, 0, steps=5)
    other = editing.translate(cond_unet, SCHEDULE, x, 0, 2, steps=5)
    assert same.shape == other.shape == x.shape
    assert not np.allclose(same, other, atol=1e-4)
    np.testing.assert_array_equal(editing.translate(cond_unet, SCHEDULE, x, 0, 2, steps=5), other)  # deterministic


def test_translate_start_follows_the_noise_level():
    cosine = NoiseSchedule.cosine(200)
    start = editing.translate_start(cosine, 15.0)
    sigmas = np.sqrt((1 - cosine.alpha_bars) / cosine.alpha_bars)
    assert sigmas[start] <= 15.0 < sigmas[start + 1]
    assert editing.translate_start(NoiseSchedule.linear(200, 1e-4, 0.02)) == 199  # its σ never reaches 15
    assert editing.translate_start(cosine, 1e-9) == 0


@pytest.mark.parametrize(
    "denoiser, condition, message",
    [
        ("unconditional", 1, "train one with --conditional or --text"),
        ("label", "a photo of a coat", "give class numbers"),
        ("label", [0.5, 1.5], "give class numbers"),
    ],
)
def test_translate_conditions_are_checked(denoiser, condition, message):
    model = build_model("mlp_seed", image_shape=SHAPE, timesteps=T, hidden=8) if denoiser == "unconditional" else label_denoiser()
    with pytest.raises(ValueError, match=message):
        editing.invert(model, SCHEDULE, images(2), condition, steps=3)


def test_invert_refuses_a_start_outside_the_schedule():
    with pytest.raises(ValueError, match=r"start must be an integer timestep in \[0, 19\], got 20"):
        editing.invert(label_denoiser(), SCHEDULE, images(2), 0, steps=3, start=T)


# --- the measures ----------------------------------------------------------------------------


def test_silhouette_iou_by_hand():
    a = np.zeros((2, 28, 28, 1), np.uint8)
    b = np.zeros_like(a)
    a[0, :10], b[0, 5:15] = 200, 100  # rows 0-9 against 5-14: 5 shared of 15
    a[1, 0, 0] = 15  # below the garment level: both empty
    np.testing.assert_allclose(silhouette_iou(a, b), [5 / 15, 1.0])
    with pytest.raises(ValueError, match="one to one"):
        silhouette_iou(a, b[:1])


def test_ssim_is_one_for_the_same_image_and_lower_for_another():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    b = rng.integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
    np.testing.assert_allclose(ssim(a, a), [1.0, 1.0], atol=1e-6)
    assert (ssim(a, b) < 0.2).all()


# --- the command line ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "cond"
    argv = ["--model", "unet", "--model-kwargs", '{"widths": [8, 16], "groups": 4, "blocks": 1, "attention": false}', "--conditional"]
    argv += ["--epochs", "1", "--limit", "64", "--batch-size", "32", "--timesteps", str(T), "--precision", "float32"]
    argv += ["--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]
    assert train.main(argv) == 0
    return out


def test_edit_translate_writes_one_result_an_image(cond_run, fake_data_dir, tmp_path, capsys):
    npz, png = tmp_path / "t.npz", tmp_path / "t.png"
    argv = ["translate", "--run", str(cond_run), "--images", "test:0-2", "--data-dir", str(fake_data_dir), "--to-label", "pullover"]
    assert edit.main(argv + ["--steps", "5", "--npz", str(npz), "--out", str(png)]) == 0
    assert "source: the dataset's labels" in capsys.readouterr().out
    with np.load(npz) as data:
        assert data["images"].shape == (3, 28, 28, 1) and data["images"].dtype == np.uint8 and "all_seeds" not in data
    assert png.stat().st_size > 0


def test_edit_translate_finds_the_source_of_a_file_with_the_classifier(cond_run, tmp_path, capsys):
    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=pixels)
    argv = ["translate", "--run", str(cond_run), "--images", str(tmp_path / "in.npz"), "--to-label", "2", "--steps", "3"]
    assert edit.main(argv + ["--npz", str(tmp_path / "out.npz")]) == 0
    assert "source: the package classifier: " in capsys.readouterr().out


def _error(argv, capsys):
    try:
        code = cli.run(edit.main, argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "flags, message",
    [
        ([], "translate needs a target: --to-label NAME .* or --to-prompt TEXT"),
        (["--to-label", "coat", "--to-prompt", "a coat"], "translate needs a target"),
        (["--to-label", "coat", "--sampler", "dpmpp_2m"], "translate is DDIM with eta 0 both ways"),
        (["--to-label", "coat", "--eta", "1"], "translate is DDIM with eta 0 both ways"),
        (["--to-label", "coat", "--seeds", "3"], "translate is deterministic"),
        (["--to-label", "coat", "--label", "bag"], "translate takes its conditions from --to-label"),
        (["--to-label", "coat", "--from-prompt", "a bag"], "--from-label goes with --to-label"),
        (["--to-label", "hat"], "--to-label/--from-label: .*hat"),
        (["--to-prompt", "a coat"], r"give --to-label NAME \(this run is class-conditional\)"),
        (["--to-label", "coat", "--start", "25"], "--start must be a timestep < T=20 of this run, got 25"),
        (["inpaint", "--to-label", "coat"], "--to-label is for translate, not inpaint"),
    ],
)
def test_edit_translate_errors_are_one_line(cond_run, fake_data_dir, capsys, flags, message):
    method = [] if flags[:1] == ["inpaint"] else ["translate"]
    argv = method + flags + ["--run", str(cond_run), "--data-dir", str(fake_data_dir), "--images", "test:0-1", "--steps", "3"]
    code, err = _error(argv, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.search(message, err), err
