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
# # Assignment `forward` · The noise schedule and the forward process (10 points)
#
# A diffusion model learns to undo a fixed process that destroys images a little
# at a time. Before any neural network, that process has to exist: a **noise
# schedule** β_1 … β_T saying how much noise each step adds, and the
# **closed form** that jumps from a clean image x_0 to its noisy version x_t in
# one go. Every model in keras_diffusion stands on these few lines, and so will
# the next three assignments.
#
# You write four functions:
#
# | function | points | what it computes |
# |---|---|---|
# | `linear_betas(timesteps, beta_start=1e-4, beta_end=0.02)` | 2 | DDPM's linear schedule, shape (T,) |
# | `cosine_betas(timesteps, s=0.008, max_beta=0.999)` | 3 | Nichol & Dhariwal's cosine schedule (eq. 17), shape (T,) |
# | `alpha_bars_from_betas(betas)` | 2 | ᾱ_t, the signal left after t steps, shape (T,) |
# | `q_sample(x0, t, noise, alpha_bars)` | 3 | x_t from x_0 in one step (DDPM eq. 4) |
#
# **Rules.** Write NumPy or `keras.ops`, float32 or float64: the grader
# compares in float64 with a tolerance sized for float32. The timestep `t` is an
# integer index in [0, T−1], as everywhere in keras_diffusion: t = 0 is the
# first noising step, so `alpha_bars[t]` is the ᾱ after step t + 1. Do not
# call keras_diffusion's own implementation (`NoiseSchedule`, `q_sample`):
# a function that does earns nothing. Only your imports and definitions are
# graded; the demo cells at the end are for you.
#
# Run the self-check cell under each function as you go, and
# `check("forward")` at the end for the full report.
#
# Reference: Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic Models*
# (DDPM), https://arxiv.org/abs/2006.11239; Nichol & Dhariwal 2021, *Improved
# Denoising Diffusion Probabilistic Models*, https://arxiv.org/abs/2102.09672.

# %%
# %matplotlib inline
import numpy as np

from keras_diffusion.assignments import check

# %% [markdown]
# ## 1 · The linear schedule (DDPM sec. 4)
#
# Each forward step keeps a fraction of the image and adds Gaussian noise:
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\big(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\big)
# \qquad\text{(DDPM eq. 2)}$$
#
# DDPM spaces the variances β evenly from β_1 = 10⁻⁴ to β_T = 0.02.

# %%
def linear_betas(timesteps, beta_start=1e-4, beta_end=0.02):
    """β_1 … β_T evenly spaced from beta_start to beta_end, both included (DDPM sec. 4).

    Args:
        timesteps: T, the number of steps.
        beta_start: β_1.
        beta_end: β_T.

    Returns:
        Array of shape (T,).
    """
    ### BEGIN SOLUTION
    return np.linspace(beta_start, beta_end, timesteps)
    ### END SOLUTION


# %%
check("forward", only="linear_betas")

# %% [markdown]
# ## 2 · The cosine schedule (Nichol & Dhariwal, eq. 17)
#
# The linear schedule destroys the image too fast at the start and, with
# T = 200, never quite finishes. The cosine schedule defines the signal left
# after t steps directly,
#
# $$\bar\alpha_t = \frac{f(t)}{f(0)}, \qquad f(u) = \cos^2\!\Big(\frac{u/T + s}{1 + s}\cdot\frac{\pi}{2}\Big)
# \qquad\text{(eq. 17)},$$
#
# and gets the betas back from ratios of successive ᾱ:
# β_i = 1 − ᾱ_{i+1}/ᾱ_i = 1 − f(i+1)/f(i) for i = 0 … T−1, each clipped to
# at most `max_beta` so that the last step (where f reaches 0) is not singular.
# The small offset s keeps β near t = 0 from being too small.

