"""Denoisers, one file a family, all built by name with ``build_model``.

Every denoiser is a Keras model called as ``denoiser([x_t, t])`` with x_t of
shape (B, H, W, C) and integer t of shape (B,), and returns ε̂ shaped like x_t.
"""

import importlib
import inspect


class _Lazy:
    """A builder imported on its first call: the names and defaults below are known without loading Keras.

    The command lines read them to build their parsers, and ``--help`` must not wait for TensorFlow.
    ``inspect.signature`` sees the real builder's arguments.
    """

    def __init__(self, path):
        self.module, self.name = path.rsplit(".", 1)

    def load(self):
        return getattr(importlib.import_module(f"keras_diffusion.models.{self.module}"), self.name)

    def __call__(self, *args, **kwargs):
        return self.load()(*args, **kwargs)

    @property
    def __signature__(self):
        return inspect.signature(self.load())


def __getattr__(name):
    # the submodules (models.unet, ...) stay reachable as attributes, imported on first use (PEP 562)
    if name in ("classifier", "embeddings", "linear", "mlp", "unet"):
        return importlib.import_module(f"keras_diffusion.models.{name}")
    raise AttributeError(f"module 'keras_diffusion.models' has no attribute {name!r}")


# name -> (builder, training defaults the model was designed for).
# steps_per_execution: an MLP step is so cheap that, on a GPU, Keras' Python work per compiled
# call (callbacks, iterator, progress bar) can cost more than the step; 64 steps a call pay it
# once. A U-Net step is long enough that one step a call costs little and keeps the progress bar live.
MODELS = {
    # the classic demo's settings, kept as they were
    "mlp_seed": (_Lazy("mlp.mlp_seed"), dict(scaling="zero_one", schedule="linear", ema=0.0, epochs=5, batch_size=128, lr=1e-3, clip=False, xla=False, steps_per_execution=64)),
    "mlp": (_Lazy("mlp.mlp"), dict(scaling="minus_one_one", schedule="cosine", ema=0.999, epochs=10, batch_size=128, lr=1e-3, clip=True, xla=False, steps_per_execution=64)),
    # sized so the default run fits in 20 minutes on a 2-core CPU: 3 epochs took 15 min in bf16 without XLA
    # (see README). XLA fused GroupNorm's small ops on an earlier machine (124 vs 93 images/s, float32), so
    # it stays the default where bf16 is not native; with native bf16, config turns it off (it was slower)
    "unet": (_Lazy("unet.unet"), dict(scaling="minus_one_one", schedule="cosine", ema=0.995, epochs=3, batch_size=64, lr=2e-3, clip=True, xla=True, steps_per_execution=1)),
    # the baseline: the best affine ε̂ for each t, fit in closed form from the data's mean and covariance
    # (no gradient steps, so epochs, batch size, lr and EMA are unused; training.py fits it in one pass)
    "linear": (_Lazy("linear.linear"), dict(scaling="minus_one_one", schedule="cosine", ema=0.0, epochs=1, batch_size=128, lr=1e-3, clip=True, xla=False, steps_per_execution=1)),
}
# not denoisers: called as classifier([x_t, t]) and returning logits; trained with --classifier
CLASSIFIERS = {
    "noisy_classifier": (_Lazy("classifier.noisy_classifier"), dict(scaling="minus_one_one", schedule="cosine", ema=0.0, epochs=2, batch_size=128, lr=1e-3, clip=True, xla=True, steps_per_execution=1)),
}
MODELS.update(CLASSIFIERS)


def model_names(classifiers=False):
    """The registered denoiser names, in ladder order (and the classifiers' too when asked)."""
    return tuple(name for name in MODELS if classifiers or name not in CLASSIFIERS)


def model_defaults(name):
    """Training settings a model is meant for: scaling, schedule, EMA, epochs, batch size, lr, clipping, XLA, steps a call."""
    _check_name(name)
    return dict(MODELS[name][1])


def build_model(name, **kwargs):
    """Build the denoiser registered as ``name``; kwargs go to its builder.

    Common kwargs: ``image_shape`` (default (28, 28, 1)) and ``timesteps``
    (default 200; the MLPs divide t by it).
    """
    _check_name(name)
    try:
        return MODELS[name][0](**kwargs)
    except TypeError as error:
        raise ValueError(f"bad arguments for model {name!r}: {error}") from None


def _check_name(name):
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
