"""Checks for ``loss``: the DDPM training objective (Algorithm 1)."""

import numpy as np

from keras_diffusion.assignments.compare import within
from keras_diffusion.assignments.harness.loss import toy_denoiser

TITLE = "The DDPM training objective (Algorithm 1)"
CHECKS = (
    ("ddpm_loss", 3, ("ddpm_loss",)),
    ("denoiser_inputs", 2, ("ddpm_loss",)),
    ("zero_and_perfect_denoisers", 1, ("ddpm_loss",)),
)


def inputs(seed=0):
    rng = np.random.default_rng([2, seed])
    timesteps = int(rng.integers(30, 101))
    x0 = rng.uniform(-1, 1, (6, 4, 4, 1))
    return dict(
        x0=x0,
        t=np.sort(np.concatenate([[0, timesteps - 1], rng.choice(np.arange(1, timesteps - 1), 4, replace=False)])),
        noise=rng.standard_normal(x0.shape),
        alpha_bars=np.cumprod(1 - np.linspace(rng.uniform(5e-4, 2e-3), rng.uniform(0.05, 0.15), timesteps)),
    )


def x_t_of(inp):
    a = inp["alpha_bars"][inp["t"]].reshape(-1, 1, 1, 1)
    # x_t = sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·ε   (DDPM eq. 4)
    return np.sqrt(a) * inp["x0"] + np.sqrt(1 - a) * inp["noise"]


def expected(inp):
    x_t = x_t_of(inp)
    t = inp["t"]

    def denoiser_got(value):
        if not isinstance(value, dict) or set(value) != {"x_t", "t"}:
            return "could not read what the denoiser was given"
        same_shape = value["x_t"].shape == x_t.shape
        if not (same_shape and within(x_t, value["x_t"]).all()):
            hint = " (that is x0: noise it first)" if same_shape and within(inp["x0"], value["x_t"]).all() else ""
            return f"the denoiser was given x_t of shape {value['x_t'].shape} that is not sqrt(ᾱ_t)·x0 + sqrt(1−ᾱ_t)·ε{hint}"
        if value["t"].size != t.size or not np.array_equal(value["t"].ravel(), t):
            return f"the denoiser was given t={value['t'].ravel().tolist()}, expected t={t.tolist()}"
        return None

    call = f"ddpm_loss(denoiser, x0 {inp['x0'].shape}, t={t.tolist()}, noise, alpha_bars)"
    return {
        "ddpm_loss": [(call.replace("denoiser", "toy denoiser", 1), np.mean((inp["noise"] - toy_denoiser(x_t, t, len(inp['alpha_bars']))) ** 2))],
        "denoiser_inputs": [(call + ", the denoiser's first call", denoiser_got)],
        "zero_and_perfect_denoisers": [
            (call.replace("denoiser", "a denoiser returning 0", 1), np.mean(inp["noise"] ** 2)),
            (call.replace("denoiser", "a denoiser returning the true noise", 1), np.float64(0.0)),
        ],
    }
