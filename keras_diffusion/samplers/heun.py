"""Heun's second-order method on the probability-flow ODE, with optional churn   (Karras et al. 2022, Algorithms 1 and 2).

In Karras et al.'s variables the VP state x_t = sqrt(ᾱ_t)·(x_0 + σ_t·ε) is
x̃ = x_t/sqrt(ᾱ_t) at noise level σ_t = sqrt((1−ᾱ_t)/ᾱ_t) (σ = 0 at the data,
t = −1), and the probability-flow ODE is dx̃/dσ = (x̃ − D(x̃; σ))/σ, where
D is the denoiser x̂_0. Its slope is the network's ε̂ itself (the clipped
x̂_0's ε̂ when clipping): an Euler step of it is DDIM with η = 0, and Heun adds
a corrector with a second evaluation at the step's end, except on the last
step, to σ = 0, where it would divide by zero: N steps cost 2N − 1 calls.
"""

import numpy as np
from keras import ops

from keras_diffusion.samplers.base import StepRule, at_data_too, lookup


def karras_sigmas(schedule):
    """σ_t = sqrt((1−ᾱ_t)/ᾱ_t) for t in [0, T−1], float64: the noise level of x_t/sqrt(ᾱ_t)."""
    return np.sqrt((1.0 - schedule.alpha_bars) / schedule.alpha_bars)


def churn_timesteps(schedule, steps, churn):
    """t̂ for each t: the timestep whose σ is nearest (in log σ) to σ̂ = (1 + γ)·σ_t, γ = min(churn/N, √2 − 1).

    Karras et al. 2022, Algorithm 2, line 4, with S_tmin = 0, S_tmax = ∞; the
    model knows only discrete timesteps, so σ̂ is moved to one of them (t̂ ≥ t).
    """
    sigmas = karras_sigmas(schedule)  # (T,)
    gamma = min(churn / steps, np.sqrt(2.0) - 1.0)
    gap = np.abs(np.log(sigmas)[None, :] - np.log(sigmas * (1.0 + gamma))[:, None])  # (T, T): row t, column t'
    gap[np.tril_indices(len(sigmas), -1)] = np.inf  # t' ≥ t only: churn adds noise, never removes it
    return np.argmin(gap, axis=1).astype("int32")


class Heun(StepRule):
    """Heun's 2nd-order ODE step in (x̃, σ), after a churn that raises σ_t to σ̂   (Karras et al. 2022, Algorithm 2)."""

    def __init__(self, schedule, steps, **settings):
        super().__init__(schedule, steps, **settings)
        self.sigma = at_data_too(schedule, karras_sigmas(schedule), 0.0)  # σ_t, Karras' noise level
        self.scale = at_data_too(schedule, schedule.sqrt_alpha_bars, 1.0)  # sqrt(ᾱ_t): x_t = sqrt(ᾱ_t)·x̃
        self.t_hat = ops.convert_to_tensor(churn_timesteps(schedule, self.steps, self.churn)) if self.churn else None

    def slope(self, eps, x_tilde, t, sigma):
        """d = (x̃ − D(x̃; σ_t))/σ_t, the ODE's dx̃/dσ   (Karras et al. 2022, eq. 3 and Algorithm 1, line 4)."""
        x_t = lookup(self.scale, t) * x_tilde
        return (x_tilde - self.denoised(x_t, t, eps(x_t, t))) / sigma

    @property
    def noisy(self):
        return self.churn > 0

    def step(self, eps, x, move, z, history):
        t, t_next = move.t, move.t_prev
        sigma, sigma_next = lookup(self.sigma, t), lookup(self.sigma, t_next)
        x_tilde = x / lookup(self.scale, t)  # (B, H, W, C)
        t_hat, sigma_hat = t, sigma
        if self.t_hat is not None:
            # x̂ = x̃ + sqrt(σ̂² − σ²)·ε: noise up to σ̂ first   (Algorithm 2, lines 5-6)
            t_hat = ops.take(self.t_hat, t)
            sigma_hat = lookup(self.sigma, t_hat)
            x_tilde = x_tilde + ops.sqrt(ops.maximum(sigma_hat**2 - sigma**2, 0.0)) * z
        d = self.slope(eps, x_tilde, t_hat, sigma_hat)
        # Euler: x̃' = x̂ + (σ' − σ̂)·d   (Algorithm 1, line 5)
        euler = x_tilde + (sigma_next - sigma_hat) * d

        def corrected():
            # Heun: x̃' = x̂ + (σ' − σ̂)·(d + d')/2, d' the slope at (x̃', σ')   (Algorithm 1, lines 7-8)
            return x_tilde + (sigma_next - sigma_hat) * 0.5 * (d + self.slope(eps, euler, t_next, sigma_next))

        x_tilde_next = ops.cond(t_next >= 0, corrected, lambda: euler)
        return lookup(self.scale, t_next) * x_tilde_next, history
