"""MLP denoisers: the classic demo (``mlp_seed``) and its fixed version."""

import math

import keras
from keras import layers, ops

from keras_diffusion.models.embeddings import time_embedding as embed_time

TIME_EMBEDDINGS = ("t_over_T", "sinusoidal")


@keras.saving.register_keras_serializable(package="keras_diffusion")
class TimeScale(layers.Layer):
    """t/T as a (B, 1) float: the classic demo's whole time signal.

    Args:
        timesteps: T, the number of diffusion steps.
    """

    def __init__(self, timesteps, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = timesteps

    def call(self, t):
        return ops.reshape(ops.cast(t, "float32") / self.timesteps, (-1, 1))  # (B, 1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps}


def mlp_seed(image_shape=(28, 28, 1), timesteps=200, hidden=512, time_embedding="t_over_T", emb_dim=32):
    """The classic demo, exactly: flatten ⊕ t/T → Dense 512 relu → Dense 512 relu → Dense 784.

    It ignores image structure and sees time only as one number in [0, 1):
    the tutorials fix both. ``time_embedding="sinusoidal"`` is the one switch
    that swaps t/T for ``SinusoidalEmbedding(emb_dim)`` plus a small MLP,
    leaving the rest of the demo as it was.
    """
    if time_embedding not in TIME_EMBEDDINGS:
        raise ValueError(f"time_embedding must be one of {', '.join(TIME_EMBEDDINGS)}; got {time_embedding!r}")
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    time = TimeScale(timesteps)(t) if time_embedding == "t_over_T" else embed_time(t, emb_dim)  # (B, 1) or (B, 4·emb_dim)
    h = layers.Concatenate()([layers.Flatten()(x_t), time])  # (B, 785) for t/T
    h = layers.Dense(hidden, activation="relu")(h)
    h = layers.Dense(hidden, activation="relu")(h)
    h = layers.Dense(math.prod(image_shape))(h)  # (B, 784)
    eps_pred = layers.Reshape(image_shape)(h)  # (B, 28, 28, 1)
    return keras.Model([x_t, t], eps_pred, name="mlp_seed")


def mlp(image_shape=(28, 28, 1), timesteps=200, hidden=512, blocks=3, emb_dim=128):
    """The MLP with its flaws fixed where an MLP can: sinusoidal time in every block, residuals, norms.

    Each block: h ← h + Dense(swish(Dense(LayerNorm(h)) + Dense(emb(t)))). The
    embedding reaches every hidden layer instead of one input among 785.
    ``timesteps`` is accepted for a uniform interface; the sinusoidal
    embedding does not need it.
    """
    del timesteps
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    emb = embed_time(t, emb_dim)  # (B, 4·emb_dim)
    h = layers.Dense(hidden)(layers.Flatten()(x_t))  # (B, hidden)
    for _ in range(blocks):
        u = layers.Dense(hidden)(layers.LayerNormalization()(h))
        u = layers.Activation("swish")(u + layers.Dense(hidden)(emb))
        h = h + layers.Dense(hidden)(u)  # (B, hidden)
    h = layers.Dense(math.prod(image_shape))(layers.LayerNormalization()(h))
    return keras.Model([x_t, t], layers.Reshape(image_shape)(h), name="mlp")
