import numpy as np
import pytest

from keras_diffusion.schedule import NoiseSchedule


def test_alpha_bars_are_the_cumulative_product():
    s = NoiseSchedule.linear(200, 1e-4, 0.02)
    np.testing.assert_allclose(s.betas, np.linspace(1e-4, 0.02, 200))
    np.testing.assert_allclose(s.alphas, 1 - s.betas)
    expected = [np.prod(1 - s.betas[: t + 1]) for t in range(200)]
    np.testing.assert_allclose(s.alpha_bars, expected, rtol=1e-12)
    assert s.betas.dtype == s.alpha_bars.dtype == np.float64
    assert s.timesteps == len(s.betas) == 200


def test_classic_schedule_leaves_signal_and_the_fixes_destroy_it():
    assert NoiseSchedule.linear().sqrt_alpha_bars[-1] == pytest.approx(0.3636, abs=1e-3)
    assert NoiseSchedule.scaled_linear(200).alpha_bars[-1] < 1e-4
    assert NoiseSchedule.cosine(200).alpha_bars[-1] < 1e-6
    # scaling by 1000/T makes T=200 end where the DDPM paper's T=1000 ends
    paper = NoiseSchedule.linear(1000, 1e-4, 0.02).alpha_bars[-1]
    assert NoiseSchedule.scaled_linear(200).alpha_bars[-1] == pytest.approx(paper, rel=0.5)


def test_cosine_follows_its_formula():
    T, s = 200, 0.008
    f = lambda u: np.cos((u + s) / (1 + s) * np.pi / 2) ** 2  # noqa: E731
    sched = NoiseSchedule.cosine(T, s=s)
    t = np.arange(150)  # before the max_beta clipping starts
    np.testing.assert_allclose(sched.alpha_bars[t], f((t + 1) / T) / f(0), rtol=1e-9)
    assert sched.betas.max() <= 0.999


def test_posterior_matches_gaussian_conjugacy():
    s = NoiseSchedule.linear(50, 1e-3, 0.2)
    t = np.arange(1, 50)
    prev = s.alpha_bars[t - 1]
    # β̃_t = 1 / (α_t/β_t + 1/(1−ᾱ_{t−1})): precisions add for a product of Gaussians
    variance = 1 / (s.alphas[t] / s.betas[t] + 1 / (1 - prev))
    np.testing.assert_allclose(s.posterior_variance[t], variance, rtol=1e-10)
    # mean = β̃_t (sqrt(α_t)/β_t · x_t + sqrt(ᾱ_{t−1})/(1−ᾱ_{t−1}) · x_0)
    np.testing.assert_allclose(s.posterior_mean_coef2[t], variance * np.sqrt(s.alphas[t]) / s.betas[t], rtol=1e-10)
    np.testing.assert_allclose(s.posterior_mean_coef1[t], variance * np.sqrt(prev) / (1 - prev), rtol=1e-10)
    # at t = 0 the posterior is the data itself
    assert s.posterior_variance[0] == 0 and s.posterior_mean_coef1[0] == pytest.approx(1) and s.posterior_mean_coef2[0] == 0
    np.testing.assert_allclose(s.snr, s.alpha_bars / (1 - s.alpha_bars))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: NoiseSchedule.linear(0), "timesteps"),
        (lambda: NoiseSchedule.linear(2.5), "timesteps"),
        (lambda: NoiseSchedule.linear(200, beta_start=0.0), "beta_start"),
        (lambda: NoiseSchedule.linear(200, beta_end=1.0), "beta_end"),
        (lambda: NoiseSchedule.linear(200, beta_start=0.1, beta_end=0.01), "beta_start must be <= beta_end"),
        (lambda: NoiseSchedule.cosine(0), "timesteps"),
        (lambda: NoiseSchedule.cosine(10, s=-1), "s must be"),
        (lambda: NoiseSchedule([0.1, 1.5]), "betas"),
        (lambda: NoiseSchedule.from_name("quadratic"), "schedule must be one of"),
    ],
)
def test_invalid_schedules_raise_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("schedule", [NoiseSchedule.linear(), NoiseSchedule.scaled_linear(100), NoiseSchedule.cosine(30), NoiseSchedule([0.1, 0.2])])
def test_config_round_trip(schedule):
    assert NoiseSchedule.from_config(schedule.get_config()) == schedule


def test_check_t():
    s = NoiseSchedule.linear(10)
    s.check_t([0, 9])
    with pytest.raises(ValueError, match=r"t must be in \[0, 9\]"):
        s.check_t([10])
