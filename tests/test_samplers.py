"""The sampler registry and its solvers, checked against closed forms on Gaussian data.

For data x_0 ~ N(mu, s²) (each pixel its own mu and s) the exact ε-denoiser is linear,

    ε̂(x_t, t) = E[ε | x_t] = (x_t − sqrt(ᾱ_t)·mu)·sqrt(1−ᾱ_t)/(ᾱ_t·s² + 1 − ᾱ_t),

and the probability-flow ODE is solved in closed form: in x̃ = x/sqrt(ᾱ), σ = sqrt((1−ᾱ)/ᾱ),
dx̃/dσ = σ·(x̃ − mu)/(s² + σ²), so x̃ − mu grows as sqrt(s² + σ²), and from x_T at t = T−1

    x_t = sqrt(ᾱ_t)·mu + sqrt(ᾱ_t·s² + 1 − ᾱ_t)·(x_T − sqrt(ᾱ_T)·mu)/sqrt(ᾱ_T·s² + 1 − ᾱ_T),

whose σ → 0 end is x_0 = mu + s·(x_T − sqrt(ᾱ_T)·mu)/sqrt(ᾱ_T·s² + 1 − ᾱ_T). With this
denoiser a sampler's only error is its discretisation of the ODE.
"""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_diffusion import editing, samplers
from keras_diffusion.guidance import classifier_eps
from keras_diffusion.models import build_model
from keras_diffusion.reverse import sample, timestep_sequence
from keras_diffusion.schedule import NoiseSchedule

SHAPE = (2, 2, 1)
RNG = np.random.default_rng(0)
MU = RNG.uniform(-0.5, 0.5, SHAPE)
STD = RNG.uniform(0.2, 0.8, SHAPE)
ODE_SAMPLERS = ("ddim", "dpmpp_2m", "heun")
ALL = samplers.SAMPLERS


def gaussian_denoiser(schedule, mu=MU, std=STD):
    """The exact ε̂ of N(mu, std²) data under ``schedule`` (see the module docstring)."""
    alpha_bars = tf.constant(schedule.alpha_bars, tf.float32)
    mu, var = tf.constant(mu, tf.float32), tf.constant(std**2, tf.float32)

    def denoiser(inputs):
        x_t, t = inputs[0], inputs[1]
        a = tf.reshape(tf.gather(alpha_bars, t), (-1, 1, 1, 1))
        return (x_t - tf.sqrt(a) * mu) * tf.sqrt(1 - a) / (a * var + 1 - a)

    return denoiser


def ode_solution(schedule, x_T, t):
    """The closed-form probability-flow ODE state at t from x_T at T−1 (t = −1: the data)."""
    a_T = schedule.alpha_bars[-1]
    a = 1.0 if t == -1 else schedule.alpha_bars[t]
    return np.sqrt(a) * MU + np.sqrt(a * STD**2 + 1 - a) * (x_T - np.sqrt(a_T) * MU) / np.sqrt(a_T * STD**2 + 1 - a_T)


def denoise(schedule, x, t):
    """x̂_0 of the exact denoiser at t, in NumPy float64."""
    a = schedule.alpha_bars[t]
    eps = (x - np.sqrt(a) * MU) * np.sqrt(1 - a) / (a * STD**2 + 1 - a)
    return (x - np.sqrt(1 - a) * eps) / np.sqrt(a)


# --- convergence to the closed form ---------------------------------------------------------


FINE = NoiseSchedule.linear(1025)  # T − 1 = 1024: uniform grids of 17, 33, 65, 129 steps hit integer timesteps exactly


