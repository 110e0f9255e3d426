"""Time embeddings: how a denoiser learns which noise level it is looking at."""

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="keras_diffusion")
class SinusoidalEmbedding(layers.Layer):
    """emb(t) = [sin(t·ω_0..ω_{d/2−1}), cos(t·ω_0..ω_{d/2−1})], ω_i = max_period^(−i/(d/2)).

    The transformer's position encoding (Vaswani et al. 2017, sec. 3.5) used
    as a timestep embedding by DDPM: nearby t get similar vectors, and every
    t from 0 to T−1 gets a distinct one at several frequencies, which a
    single number t/T cannot give an MLP.

    Args:
        dim: embedding size d (even).
        max_period: the longest wavelength, 10000 as in the transformer.

    Reference:
        https://arxiv.org/abs/1706.03762, https://arxiv.org/abs/2006.11239
    """

    def __init__(self, dim, max_period=10000, **kwargs):
        super().__init__(**kwargs)
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be an even integer >= 2, got {dim}")
        self.dim, self.max_period = dim, max_period

    def call(self, t):
        half = self.dim // 2
        freqs = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)  # (d/2,)
        angles = ops.reshape(ops.cast(t, "float32"), (-1, 1)) * freqs[None, :]  # (B, d/2)
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)  # (B, d)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


def time_embedding(t, dim, hidden=None):
    """SinusoidalEmbedding(dim) followed by a small MLP (Dense swish, Dense), as in DDPM's U-Net."""
    hidden = hidden or 4 * dim
    h = SinusoidalEmbedding(dim)(t)  # (B, dim)
    h = layers.Dense(hidden, activation="swish")(h)
    return layers.Dense(hidden)(h)  # (B, hidden)


def label_embedding(y, num_classes, dim):
    """A learned vector per class plus one for the null label y = num_classes, added to the time embedding.

    As in the class-conditional models of Ho et al. 2020 and Dhariwal & Nichol
    2021: the label shifts every residual block the way the timestep does.
    The null row is what a classifier-free-guided model sees when its label
    is dropped during training (Ho & Salimans 2022, sec. 3.2).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    return layers.Embedding(num_classes + 1, dim, name="label_embedding")(y)  # (B, dim)


def num_classes_of(model):
    """The number of classes of a conditional denoiser (its null label), or None when unconditional."""
    try:
        return model.get_layer("label_embedding").input_dim - 1
    except (AttributeError, ValueError):  # not a Keras model (a plain function), or no label input
        return None