# %%
def cosine_betas(timesteps, s=0.008, max_beta=0.999):
    """β_i = min(1 − f(i+1)/f(i), max_beta), f(u) = cos²((u/T + s)/(1 + s)·π/2), i = 0 … T−1 (eq. 17).

    Args:
        timesteps: T.
        s: the small offset of eq. 17.
        max_beta: the largest β allowed.

    Returns:
        Array of shape (T,).
    """
    ### BEGIN SOLUTION
    u = np.arange(timesteps + 1) / timesteps
    f = np.cos((u + s) / (1 + s) * np.pi / 2) ** 2  # (T + 1,)
    return np.minimum(1 - f[1:] / f[:-1], max_beta)
    ### END SOLUTION


# %%
check("forward", only="cosine_betas")

# %% [markdown]
# ## 3 · How much signal is left: ᾱ_t (DDPM eq. 4)
#
# With α_t = 1 − β_t, the signal left after t steps is the product of every
# fraction kept so far:
#
# $$\bar\alpha_t = \prod_{s=1}^{t} \alpha_s .$$
#
# In the 0-based arrays of this package, `alpha_bars[0] = 1 − betas[0]`.

# %%
def alpha_bars_from_betas(betas):
    """ᾱ_t = ∏_{s≤t} (1 − β_s), the cumulative product (DDPM eq. 4).

    Args:
        betas: array of shape (T,).

    Returns:
        Array of shape (T,); element t is the signal fraction after step t + 1.
    """
    ### BEGIN SOLUTION
    return np.cumprod(1.0 - np.asarray(betas))
    ### END SOLUTION


# %%
check("forward", only="alpha_bars_from_betas")

# %% [markdown]
# ## 4 · Jumping to x_t in one step (DDPM eq. 4)
#
# Composing t Gaussian steps gives one Gaussian, so there is no need to loop:
#
# $$q(x_t \mid x_0) = \mathcal{N}\big(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\big),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon .$$
#
# This is what makes training cheap: any x_t, for any t, costs one
# multiply-add. Each image of the batch has its own t, so ᾱ_t must be shaped
# (B, 1, 1, 1) to multiply (B, H, W, C) images image by image. The noise ε is
# an argument, never drawn inside: the grader (and your tests) fix it.

# %%
def q_sample(x0, t, noise, alpha_bars):
    """x_t = sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, one t per image (DDPM eq. 4).

    Args:
        x0: clean images, shape (B, H, W, C).
        t: integer timesteps in [0, T−1], shape (B,).
        noise: ε, shape (B, H, W, C).
        alpha_bars: ᾱ, shape (T,).

    Returns:
        x_t, shape (B, H, W, C).
    """
    ### BEGIN SOLUTION
    alpha_bar = np.asarray(alpha_bars)[np.asarray(t)].reshape(-1, 1, 1, 1)  # (B, 1, 1, 1)
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * noise
    ### END SOLUTION


# %%
check("forward", only="q_sample")

# %% [markdown]
# ## See it work: your q_sample on Fashion-MNIST
#
# Each row is one image, each column x_t at a later t, all made by *your*
# functions: the cosine schedule turns every image into noise by t = T − 1;
# the linear one with T = 200 leaves a ghost of it (sqrt(ᾱ_T) ≈ 0.36).
# (This cell does not run during grading.)

# %%
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.plotting import plot_samples

images, _ = load_images("fashion_mnist", "train", limit=3)
x0 = scale_images(images, "minus_one_one").astype(np.float64)  # (3, 28, 28, 1) in [-1, 1]
columns = [0, 25, 50, 100, 150, 199]
noise = np.random.default_rng(0).standard_normal(x0.shape)
rows = []
for betas in (linear_betas(200), cosine_betas(200)):
    alpha_bars = alpha_bars_from_betas(betas)
    print(f"sqrt(alpha_bar) at t = 199: {np.sqrt(alpha_bars[-1]):.3f}")
    for i in range(len(x0)):  # one image, one noise, every t of the row
        rows += [q_sample(x0[i : i + 1], np.array([t]), noise[i : i + 1], alpha_bars)[0] for t in columns]
plot_samples(np.clip(rows, -1, 1), ncols=len(columns), title=f"your q_sample, t = {columns}: linear (top 3), cosine (bottom 3)")

# %% [markdown]
# ## Your grade
#
# The same report the teacher's grader prints (it runs your functions in a
# separate process, on fixed inputs of its own).

# %%
check("forward")