@pytest.mark.parametrize("sampler, least_ratio, most_ratio", [("ddim", 1.8, 2.2), ("dpmpp_2m", 2.8, 5.0), ("heun", 2.8, 5.0)])
def test_ode_samplers_converge_to_the_closed_form_at_their_order(sampler, least_ratio, most_ratio):
    """Error against the exact ODE solution falls 2x (DDIM, first order) or ≥ 2.8x (second order) when steps double.

    The model is discrete-time: a sampler can only visit integer timesteps, and its last move
    (t = 0 → the data) is always x̂_0 at t = 0. So the grid must be fine and regular: T = 1025
    with the linear betas 1e-4..0.02 (ᾱ changes smoothly from step to step, as a continuous
    schedule would), and S − 1 = 16, 32, 64, 128 intervals that divide T − 1 = 1024, so every
    uniform grid is exact and each doubling halves every interval. The reference is the exact
    ODE solution at t = 0 followed by that same final x̂_0; the closed-form x_0 itself differs
    from it only by the ODE's flow from σ_0 = 0.01 to 0, checked separately below.
    """
    x_T = RNG.standard_normal((8,) + SHAPE).astype(np.float32)
    target = denoise(FINE, ode_solution(FINE, x_T, 0), 0)
    errors = []
    for steps in (33, 65, 129):
        out = sample(gaussian_denoiser(FINE), FINE, 8, sampler=sampler, steps=steps, x_T=x_T, image_shape=SHAPE)
        errors.append(float(np.abs(out - target).max()))
    ratios = [a / b for a, b in zip(errors, errors[1:])]
    assert all(least_ratio <= r <= most_ratio for r in ratios), (errors, ratios)


def test_the_finest_grid_reaches_the_closed_form_x0():
    x_T = RNG.standard_normal((8,) + SHAPE).astype(np.float32)
    exact = ode_solution(FINE, x_T, -1)  # mu + s·(x_T − sqrt(ᾱ_T)·mu)/sqrt(ᾱ_T·s² + 1 − ᾱ_T)
    for sampler in ("dpmpp_2m", "heun"):
        out = sample(gaussian_denoiser(FINE), FINE, 8, sampler=sampler, steps=257, x_T=x_T, image_shape=SHAPE)
        np.testing.assert_allclose(out, exact, atol=2e-3)


def dpmpp_2m_reference(schedule, x_T, seq, clip=None):
    """DPM-Solver++(2M) written out in NumPy float64 from Lu et al. 2022, Algorithm 2 (and diffusers' midpoint form)."""
    alpha = np.append(schedule.sqrt_alpha_bars, 1.0)  # index −1: the data
    sigma = np.append(schedule.sqrt_one_minus_alpha_bars, 0.0)
    with np.errstate(divide="ignore"):
        lam = np.log(alpha) - np.log(sigma)
    x, x0_last, h_last = np.asarray(x_T, np.float64), None, None
    for i, t in enumerate(seq):
        t_next = seq[i + 1] if i + 1 < len(seq) else -1
        x0 = denoise(schedule, x, t)
        if clip is not None:
            x0 = np.clip(x0, *clip)
        h = lam[t_next] - lam[t]
        if x0_last is None or t_next == -1:  # first order: the first step, and the last (h = ∞)
            D = x0
        else:
            r = h_last / h
            D = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_last
        x = sigma[t_next] / sigma[t] * x - alpha[t_next] * np.expm1(-h) * D
        x0_last, h_last = x0, h
    return x


@pytest.mark.parametrize("steps, clip", [(100, None), (100, (-0.3, 0.3)), (13, None)])
def test_dpmpp_2m_equals_a_numpy_transcription(steps, clip):
    schedule = NoiseSchedule.cosine(100)
    x_T = RNG.standard_normal((6,) + SHAPE).astype(np.float32)
    got = sample(gaussian_denoiser(schedule), schedule, 6, sampler="dpmpp_2m", steps=steps, x_T=x_T, clip=clip, image_shape=SHAPE)
    want = dpmpp_2m_reference(schedule, x_T, timestep_sequence(100, steps), clip)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_the_first_order_steps_are_ddim():
    """DPM-Solver++(2M) with 2 steps takes only first-order steps (the first and the last): DDIM with η = 0."""
    schedule = NoiseSchedule.cosine(50)
    x_T = RNG.standard_normal((4,) + SHAPE).astype(np.float32)
    kwargs = dict(steps=2, x_T=x_T, image_shape=SHAPE)
    np.testing.assert_allclose(
        sample(gaussian_denoiser(schedule), schedule, 4, sampler="dpmpp_2m", **kwargs),
        sample(gaussian_denoiser(schedule), schedule, 4, sampler="ddim", **kwargs), atol=1e-5,
    )


