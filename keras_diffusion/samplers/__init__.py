"""The samplers: one registry entry each, all run by the ONE compiled loop of ``reverse.sample``.

A sampler is a step rule: from the state x_t at timestep t it goes to the
state at the next visited timestep t' < t (t' = −1: the data), asking the loop
for ε̂ (guided or not) as often as it needs, and carrying a history for
multistep methods. Guidance changes ε̂ and an edit changes the state between
steps, so both work with every sampler; only RePaint's resampling, which walks
back up the forward chain one timestep at a time, needs a sampler that takes
every step (``every_step``).

    ddpm          DDPM ancestral sampling, all T steps   (Ho et al. 2020, Algorithm 2)
    ddim          DDIM, S ≤ T steps, η ≥ 0              (Song et al. 2021, eq. 12)
    dpmpp_2m      DPM-Solver++(2M), multistep ODE       (Lu et al. 2022, Algorithm 2)
    dpmpp_2m_sde  its stochastic (SDE) version           (Lu et al. 2022, sec. 5; diffusers' sde-dpmsolver++)
    heun          Heun on the probability-flow ODE       (Karras et al. 2022, Algorithms 1 and 2)

This module imports nothing heavy: the command lines read the names, the help
and the NFE here, and the step rules (``keras.ops``) load with their family
module when a loop is built, as ``models`` does with its builders.
"""

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

    def load(self):
        module, name = self.rule.rsplit(".", 1)
        return getattr(importlib.import_module(f"keras_diffusion.samplers.{module}"), name)


REGISTRY = {
    entry.name: entry
    for entry in (
        Entry("ddpm", "classic.DDPM", "DDPM, all T steps (Ho et al. 2020)", every_step=True, options=("variance",)),
        Entry("ddim", "classic.DDIM", "DDIM, --steps S <= T, --eta (Song et al. 2021)", options=("eta", "recompute_eps")),
        Entry("dpmpp_2m", "dpm_solver.DPMSolverPP2M", "DPM-Solver++(2M), second-order multistep ODE solver (Lu et al. 2022)"),
        Entry("dpmpp_2m_sde", "dpm_solver.DPMSolverPP2MSDE", "stochastic DPM-Solver++(2M) (Lu et al. 2022)"),
        Entry("heun", "heun.Heun", "Heun's second-order ODE solver, --churn for its stochastic version (Karras et al. 2022)",
              evaluations_per_step=2, options=("churn",)),
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
