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
# # Assignment `sampling` · The reverse process (10 points)
#
# A trained denoiser guesses the noise ε in x_t. Sampling turns those guesses
# into images: start from pure noise x_T and walk back to x_0, one small
# denoising step at a time (DDPM), or in a few large deterministic jumps
# (DDIM). The network never changes; only the update rule does.
#
# You write three functions:
#
# | check | points | what it asks |
# |---|---|---|
# | `ddpm_step` | 3 | one DDPM step, t > 0 (eq. 11) |
# | `ddpm_step_t0` | 1 | the last step, t = 0, adds no noise |
# | `ddpm_sample` | 3 | the whole chain t = T−1 … 0 with the given noises |
# | `ddim_step` | 2 | one deterministic DDIM jump t → t_prev (eq. 12, η = 0) |
# | `ddim_step_to_data` | 1 | the final DDIM jump to t_prev = −1, where ᾱ = 1 |
#
# **Rules.** NumPy or `keras.ops`, float32 or float64. `t` is a Python int in
# [0, T−1] (t = 0 is the last reverse step); the noise is always an argument,
# so results are deterministic. Do not call keras_diffusion's own samplers.
# Only your imports and definitions are graded; the demo cell is for you.
#
# Reference: Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic
# Models* (DDPM), Algorithm 2 and eq. 11, https://arxiv.org/abs/2006.11239;
# Song, Meng & Ermon 2021, *Denoising Diffusion Implicit Models* (DDIM),
# eq. 12, https://arxiv.org/abs/2010.02502.

# %%
# %matplotlib inline
import numpy as np

from keras_diffusion.assignments import check

# %% [markdown]
# ## 1 · One DDPM step (Algorithm 2, eq. 11)
#
# Given x_t and the denoiser's ε̂ = ε_θ(x_t, t), DDPM removes the predicted
# noise, rescales, and adds a little fresh noise z:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\varepsilon\Big) + \sigma_t z,
# \qquad \sigma_t^2 = \beta_t,\quad \alpha_t = 1 - \beta_t \qquad\text{(eq. 11)}$$
#
# At the very last step (t = 0 here) no noise is added: the result is the
# mean, the model's best image.

# %%
def ddpm_step(x_t, t, eps_pred, noise, betas, alpha_bars):
    """x_{t−1} = (x_t − β_t/sqrt(1−ᾱ_t)·ε̂)/sqrt(α_t) + sqrt(β_t)·z, and no z when t = 0 (DDPM eq. 11).

    Args:
        x_t: current images, shape (B, H, W, C).
        t: the timestep, a Python int in [0, T−1].
        eps_pred: the denoiser's ε̂, shape (B, H, W, C).
        noise: z, shape (B, H, W, C); ignored when t = 0.
        betas: β, shape (T,).
        alpha_bars: ᾱ, shape (T,).

    Returns:
        x_{t−1}, shape (B, H, W, C).
    """
    ### BEGIN SOLUTION
    beta, alpha_bar = betas[t], alpha_bars[t]
    mean = (x_t - beta / np.sqrt(1.0 - alpha_bar) * eps_pred) / np.sqrt(1.0 - beta)
    if t == 0:
        return mean
    return mean + np.sqrt(beta) * noise
    ### END SOLUTION


# %%
check("sampling", only="ddpm_step")

# %% [markdown]
# ## 2 · The whole DDPM chain
#
# Start at x_T, call the denoiser at every t from T−1 down to 0, and step.
# The grader hands you the noise for every step, `noises[t]` for the step at t,
# so that your samples are checkable. `denoiser(x_t, t)` accepts t as an int.

# %%
def ddpm_sample(denoiser, x_T, noises, betas, alpha_bars):
    """x_0 from x_T by ddpm_step at t = T−1, …, 0, with ε̂ = denoiser(x_t, t) and z = noises[t] (DDPM Algorithm 2).

    Args:
        denoiser: a callable ``denoiser(x_t, t)`` returning ε̂ shaped like x_t.
        x_T: the starting noise, shape (B, H, W, C).
        noises: z for every step, shape (T, B, H, W, C).
        betas: β, shape (T,).
        alpha_bars: ᾱ, shape (T,).

    Returns:
        x_0, shape (B, H, W, C).
    """
    ### BEGIN SOLUTION
    x = x_T
    for t in reversed(range(len(betas))):
        x = ddpm_step(x, t, denoiser(x, t), noises[t], betas, alpha_bars)
    return x
    ### END SOLUTION


# %%
check("sampling", only="ddpm_sample")

