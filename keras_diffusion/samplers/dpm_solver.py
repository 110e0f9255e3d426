"""DPM-Solver++(2M) and its stochastic version: second-order multistep solvers in λ, on data prediction.

Notation (Lu et al. 2022, arXiv:2211.01095), from the discrete schedule:
α_t = sqrt(ᾱ_t), σ_t = sqrt(1−ᾱ_t), λ_t = log(α_t/σ_t), the half log-SNR; the
data is t = −1, with α = 1, σ = 0, λ = +∞. The network's ε̂ becomes the data
prediction x̂_0 = (x_t − σ_t·ε̂)/α_t, and clipping x̂_0 to the data range is
the solver's thresholding. A step from t to t' has h = λ_{t'} − λ_t; the
multistep correction uses the previous step's x̂_0 and r = h_last/h.

The first step has no history and the last one (to the data) has h = ∞:
both are first order, which is DDIM with η = 0 for the ODE solver.
"""

import numpy as np
from keras import ops

from keras_diffusion.samplers.base import StepRule, at_data_too, lookup


class DPMSolverPP2M(StepRule):
    """DPM-Solver++(2M), the multistep second-order ODE solver   (Lu et al. 2022, Algorithm 2)."""

    def __init__(self, schedule, steps, **settings):
        super().__init__(schedule, steps, **settings)
        self.alpha = at_data_too(schedule, schedule.sqrt_alpha_bars, 1.0)  # α_t
        self.sigma = at_data_too(schedule, schedule.sqrt_one_minus_alpha_bars, 0.0)  # σ_t
        self.lam = at_data_too(schedule, np.log(schedule.sqrt_alpha_bars) - np.log(schedule.sqrt_one_minus_alpha_bars), np.inf)  # λ_t

    def start(self, x):
        return (ops.zeros_like(x),)  # x̂_0 of the previous step: none yet

    def combined(self, move, x0, x0_last):
        """(D, e^{−h}): D = (1 + 1/(2r))·x̂_0(t) − 1/(2r)·x̂_0(t_last), or x̂_0 itself on the first and last steps."""
        lam, lam_next, lam_last = lookup(self.lam, move.t), lookup(self.lam, move.t_prev), lookup(self.lam, ops.maximum(move.t_last, -1))
        h, h_last = lam_next - lam, lam - lam_last
        second = ops.logical_and(move.t_last >= 0, move.t_prev >= 0)
        # 1/(2r) = h/(2·h_last); on a first-order step it would be 0/∞ or ∞/h: where() never lets it through
        weight = ops.where(second, h / (2.0 * h_last), 0.0)
        return x0 + weight * (x0 - x0_last), ops.exp(lam - lam_next)

    @property
    def noisy(self):
        return False

    def step(self, eps, x, move, z, history):
        (x0_last,) = history
        x0 = self.denoised(x, move.t, eps(x, move.t))  # (B, H, W, C)
        D, exp_minus_h = self.combined(move, x0, x0_last)
        sigma, alpha_next, sigma_next = lookup(self.sigma, move.t), lookup(self.alpha, move.t_prev), lookup(self.sigma, move.t_prev)
        # x_{t'} = (σ_{t'}/σ_t)·x_t − α_{t'}·(e^{−h} − 1)·D   (Lu et al. 2022, Algorithm 2, line 5)
        return (sigma_next / sigma) * x - alpha_next * (exp_minus_h - 1.0) * D, (x0,)


class DPMSolverPP2MSDE(DPMSolverPP2M):
    """SDE-DPM-Solver++(2M): the same D, with the noise of the reverse SDE   (Lu et al. 2022, sec. 5; diffusers' sde-dpmsolver++)."""

    @property
    def noisy(self):
        return True

    def step(self, eps, x, move, z, history):
        (x0_last,) = history
        x0 = self.denoised(x, move.t, eps(x, move.t))  # (B, H, W, C)
        D, exp_minus_h = self.combined(move, x0, x0_last)
        sigma, alpha_next, sigma_next = lookup(self.sigma, move.t), lookup(self.alpha, move.t_prev), lookup(self.sigma, move.t_prev)
        # x_{t'} = (σ_{t'}/σ_t)·e^{−h}·x_t + α_{t'}·(1 − e^{−2h})·D + σ_{t'}·sqrt(1 − e^{−2h})·z
        # (the midpoint form; at the data σ_{t'} = 0 and e^{−h} = 0, so the last step returns x̂_0)
        decay = 1.0 - exp_minus_h**2
        x_next = (sigma_next / sigma) * exp_minus_h * x + alpha_next * decay * D + sigma_next * ops.sqrt(decay) * z
        return x_next, (x0,)