# --- stochastic samplers: the right marginals ------------------------------------------------


@pytest.mark.parametrize(
    "sampler, settings",
    [("dpmpp_2m_sde", dict(steps=250)), ("heun", dict(steps=100, churn=40.0)), ("ddim", dict(steps=500, eta=1.0)), ("ddpm", {})],
)
def test_stochastic_samplers_draw_the_data_distribution(sampler, settings):
    """Mean and variance of each pixel within 3 standard errors of N(mu, s²), over 4,000 draws.

    A stochastic sampler's bias falls only as fast as its steps shrink (at 100 uniform steps of
    T = 1000, SDE-DPM-Solver++ and DDIM with η = 1 are still 5% off in variance, 3-7 standard
    errors), so each runs on a grid fine enough for its bias to hide under the noise.
    """
    schedule = NoiseSchedule.linear(1000)
    n = 4000
    out = sample(gaussian_denoiser(schedule), schedule, n, sampler=sampler, seed=2, image_shape=SHAPE, batch_size=n, **settings)
    mean, var = out.mean(0), out.var(0, ddof=1)
    assert np.all(np.abs(mean - MU) < 3 * STD / np.sqrt(n)), (mean - MU) / (STD / np.sqrt(n))
    assert np.all(np.abs(var - STD**2) < 3 * STD**2 * np.sqrt(2 / (n - 1))), (var - STD**2) / (STD**2 * np.sqrt(2 / (n - 1)))


def test_stochastic_samplers_are_reproducible_and_use_their_noise():
    schedule = NoiseSchedule.cosine(40)
    for sampler, settings in (("dpmpp_2m_sde", {}), ("heun", dict(churn=5.0))):
        draw = lambda seed: sample(gaussian_denoiser(schedule), schedule, 3, sampler=sampler, steps=8, seed=seed, image_shape=SHAPE, **settings)  # noqa: E731
        np.testing.assert_array_equal(draw(0), draw(0))
        assert np.abs(draw(0) - draw(1)).max() > 1e-3


def test_heun_churn_moves_to_a_noisier_timestep_only():
    from keras_diffusion.samplers.heun import churn_timesteps, karras_sigmas

    schedule = NoiseSchedule.cosine(200)
    t_hat = churn_timesteps(schedule, 10, 2.0)  # γ = 0.2
    assert np.all(t_hat >= np.arange(200)) and t_hat[-1] == 199 and np.any(t_hat > np.arange(200))
    log_sigmas = np.log(karras_sigmas(schedule))
    for t in range(200):  # the noisier timestep nearest in log σ to σ̂ = 1.2·σ_t
        gaps = np.abs(log_sigmas[t:] - np.log(1.2) - log_sigmas[t])
        assert t_hat[t] == t + np.argmin(gaps), t
    np.testing.assert_array_equal(churn_timesteps(schedule, 10, 0.0), np.arange(200))


# --- network evaluations ---------------------------------------------------------------------


def counting(denoiser):
    """The denoiser, plus a counter of the images it was called on (inside the compiled loop too)."""
    calls = tf.Variable(0, dtype=tf.int64)

    def counted(inputs):
        calls.assign_add(tf.cast(tf.shape(inputs[0])[0], tf.int64))
        return denoiser(inputs)

    return counted, calls


@pytest.mark.parametrize("sampler", ALL)
def test_nfe_counts_the_network_calls(sampler):
    schedule = NoiseSchedule.cosine(12)
    steps = None if samplers.REGISTRY[sampler].every_step else 5
    denoiser, calls = counting(gaussian_denoiser(schedule))
    sample(denoiser, schedule, 3, sampler=sampler, steps=steps, image_shape=SHAPE, seed=0)
    assert int(calls.numpy()) == 3 * samplers.nfe(sampler, steps or 12)


