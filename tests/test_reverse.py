import numpy as np
import pytest
import tensorflow as tf

from keras_diffusion.models import build_model
from keras_diffusion.reverse import ddim_step, ddpm_step, predict_x0, sample, timestep_sequence
from keras_diffusion.schedule import NoiseSchedule

SHAPE = (4, 6, 6, 1)


def oracle(schedule, x0):
    """A perfect denoiser for a data set of one known image batch: ε = (x_t − sqrt(ᾱ_t)·x0) / sqrt(1−ᾱ_t)."""
    a = tf.constant(schedule.sqrt_alpha_bars, tf.float32)
    b = tf.constant(schedule.sqrt_one_minus_alpha_bars, tf.float32)
    x0 = tf.constant(x0, tf.float32)

    def denoiser(inputs):
        x_t, t = inputs
        a_t = tf.reshape(tf.gather(a, t), (-1, 1, 1, 1))
        b_t = tf.reshape(tf.gather(b, t), (-1, 1, 1, 1))
        return (x_t - a_t * x0) / b_t

    return denoiser


@pytest.mark.parametrize("variance", ["beta", "posterior"])
def test_ddpm_with_a_perfect_oracle_recovers_x0(variance):
    s = NoiseSchedule.linear()
    x0 = np.random.default_rng(0).uniform(-1, 1, SHAPE).astype(np.float32)
    out = sample(oracle(s, x0), s, SHAPE[0], seed=3, variance=variance, image_shape=SHAPE[1:])
    np.testing.assert_allclose(out, x0, atol=1e-4)


def test_ddpm_step_matches_algorithm_2():
    s = NoiseSchedule.linear()
    rng = np.random.default_rng(1)
    x, eps, z = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(3))
    t = np.array([199, 120, 1, 0])
    got = np.asarray(ddpm_step(s, x, t, eps, z))
    c = lambda v: v[t][:, None, None, None]  # noqa: E731
    mean = (x - c(s.betas) / c(s.sqrt_one_minus_alpha_bars) * eps) / np.sqrt(c(s.alphas))
    expected = mean + (t > 0)[:, None, None, None] * np.sqrt(c(s.betas)) * z
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # with a wide clip range the posterior-mean route gives the same update
    np.testing.assert_allclose(np.asarray(ddpm_step(s, x, t, eps, z, clip=(-1e6, 1e6))), expected, atol=1e-3)


def test_ddim_with_eta_1_is_the_ddpm_step_with_posterior_variance():
    s = NoiseSchedule.linear()
    rng = np.random.default_rng(2)
    x, eps, z = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(3))
    t = np.array([199, 100, 5, 1])
    ddim = np.asarray(ddim_step(s, x, t, t - 1, eps, eta=1.0, noise=z))
    ddpm = np.asarray(ddpm_step(s, x, t, eps, z, variance="posterior"))
    np.testing.assert_allclose(ddim, ddpm, atol=1e-4)


def test_ddim_last_step_returns_x0_prediction():
    s = NoiseSchedule.cosine(50)
    rng = np.random.default_rng(3)
    x, eps = rng.standard_normal(SHAPE).astype(np.float32), rng.standard_normal(SHAPE).astype(np.float32)
    np.testing.assert_allclose(ddim_step(s, x, 0, -1, eps), predict_x0(s, x, 0, eps), atol=1e-5)


def test_ddim_eta_0_is_deterministic_given_x_T():
    s = NoiseSchedule.linear(50)
    model = build_model("mlp_seed", image_shape=(6, 6, 1), timesteps=50, hidden=16)
    x_T = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    a = sample(model, s, 4, sampler="ddim", steps=7, seed=1, x_T=x_T)
    b = sample(model, s, 4, sampler="ddim", steps=7, seed=2, x_T=x_T)
    np.testing.assert_array_equal(a, b)
    c = sample(model, s, 4, sampler="ddim", steps=7, eta=1.0, seed=2, x_T=x_T)
    assert not np.allclose(a, c)


def test_ddim_eta_1_full_steps_agrees_with_ddpm_in_distribution():
    """Same oracle-free toy denoiser (ε̂ = 0.5·x_t): both chains end with the same mean and spread."""
    s = NoiseSchedule.linear(40, 1e-3, 0.1)
    toy = lambda inputs: 0.5 * inputs[0]  # noqa: E731
    kw = dict(image_shape=(2, 2, 1), seed=0, batch_size=4000)
    ddpm = sample(toy, s, 4000, sampler="ddpm", variance="posterior", **kw)
    ddim = sample(toy, s, 4000, sampler="ddim", eta=1.0, **kw)
    np.testing.assert_allclose(ddpm.mean(), ddim.mean(), atol=0.05)
    np.testing.assert_allclose(ddpm.std(), ddim.std(), rtol=0.05)


