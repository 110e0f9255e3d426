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

from keras_diffusion.samplers.registry import REGISTRY, SAMPLERS, SPACINGS, STEPPED, Entry, Move, check_options, entry, nfe  # noqa: F401
from keras_diffusion.samplers.settings import DEFAULT_SAMPLER, SamplingConfig  # noqa: F401