def test_nfe_values():
    assert samplers.nfe("heun", 10) == 19 and samplers.nfe("heun", 1) == 1
    assert samplers.nfe("dpmpp_2m", 20) == 20 and samplers.nfe("ddpm", 200) == 200
    assert samplers.nfe("heun", 10, guidance=3.0) == 38 and samplers.nfe("ddim", 50, guidance=1.0) == 100


# --- karras spacing --------------------------------------------------------------------------


@pytest.mark.parametrize("T, S", [(200, 20), (200, 7), (200, 200), (1000, 3), (10, 9), (5, 1), (200, 150)])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_karras_spacing_starts_at_T_minus_1_ends_at_0_and_decreases(T, S, schedule):
    noise = NoiseSchedule.from_name(schedule, T)
    seq = timestep_sequence(T, S, "karras", noise)
    assert len(seq) == S and len(set(seq.tolist())) == S and seq[0] == T - 1
    assert S == 1 or seq[-1] == 0
    assert np.all(np.diff(seq) < 0)


def test_karras_spacing_crowds_low_noise_and_follows_eq_5():
    schedule = NoiseSchedule.linear(1000)
    seq = timestep_sequence(1000, 10, "karras", schedule)
    uniform = timestep_sequence(1000, 10)
    assert seq[-2] < uniform[-2] / 2  # a finer last step, at low noise, than a uniform grid
    sigmas = np.sqrt((1 - schedule.alpha_bars) / schedule.alpha_bars)
    low, high = sigmas[0] ** (1 / 7), sigmas[-1] ** (1 / 7)
    want = (high + np.linspace(0, 1, 10) * (low - high)) ** 7  # Karras et al. 2022, eq. 5
    np.testing.assert_allclose(np.log(sigmas[seq[:-1]]), np.log(want[:-1]), atol=0.05)
    with pytest.raises(ValueError, match="karras spacing needs schedule="):
        timestep_sequence(1000, 10, "karras")


# --- guidance and edits through every sampler -----------------------------------------------


class Conditional:
    """A conditional fake denoiser, ε̂ = x·(y + 1)/10 (10 classes, null label 10)."""

    def get_layer(self, name):
        return type("Embedding", (), {"input_dim": 11})()

    def __call__(self, inputs):
        x, _, y = inputs
        return x * tf.reshape(tf.cast(y, tf.float32) + 1, (-1, 1, 1, 1)) / 10


@pytest.mark.parametrize("sampler", ALL)
def test_cfg_through_every_sampler_is_the_guided_eps(sampler):
    """sample(guidance=w) equals the same sampler fed ε̃ = (1 + w)·ε(x, y) − w·ε(x, ∅) by hand (same noise)."""
    schedule, w, y = NoiseSchedule.cosine(10), 2.0, np.array([3, 8], np.int32)
    steps = None if samplers.REGISTRY[sampler].every_step else 4
    x_T = RNG.standard_normal((2, 4, 4, 1)).astype(np.float32)
    fake = Conditional()

    def guided(inputs):
        x, t = inputs
        return (1 + w) * fake([x, t, tf.constant(y)]) - w * fake([x, t, tf.fill([2], 10)])

    kwargs = dict(sampler=sampler, steps=steps, x_T=x_T, seed=5, image_shape=(4, 4, 1))
    got = sample(fake, schedule, 2, labels=y, guidance=w, **kwargs)
    np.testing.assert_allclose(got, sample(guided, schedule, 2, **kwargs), rtol=1e-5, atol=1e-5)  # |x| grows to 1e3: ε̂ is no denoiser


@pytest.fixture(scope="module")
def classifier():
    return build_model("noisy_classifier", image_shape=(8, 8, 1), timesteps=10, widths=(8, 16))


