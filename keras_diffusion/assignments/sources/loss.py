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
# # Assignment `loss` · The DDPM training objective (6 points)
#
# A denoiser ε_θ(x_t, t) looks at a noisy image and guesses the noise that
# was added to it. Training it is surprisingly plain: take a clean image, a
# random t and a random ε, make x_t with the closed form of the forward
# process, and penalise the squared error of the guess. That is all of DDPM's
# Algorithm 1, and every model of keras_diffusion trains on it.
#
# You write one function, checked three ways:
#
# | check | points | what it asks |
# |---|---|---|
# | `ddpm_loss` | 3 | the loss of a fixed denoiser on the grader's batch |
# | `denoiser_inputs` | 2 | the denoiser is shown x_t (not x_0) and the batch's t |
# | `zero_and_perfect_denoisers` | 1 | a denoiser that returns 0 scores mean(ε²); one that returns ε scores 0 |
#
# **Rules.** NumPy or `keras.ops`, float32 or float64; `t` is an integer index
# in [0, T−1]. `denoiser` is any callable `denoiser(x_t, t) -> eps_hat`; the
# grader passes its own. Do not call keras_diffusion's implementation. Only
# your imports and definitions are graded; the demo cell is for you.
#
# Reference: Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic
# Models*, Algorithm 1 and eq. 14, https://arxiv.org/abs/2006.11239.

# %%
# %matplotlib inline
import numpy as np

from keras_diffusion.assignments import check

# %% [markdown]
# ## Given: the forward process
#
# This is the solution of assignment `forward` (DDPM eq. 4), given so that
# this assignment stands alone. Use it.

# %%
def q_sample(x0, t, noise, alpha_bars):
    """x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, one t per image (DDPM eq. 4). Shapes (B, H, W, C), t: (B,)."""
    alpha_bar = np.asarray(alpha_bars)[np.asarray(t)].reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * noise


# %% [markdown]
# ## The loss (DDPM Algorithm 1, eq. 14)
#
# DDPM derives a weighted variational bound and then drops the weights, which
# trains better. What is left is a mean squared error on the noise:
#
# $$L_\text{simple} = \mathbb{E}_{t,\,x_0,\,\varepsilon}\Big[\big\|\varepsilon - \varepsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t\big)\big\|^2\Big]
# \qquad\text{(eq. 14)}$$
#
# For one batch, with t and ε given, the expectation becomes a mean over every
# image and every pixel: a scalar.

# %%
def ddpm_loss(denoiser, x0, t, noise, alpha_bars):
    """mean((ε − denoiser(x_t, t))²) with x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε (DDPM Algorithm 1, eq. 14).

    Args:
        denoiser: a callable ``denoiser(x_t, t)`` returning ε̂ shaped like x_t.
        x0: clean images, shape (B, H, W, C).
        t: integer timesteps in [0, T−1], shape (B,).
        noise: ε, shape (B, H, W, C).
        alpha_bars: ᾱ, shape (T,).

    Returns:
        The loss, a scalar.
    """
    ### BEGIN SOLUTION
    x_t = q_sample(x0, t, noise, alpha_bars)  # (B, H, W, C)
    eps_hat = np.asarray(denoiser(x_t, t))  # (B, H, W, C)
    return np.mean((noise - eps_hat) ** 2)
    ### END SOLUTION


# %%
check("loss")

# %% [markdown]
# ## See it work: what a loss value means
#
# Your loss on 256 Fashion-MNIST images at every 10th t, for two denoisers
# that need no training:
#
# - **zero**: ε̂ = 0. The loss is E[ε²] = 1 at every t: the baseline every
#   trained model must beat (keras_diffusion's U-Net starts there exactly).
# - **shrink**: ε̂ = sqrt(1 − ᾱ_t)·x_t, the best *linear* guess if images were
#   pure noise. Where ᾱ_t is small (large t) x_t is almost all noise and the
#   guess is nearly right; at small t the noise is tiny next to the image and
#   this guess is hopeless. A trained network's loss has the same shape:
#   lowest at large t, hardest at small t, where the details are.
#
# (This cell does not run during grading.)

# %%
from matplotlib.figure import Figure

from keras_diffusion.data import load_images, scale_images

images, _ = load_images("fashion_mnist", "train", limit=256)
x0 = scale_images(images, "minus_one_one").astype(np.float64)  # (256, 28, 28, 1)
alpha_bars = np.cumprod(1 - np.linspace(1e-4, 0.02, 200) * 1000 / 200)  # scaled linear, T = 200
rng = np.random.default_rng(0)
steps = np.arange(0, 200, 10)
curves = {"zero": [], "shrink": []}
for step in steps:
    t, noise = np.full(len(x0), step), rng.standard_normal(x0.shape)
    curves["zero"].append(ddpm_loss(lambda x_t, t: np.zeros_like(x_t), x0, t, noise, alpha_bars))
    curves["shrink"].append(ddpm_loss(lambda x_t, t: np.sqrt(1 - alpha_bars[t]).reshape(-1, 1, 1, 1) * x_t, x0, t, noise, alpha_bars))
figure = Figure(figsize=(6, 3.2), layout="constrained")
ax = figure.subplots()
for name, values in curves.items():
    ax.plot(steps, values, marker="o", markersize=3, label=name)
ax.set(xlabel="t", ylabel="your ddpm_loss", title="the loss of two untrained denoisers against t")
ax.legend()
figure
