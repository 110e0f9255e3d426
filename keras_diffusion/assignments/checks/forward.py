"""Checks for ``forward``: the noise schedule and the closed-form forward process."""

import numpy as np

TITLE = "The noise schedule and the closed-form forward process"
CHECKS = (
    ("linear_betas", 2, ("linear_betas",)),
    ("cosine_betas", 3, ("cosine_betas",)),
    ("alpha_bars_from_betas", 2, ("alpha_bars_from_betas",)),
    ("q_sample", 3, ("q_sample",)),
)


def inputs(seed=0):
    rng = np.random.default_rng([1, seed])
    x0 = rng.uniform(-1, 1, (4, 5, 5, 3))
    # B = C = 2: a per-image factor broadcast over the channel axis gives wrong values, not an error
    x0_small = rng.uniform(-1, 1, (2, 3, 3, 2))
    timesteps = np.array([rng.integers(100, 401), rng.integers(8, 41)])
    return dict(
        x0=x0,
        noise=rng.standard_normal(x0.shape),
        t=np.array([0, 1, rng.integers(2, 198), 199]),
        x0_small=x0_small,
        noise_small=rng.standard_normal(x0_small.shape),
        t_small=rng.choice(200, 2, replace=False),
        alpha_bars=alpha_bars(linear(200, 1e-4, 0.02)),
        alpha_bars_cosine=alpha_bars(cosine(200, 0.008, 0.999)),
        timesteps=timesteps,
        linear_args=np.array([rng.uniform(1e-4, 2e-3), rng.uniform(0.02, 0.08)]),
        cosine_args=np.array([rng.uniform(0.005, 0.03), rng.uniform(0.3, 0.6)]),
        betas_linear=linear(int(rng.integers(100, 401)), 1e-4, 0.02),
        random_betas=rng.uniform(1e-3, 0.3, int(rng.integers(6, 13))),
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


def expected(inp):
    q_args = "x0 {}, t={}, noise, alpha_bars of {}"
    (T, T_kw), (b0, b1), (s, max_beta) = inp["timesteps"].tolist(), inp["linear_args"].tolist(), inp["cosine_args"].tolist()
    return {
        "linear_betas": [
            (f"linear_betas({T})", linear(T, 1e-4, 0.02)),
            (f"linear_betas({T_kw}, beta_start={b0:.6g}, beta_end={b1:.6g})", linear(T_kw, b0, b1)),
        ],
        "cosine_betas": [
            (f"cosine_betas({T})", cosine(T, 0.008, 0.999)),
            (f"cosine_betas({T_kw}, s={s:.6g}, max_beta={max_beta:.6g})", cosine(T_kw, s, max_beta)),
        ],
        "alpha_bars_from_betas": [
            (f"alpha_bars_from_betas(linear_betas({len(inp['betas_linear'])}))", alpha_bars(inp["betas_linear"])),
            (f"alpha_bars_from_betas({len(inp['random_betas'])} random betas)", alpha_bars(inp["random_betas"])),
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
