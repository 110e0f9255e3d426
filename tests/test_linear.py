"""The closed-form linear denoiser against a direct least-squares fit, its loss against the eigenvalue formula.

A toy of 2x4-pixel images keeps every fit and every sample to a fraction of a second.
"""

import numpy as np
import pytest

from keras_diffusion.models import build_model
from keras_diffusion.models.linear import fit_linear, linear_losses
from keras_diffusion.schedule import NoiseSchedule

SHAPE = (2, 4, 1)  # D = 8 pixels
T = 20


@pytest.fixture(scope="module")
def toy():
    """(uint8 images, schedule, fitted denoiser): correlated pixels with a mean far from 0, as clothes have."""
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((300, 3))  # three underlying factors shared by the 8 pixels
    pixels = 120 + 40 * latent @ rng.standard_normal((3, 8)) + 10 * rng.standard_normal((300, 8))
    images = np.clip(pixels, 0, 255).astype(np.uint8).reshape((300,) + SHAPE)
    schedule = NoiseSchedule.cosine(T)
    denoiser = build_model("linear", image_shape=SHAPE, timesteps=T)
    fit_linear(denoiser, images, "minus_one_one", schedule)
    return images, schedule, denoiser


def affine_map(denoiser, t):
    """(A_t, b_t) of ε̂ = A_t·x_t + b_t, read from the denoiser by feeding it 0 and the unit vectors."""
    d = int(np.prod(SHAPE))
    probes = np.concatenate([np.zeros((1, d)), np.eye(d)]).astype(np.float32).reshape((-1,) + SHAPE)  # (1 + D, ...)
    out = np.asarray(denoiser([probes, np.full(len(probes), t, np.int32)])).reshape(len(probes), d)
    return (out[1:] - out[0]).T, out[0]  # A[:, i] = ε̂(e_i) − ε̂(0)


def test_matches_a_direct_least_squares_fit_of_eps_on_x_t(toy):
    images, schedule, denoiser = toy
    x0 = (images.reshape(len(images), -1).astype(np.float64) / 255) * 2 - 1  # (N, 8) in [-1, 1]
    rng = np.random.default_rng(1)
    for t in (2, 10, 17):
        copies = np.repeat(x0, 400, axis=0)  # every training image with 400 noises: 120,000 pairs
        eps = rng.standard_normal(copies.shape)
        x_t = schedule.sqrt_alpha_bars[t] * copies + schedule.sqrt_one_minus_alpha_bars[t] * eps
        design = np.concatenate([x_t, np.ones((len(x_t), 1))], axis=1)  # (M, 9): x_t and a constant
        coef, *_ = np.linalg.lstsq(design, eps, rcond=None)  # (9, 8): ε ≈ x_t·A_tᵀ + b_t
        A, b = affine_map(denoiser, t)
        np.testing.assert_allclose(A, coef[:-1].T, atol=0.02)
        np.testing.assert_allclose(b, coef[-1], atol=0.02)


def test_exact_loss_is_the_eigenvalue_formula(toy):
    """E‖ε − A_t·x_t − b_t‖² over ε ~ N(0, I) and the images, in closed form, equals (1/D)·Σ ᾱλ/(ᾱλ + 1 − ᾱ)."""
    images, schedule, denoiser = toy
    x0 = (images.reshape(len(images), -1).astype(np.float64) / 255) * 2 - 1
    d = x0.shape[1]
    eigenvalues = np.linalg.eigvalsh(np.cov(x0, rowvar=False, bias=True))  # the training images' own covariance
    losses = []
    for t in range(T):
        A, b = affine_map(denoiser, t)
        # ε̂ − ε = sqrt(ᾱ)·A·x_0 + b + (sqrt(1−ᾱ)·A − I)·ε: a fixed part and a zero-mean part in ε
        fixed = schedule.sqrt_alpha_bars[t] * x0 @ A.T + b  # (N, D)
        noisy = schedule.sqrt_one_minus_alpha_bars[t] * A - np.eye(d)
        losses.append((np.mean(np.sum(fixed**2, axis=1)) + np.sum(noisy**2)) / d)
    a = schedule.alpha_bars[:, None]
    formula = np.mean(a * eigenvalues / (a * eigenvalues + 1 - a), axis=1)  # (T,)
    np.testing.assert_allclose(losses, formula, rtol=2e-3, atol=1e-5)
    np.testing.assert_allclose(linear_losses(schedule.alpha_bars, eigenvalues), formula)
    assert fit_linear(build_model("linear", image_shape=SHAPE, timesteps=T), images, "minus_one_one", schedule) == pytest.approx(formula.mean())


def test_samples_are_finite_images(toy):
    from keras_diffusion.reverse import sample

    _, schedule, denoiser = toy
    for sampler, steps in (("ddpm", None), ("ddim", 10)):
        x = np.asarray(sample(denoiser, schedule, 16, sampler=sampler, steps=steps, seed=0, clip=(-1.0, 1.0)))
        assert x.shape == (16,) + SHAPE and np.isfinite(x).all() and 0.0 < x.std() < 1.0


def test_fit_refuses_another_schedule_length_or_image_size(toy):
    images, schedule, _ = toy
    with pytest.raises(ValueError, match="built for T=20 but the schedule has T=200"):
        fit_linear(build_model("linear", image_shape=SHAPE, timesteps=T), images, "minus_one_one", NoiseSchedule.cosine(200))
    with pytest.raises(ValueError, match="images of 8 pixels do not fit a linear denoiser built for 784"):
        fit_linear(build_model("linear", timesteps=T), images, "minus_one_one", schedule)


def test_train_fits_it_in_closed_form_and_writes_a_run(tmp_path, fake_data_dir):
    """train --model linear: no gradient steps, yet a run directory that load_run and sample read as any other."""
    from keras_diffusion.checkpoint import load_run, read_state_epoch
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.plotting import read_history
    from keras_diffusion.training import train

    config = TrainConfig(model="linear", limit=128, timesteps=T, n_samples=4, data_dir=str(fake_data_dir))
    run_dir, history = train(config, out=tmp_path / "linear", verbose=0)
    assert {"weights.weights.h5", "state.weights.h5", "history.csv", "samples.png", "config.json"} <= {p.name for p in run_dir.iterdir()}
    assert read_state_epoch(run_dir) == 1 and read_history(run_dir / "history.csv")["loss"] == pytest.approx(history["loss"])
    denoiser, schedule, _ = load_run(run_dir)
    layer = denoiser.get_layer("gaussian_denoiser")
    np.testing.assert_allclose(layer.alpha_bars.numpy(), schedule.alpha_bars, rtol=1e-6)
    assert history["loss"][0] == pytest.approx(linear_losses(schedule.alpha_bars, layer.eigenvalues.numpy()).mean(), rel=1e-5)


def test_ladder_bench_runs_the_linear_rungs(fake_data_dir, tmp_path):
    """bench ladder fits the baseline rungs in closed form and times their sampling like any rung's."""
    import json

    from keras_diffusion import bench

    out = tmp_path / "ladder.json"
    argv = ["ladder", "--limit", "128", "--only", "linear", "--sample-batch", "4", "--data-dir", str(fake_data_dir), "--json", str(out)]
    assert bench.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["rung"] for row in rows] == [rung.label for rung in bench.RUNGS if rung.model == "linear"]
    assert [row["scaling"] for row in rows] == ["zero_one", "minus_one_one"]
    assert all(0 < row["final_loss"] < 1 and row["train_images_per_s"] > 0 for row in rows)
