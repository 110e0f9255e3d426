"""The two samplers the package began with: DDPM's ancestral step and DDIM's (``reverse.ddpm_step``, ``reverse.ddim_step``)."""

from keras_diffusion.reverse import ddim_step, ddpm_step
from keras_diffusion.samplers.base import StepRule


class DDPM(StepRule):
    """x_{t−1} = 1/sqrt(α_t)·(x_t − β_t/sqrt(1−ᾱ_t)·ε̂) + σ_t·z at every t   (Ho et al. 2020, Algorithm 2)."""

    def step(self, eps, x, move, z, history):
        return ddpm_step(self.schedule, x, move.t, eps(x, move.t), z, variance=self.variance, clip=self.clip), history


class DDIM(StepRule):
    """x_{τ'} = sqrt(ᾱ_{τ'})·x̂_0 + sqrt(1−ᾱ_{τ'}−σ²)·ε̂ + σ·z over a sub-sequence τ   (Song et al. 2021, eq. 12)."""

    @property
    def noisy(self):
        return self.eta > 0

    def step(self, eps, x, move, z, history):
        x_prev = ddim_step(
            self.schedule, x, move.t, move.t_prev, eps(x, move.t), eta=self.eta, noise=z, clip=self.clip, recompute_eps=self.recompute_eps
        )
        return x_prev, history
