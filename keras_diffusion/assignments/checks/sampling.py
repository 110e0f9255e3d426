"""Checks for ``sampling``: the reverse process, one DDPM or DDIM step and the whole DDPM chain."""

import numpy as np

from keras_diffusion.assignments.harness.sampling import toy_denoiser

TITLE = "The reverse process: DDPM and DDIM steps, and the DDPM sampler"
CHECKS = (
    ("ddpm_step", 3, ("ddpm_step",)),
    ("ddpm_step_t0", 1, ("ddpm_step",)),
    ("ddpm_sample", 3, ("ddpm_sample",)),
    ("ddim_step", 2, ("ddim_step",)),
    ("ddim_step_to_data", 1, ("ddim_step",)),
)


def inputs(seed=0):
    rng = np.random.default_rng([3, seed])
    timesteps = int(rng.integers(8, 16))
    shape = (3, 4, 4, 1)
    betas = np.linspace(rng.uniform(0.005, 0.02), rng.uniform(0.15, 0.3), timesteps)
    t, t_prev = sorted(rng.choice(np.arange(1, timesteps - 1), 2, replace=False))[::-1]
    return dict(
        betas=betas,
        alpha_bars=np.cumprod(1 - betas),
        x_t=rng.standard_normal(shape),
        eps_pred=rng.standard_normal(shape),
        noise=rng.standard_normal(shape),
        x_T=rng.standard_normal(shape),
        noises=rng.standard_normal((timesteps,) + shape),
        ddpm_t=np.array([timesteps - 1, rng.integers(1, timesteps - 1)]),
        ddim_t=np.array([[timesteps - 1, rng.integers(1, timesteps - 1)], [t, t_prev]]),
        ddim_to_data=np.array([[rng.integers(1, timesteps), -1], [0, -1]]),
    )


def ddpm_step(x_t, t, eps_pred, noise, betas, alpha_bars):
    # x_{t−1} = 1/sqrt(α_t)·(x_t − β_t/sqrt(1−ᾱ_t)·ε̂) + σ_t·z, σ_t² = β_t, no z at t = 0   (DDPM eq. 11)
    beta, alpha_bar = betas[t], alpha_bars[t]
    mean = (x_t - beta / np.sqrt(1 - alpha_bar) * eps_pred) / np.sqrt(1 - beta)
    return mean + (np.sqrt(beta) * noise if t > 0 else 0.0)


def ddpm_sample(x_T, noises, betas, alpha_bars):
    x = x_T
    for t in range(len(betas) - 1, -1, -1):
        x = ddpm_step(x, t, toy_denoiser(x, t), noises[t], betas, alpha_bars)
    return x


def ddim_step(x_t, t, t_prev, eps_pred, alpha_bars):
    # x̂_0 = (x_t − sqrt(1−ᾱ_t)·ε̂)/sqrt(ᾱ_t); x_{t'} = sqrt(ᾱ_{t'})·x̂_0 + sqrt(1−ᾱ_{t'})·ε̂   (DDIM eq. 12, η = 0)
    alpha_bar, alpha_bar_prev = alpha_bars[t], (alpha_bars[t_prev] if t_prev >= 0 else 1.0)
    x0_pred = (x_t - np.sqrt(1 - alpha_bar) * eps_pred) / np.sqrt(alpha_bar)
    return np.sqrt(alpha_bar_prev) * x0_pred + np.sqrt(1 - alpha_bar_prev) * eps_pred


def expected(inp):
    x_t, eps, z, betas, alpha_bars = inp["x_t"], inp["eps_pred"], inp["noise"], inp["betas"], inp["alpha_bars"]
    shape = x_t.shape
    schedule = f"betas of T={len(betas)}, alpha_bars"
    ddpm_t, ddim_t, to_data = inp["ddpm_t"].tolist(), [tuple(p) for p in inp["ddim_t"].tolist()], [tuple(p) for p in inp["ddim_to_data"].tolist()]

    def ddim(ts):
        return (f"ddim_step(x_t {shape}, t={ts[0]}, t_prev={ts[1]}, eps_pred, alpha_bars)", ddim_step(x_t, *ts, eps, alpha_bars))

    return {
        "ddpm_step": [
            (f"ddpm_step(x_t {shape}, t={t}, eps_pred, noise, {schedule})", ddpm_step(x_t, t, eps, z, betas, alpha_bars)) for t in ddpm_t
        ],
        "ddpm_step_t0": [
            (f"ddpm_step(x_t {shape}, t=0, eps_pred, noise, {schedule}) (the last step: no noise)", ddpm_step(x_t, 0, eps, z, betas, alpha_bars))
        ],
        "ddpm_sample": [
            (
                f"ddpm_sample(toy denoiser, x_T {shape}, noises {inp['noises'].shape}, {schedule})",
                ddpm_sample(inp["x_T"], inp["noises"], betas, alpha_bars),
            )
        ],
        "ddim_step": [ddim(ts) for ts in ddim_t],
        "ddim_step_to_data": [ddim(ts) for ts in to_data],
    }
