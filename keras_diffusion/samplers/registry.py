"""The registry of samplers: each one's name, step rule, help line and cost, without loading any of them."""

import collections
import dataclasses
import importlib

# One down move of the loop's plan, as scalar int32 tensors: t, the timestep of the state; t_prev, where
# the step lands (τ' < t, −1 = the data); t_last, where the previous step started (> t; −2 on the first).
Move = collections.namedtuple("Move", "t t_prev t_last")


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the loop and the command lines need to know about a sampler, without loading it."""

    name: str
    rule: str  # module.Class of its step rule, under keras_diffusion.samplers
    summary: str  # one line for --help
    every_step: bool = False  # visits every t (takes no steps=); only such a sampler may resample (RePaint)
    evaluations_per_step: int = 1  # network calls a step; the last step of a 2-call method takes 1
    options: tuple = ()  # the sampler options it reads beyond steps, spacing and clip: eta, variance, recompute_eps, churn
    default_steps: int = None  # the steps a command line takes when --steps is not given (None: all T)
    default_spacing: str = "uniform"  # the spacing a command line takes when --spacing is not given

    def load(self):
        module, name = self.rule.rsplit(".", 1)
        return getattr(importlib.import_module(f"keras_diffusion.samplers.{module}"), name)


REGISTRY = {
    entry.name: entry
    for entry in (
        Entry("ddpm", "classic.DDPM", "DDPM, all T steps (Ho et al. 2020)", every_step=True, options=("variance",)),
        Entry("ddim", "classic.DDIM", "DDIM, --steps S <= T, --eta (Song et al. 2021)", options=("eta", "recompute_eps")),
        # the defaults of the new samplers are their best settings at <= 25 network calls on the shipped U-Net
        # (benchmarks/sampler_nfe.py, docs/results/sampling.md); on the uniform grid Heun fails outright
        Entry("dpmpp_2m", "dpm_solver.DPMSolverPP2M", "DPM-Solver++(2M), second-order multistep ODE solver (Lu et al. 2022)",
              default_steps=15, default_spacing="karras"),
        Entry("dpmpp_2m_sde", "dpm_solver.DPMSolverPP2MSDE", "stochastic DPM-Solver++(2M) (Lu et al. 2022); the default",
              default_steps=20, default_spacing="karras"),
        Entry("heun", "heun.Heun", "Heun's second-order ODE solver, --churn for its stochastic version (Karras et al. 2022)",
              evaluations_per_step=2, options=("churn",), default_steps=13, default_spacing="karras"),
    )
}
SAMPLERS = tuple(REGISTRY)
STEPPED = tuple(name for name, entry in REGISTRY.items() if not entry.every_step)  # those that take --steps
SPACINGS = ("uniform", "quadratic", "karras")  # how a sampler's S timesteps are spread over [0, T−1]


def entry(name):
    """The registry entry of ``name``, or a ValueError that lists the samplers."""
    if name not in REGISTRY:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {name!r}")
    return REGISTRY[name]


def nfe(sampler, steps, guidance=0.0):
    """Network evaluations per image: Heun's N steps cost 2N − 1, a classifier-free-guided evaluation two.

    Args:
        sampler: a registry name.
        steps: the number of sampler steps (T for ddpm).
        guidance: classifier-free guidance w; w > 0 runs the network with and
            without the label (one batch of 2B, but two evaluations' work).
    """
    calls = entry(sampler).evaluations_per_step
    return (calls * steps - (calls - 1)) * (2 if guidance else 1)


def check_options(sampler, eta=0.0, churn=0.0, resample=1):
    """One-line errors for options the sampler cannot take (the message names the sampler that can)."""
    chosen = entry(sampler)
    if eta and "eta" not in chosen.options:
        raise ValueError(f"eta is DDIM's amount of fresh noise; sampler {sampler!r} does not take it (use sampler='ddim')")
    if churn and "churn" not in chosen.options:
        raise ValueError(f"churn is Heun's stochasticity (Karras et al. 2022, Algorithm 2); sampler {sampler!r} does not take it (use sampler='heun')")
    if resample > 1 and not chosen.every_step:
        every = [name for name, e in REGISTRY.items() if e.every_step]
        raise ValueError(
            f"resampling (resample > 1) goes back up the forward chain one step at a time, which {sampler!r} cannot follow: "
            + " or ".join(f"use sampler={name!r}" for name in every)
        )
