"""Checks for ``forward``: the noise schedule and the closed-form forward process."""

import numpy as np

TITLE = "The noise schedule and the closed-form forward process"
CHECKS = (
    ("linear_betas", 2, ("linear_betas",)),
    ("cosine_betas", 3, ("cosine_betas",)),
    ("alpha_bars_from_betas", 2, ("alpha_bars_from_betas",)),
    ("q_sample", 3, ("q_sample",)),
)


def inputs():
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, (4, 5, 5, 3))
    # B = C = 2: a per-image factor broadcast over the channel axis gives wrong values, not an error
    x0_small = rng.uniform(-1, 1, (2, 3, 3, 2))
    return dict(
        x0=x0,
        noise=rng.standard_normal(x0.shape),
        t=np.array([0, 1, 57, 199]),
        x0_small=x0_small,
        noise_small=rng.standard_normal(x0_small.shape),
        t_small=np.array([150, 20]),
        alpha_bars=alpha_bars(linear(200, 1e-4, 0.02)),
        alpha_bars_cosine=alpha_bars(cosine(200, 0.008, 0.999)),
        random_betas=rng.uniform(1e-3, 0.3, 9),
    )


def linear(timesteps, beta_start, beta_end):
    return np.linspace(beta_start, beta_end, timesteps)


def cosine(timesteps, s, max_beta):
    # ᾱ(u) ∝ f(u) = cos²((u + s)/(1 + s)·π/2); β_i = min(1 − f((i+1)/T)/f(i/T), max_beta)   (Nichol & Dhariwal eq. 17)
    f = np.cos((np.arange(timesteps + 1) / timesteps + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - f[1:] / f[:-1], max_beta)


def alpha_bars(betas):
    return np.cumprod(1 - np.asarray(betas, np.float64))


def q_sample(x0, t, noise, alpha_bars):
    a = np.asarray(alpha_bars)[t].reshape(-1, 1, 1, 1)
    return np.sqrt(a) * x0 + np.sqrt(1 - a) * noise


def cases(student, inp):
    return {
        "linear_betas": [
            lambda: student.linear_betas(200),
            lambda: student.linear_betas(10, beta_start=1e-3, beta_end=0.05),
        ],
        "cosine_betas": [
            lambda: student.cosine_betas(200),
            lambda: student.cosine_betas(20, s=0.02, max_beta=0.5),
        ],
        "alpha_bars_from_betas": [
            lambda: student.alpha_bars_from_betas(linear(200, 1e-4, 0.02)),
            lambda: student.alpha_bars_from_betas(inp["random_betas"]),
        ],
        "q_sample": [
            lambda: student.q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars"]),
            lambda: student.q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars_cosine"]),
            lambda: student.q_sample(inp["x0_small"], inp["t_small"], inp["noise_small"], inp["alpha_bars"]),
        ],
    }


def expected(inp):
    q_args = "x0 {}, t={}, noise, alpha_bars of {}"
    return {
        "linear_betas": [
            ("linear_betas(200)", linear(200, 1e-4, 0.02)),
            ("linear_betas(10, beta_start=1e-3, beta_end=0.05)", linear(10, 1e-3, 0.05)),
        ],
        "cosine_betas": [
            ("cosine_betas(200)", cosine(200, 0.008, 0.999)),
            ("cosine_betas(20, s=0.02, max_beta=0.5)", cosine(20, 0.02, 0.5)),
        ],
        "alpha_bars_from_betas": [
            ("alpha_bars_from_betas(linear_betas(200))", alpha_bars(linear(200, 1e-4, 0.02))),
            ("alpha_bars_from_betas(9 random betas)", alpha_bars(inp["random_betas"])),
        ],
        "q_sample": [
            (
                "q_sample(" + q_args.format(inp["x0"].shape, inp["t"].tolist(), "linear_betas(200)") + ")",
                q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars"]),
            ),
            (
                "q_sample(" + q_args.format(inp["x0"].shape, inp["t"].tolist(), "cosine_betas(200)") + ")",
                q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars_cosine"]),
            ),
            (
                "q_sample(" + q_args.format(inp["x0_small"].shape, inp["t_small"].tolist(), "linear_betas(200)") + ")",
                q_sample(inp["x0_small"], inp["t_small"], inp["noise_small"], inp["alpha_bars"]),
            ),
        ],
    }