@pytest.mark.parametrize("sampler", ALL)
def test_classifier_guidance_through_every_sampler_is_the_guided_eps(sampler, classifier):
    schedule, y = NoiseSchedule.cosine(10), np.array([1, 6], np.int32)
    steps = None if samplers.REGISTRY[sampler].every_step else 3
    x_T = RNG.standard_normal((2, 8, 8, 1)).astype(np.float32)
    base = lambda inputs: 0.5 * inputs[0]  # noqa: E731

    def guided(inputs):
        x, t = inputs
        return classifier_eps(schedule, base(inputs), classifier, x, t, tf.constant(y), 2.0)

    kwargs = dict(sampler=sampler, steps=steps, x_T=x_T, seed=2, image_shape=(8, 8, 1))
    got = sample(base, schedule, 2, labels=y, classifier=classifier, classifier_scale=2.0, **kwargs)
    np.testing.assert_allclose(got, sample(guided, schedule, 2, **kwargs), atol=1e-4)
    assert np.abs(got - sample(base, schedule, 2, **kwargs)).max() > 1e-4


EDIT_T = 20


def stepped(sampler):
    return {} if samplers.REGISTRY[sampler].every_step else dict(steps=6)


@pytest.mark.parametrize("sampler", ALL)
def test_inpainting_through_every_sampler_keeps_the_known_pixels(sampler):
    schedule = NoiseSchedule.cosine(EDIT_T)
    images = RNG.uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    mask = editing.make_mask("right", 3, (8, 8, 1))
    denoiser = build_model("mlp_seed", image_shape=(8, 8, 1), timesteps=EDIT_T, hidden=16)
    out = editing.inpaint(denoiser, schedule, images, mask, seed=0, sampler=sampler, clip=(-1, 1), **stepped(sampler))
    np.testing.assert_array_equal(out[mask == 0], images[mask == 0])
    assert np.isfinite(out).all() and np.abs(out - images)[mask == 1].max() > 1e-2


@pytest.mark.parametrize("sampler", ALL)
def test_super_resolution_through_every_sampler_keeps_the_block_means(sampler):
    schedule = NoiseSchedule.cosine(EDIT_T)
    images = RNG.uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    low = editing.downsample(images, 4).numpy()
    denoiser = build_model("mlp_seed", image_shape=(8, 8, 1), timesteps=EDIT_T, hidden=16)
    out = editing.super_resolve(denoiser, schedule, low, 4, seed=0, sampler=sampler, clip=(-1, 1), **stepped(sampler))
    np.testing.assert_allclose(editing.downsample(out, 4).numpy(), low, atol=1e-4)
    assert not np.allclose(out, editing.upsample(low, 4).numpy(), atol=1e-2)  # the model adds the detail


@pytest.mark.parametrize("sampler", ALL)
def test_img2img_through_every_sampler(sampler):
    schedule = NoiseSchedule.cosine(EDIT_T)
    images = RNG.uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    denoiser = build_model("mlp_seed", image_shape=(8, 8, 1), timesteps=EDIT_T, hidden=16)
    out = editing.img2img(denoiser, schedule, images, 0.5, seed=0, sampler=sampler, **stepped(sampler))
    assert out.shape == images.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out, editing.img2img(denoiser, schedule, images, 0.5, seed=0, sampler=sampler, **stepped(sampler)))


# --- clear errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", [name for name in ALL if not samplers.REGISTRY[name].every_step])
def test_repaint_resampling_refuses_samplers_that_skip_steps(sampler):
    images = RNG.uniform(-1, 1, (1, 8, 8, 1)).astype(np.float32)
    with pytest.raises(ValueError, match=f"which '{sampler}' cannot follow: use sampler='ddpm'"):
        editing.inpaint(lambda inputs: inputs[0], NoiseSchedule.cosine(EDIT_T), images, "box", resample=2, sampler=sampler,
                        steps=5, image_shape=(8, 8, 1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sampler="dpmpp_2m", steps=5, eta=1.0), "eta is DDIM's amount of fresh noise; sampler 'dpmpp_2m' does not take it"),
        (dict(sampler="heun", steps=5, eta=0.5), "sampler 'heun' does not take it"),
        (dict(sampler="ddim", steps=5, churn=1.0), "churn is Heun's stochasticity .* sampler 'ddim' does not take it"),
        (dict(sampler="heun", steps=5, churn=-1.0), "churn must be >= 0"),
        (dict(sampler="ddpm", steps=5), "the ddpm sampler takes all T=20 steps; use sampler='ddim' or sampler='dpmpp_2m'"),
        (dict(sampler="dpmpp_3m"), "sampler must be one of ddpm, ddim, dpmpp_2m, dpmpp_2m_sde, heun"),
        (dict(sampler="heun", steps=5, spacing="log"), "spacing must be one of uniform, quadratic, karras"),
    ],
)
def test_sample_refuses_what_a_sampler_cannot_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample(lambda inputs: inputs[0], NoiseSchedule.cosine(EDIT_T), 2, image_shape=SHAPE, **kwargs)


