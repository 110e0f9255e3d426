"""The calls of the ``loss`` checks (the child's side; see harness/__init__.py)."""

import numpy as np

PRELOAD = ()


def toy_denoiser(x_t, t, timesteps):
    """A fixed ε̂(x_t, t) that depends on both arguments, so feeding it x_0 or the wrong t shows."""
    x_t = np.asarray(x_t, np.float64)
    t = np.reshape(np.asarray(t, np.float64), (-1,) + (1,) * (x_t.ndim - 1))  # (B, 1, 1, 1) or (1, 1, 1, 1)
    return np.tanh(x_t) * (0.5 + t / timesteps)


def cases(student, inp):
    args = (inp["x0"], inp["t"], inp["noise"], inp["alpha_bars"])
    T = len(inp["alpha_bars"])

    def denoiser(x_t, t):
        return toy_denoiser(x_t, t, T)

    def first_call():
        seen = []

        def recording_denoiser(x_t, t):
            if not seen:
                seen.append({"x_t": np.array(x_t, np.float64), "t": np.array(t, np.float64)})
            return denoiser(x_t, t)

        student.ddpm_loss(recording_denoiser, *args)
        if not seen:
            raise RuntimeError("ddpm_loss never called the denoiser")
        return seen[0]

    return {
        "ddpm_loss": [lambda: student.ddpm_loss(denoiser, *args)],
        "denoiser_inputs": [first_call],
        "zero_and_perfect_denoisers": [
            lambda: student.ddpm_loss(lambda x_t, t: np.zeros(np.shape(x_t)), *args),
            lambda: student.ddpm_loss(lambda x_t, t: inp["noise"], *args),
        ],
    }
