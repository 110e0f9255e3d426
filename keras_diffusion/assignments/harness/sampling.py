"""The calls of the ``sampling`` checks (the child's side; see harness/__init__.py)."""

import numpy as np

PRELOAD = ()


def toy_denoiser(x_t, t):
    """A fixed ε̂(x_t, t); it depends on t, so visiting the wrong timesteps shows. t: an int or one per image."""
    x_t = np.asarray(x_t, np.float64)
    t = np.reshape(np.asarray(t, np.float64), (-1,) + (1,) * (x_t.ndim - 1))
    return 0.5 * np.tanh(x_t) + 0.3 * np.cos(x_t + 0.7 * t)


def cases(student, inp):
    x_t, eps, z, betas, alpha_bars = inp["x_t"], inp["eps_pred"], inp["noise"], inp["betas"], inp["alpha_bars"]
    ddpm_t = [int(t) for t in inp["ddpm_t"]]
    ddim_t = [(int(a), int(b)) for a, b in inp["ddim_t"]]
    to_data = [(int(a), int(b)) for a, b in inp["ddim_to_data"]]
    return {
        "ddpm_step": [lambda t=t: student.ddpm_step(x_t, t, eps, z, betas, alpha_bars) for t in ddpm_t],
        "ddpm_step_t0": [lambda: student.ddpm_step(x_t, 0, eps, z, betas, alpha_bars)],
        "ddpm_sample": [lambda: student.ddpm_sample(toy_denoiser, inp["x_T"], inp["noises"], betas, alpha_bars)],
        "ddim_step": [lambda ts=ts: student.ddim_step(x_t, ts[0], ts[1], eps, alpha_bars) for ts in ddim_t],
        "ddim_step_to_data": [lambda ts=ts: student.ddim_step(x_t, ts[0], ts[1], eps, alpha_bars) for ts in to_data],
    }