# %% [markdown]
# ## 3 · One DDIM jump (eq. 12, η = 0)
#
# DDIM reads the same ε̂ differently: first the clean image it implies,
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},$$
#
# then the point of the forward process at any earlier t_prev with that
# image and that noise:
#
# $$x_{t_\text{prev}} = \sqrt{\bar\alpha_{t_\text{prev}}}\,\hat x_0 + \sqrt{1-\bar\alpha_{t_\text{prev}}}\,\hat\varepsilon
# \qquad\text{(DDIM eq. 12 with } \eta = 0\text{)}.$$
#
# No noise is added, so t_prev may be far below t: 20 jumps instead of 200
# steps. The final jump goes to t_prev = −1, "the data", where ᾱ = 1.

# %%
def ddim_step(x_t, t, t_prev, eps_pred, alpha_bars):
    """x_{t_prev} = sqrt(ᾱ_{t_prev})·x̂_0 + sqrt(1 − ᾱ_{t_prev})·ε̂ with x̂_0 from x_t and ε̂; ᾱ_{−1} = 1 (DDIM eq. 12, η = 0).

    Args:
        x_t: current images, shape (B, H, W, C).
        t: the current timestep, a Python int in [0, T−1].
        t_prev: the timestep to jump to, an int in [−1, t−1]; −1 means the data.
        eps_pred: the denoiser's ε̂, shape (B, H, W, C).
        alpha_bars: ᾱ, shape (T,).

    Returns:
        x_{t_prev}, shape (B, H, W, C).
    """
    ### BEGIN SOLUTION
    alpha_bar = alpha_bars[t]
    alpha_bar_prev = alpha_bars[t_prev] if t_prev >= 0 else 1.0
    x0_pred = (x_t - np.sqrt(1.0 - alpha_bar) * eps_pred) / np.sqrt(alpha_bar)
    return np.sqrt(alpha_bar_prev) * x0_pred + np.sqrt(1.0 - alpha_bar_prev) * eps_pred
    ### END SOLUTION


# %%
check("sampling", only="ddim_step")

# %% [markdown]
# ## See it work: sampling with a perfect denoiser
#
# No network has been trained here, and none is needed to test a sampler. For
# a training set of 12 Fashion-MNIST images, the best possible denoiser is
# known in closed form: x̂_0 is the average of the training images weighted by
# how likely each one is to have produced x_t, and ε̂ follows from x̂_0. Your
# DDPM chain (200 steps) and 20 jumps of your DDIM step should both land on
# training images: with a perfect denoiser for 12 images, diffusion can only
# memorise them. What a trained network adds is the ability to generalise.
# (This cell does not run during grading.)

# %%
from keras_diffusion import NoiseSchedule
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.plotting import plot_samples

images, _ = load_images("fashion_mnist", "train", limit=12)
data = scale_images(images, "minus_one_one").astype(np.float64).reshape(12, -1)  # (12, 784)
schedule = NoiseSchedule.cosine(200)
betas, alpha_bars = schedule.betas, schedule.alpha_bars


def perfect_denoiser(x_t, t):
    """ε̂ for the 12-image data set: x̂_0 = Σ_i w_i·x_i with w = softmax(−‖x_t − sqrt(ᾱ_t)·x_i‖² / 2(1 − ᾱ_t))."""
    flat = x_t.reshape(len(x_t), -1)  # (B, 784)
    logits = -((flat[:, None, :] - np.sqrt(alpha_bars[t]) * data[None]) ** 2).sum(-1) / (2 * (1 - alpha_bars[t]))
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    x0_hat = (weights / weights.sum(axis=1, keepdims=True)) @ data  # (B, 784)
    return ((flat - np.sqrt(alpha_bars[t]) * x0_hat) / np.sqrt(1 - alpha_bars[t])).reshape(x_t.shape)


rng = np.random.default_rng(1)
x_T = rng.standard_normal((6, 28, 28, 1))
ddpm = ddpm_sample(perfect_denoiser, x_T, rng.standard_normal((200,) + x_T.shape), betas, alpha_bars)
jumps = np.round(np.linspace(199, 0, 20)).astype(int)
x = x_T
for t, t_prev in zip(jumps, list(jumps[1:]) + [-1]):
    x = ddim_step(x, t, t_prev, perfect_denoiser(x, t), alpha_bars)
nearest = np.abs(x.reshape(6, 1, -1) - data[None]).max(axis=2).min(axis=1)
print("DDIM samples' largest pixel distance to the nearest training image:", np.round(nearest, 3))
plot_samples(np.clip(np.concatenate([ddpm, x]), -1, 1), ncols=6, title="your samplers, perfect denoiser: DDPM (top), DDIM 20 jumps (bottom)")

# %% [markdown]
# ## Your grade

# %%
check("sampling")