def test_every_sampler_runs_with_karras_spacing_and_snapshots():
    schedule = NoiseSchedule.cosine(30)
    for sampler in ALL:
        steps = None if samplers.REGISTRY[sampler].every_step else 6
        out, snaps = sample(gaussian_denoiser(schedule), schedule, 2, sampler=sampler, steps=steps, spacing="karras",
                            snapshots=[29, 0], seed=0, image_shape=SHAPE)
        assert snaps.shape == (2, 2) + SHAPE and np.isfinite(out).all()
        np.testing.assert_array_equal(snaps[:, -1], out)


# --- the command lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sampler", "dpmpp_2m", "--eta", "1"], "--eta is DDIM's amount of fresh noise; sampler 'dpmpp_2m' does not take it (use --sampler ddim)"),
        (["--sampler", "ddim", "--churn", "5"], "sampler 'ddim' does not take it (use --sampler heun)"),
        (["--sampler", "ddpm", "--steps", "5"], "--steps needs one of the samplers ddim, dpmpp_2m, dpmpp_2m_sde, heun (ddpm always takes all T steps)"),
        (["--sampler", "heun", "--spacing", "log"], "invalid choice: 'log'"),
    ],
)
def test_sample_flags_refuse_what_a_sampler_cannot_do(flags, message, capsys):
    from keras_diffusion import sample as sample_cli

    with pytest.raises(SystemExit) as stop:
        sample_cli.parse_args(["--run", "nowhere"] + flags)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_edit_resample_names_the_sampler_that_can(capsys):
    from keras_diffusion import edit

    with pytest.raises(SystemExit):
        edit.parse_args(["inpaint", "--run", "nowhere", "--resample", "2", "--sampler", "heun", "--steps", "5"])
    assert "--resample > 1 goes back up the chain one step at a time: it needs --sampler ddpm" in capsys.readouterr().err


