"""Checks for ``loss``: the DDPM training objective (Algorithm 1)."""

import numpy as np

TITLE = "The DDPM training objective (Algorithm 1)"
CHECKS = (
    ("ddpm_loss", 3, ("ddpm_loss",)),
    ("denoiser_inputs", 2, ("ddpm_loss",)),
    ("zero_and_perfect_denoisers", 1, ("ddpm_loss",)),
)
TIMESTEPS = 50


def inputs():
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1, 1, (6, 4, 4, 1))
    return dict(
        x0=x0,
        t=np.array([0, 3, 17, 30, 42, 49]),
        noise=rng.standard_normal(x0.shape),
        alpha_bars=np.cumprod(1 - np.linspace(1e-3, 0.1, TIMESTEPS)),
    )


def toy_denoiser(x_t, t):
    """A fixed ε̂(x_t, t) that depends on both arguments, so feeding it x_0 or the wrong t shows."""
    x_t = np.asarray(x_t, np.float64)
    t = np.reshape(np.asarray(t, np.float64), (-1,) + (1,) * (x_t.ndim - 1))  # (B, 1, 1, 1) or (1, 1, 1, 1)
    return np.tanh(x_t) * (0.5 + t / TIMESTEPS)


def x_t_of(inp):
    a = inp["alpha_bars"][inp["t"]].reshape(-1, 1, 1, 1)
    # x_t = sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·ε   (DDPM eq. 4)
    return np.sqrt(a) * inp["x0"] + np.sqrt(1 - a) * inp["noise"]


def cases(student, inp):
    args = (inp["x0"], inp["t"], inp["noise"], inp["alpha_bars"])

    def first_call():
        seen = []

        def recording_denoiser(x_t, t):
            if not seen:
                seen.append({"x_t": np.array(x_t, np.float64), "t": np.array(t, np.float64)})
            return toy_denoiser(x_t, t)

        student.ddpm_loss(recording_denoiser, *args)
        if not seen:
            raise RuntimeError("ddpm_loss never called the denoiser")
        return seen[0]

    return {
        "ddpm_loss": [lambda: student.ddpm_loss(toy_denoiser, *args)],
        "denoiser_inputs": [first_call],
        "zero_and_perfect_denoisers": [
            lambda: student.ddpm_loss(lambda x_t, t: np.zeros(np.shape(x_t)), *args),
            lambda: student.ddpm_loss(lambda x_t, t: inp["noise"], *args),
        ],
    }


def expected(inp):
    x_t = x_t_of(inp)
    t = inp["t"]

    def denoiser_got(value):
        from keras_diffusion.assignments.compare import within  # the grader's side only

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
        "ddpm_loss": [(call.replace("denoiser", "toy denoiser", 1), np.mean((inp["noise"] - toy_denoiser(x_t, t)) ** 2))],
        "denoiser_inputs": [(call + ", the denoiser's first call", denoiser_got)],
        "zero_and_perfect_denoisers": [
            (call.replace("denoiser", "a denoiser returning 0", 1), np.mean(inp["noise"] ** 2)),
            (call.replace("denoiser", "a denoiser returning the true noise", 1), np.float64(0.0)),
        ],
    }
