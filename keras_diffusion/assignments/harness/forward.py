"""The calls of the ``forward`` checks (the child's side; see harness/__init__.py)."""

PRELOAD = ()


def cases(student, inp):
    T = [int(t) for t in inp["timesteps"]]  # (T of the defaults case, T of the keyword case)
    return {
        "linear_betas": [
            lambda: student.linear_betas(T[0]),
            lambda: student.linear_betas(T[1], beta_start=float(inp["linear_args"][0]), beta_end=float(inp["linear_args"][1])),
        ],
        "cosine_betas": [
            lambda: student.cosine_betas(T[0]),
            lambda: student.cosine_betas(T[1], s=float(inp["cosine_args"][0]), max_beta=float(inp["cosine_args"][1])),
        ],
        "alpha_bars_from_betas": [
            lambda: student.alpha_bars_from_betas(inp["betas_linear"]),
            lambda: student.alpha_bars_from_betas(inp["random_betas"]),
        ],
        "q_sample": [
            lambda: student.q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars"]),
            lambda: student.q_sample(inp["x0"], inp["t"], inp["noise"], inp["alpha_bars_cosine"]),
            lambda: student.q_sample(inp["x0_small"], inp["t_small"], inp["noise_small"], inp["alpha_bars"]),
        ],
    }
