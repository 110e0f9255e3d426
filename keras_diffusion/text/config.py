"""The mini-CLIP's training configuration, and how ``train --text-encoder`` fills it from train's flags.

No TensorFlow here (NumPy at most), so that a wrong flag is answered at once.
"""

import dataclasses
import math

from keras_diffusion.fields import check_types, field
from keras_diffusion.names import SOURCES

SIZE_KEYS = ("embed_dim", "width", "depth", "heads", "image_width")  # what --model-kwargs may set
SHARED = ("epochs", "batch_size", "lr", "seed", "limit", "data_source", "data_dir")  # train's flags that --text-encoder reads


@dataclasses.dataclass
class ClipConfig:
    epochs: int = field(6, "passes over the training images, each with freshly drawn captions")
    batch_size: int = field(256, "image-caption pairs a step: the negatives of the contrastive loss")
    lr: float = field(2e-3, "Adam learning rate, decayed to 0 along a cosine")
    seed: int = field(0, "seed of weights, data order and captions")
    limit: int = field(None, "train on the first N images only (quick runs)")
    data_source: str = field("auto", "where images come from (auto: local files, then download)", SOURCES)
    data_dir: str = field(None, "folder with the four IDX files (or the TFDS data dir)")
    embed_dim: int = field(64, "size of the joint image-text embedding")
    width: int = field(64, "features a token in the text Transformer")
    depth: int = field(2, "Transformer blocks of the text encoder")
    heads: int = field(4, "attention heads of the text encoder")
    image_width: int = field(32, "convolution width of the image encoder at 28x28, doubled at 14x14 and 7x7")

    def validate(self):
        """Raise ValueError naming the first field that is out of range."""
        check_types(dataclasses.asdict(self), ClipConfig)
        for name in ("epochs", "batch_size", "embed_dim", "width", "depth", "heads", "image_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.limit is not None and self.limit < 10:
            raise ValueError(f"limit must be >= 10 (an image of each class for the thresholds), got {self.limit}")
        if self.width % self.heads:
            raise ValueError(f"width must be a multiple of heads, got width {self.width} and heads {self.heads}")
        return self


def from_train_arguments(args, train_defaults):
    """The ``ClipConfig`` of ``train --text-encoder``: train's shared flags, sizes from --model-kwargs.

    Args:
        args: train's parsed arguments.
        train_defaults: ``TrainConfig()``, to tell the flags that were given from those that were not.

    Returns:
        a checked ``ClipConfig``; with ``--resume``, None, or a ``ClipConfig`` whose ``epochs`` extends the run.

    Raises:
        ValueError: naming a flag that the text encoder does not take, or a value out of range.
    """
    defaults = dataclasses.asdict(train_defaults)
    if getattr(args, "resume", None):
        given = [name for name, default in defaults.items() if name != "epochs" and getattr(args, name) != default] + ["out"] * bool(args.out)
        if given:
            raise ValueError(f"--resume takes its settings from the run; drop {', '.join('--' + name.replace('_', '-') for name in given)}")
        return None if args.epochs is None else ClipConfig(epochs=args.epochs).validate()
    given = [name for name, default in defaults.items() if name not in SHARED + ("model_kwargs",) and getattr(args, name) != default]
    if getattr(args, "classifier", False):
        given.insert(0, "classifier")
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ValueError(f"--text-encoder trains the mini-CLIP on captioned Fashion-MNIST and takes no {flags}: drop {'it' if len(given) == 1 else 'them'}")
    sizes = dict(args.model_kwargs or {})
    unknown = sorted(set(sizes) - set(SIZE_KEYS))
    if unknown:
        raise ValueError(f"model_kwargs: the text encoder has no {', '.join(map(repr, unknown))}; it takes {', '.join(SIZE_KEYS)}")
    shared = {name: getattr(args, name) for name in SHARED if getattr(args, name) is not None}
    return ClipConfig(**shared, **sizes).validate()
