"""Denoisers, one file a family, all built by name with ``build_model``.

Every denoiser is a Keras model called as ``denoiser([x_t, t])`` with x_t of
shape (B, H, W, C) and integer t of shape (B,), and returns ε̂ shaped like x_t.
"""

from keras_diffusion.models import mlp

# name -> (builder, training defaults the model was designed for)
MODELS = {
    "mlp_seed": (mlp.mlp_seed, dict(scaling="zero_one", schedule="linear", ema=0.0)),
}


def model_names():
    """The registered model names, in ladder order."""
    return tuple(MODELS)


def model_defaults(name):
    """Training settings a model is meant for (data scaling, schedule, EMA)."""
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
