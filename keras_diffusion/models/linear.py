"""The linear denoiser: the best ε̂ that is an affine function of x_t, fit in closed form.

For each t the denoiser is ε̂ = A_t·x_t + b_t with the A_t, b_t that minimise
the DDPM loss over the training images. It needs only their mean μ and
covariance Σ = U·diag(λ)·Uᵀ: since x_t = sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·ε,

    Cov(x_t) = ᾱ_t·Σ + (1−ᾱ_t)·I,   Cov(ε, x_t) = sqrt(1−ᾱ_t)·I,

and the least-squares answer is

    ε̂ = sqrt(1−ᾱ_t)·(ᾱ_t·Σ + (1−ᾱ_t)·I)⁻¹·(x_t − sqrt(ᾱ_t)·μ)
      = sqrt(1−ᾱ_t)·U·diag(1/(ᾱ_t·λ + 1−ᾱ_t))·Uᵀ·(x_t − sqrt(ᾱ_t)·μ),

which for Gaussian data is E[ε | x_t] itself. Its loss at t is exactly
(1/D)·Σ_i ᾱ_t·λ_i/(ᾱ_t·λ_i + 1−ᾱ_t): "PCA denoising", the baseline any
network should beat. No gradient steps: ``fit_linear`` sets it from the
data in seconds.

    from keras_diffusion.models.linear import fit_linear
    denoiser = build_model("linear")
    mean_loss = fit_linear(denoiser, images, "minus_one_one", NoiseSchedule.cosine(200))
"""

import math

import keras
import numpy as np
from keras import layers, ops

from keras_diffusion.schedule import NoiseSchedule

LAYER = "gaussian_denoiser"


@keras.saving.register_keras_serializable(package="keras_diffusion")
class GaussianDenoiser(layers.Layer):
    """E[ε | x_t] for x_0 ~ N(μ, U·diag(λ)·Uᵀ), computed for each t on the fly from ᾱ_t.

    Called on ``[x, t]`` with flattened x_t of shape (B, D) and integer t of
    shape (B,). Its weights are the data's mean μ (D,), eigenvectors U (D, D)
    and eigenvalues λ (D,), and the schedule's ᾱ (T,): none is trainable, and
    ``fit_linear`` sets them. Until then it is the denoiser for
    x_0 ~ N(0, I) under the cosine schedule.

    Args:
        dim: D, the number of pixels.
        timesteps: T, the length of ᾱ.
    """

    def __init__(self, dim, timesteps, **kwargs):
        # eigenvalues span five decades: float32 whatever the global policy
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.dim, self.timesteps = int(dim), int(timesteps)

    def build(self, input_shape):
        weight = lambda name, shape, init: self.add_weight(shape=shape, initializer=init, trainable=False, name=name)  # noqa: E731
        self.mean = weight("mean", (self.dim,), "zeros")  # μ
        self.eigenvectors = weight("eigenvectors", (self.dim, self.dim), "identity")  # U, one eigenvector a column
        self.eigenvalues = weight("eigenvalues", (self.dim,), "ones")  # λ
        self.alpha_bars = weight("alpha_bars", (self.timesteps,), "ones")  # ᾱ
        self.alpha_bars.assign(NoiseSchedule.cosine(self.timesteps).alpha_bars.astype("float32"))

    def call(self, inputs):
        x, t = inputs  # (B, D), (B,)
        a = ops.expand_dims(ops.take(self.alpha_bars, ops.cast(t, "int32")), -1)  # (B, 1): ᾱ_t
        z = ops.matmul(x - ops.sqrt(a) * self.mean, self.eigenvectors)  # (B, D): Uᵀ(x_t − sqrt(ᾱ_t)·μ), image by image
        z = z * ops.sqrt(1.0 - a) / (a * self.eigenvalues + 1.0 - a)  # (B, D): each principal direction shrunk on its own
        return ops.matmul(z, ops.transpose(self.eigenvectors))  # (B, D)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "timesteps": self.timesteps}


def linear(image_shape=(28, 28, 1), timesteps=200):
    """The closed-form linear denoiser, called as ``denoiser([x_t, t])``; set it with ``fit_linear``."""
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    eps = GaussianDenoiser(math.prod(image_shape), timesteps, name=LAYER)([layers.Flatten()(x_t), t])  # (B, D)
    return keras.Model([x_t, t], layers.Reshape(image_shape)(eps), name="linear")


def gaussian_fit(x0, chunk=10000):
    """(μ, λ, U): mean, eigenvalues (ascending, ≥ 0) and eigenvectors of the covariance of x0 (N, ...), in float64.

    The covariance divides by N: it is the training images' own, the one the loss averages over.
    """
    x0 = np.asarray(x0).reshape(len(x0), -1)  # (N, D)
    if len(x0) < 2:
        raise ValueError(f"need at least 2 images to estimate a covariance, got {len(x0)}")
    mean = x0.mean(axis=0, dtype=np.float64)  # (D,)
    cov = np.zeros((x0.shape[1],) * 2)
    for start in range(0, len(x0), chunk):  # in chunks: 60,000 images in float64 would be 380 MB at once
        centred = x0[start : start + chunk].astype(np.float64) - mean
        cov += centred.T @ centred
    eigenvalues, eigenvectors = np.linalg.eigh(cov / len(x0))
    return mean, np.maximum(eigenvalues, 0.0), eigenvectors  # rounding can leave λ ≈ −1e-17


def linear_losses(alpha_bars, eigenvalues):
    """The linear denoiser's loss at each t: (1/D)·Σ_i ᾱ_t·λ_i/(ᾱ_t·λ_i + 1−ᾱ_t), shape (T,).

    What it cannot predict of ε is the part hidden in the data's own spread:
    along a direction of variance λ the noise of variance 1−ᾱ_t competes with
    a signal of variance ᾱ_t·λ.
    """
    a = np.asarray(alpha_bars, np.float64)[:, None]  # (T, 1)
    lam = np.asarray(eigenvalues, np.float64)[None, :]  # (1, D)
    return np.mean(a * lam / (a * lam + 1.0 - a), axis=1)


def fit_linear(denoiser, images, scaling, schedule):
    """Set a ``linear`` denoiser from uint8 images (N, H, W, C) in the run's ``scaling``; return its mean loss over t.

    The mean loss is exact (``linear_losses`` averaged over t), the number
    that a trained network's loss compares with under the same scaling and schedule.
    """
    from keras_diffusion.data import scale_images  # here: the builder above must not load the data module

    layer = denoiser.get_layer(LAYER)
    if layer.timesteps != schedule.timesteps:
        raise ValueError(f"the denoiser was built for T={layer.timesteps} but the schedule has T={schedule.timesteps}")
    mean, eigenvalues, eigenvectors = gaussian_fit(scale_images(images, scaling))
    if mean.size != layer.dim:
        raise ValueError(f"images of {mean.size} pixels do not fit a linear denoiser built for {layer.dim}")
    for variable, value in ((layer.mean, mean), (layer.eigenvalues, eigenvalues), (layer.eigenvectors, eigenvectors), (layer.alpha_bars, schedule.alpha_bars)):
        variable.assign(value.astype("float32"))
    return float(linear_losses(schedule.alpha_bars, eigenvalues).mean())
