"""The training configuration: one dataclass, one comment a field.

The command line is generated from these fields (``add_arguments``) and the
same dataclass is written to a run's ``config.json``: there is no second list
of options to keep in sync.
"""

import argparse
import dataclasses
import json
import typing

from keras_diffusion.data import DATASETS, SCALINGS, SOURCES
from keras_diffusion.models import model_defaults, model_names
from keras_diffusion.schedule import SCHEDULES


def _field(default, help, choices=None):
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass
class TrainConfig:
    model: str = _field("unet", "denoiser to train", model_names())
    model_kwargs: dict = _field(None, 'JSON of extra model arguments, e.g. \'{"hidden": 256}\'')
    epochs: int = _field(None, "passes over the training images (default: the model's)")
    batch_size: int = _field(None, "images per training step (default: the model's)")
    lr: float = _field(None, "Adam learning rate (default: the model's)")
    ema: float = _field(None, "EMA momentum of the weights (0 = off; default: the model's)")
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

    def resolved(self):
        """A copy with the model's defaults filled in and every value checked."""
        defaults = model_defaults(self.model)
        filled = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        config = dataclasses.replace(self, **filled, model_kwargs=dict(self.model_kwargs or {}))
        config.validate()
        return config

    def validate(self):
        """Raise ValueError naming the first field that is out of range."""
        for name in ("epochs", "batch_size", "timesteps", "n_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        for field in dataclasses.fields(self):
            choices = field.metadata.get("choices")
            value = getattr(self, field.name)
            if choices and value is not None and value not in choices:
                raise ValueError(f"{field.name} must be one of {', '.join(choices)}; got {value!r}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of ``to_dict``; unknown keys and wrong types raise ValueError naming the key."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys are {sorted(known)}")
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            expected = hints[key]
            ok = value is None or isinstance(value, expected) or (expected is float and isinstance(value, int))
            if not ok or isinstance(value, bool):
                raise ValueError(f"config key {key!r} must be {expected.__name__}, got {value!r}")
        return cls(**values)


def add_arguments(parser, cls=TrainConfig):
    """Add one ``--flag`` per dataclass field, typed and with its help text."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        parse = _json_dict if kind is dict else kind
        metavar = "JSON" if kind is dict else None
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=parse,
            default=field.default,
            choices=field.metadata.get("choices"),
            help=field.metadata["help"] + ("" if field.default is None else f" (default: {field.default})"),
            metavar=metavar,
        )


def from_arguments(args, cls=TrainConfig):
    """The dataclass built from parsed argparse arguments."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def _json_dict(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg}): {text}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object like '{{\"hidden\": 256}}', got {text}")
    return value
