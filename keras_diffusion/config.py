"""The training configuration: one dataclass, one comment a field.

The command line is generated from these fields (``add_arguments``) and the
same dataclass is written to a run's ``config.json``: there is no second list
of options to keep in sync.
"""

import dataclasses
import inspect
import math

from keras_diffusion.fields import add_arguments, check_choices, check_types, field as _field, from_arguments, from_dict  # noqa: F401 (re-exported)
from keras_diffusion.names import DATASETS, LOSS_WEIGHTS, LR_SCHEDULES, OBJECTIVES, PRECISIONS, SCALINGS, SOURCES, STRATEGIES
from keras_diffusion.models import CLASSIFIERS, MODELS, model_defaults, model_names
from keras_diffusion.schedule import SCHEDULES, NoiseSchedule


@dataclasses.dataclass
class TrainConfig:
    model: str = _field("unet", "denoiser to train (noisy_classifier: the classifier for classifier guidance)", model_names(classifiers=True))
    model_kwargs: dict = _field(None, 'JSON of extra model arguments, e.g. \'{"hidden": 256}\'')
    objective: str = _field(
        "eps", "what the network predicts and the loss compares: the noise (eps, DDPM), the clean image (x0) or the velocity (v, Salimans & Ho 2022); samplers get ε̂ either way", OBJECTIVES
    )
    loss_weight: str = _field("uniform", "how the loss weighs the noise levels: uniform, or min_snr (Hang et al. 2023: min(SNR, γ) on the x0 error, in any objective)", LOSS_WEIGHTS)
    min_snr_gamma: float = _field(5.0, "γ of --loss-weight min_snr")
    epochs: int = _field(None, "passes over the training images (default: the model's)")
    batch_size: int = _field(None, "images per training step, summed over all devices (default: the model's)")
    lr: float = _field(None, "Adam learning rate (default: the model's)")
    lr_schedule: str = _field("constant", "the learning rate over the run: constant, or cosine decay to 0 at the last epoch", LR_SCHEDULES)
    lr_warmup: int = _field(0, "optimizer steps of linear warm-up from 0 to --lr (0 = none)")
    ema: float = _field(None, "EMA momentum of the weights (0 = off; default: the model's)")
    ema_warmup: bool = _field(True, "warm the EMA up: momentum min(ema, (1 + n)/(10 + n)) at step n, so a short run does not average in its initialisation")
    timesteps: int = _field(200, "T, the number of diffusion steps")
    schedule: str = _field(None, "noise schedule (default: the model's)", SCHEDULES)
    beta_start: float = _field(1e-4, "first beta of the linear schedules")
    beta_end: float = _field(0.02, "last beta of the linear schedules")
    scaling: str = _field(None, "pixel range: zero_one [0,1] or minus_one_one [-1,1] (default: the model's)", SCALINGS)
    dataset: str = _field("fashion_mnist", "training images", DATASETS)
    data_source: str = _field("auto", "where images come from (auto: local files, then download)", SOURCES)
    data_dir: str = _field(None, "folder with the four IDX files (or the TFDS data dir)")
    limit: int = _field(None, "train on the first N images only (quick runs)")
    seed: int = _field(0, "seed of data order, weights, noise and samples")
    n_samples: int = _field(64, "images in the sample grid drawn after training")
    clip: bool = _field(None, "clip the predicted x0 to the data range while sampling (default: the model's)")
    xla: bool = _field(None, "compile the training step with XLA (default: the model's; off on a CPU with native bf16 and no GPU, where it was slower)")
    deterministic: bool = _field(False, "turn on TensorFlow op determinism: identical runs, a little slower")
    steps_per_execution: int = _field(None, "training steps per compiled call: fewer trips through Python for small models (default: the model's)")
    mixed_precision: bool = _field(False, "compute the denoiser in float16, for GPUs (loss and schedule stay float32)")
    precision: str = _field(None, "the denoiser's compute dtype; loss, schedule and sampler stay float32 (default: mixed_bfloat16 on a CPU with AVX-512 BF16 or AMX and no GPU, else float32)", PRECISIONS)
    strategy: str = _field("default", "devices: default (one), mirrored (every local GPU), multiworker (machines in TF_CONFIG)", STRATEGIES)
    conditional: bool = _field(False, "train a class-conditional denoiser on (image, label) batches, for classifier-free guidance")
    cond_drop: float = _field(0.1, "with --conditional or --text, the rate at which labels (prompts) are replaced by the null label (prompt) (Ho & Salimans 2022)")
    text: bool = _field(False, "train a text-conditioned U-Net on captions made from the pixels, for --prompt: cross-attention to a frozen mini-CLIP's tokens (Rombach et al. 2022)")
    text_encoder_run: str = _field(None, "with --text: the mini-CLIP run (train --text-encoder) whose text encoder reads the prompts (default: the shipped clip-fashion-mnist)")
    fid_every: int = _field(0, "every K epochs, log the FID of fid_n DDIM-50 samples to history.csv (0 = off)")
    fid_n: int = _field(256, "samples for --fid-every (more than 128: the classifier has 128 features)")
    val: int = _field(0, "each epoch, log val_loss: the loss of the first N test images, with the same t and noise every epoch (0 = off; 10000 = the whole test split)")
    tensorboard: bool = _field(False, "also write the epoch logs (loss, FID) for TensorBoard to <run>/tensorboard")
    latent: bool = _field(False, "latent diffusion: train an autoencoder (or reuse --autoencoder), then the U-Net on its 7x7xC latents")
    autoencoder: str = _field(None, "with --latent: reuse the autoencoder of this latent run instead of training one")
    latent_channels: int = _field(4, "with --latent: channels C of the 7x7xC latents")
    autoencoder_epochs: int = _field(2, "with --latent: epochs of autoencoder training (unused with --autoencoder)")

    def resolved(self):
        """A copy with the model's defaults filled in and every value checked."""
        # checked before the model's defaults are looked up, so a bad name or type is named as such
        check_types(dataclasses.asdict(self), TrainConfig)
        check_choices(self)
        defaults = model_defaults(self.model)
        if self.strategy != "default":
            defaults["steps_per_execution"] = 1  # see validate
        if self.latent:
            defaults.update(LATENT_DEFAULTS)
        filled = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        model_kwargs = {**(LATENT_UNET if self.latent else {}), **(self.model_kwargs or {})}
        config = dataclasses.replace(self, **filled, model_kwargs=model_kwargs)
        config.validate()
        if config.precision is None:
            config = _auto_precision(config, xla_chosen=self.xla is not None)
        return config

    def validate(self):
        """Raise ValueError naming the first field that is out of range."""
        check_types(dataclasses.asdict(self), TrainConfig)
        check_choices(self)
        for name in ("epochs", "batch_size", "timesteps", "n_samples", "steps_per_execution", "latent_channels", "autoencoder_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.strategy != "default" and self.steps_per_execution > 1:
            # Keras 3.15 fails on several steps a call under tf.distribute (keras-team/keras#19246)
            raise ValueError(f"steps_per_execution must be 1 with strategy {self.strategy!r}, got {self.steps_per_execution}")
        if self.mixed_precision and self.precision not in (None, "mixed_float16"):
            raise ValueError(f"--mixed-precision is mixed_float16, but precision is {self.precision!r}: give one of the two")
        if not 0 <= self.cond_drop < 1:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}")
        if self.conditional and "num_classes" not in inspect.signature(MODELS[self.model][0]).parameters:
            raise ValueError(f"model {self.model!r} cannot be class-conditional; use --model unet with --conditional")
        if self.objective != "eps" and self.model in CLASSIFIERS:
            raise ValueError(f"--objective is for denoisers; a classifier predicts the label (drop --objective {self.objective})")
        if self.loss_weight != "uniform" and self.model in CLASSIFIERS:
            raise ValueError(f"--loss-weight is for denoisers; a classifier's loss is the cross-entropy (drop --loss-weight {self.loss_weight})")
        if not (self.min_snr_gamma > 0 and math.isfinite(self.min_snr_gamma)):
            raise ValueError(f"min_snr_gamma must be a finite number > 0, got {self.min_snr_gamma}")
        if self.lr_warmup < 0:
            raise ValueError(f"lr_warmup must be >= 0 optimizer steps, got {self.lr_warmup}")
        if self.conditional and self.model in CLASSIFIERS:
            raise ValueError("--conditional is for denoisers; a classifier already predicts the label")
        if "num_classes" in (self.model_kwargs or {}):
            raise ValueError("model_kwargs: num_classes comes from the data set; use --conditional instead")
        _check_text(self)
        _check_latent(self)
        if self.fid_every < 0:
            raise ValueError(f"fid_every must be >= 0 (0 = off), got {self.fid_every}")
        if self.fid_every and self.fid_n <= 128:
            raise ValueError(f"fid_n must be > 128 (the FID classifier has 128 features), got {self.fid_n}")
        if self.val < 0:
            raise ValueError(f"val must be >= 0 test images (0 = off), got {self.val}")
        if self.val and self.latent:
            raise ValueError("--val scores pixels, and a latent run's U-Net sees latents: drop --val for --latent runs")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.schedule not in (None, "cosine"):
            # bad betas fail here, before the data is loaded (the schedule is only T numbers)
            NoiseSchedule.from_name(self.schedule, self.timesteps, beta_start=self.beta_start, beta_end=self.beta_end)
        _check_model_kwargs(self.model, self.model_kwargs)

    def noise_schedule(self):
        """The ``NoiseSchedule`` this config trains and samples with."""
        if self.schedule == "cosine":
            return NoiseSchedule.cosine(self.timesteps)
        return NoiseSchedule.from_name(self.schedule, self.timesteps, beta_start=self.beta_start, beta_end=self.beta_end)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of ``to_dict``; unknown keys and wrong types raise ValueError naming the key."""
        return from_dict(cls, values)


# A latent run's U-Net works at 7x7, which cannot be halved twice as 28x28 is: one level, wider, with
# attention over all 49 positions (the receptive field of its convolutions covers 7x7 anyway).
# Latents are not bounded like pixels, so x̂_0 is not clipped, and without clipping the cosine schedule's
# last step (sqrt(ᾱ) from 8e-3 to 2.5e-4) would multiply the error of ε̂ by sqrt(1−ᾱ_T)/sqrt(ᾱ_T) = 4,058 in
# DDIM's first x̂_0: the linear betas scaled by 1000/T end smoothly, at 182 (latent diffusion's own schedule
# is linear too).
# The U-Net is cheap enough for a larger batch; its 4 epochs after the autoencoder's 2 cost about what the
# pixel U-Net's 2 do (1.07x: 250, 124 and 67 training images/s side by side in benchmarks/latent.py).
LATENT_UNET = {"widths": [64]}
LATENT_DEFAULTS = dict(clip=False, schedule="scaled_linear", batch_size=128, epochs=4)


def _check_latent(config):
    """Raise ValueError for settings that latent diffusion cannot take."""
    if not config.latent:
        if config.autoencoder is not None:
            raise ValueError(f"--autoencoder {config.autoencoder} needs --latent")
        return
    if config.model != "unet":
        raise ValueError(f"--latent trains a U-Net on the latents; drop --model {config.model}")
    if config.clip:
        raise ValueError("latents are not bounded like pixels: drop --clip with --latent")
    widths = (config.model_kwargs or {}).get("widths")
    if widths is not None and len(widths) != 1:
        raise ValueError(f"model_kwargs: the latents are 7x7, which cannot be halved: give the U-Net one width, e.g. [64], got widths {widths}")
    if config.fid_every:
        raise ValueError("--fid-every cannot score latents during training; score a latent run after it with python -m keras_diffusion.evaluate")


def _check_text(config):
    """Raise ValueError for settings that a text-conditioned run cannot take."""
    if not config.text:
        if config.text_encoder_run is not None:
            raise ValueError(f"--text-encoder-run {config.text_encoder_run} needs --text")
        if "prompt" in (config.model_kwargs or {}):
            raise ValueError("model_kwargs: prompt comes from the text encoder; use --text (with --text-encoder-run RUN) instead")
        return
    if config.model != "unet":
        raise ValueError(f"--text trains a U-Net with cross-attention; drop --model {config.model}")
    for flag, value in (("conditional", config.conditional), ("latent", config.latent)):
        if value:
            raise ValueError(f"--text conditions the U-Net on prompts; drop --{flag}")
    if config.val:
        raise ValueError("--val scores fixed draws of class-free images; drop --val with --text (score the run with python -m keras_diffusion.evaluate)")


def _auto_precision(config, xla_chosen):
    """The config with the precision (and XLA setting) that pays on this machine, recorded in config.json.

    On a CPU with native bf16 and no GPU (``devices.bf16_cpu``) that is
    mixed_bfloat16, without XLA unless ``--xla`` was given: measured there,
    XLA slowed every model's step. Elsewhere float32 and the model's XLA setting.
    """
    if config.mixed_precision:
        return dataclasses.replace(config, precision="mixed_float16")
    from keras_diffusion.devices import bf16_cpu  # TensorFlow (to look for a GPU): a run is starting anyway

    if not bf16_cpu(config.strategy):
        return dataclasses.replace(config, precision="float32")
    return dataclasses.replace(config, precision="mixed_bfloat16", xla=config.xla if xla_chosen else False)


def apply_determinism(config):
    """Turn on TensorFlow's op determinism when ``config.deterministic`` is set.

    With the seeds set, two runs then give the same losses and weights, on a
    GPU too, at some cost in speed. It stays on for the rest of the process.
    """
    if config.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def _check_model_kwargs(model, kwargs):
    """Refuse model_kwargs the builder does not take, before any data is loaded."""
    if not kwargs:
        return  # reading the builder's signature imports Keras: not for every --help or typo
    params = inspect.signature(MODELS[model][0]).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    # image_shape and timesteps come from the data and the config, not from model_kwargs
    allowed = [name for name in params if name not in ("image_shape", "timesteps", "num_classes", "prompt")]
    for key in kwargs or {}:
        if key not in allowed and key != "prompt":  # prompt: only with --text (_check_text), filled in from the text encoder
            raise ValueError(f"model_kwargs: model {model!r} has no argument {key!r}; it takes {', '.join(allowed)}")
