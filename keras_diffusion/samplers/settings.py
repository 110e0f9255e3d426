"""``SamplingConfig``: how to draw images from a run, one field a setting.

``sample``, ``edit`` and ``evaluate`` generate their sampler flags from these
fields (``fields.add_arguments``), as ``train`` does from ``TrainConfig``;
``resolved`` fills in what the run decides (the clipping, T) and what the
sampler decides (its default steps and spacing), and ``sample_kwargs`` is what
``reverse.sample`` takes. Import-free, like the registry, so ``--help`` answers at once.
"""

import dataclasses

from keras_diffusion.fields import check_choices, check_types, field, from_dict
from keras_diffusion.names import VARIANCES
from keras_diffusion.samplers.registry import REGISTRY, SAMPLERS, SPACINGS, STEPPED, check_options, nfe

# the best sampler at <= 25 network calls, if within 1.2x of DDPM-200's FID (it scored below it: 1.62 against
# 2.11 at n = 500 on the shipped U-Net; docs/results/sampling.md); DDPM is --sampler ddpm
DEFAULT_SAMPLER = "dpmpp_2m_sde"


def _sampler_help():
    summaries = "; ".join(f"{name}: {entry.summary}" for name, entry in REGISTRY.items())
    return f"the reverse process: {summaries}"


def _steps_help():
    own = ", ".join(f"{entry.default_steps} for {name}" for name, entry in REGISTRY.items() if entry.default_steps)
    return f"sampler steps S <= T (default: {own}, T for the others; ddpm always takes all T)"


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    sampler: str = field(DEFAULT_SAMPLER, _sampler_help(), SAMPLERS)
    steps: int = field(None, _steps_help())
    spacing: str = field(None, "how the steps spread over t: uniform, quadratic (DDIM) or karras (rho = 7, Karras et al. 2022) (default: the sampler's)", SPACINGS)
    eta: float = field(0.0, "DDIM's eta: 0 deterministic, 1 like DDPM")
    churn: float = field(0.0, "Heun's S_churn: fresh noise before each step, 0 = the ODE (Karras et al. 2022, Algorithm 2)")
    variance: str = field("beta", "DDPM's sigma_t^2: beta or the posterior beta-tilde", VARIANCES)
    clip: bool = field(None, "clip the predicted x0 to the data range at each step (default: as the run was trained)")
    recompute_eps: bool = field(True, "DDIM with clipping: re-derive eps from the clipped x0")
    guidance: float = field(None, "classifier-free guidance w >= 0, with --label on a conditional run (default: 3 there, 0 with --classifier)")
    classifier_scale: float = field(None, "classifier guidance scale s >= 0, with --classifier (default: 1)")
    seed: int = field(0, "seed of the noise: the same seed draws the same images")
    batch_size: int = field(256, "images per compiled call")

    def validate(self):
        """Raise ValueError naming the first setting that is out of range or that the sampler cannot take."""
        check_types(dataclasses.asdict(self), SamplingConfig)
        check_choices(self)
        for name in ("steps", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name in ("eta", "churn", "guidance", "classifier_scale"):
            value = getattr(self, name)
            if value is not None and not value >= 0:  # also refuses nan
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.steps is not None and REGISTRY[self.sampler].every_step:
            raise ValueError(f"steps needs one of the samplers {', '.join(STEPPED)} ({self.sampler} always takes all T steps)")
        check_options(self.sampler, eta=self.eta, churn=self.churn)
        return self

    def resolved(self, timesteps, run_clip):
        """A copy with the defaults filled in: the sampler's steps (at most T) and spacing, the run's clipping.

        Args:
            timesteps: T of the run.
            run_clip: whether the run clips x̂_0 while sampling (its ``TrainConfig.clip``).
        """
        entry = REGISTRY[self.sampler]
        if entry.every_step and self.steps == timesteps:  # resolved before (evaluate, then draw): the same again
            return dataclasses.replace(self, steps=None).resolved(timesteps, run_clip)
        self.validate()
        steps = self.steps
        if steps is None:
            steps = timesteps if entry.every_step or not entry.default_steps else min(entry.default_steps, timesteps)
        if steps > timesteps:
            raise ValueError(f"steps must be <= T={timesteps} of this run, got {steps}")
        spacing = self.spacing or entry.default_spacing
        return dataclasses.replace(self, steps=steps, spacing=spacing, clip=bool(run_clip) if self.clip is None else self.clip)

    def nfe(self, guidance=None):
        """Network evaluations per image of a resolved config (classifier-free guidance counts two)."""
        if self.steps is None:
            raise ValueError("nfe needs the steps: call resolved(T, clip) first")
        return nfe(self.sampler, self.steps, self.guidance if guidance is None else guidance)

    def sample_kwargs(self, scaling):
        """The keyword arguments of ``reverse.sample`` for a resolved config (labels and guidance come separately)."""
        if self.clip is None or self.spacing is None:
            raise ValueError("sample_kwargs needs a resolved config: call resolved(T, clip) first")
        low, high = (0.0, 1.0) if scaling == "zero_one" else (-1.0, 1.0)
        return dict(
            sampler=self.sampler, steps=None if REGISTRY[self.sampler].every_step else self.steps, spacing=self.spacing, eta=self.eta, churn=self.churn, variance=self.variance,
            clip=(low, high) if self.clip else None, recompute_eps=self.recompute_eps, seed=self.seed, batch_size=self.batch_size,
        )

    def describe(self):
        """A short title: 'dpmpp_2m, 20 steps, karras spacing'."""
        text = self.sampler + ("" if REGISTRY[self.sampler].every_step or self.steps is None else f", {self.steps} steps")
        if self.spacing not in (None, "uniform"):
            text += f", {self.spacing} spacing"
        for name in ("eta", "churn"):
            if getattr(self, name):
                text += f", {name} {getattr(self, name):g}"
        return text

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of ``to_dict``; unknown keys and wrong types raise ValueError naming the key."""
        return from_dict(cls, values).validate()