def test_sample_command_draws_with_a_new_sampler_and_reports_its_nfe(tmp_path, fake_data_dir, capsys):
    from keras_diffusion import sample as sample_cli, train

    run = tmp_path / "run"
    argv = ["--model", "mlp_seed", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--timesteps", "20", "--n-samples", "4"]
    assert train.main(argv + ["--data-dir", str(fake_data_dir), "--out", str(run)]) == 0
    capsys.readouterr()
    npz = tmp_path / "s.npz"
    flags = ["--run", str(run), "--n", "3", "--sampler", "heun", "--steps", "4", "--spacing", "karras", "--churn", "2", "--npz", str(npz)]
    assert sample_cli.main(flags) == 0
    assert "7 network evaluations an image" in capsys.readouterr().out  # Heun: 2·4 − 1
    assert np.load(npz)["images"].shape == (3, 28, 28, 1)


# --- SamplingConfig: the settings every sampling command line generates its flags from ---------


def _parsed_sampling(argv):
    """The SamplingConfig that `sample`'s generated flags build from argv."""
    from keras_diffusion.sample import parse_args

    return parse_args(argv).sampling


def test_sampling_config_flags_round_trip(tmp_path):
    from keras_diffusion.samplers import SamplingConfig

    (tmp_path / "config.json").write_text("{}")  # parse_args only checks that the run has one
    argv = ["--run", str(tmp_path), "--sampler", "dpmpp_2m", "--steps", "12", "--spacing", "karras", "--no-clip",
            "--seed", "7", "--batch-size", "32", "--guidance", "2.5", "--label", "bag", "--no-recompute-eps"]
    config = _parsed_sampling(argv)
    assert config == SamplingConfig(sampler="dpmpp_2m", steps=12, spacing="karras", clip=False, seed=7, batch_size=32, guidance=2.5,
                                    recompute_eps=False)
    assert SamplingConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert _parsed_sampling(["--run", str(tmp_path)]) == SamplingConfig()  # no flag: every default


def test_sampling_config_fills_in_the_run_and_the_sampler():
    from keras_diffusion.samplers import REGISTRY, SamplingConfig

    ddpm = SamplingConfig(sampler="ddpm").resolved(200, run_clip=True)
    assert (ddpm.steps, ddpm.spacing, ddpm.clip, ddpm.nfe()) == (200, "uniform", True, 200)
    assert ddpm.sample_kwargs("minus_one_one")["steps"] is None  # DDPM takes every step whatever it is told
    assert SamplingConfig(sampler="ddim").resolved(200, run_clip=False).steps == 200  # old calls unchanged: DDIM takes T
    heun = SamplingConfig(sampler="heun").resolved(200, run_clip=False)
    assert heun.steps == REGISTRY["heun"].default_steps and heun.nfe() == 2 * heun.steps - 1
    assert SamplingConfig(sampler="heun").resolved(5, run_clip=False).steps == 5  # never more than T
    assert SamplingConfig(sampler="dpmpp_2m", steps=10).resolved(200, True).nfe(guidance=3.0) == 20
    kwargs = SamplingConfig(sampler="dpmpp_2m", steps=10, clip=False).resolved(200, run_clip=True).sample_kwargs("zero_one")
    assert kwargs["clip"] is None and kwargs["steps"] == 10  # an explicit --no-clip beats the run's setting
    assert SamplingConfig(sampler="ddim", steps=4).resolved(200, True).sample_kwargs("zero_one")["clip"] == (0.0, 1.0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp_2m_sde", "heun"])
def test_resolving_a_resolved_sampling_config_changes_nothing(sampler):
    """evaluate resolves the settings to report them, then draw resolves them again: DDPM's filled-in T must pass."""
    from keras_diffusion.samplers import SamplingConfig

    once = SamplingConfig(sampler=sampler).resolved(200, run_clip=True)
    assert once.resolved(200, run_clip=True) == once
    with pytest.raises(ValueError, match="steps needs one of the samplers"):
        SamplingConfig(sampler="ddpm", steps=199).resolved(200, run_clip=True)  # a real request for fewer steps still fails


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(sampler="ddpm", steps=10), "steps needs one of the samplers"),
        (dict(sampler="dpmpp_2m", eta=1.0), "eta is DDIM's"),
        (dict(sampler="ddim", churn=1.0), "churn is Heun's"),
        (dict(steps=0, sampler="ddim"), "steps must be >= 1"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(guidance=float("nan")), "guidance must be >= 0"),
        (dict(sampler="euler"), "sampler must be one of"),
        (dict(steps="20"), "config key 'steps' must be int"),
    ],
)
def test_sampling_config_refuses_settings_that_cannot_work(settings, message):
    from keras_diffusion.samplers import SamplingConfig

    with pytest.raises(ValueError, match=re.escape(message)):
        SamplingConfig(**settings).validate()


def test_sampling_config_refuses_more_steps_than_the_run_has():
    from keras_diffusion.samplers import SamplingConfig

    with pytest.raises(ValueError, match=r"steps must be <= T=50"):
        SamplingConfig(sampler="ddim", steps=60).resolved(50, run_clip=True)
    with pytest.raises(ValueError, match="unknown config keys"):
        SamplingConfig.from_dict({"sampler": "ddim", "stepz": 3})


@pytest.mark.parametrize("name, settings, noisy", [
    ("ddpm", {}, True), ("ddim", {}, False), ("ddim", {"eta": 0.5}, True), ("dpmpp_2m", {}, False),
    ("dpmpp_2m_sde", {}, True), ("heun", {}, False), ("heun", {"churn": 1.0}, True),
])
def test_the_loop_draws_noise_only_for_rules_that_read_it(name, settings, noisy):
    schedule = NoiseSchedule.linear(20)
    rule = samplers.entry(name).load()(schedule, 5, **settings)
    assert rule.noisy is noisy
