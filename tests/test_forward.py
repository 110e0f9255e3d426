import numpy as np

from keras_diffusion.forward import forward_snapshots, q_sample, q_step
from keras_diffusion.schedule import NoiseSchedule


def test_q_sample_is_the_closed_form():
    s = NoiseSchedule.linear()
    rng = np.random.default_rng(0)
    x0, noise = rng.random((5, 28, 28, 1)), rng.standard_normal((5, 28, 28, 1))
    t = np.array([0, 10, 50, 150, 199])
    got = np.asarray(q_sample(s, x0, t, noise))
    expected = np.sqrt(s.alpha_bars[t])[:, None, None, None] * x0 + np.sqrt(1 - s.alpha_bars[t])[:, None, None, None] * noise
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.shape == x0.shape and got.dtype == np.float32


def test_q_step_is_one_markov_step():
    s = NoiseSchedule.linear()
    rng = np.random.default_rng(1)
    x, noise = rng.random((3, 4)), rng.standard_normal((3, 4))
    t = np.array([0, 100, 199])
    expected = np.sqrt(1 - s.betas[t])[:, None] * x + np.sqrt(s.betas[t])[:, None] * noise
    np.testing.assert_allclose(np.asarray(q_step(s, x, t, noise)), expected, atol=1e-6)


def test_iterated_markov_chain_matches_the_closed_form():
    """200 q_steps and one q_sample give the same mean and variance (DDPM eq. 4)."""
    s = NoiseSchedule.linear()
    rng = np.random.default_rng(2)
    x0 = np.tile(np.linspace(-1, 1, 8), (20000, 1)).astype(np.float32)  # (N, 8), N draws of one "image"
    x = x0
    for t in range(s.timesteps):
        x = np.asarray(q_step(s, x, t, rng.standard_normal(x.shape)))
        if t in (20, 100, 199):
            mean, var = x.mean(0), x.var(0)
            np.testing.assert_allclose(mean, s.sqrt_alpha_bars[t] * x0[0], atol=0.03)
            np.testing.assert_allclose(var, 1 - s.alpha_bars[t], atol=0.03)
            closed = np.asarray(q_sample(s, x0, t, rng.standard_normal(x0.shape)))
            np.testing.assert_allclose(closed.mean(0), mean, atol=0.04)
            np.testing.assert_allclose(closed.var(0), var, atol=0.04)


def test_forward_snapshots_shape_and_values():
    s = NoiseSchedule.linear()
    x0 = np.random.default_rng(3).random((2, 28, 28, 1)).astype(np.float32)
    snaps = forward_snapshots(s, x0, [0, 199], seed=5)
    assert snaps.shape == (2, 2, 28, 28, 1)
    # one ε per image: recover it from both columns and compare
    eps0 = (snaps[:, 0] - s.sqrt_alpha_bars[0] * x0) / s.sqrt_one_minus_alpha_bars[0]
    eps1 = (snaps[:, 1] - s.sqrt_alpha_bars[199] * x0) / s.sqrt_one_minus_alpha_bars[199]
    np.testing.assert_allclose(eps0, eps1, atol=1e-3)
    np.testing.assert_array_equal(snaps, forward_snapshots(s, x0, [0, 199], seed=5))
