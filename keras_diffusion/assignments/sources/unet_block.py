# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Assignment `unet_block` · The U-Net's building blocks (10 points)
#
# The U-Net that keras_diffusion trains is built from two pieces repeated
# everywhere: a **sinusoidal embedding** that turns the integer t into a
# vector the network can use, and a **residual block** that adds that vector
# to every pixel of its feature map. Write both, and you have written
# everything in the U-Net that is specific to diffusion.
#
# | check | points | what it asks |
# |---|---|---|
# | `embedding_shape` | 1 | `sinusoidal_embedding(t, dim)` has shape (B, dim) |
# | `embedding_values` | 2 | its values: [sin(t·ω_i) \| cos(t·ω_i)] |
# | `block_shape` | 1 | `ResidualBlock(channels, groups)(x, emb)` has shape (B, H, W, channels) |
# | `block_parameters` | 2 | exactly the layers below: the parameter count, layer by layer |
# | `block_uses_emb` | 1 | the output changes with emb |
# | `block_gradients` | 1 | a gradient reaches every weight |
# | `block_output` | 2 | with the grader's weights, the output equals the formula |
#
# **Rules.** Use `keras.ops` (or NumPy for the embedding) and the Keras layers
# named below; only your imports and definitions are graded. Do not use
# keras_diffusion's `SinusoidalEmbedding` or `res_block`. The grader builds
# your block twice: 8 → 16 channels with `groups=4`, and 16 → 16 channels with
# the default `groups=8`.
#
# Reference: Vaswani et al. 2017, *Attention Is All You Need*, sec. 3.5,
# https://arxiv.org/abs/1706.03762; Ho, Jain & Abbeel 2020, DDPM, appendix B,
# https://arxiv.org/abs/2006.11239.

# %%
# %matplotlib inline
import keras
import numpy as np
from keras import layers, ops

from keras_diffusion.assignments import check

# %% [markdown]
# ## 1 · The sinusoidal time embedding
#
# A single number t/T tells a network little about *how* noisy its input is.
# The transformer's position encoding gives every t a vector of sines and
# cosines at dim/2 frequencies, from one cycle per 2π steps down to one per
# 10000·2π:
#
# $$\text{emb}(t) = \big[\sin(t\,\omega_0), \dots, \sin(t\,\omega_{d/2-1}),\ \cos(t\,\omega_0), \dots, \cos(t\,\omega_{d/2-1})\big],
# \qquad \omega_i = 10000^{-i/(d/2)} .$$
#
# Nearby t get similar vectors; far-apart t differ in the slow frequencies.

# %%
def sinusoidal_embedding(t, dim):
    """[sin(t·ω_i) | cos(t·ω_i)] with ω_i = 10000^(−i/(dim/2)), i = 0 … dim/2 − 1 (Vaswani et al., sec. 3.5).

    Args:
        t: integer timesteps, shape (B,).
        dim: the embedding size d, even.

    Returns:
        Array of shape (B, dim): the sines first, then the cosines.
    """
    ### BEGIN SOLUTION
    half = dim // 2
    omega = ops.exp(-np.log(10000.0) * ops.arange(half, dtype="float32") / half)  # (dim/2,)
    angles = ops.cast(ops.reshape(t, (-1, 1)), "float32") * omega[None, :]  # (B, dim/2)
    return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)  # (B, dim)
    ### END SOLUTION


# %%
check("unet_block", only="sinusoidal_embedding")

# %% [markdown]
# ## 2 · The residual block (DDPM appendix B, as keras_diffusion's `res_block`)
#
# For x of shape (B, H, W, C_in) and emb of shape (B, E):
#
# $$h = \text{Conv}_{3\times3}\big(\text{swish}(\text{GroupNorm}(x))\big) + \text{Dense}(\text{emb}) \quad\text{(broadcast over H, W)}$$
# $$\text{out} = \text{skip}(x) + \text{Conv}_{3\times3}\big(\text{swish}(\text{GroupNorm}(h))\big)$$
#
# where skip is the identity when C_in = channels and a 1×1 convolution
# otherwise. Use `layers.GroupNormalization(groups)`,
# `layers.Conv2D(channels, 3, padding="same")`, `layers.Dense(channels)`,
# `layers.Conv2D(channels, 1)` and `ops.silu` (swish), with their defaults.
# The time enters *every* block this way: each channel gets a shift that
# depends on t.
#
# Keras calls `build` once, with the shapes of x and emb, before the first
# `call`: the place to decide whether a 1×1 skip convolution is needed.

# %%
class ResidualBlock(layers.Layer):
    """out = skip(x) + Conv3x3(swish(GroupNorm(h))), h = Conv3x3(swish(GroupNorm(x))) + Dense(emb).

    Args:
        channels: the output channels.
        groups: GroupNormalization groups (they divide the channels).

    Call: ``block(x, emb)`` with x (B, H, W, C_in) and emb (B, E); returns (B, H, W, channels).
    """

    def __init__(self, channels, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.groups = channels, groups
        ### BEGIN SOLUTION
        self.norm_x = layers.GroupNormalization(groups)
        self.conv_x = layers.Conv2D(channels, 3, padding="same")
        self.time = layers.Dense(channels)
        self.norm_h = layers.GroupNormalization(groups)
        self.conv_h = layers.Conv2D(channels, 3, padding="same")
        ### END SOLUTION

    def build(self, x_shape, emb_shape):
        ### BEGIN SOLUTION
        self.skip = None if x_shape[-1] == self.channels else layers.Conv2D(self.channels, 1)
        ### END SOLUTION

    def call(self, x, emb):
        ### BEGIN SOLUTION
        h = self.conv_x(ops.silu(self.norm_x(x)))  # (B, H, W, channels)
        h = h + self.time(emb)[:, None, None, :]  # time: one shift per channel, broadcast over H, W
        h = self.conv_h(ops.silu(self.norm_h(h)))
        return (x if self.skip is None else self.skip(x)) + h
        ### END SOLUTION


# %%
check("unet_block", only="ResidualBlock")

# %% [markdown]
# ## See it work
#
# Left: your embedding of every t from 0 to 199 (rows), 32 dimensions
# (columns): fast frequencies on the left of each half, slow on the right.
# Right: the cosine similarity of every pair of embeddings: nearby t look
# alike, which is what lets the network share what it learns between
# neighbouring noise levels. Below: your block in a tiny time-conditioned
# model. (This cell does not run during grading.)

# %%
from matplotlib.figure import Figure

emb = np.asarray(sinusoidal_embedding(np.arange(200), 32))  # (200, 32)
unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
figure = Figure(figsize=(8, 3.4), layout="constrained")
left, right = figure.subplots(1, 2)
left.imshow(emb, aspect="auto", cmap="RdBu", interpolation="nearest")
left.set(xlabel="dimension (sin | cos)", ylabel="t", title="your sinusoidal_embedding")
right.imshow(unit @ unit.T, cmap="viridis", interpolation="nearest")
right.set(xlabel="t", ylabel="t", title="cosine similarity")

x_in, t_in = keras.Input((28, 28, 1)), keras.Input((32,))
out = ResidualBlock(16)(layers.Conv2D(16, 3, padding="same")(x_in), t_in)
model = keras.Model([x_in, t_in], layers.Conv2D(1, 3, padding="same")(out))
print("your block in a model:", model.output_shape, f"{model.count_params()} parameters")
figure

# %% [markdown]
# ## Your grade

# %%
check("unet_block")