def test_same_seed_same_samples_and_snapshots():
    s = NoiseSchedule.linear(30)
    model = build_model("mlp_seed", image_shape=(6, 6, 1), timesteps=30, hidden=16)
    a, snaps = sample(model, s, 5, seed=7, snapshots=[29, 10, 0], batch_size=2)
    b = sample(model, s, 5, seed=7, batch_size=2)
    c = sample(model, s, 5, seed=8, batch_size=2)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.shape == (5, 6, 6, 1) and a.dtype == np.float32
    assert snaps.shape == (5, 3, 6, 6, 1)
    np.testing.assert_array_equal(snaps[:, -1], a)  # the snapshot at t = 0 is the result


@pytest.mark.parametrize("T, S", [(200, 50), (200, 7), (200, 200), (1000, 3), (10, 9), (5, 1)])
@pytest.mark.parametrize("spacing", ["uniform", "quadratic"])
def test_timestep_sequence_starts_at_T_minus_1_and_ends_at_0(T, S, spacing):
    seq = timestep_sequence(T, S, spacing)
    assert len(seq) == S and seq[0] == T - 1
    assert S == 1 or seq[-1] == 0
    assert np.all(np.diff(seq) < 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampler="ddim", steps=201), "steps must be <= timesteps"),
        (dict(sampler="ddim", steps=0), "steps must be an integer >= 1"),
        (dict(sampler="euler"), "sampler must be one of"),
        (dict(sampler="ddpm", steps=50), "use sampler='ddim'"),
        (dict(variance="small"), "variance must be one of"),
        (dict(snapshots=[200]), r"t must be in \[0, 199\]"),
        (dict(eta=-1.0), "eta must be >= 0"),
    ],
)
def test_sample_refuses_bad_arguments(kwargs, match):
    s = NoiseSchedule.linear()
    with pytest.raises(ValueError, match=match):
        sample(lambda inputs: inputs[0], s, 2, image_shape=(2, 2, 1), **kwargs)


@pytest.mark.parametrize("recompute", [True, False])
def test_recomputed_eps_makes_clipped_ddim_eta_1_the_clipped_ddpm_step(recompute):
    schedule = NoiseSchedule.cosine(50)
    rng = np.random.default_rng(7)
    x_t = tf.constant(rng.standard_normal((3, 28, 28, 1)), tf.float32)
    eps = tf.constant(3 * rng.standard_normal((3, 28, 28, 1)), tf.float32)  # large: x̂_0 gets clipped
    z = tf.constant(rng.standard_normal((3, 28, 28, 1)), tf.float32)
    gaps = []
    for t in (49, 30, 10, 1):
        ddim = ddim_step(schedule, x_t, t, t - 1, eps, eta=1.0, noise=z, clip=(-1, 1), recompute_eps=recompute)
        ddpm = ddpm_step(schedule, x_t, t, eps, z, variance="posterior", clip=(-1, 1))
        gaps.append(float(np.abs(np.asarray(ddim) - np.asarray(ddpm)).max()))
    if recompute:
        assert max(gaps) < 1e-4, gaps
    else:  # the clipped x̂_0 with the unclipped ε̂: another step
        assert max(gaps) > 1e-2, gaps


def test_step_plan_without_resampling_is_the_sequence():
    from keras_diffusion.reverse import step_plan

    assert step_plan([4, 3, 2, 1, 0]) == [(4, False), (3, False), (2, False), (1, False), (0, False)]


@pytest.mark.parametrize("jump, resample", [(1, 2), (3, 2), (4, 5)])
def test_step_plan_resamples_as_repaint(jump, resample):
    from keras_diffusion.reverse import step_plan

    T = 20
    plan = step_plan(list(range(T - 1, -1, -1)), jump, resample)
    state = T - 1  # the plan must be a walk: down at t needs x_t, up at t needs x_{t−1}
    for t, up in plan:
        assert t == (state + 1 if up else state)
        state = t if up else t - 1
    assert state == -1
    ups = sum(up for _, up in plan)
    assert ups == jump * (resample - 1) * len(range(0, T - jump, jump))
    assert len(plan) - ups == T + ups  # every up is walked down again


def test_the_loops_of_many_settings_do_not_warn_about_retracing(caplog):
    """Six settings compile six cached loops: TensorFlow's retracing warning about them is dropped, others are not."""
    model = build_model("mlp_seed", hidden=8, timesteps=10)
    schedule = NoiseSchedule.linear(10)
    import logging

    logger, level = tf.get_logger(), tf.get_logger().level
    logger.addHandler(caplog.handler)  # TensorFlow's logger need not propagate to the root one
    logger.setLevel(logging.WARNING)  # a quiet command line, earlier in the session, may have raised it
    try:
        for steps in range(2, 8):
            sample(model, schedule, 2, sampler="ddim", steps=steps, seed=0)
        logger.warning("5 out of the last 5 calls to <function _compiled_loop.<locals>.loop at 0x0> triggered tf.function retracing.")
        logger.warning("5 out of the last 5 calls to <function other at 0x0> triggered tf.function retracing.")
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)
    retracing = sorted({r.getMessage() for r in caplog.records if "retracing" in r.getMessage()})  # once, however it got here
    assert retracing == ["5 out of the last 5 calls to <function other at 0x0> triggered tf.function retracing."]
