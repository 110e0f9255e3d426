# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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
# # 01 · The forward process: how diffusion destroys an image
#
# A diffusion model learns to undo a *fixed* noising process $q$. This notebook
# is about that process alone (no neural network yet). You will:
#
# 1. write the Markov chain $q(x_t \mid x_{t-1})$ (DDPM eq. 2) and its closed form
#    $q(x_t \mid x_0)$ (eq. 4), and check numerically that they agree;
# 2. watch Fashion-MNIST images dissolve into noise (`plot_forward_grid`);
# 3. compare three noise schedules (linear, scaled linear, cosine) through
#    $\sqrt{\bar\alpha_t}$ and the log signal-to-noise ratio;
# 4. see why the classic demo's linear schedule with $T = 200$ never reaches pure
#    noise, and what that costs.
#
# Full run: 0.8 min on a 2-core CPU (no GPU) shared with other jobs. Set
# `KERAS_DIFFUSION_QUICK=1` for a quick run with fewer random draws (the tests do).
#
# Reference: Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic Models*
# (DDPM), https://arxiv.org/abs/2006.11239.

# %%
# %matplotlib inline
import os

import numpy as np
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter

from keras_diffusion import NoiseSchedule, q_sample, q_step
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.forward import forward_snapshots
from keras_diffusion.plotting import plot_forward_grid, plot_schedules

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): fewer random draws, same cells.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_DRAWS = 300 if QUICK else 5000  # copies of one image pushed through the Markov chain
N_IMAGES = 16 if QUICK else 1000  # images for the L_T estimate at the end
print(f"QUICK={QUICK}: {N_DRAWS} draws, {N_IMAGES} images")

# %% [markdown]
# ## The data
#
# `load_images` reads Fashion-MNIST from local files (here Debian's
# `/usr/share/datasets/fashion-mnist`) as uint8 arrays of shape (N, 28, 28, 1).
# We map pixels to $[-1, 1]$, DDPM's convention: the noise $\varepsilon$ is centred
# on 0, so the data should be too. (The classic demo of notebook 02 uses $[0, 1]$.)

# %%
images, labels = load_images("fashion_mnist", "train", limit=N_IMAGES)
x0_batch = scale_images(images, "minus_one_one")  # (N, 28, 28, 1), float32 in [-1, 1]
print(images.shape, images.dtype, "->", x0_batch.shape, x0_batch.dtype, x0_batch.min(), x0_batch.max())

# %% [markdown]
# ## One step at a time: the Markov chain (DDPM eq. 2)
#
# The forward process adds a little Gaussian noise at each of $T$ steps, with a
# fixed variance schedule $\beta_1, \dots, \beta_T$:
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\right),
# \qquad\text{i.e.}\qquad x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon,\quad \varepsilon \sim \mathcal{N}(0, I).$$
#
# Why shrink $x_{t-1}$ by $\sqrt{1-\beta_t}$? If $\operatorname{Var}(x_{t-1}) = 1$ then
# $\operatorname{Var}(x_t) = (1-\beta_t) + \beta_t = 1$: the process is *variance
# preserving*, so after many steps it settles on $\mathcal{N}(0, I)$ instead of
# blowing up.
#
# **Index convention.** The package (like the classic demo) indexes timesteps
# $t = 0, \dots, T-1$, straight into the schedule arrays: index $t$ is the paper's
# step $t + 1$. `q_step(schedule, x_prev, t, noise)` applies the step at index $t$,
# so with $t = 0$ its input is the data $x_0$ itself.
#
# ## All steps at once: the closed form (DDPM eq. 4)
#
# Write $\alpha_t = 1 - \beta_t$ and $\bar\alpha_t = \prod_{s \le t} \alpha_s$. Then
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\right),
# \qquad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon.$$
#
# *Proof by induction.* Suppose $x_{t-1} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon'$.
# One more step gives
#
# $$x_t = \sqrt{\alpha_t \bar\alpha_{t-1}}\,x_0 + \underbrace{\sqrt{\alpha_t(1-\bar\alpha_{t-1})}\,\varepsilon' + \sqrt{1-\alpha_t}\,\varepsilon}_{\text{sum of independent zero-mean Gaussians}}.$$
#
# The variances add: $\alpha_t(1-\bar\alpha_{t-1}) + 1 - \alpha_t = 1 - \alpha_t\bar\alpha_{t-1} = 1 - \bar\alpha_t$,
# and $\alpha_t\bar\alpha_{t-1} = \bar\alpha_t$. $\square$
#
# This is what makes training cheap: to get a noisy $x_t$ for a random $t$ we never
# run the chain, we draw one $\varepsilon$ and call `q_sample(schedule, x0, t, noise)`.
#
# ## Check it numerically
#
# Push `N_DRAWS` copies of one image through all $T = 200$ steps of `q_step`
# (fresh noise every step), and separately draw `N_DRAWS` samples of `q_sample`
# at the same $t$. Both should have per-pixel mean $\sqrt{\bar\alpha_t}\,x_0$ and
# variance $1 - \bar\alpha_t$, up to sampling error.

# %%
schedule = NoiseSchedule.linear(200, beta_start=1e-4, beta_end=0.02)  # the classic demo's schedule
T = schedule.timesteps
x0 = x0_batch[0]  # (28, 28, 1)
copies = np.broadcast_to(x0, (N_DRAWS,) + x0.shape)  # (N, 28, 28, 1): N draws of the same image
rng = np.random.default_rng(0)
CHECK = (0, 49, 99, 149, 199)

stats = {}  # t -> per-pixel (chain mean, chain var, closed mean, closed var)
x = copies
for t in range(T):
    x = q_step(schedule, x, t, rng.standard_normal(copies.shape, dtype=np.float32))  # eq. 2, one step
    if t in CHECK:
        chain = np.asarray(x)  # (N, 28, 28, 1)
        closed = np.asarray(q_sample(schedule, copies, t, rng.standard_normal(copies.shape, dtype=np.float32)))  # eq. 4
        stats[t] = chain.mean(0), chain.var(0), closed.mean(0), closed.var(0)

# two pixels to print: the brightest one and a background one
bright = np.unravel_index(np.argmax(x0), x0.shape)
dark = np.unravel_index(np.argmin(x0), x0.shape)
print(f"{'t':>4} {'pixel':>12} | {'mean: theory':>12} {'chain':>7} {'closed':>7} | {'var: theory':>11} {'chain':>7} {'closed':>7}")
for t in CHECK:
    chain_mean, chain_var, closed_mean, closed_var = stats[t]
    for name, p in (("bright", bright), ("background", dark)):
        theory_mean, theory_var = schedule.sqrt_alpha_bars[t] * x0[p], 1 - schedule.alpha_bars[t]
        print(
            f"{t:>4} {name:>12} | {theory_mean:12.3f} {chain_mean[p]:7.3f} {closed_mean[p]:7.3f} "
            f"| {theory_var:11.3f} {chain_var[p]:7.3f} {closed_var[p]:7.3f}"
        )

# Over all 784 pixels: the typical gap between the two means, against what sampling
# error alone gives. Each mean has standard error se = sqrt((1 - ᾱ_t) / N); the
# difference of two has sqrt(2)·se, and its absolute value averages sqrt(2)·se·sqrt(2/π).
t = T - 1
gap = np.abs(stats[t][0] - stats[t][2]).mean()
se = np.sqrt((1 - schedule.alpha_bars[t]) / N_DRAWS)
print(f"\nt={t}, all pixels: mean |chain mean - closed mean| = {gap:.4f}; "
      f"expected from sampling error alone: {2 * se / np.sqrt(np.pi):.4f}")

# %% [markdown]
# Two hundred small steps and one big jump give the same distribution, pixel by
# pixel, within sampling error. From here on the package only uses the closed
# form `q_sample`; `q_step` exists for this check.
#
# Look at the last rows, $t = 199$: the bright pixel's mean is still far from 0.
# Keep that in mind.
#
# ## The forward grid
#
# `plot_forward_grid` noises a few images with `q_sample` at the classic demo's
# columns $t = 0, 50, 100, 150, 199$, one $\varepsilon$ per image so that each row
# shows the same noise growing while the signal fades.

# %%
plot_forward_grid(schedule, x0_batch[:4], scaling="minus_one_one", seed=0)

# %% [markdown]
# Look closely at $t = 199$, the last step: faint outlines of the boot and the
# T-shirt remain. The forward process was meant to end in pure noise; we will
# measure how far from it this one ends. For comparison, the same images and the
# same noise under the cosine schedule (introduced below):

# %%
plot_forward_grid(NoiseSchedule.cosine(200), x0_batch[:4], scaling="minus_one_one", seed=0)

# %% [markdown]
#
# ## Three schedules
#
# How fast the signal goes is set by the schedule. The package has three:
#
# | constructor | $\beta_t$ | origin |
# |---|---|---|
# | `NoiseSchedule.linear(T, 1e-4, 0.02)` | evenly spaced from $10^{-4}$ to $0.02$ | DDPM; the values were tuned for $T = 1000$ |
# | `NoiseSchedule.scaled_linear(T)` | the same, times $1000/T$ | improved-diffusion's `linear` (Nichol & Dhariwal 2021) |
# | `NoiseSchedule.cosine(T)` | from $\bar\alpha_t = f(t)/f(0)$, $f(t) = \cos^2\!\big(\tfrac{t/T + s}{1 + s}\cdot\tfrac{\pi}{2}\big)$, $s = 0.008$ | Nichol & Dhariwal 2021, eq. 17 |
#
# Two curves describe a schedule. $\sqrt{\bar\alpha_t}$ is the fraction of the
# image left in $x_t$. The signal-to-noise ratio
#
# $$\mathrm{SNR}(t) = \frac{\bar\alpha_t}{1-\bar\alpha_t}$$
#
# (Kingma et al. 2021) compares signal power to noise power; on a log scale it
# shows where the schedule spends its steps. $\log\mathrm{SNR} = 0$ is the point
# where signal and noise are equally strong.

# %%
schedules = {
    "linear (classic demo)": NoiseSchedule.linear(200, 1e-4, 0.02),
    "scaled_linear": NoiseSchedule.scaled_linear(200),
    "cosine": NoiseSchedule.cosine(200),
}
plot_schedules(schedules)

# %% [markdown]
# The classic linear schedule stops with $\sqrt{\bar\alpha_t}$ far above zero and a
# log-SNR near $-2$, where the signal's amplitude is still 0.4 of the noise's; the
# other two end around $-10$ and $-17$. They differ on the way there: the scaled
# linear schedule destroys most of the signal by $t \approx 130$ and spends its last
# quarter of steps on nearly pure noise, while the cosine schedule lowers
# $\sqrt{\bar\alpha_t}$ almost evenly (which is why Nichol & Dhariwal proposed it).
# Its log-SNR falls by about 0.03 a step through the middle and faster at both
# ends (0.91 at its first step), and **its last step is a jump**: there $\beta_t$
# would be 1 and is clipped at 0.999, and that one step drops the log-SNR by 6.9,
# from $-9.7$ to $-16.6$. The cosine step before it drops the log-SNR by 1.4; the
# two linear schedules drop it most at their first step, by 1.10, and far less
# after that. The next cell prints the largest drop of each schedule and its last step.
#
# ## Why $T = 200$ with DDPM's betas leaves a third of the signal
#
# Since $\log \bar\alpha_T = \sum_t \log(1 - \beta_t) \approx -\sum_t \beta_t$ and the
# linear betas average $(\beta_1 + \beta_T)/2 \approx 0.01$,
#
# $$\sqrt{\bar\alpha_T} \approx \exp\!\Big(-\tfrac{1}{2}\cdot T\cdot\tfrac{\beta_1+\beta_T}{2}\Big)
# = e^{-T/200} \approx \begin{cases} e^{-1} \approx 0.37 & T = 200,\\ e^{-5} \approx 0.007 & T = 1000. \end{cases}$$
#
# DDPM's betas were chosen for $T = 1000$. Keeping them at $T = 200$ sums to a
# fifth of the noise. Scaling the betas by $1000/T$ restores the sum; the cosine
# schedule sets $\bar\alpha_T \approx 0$ by construction.

# %%
for T_ in (200, 1000):
    s = NoiseSchedule.linear(T_, 1e-4, 0.02)
    approx = np.exp(-0.5 * s.betas.sum())
    print(f"linear, T={T_:>4}: sqrt(ᾱ_T) = {s.sqrt_alpha_bars[-1]:.4f}   (approximation exp(-Σβ/2) = {approx:.4f})")
for name, s in schedules.items():
    drops = -np.diff(np.log(s.snr))  # how much each step lowers the log-SNR
    print(f"{name:>22}, T=200: sqrt(ᾱ_T) = {s.sqrt_alpha_bars[-1]:.4f}, log SNR(T) = {np.log(s.snr[-1]):6.2f}, "
          f"largest drop in one step {drops.max():.2f} (at t={drops.argmax() + 1}), last step {drops[-1]:.2f}")

# %% [markdown]
# ## What $x_T$ looks like under each schedule
#
# Same images, same noise $\varepsilon$, three schedules: $x_T = \sqrt{\bar\alpha_T}\,x_0 + \sqrt{1-\bar\alpha_T}\,\varepsilon$
# at the last index $t = T - 1 = 199$. The last column is $\varepsilon$ itself, what a
# sampler starts from.
#
# At 28x28 pixels, noise of standard deviation 0.93 hides a signal of amplitude
# 0.36 from the eye, so each image has a second row: the same $x_T$ blurred
# (a Gaussian filter of width 1.5 pixels). Blurring averages neighbouring pixels:
# independent noise averages out, a garment that covers many pixels does not.
# A convolutional network can do the same.

# %%
n_show, eps_seed = 3, 1
x_T = {name: forward_snapshots(s, x0_batch[:n_show], [T - 1], seed=eps_seed)[:, 0] for name, s in schedules.items()}
# forward_snapshots draws ε from default_rng(seed); draw the same ε to show it
noise = np.random.default_rng(eps_seed).standard_normal(x0_batch[:n_show].shape).astype(np.float32)
titles = ["x_0"] + [f"x_T, {name.split(' ')[0]}" for name in schedules] + ["ε ~ N(0, I)"]
columns = [x0_batch[:n_show]] + list(x_T.values()) + [noise]

fig = Figure(figsize=(7.5, 9.4), layout="constrained")
axes = fig.subplots(2 * n_show, len(columns))
for col, (title, column) in enumerate(zip(titles, columns)):
    for i in range(n_show):
        image = column[i, ..., 0]  # (28, 28)
        # a fixed grey range for every panel, wide enough that the noise does not saturate
        axes[2 * i, col].imshow(image, cmap="gray", vmin=-2.5, vmax=2.5)
        axes[2 * i + 1, col].imshow(gaussian_filter(image, sigma=1.5), cmap="gray", vmin=-0.8, vmax=0.8)
    axes[0, col].set_title(title, fontsize=9)
for i in range(n_show):
    axes[2 * i, 0].set_ylabel("as is", fontsize=8)
    axes[2 * i + 1, 0].set_ylabel("blurred", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig

# %% [markdown]
# As is, every $x_T$ looks like noise. Blurred, the linear schedule's $x_T$ shows
# the boot and the T-shirt; under the other two schedules it is as featureless as
# $\varepsilon$. A pixel-level comparison says the same: the correlation between
# $x_T$ and $x_0$ over all pixels of the images.

# %%
for name, s in schedules.items():
    x_T_all = q_sample(s, x0_batch, T - 1, np.random.default_rng(2).standard_normal(x0_batch.shape))
    corr = np.corrcoef(np.ravel(x_T_all), np.ravel(x0_batch))[0, 1]
    print(f"{name:>22}: corr(x_T, x_0) = {corr:.3f}")

# %% [markdown]
# ## What it costs: the $L_T$ term
#
# DDPM's variational bound (eq. 5) starts with
# $L_T = D_{\mathrm{KL}}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)$ with $p(x_T) = \mathcal{N}(0, I)$:
# how far the end of the forward process is from where sampling starts. The paper
# drops it as a constant close to 0. Per pixel, with mean $\mu = \sqrt{\bar\alpha_T}\,x_0$
# and variance $\sigma^2 = 1 - \bar\alpha_T$,
#
# $$D_{\mathrm{KL}}\big(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, 1)\big) = \tfrac{1}{2}\left(\sigma^2 + \mu^2 - 1 - \log\sigma^2\right).$$
#
# Summed over the 784 pixels of an image and averaged over images:

# %%
for name, s in schedules.items():
    mean_T = s.sqrt_alpha_bars[-1] * x0_batch  # (N, 28, 28, 1)
    var_T = 1 - s.alpha_bars[-1]
    kl = 0.5 * (var_T + mean_T**2 - 1 - np.log(var_T))  # nats per pixel
    print(f"{name:>22}: L_T = {kl.sum(axis=(1, 2, 3)).mean():8.3f} nats per image")

# %% [markdown]
# With the classic schedule, $x_T$ is about 40 nats per image away from
# $\mathcal{N}(0, I)$; with the other two it is a small fraction of a nat. A
# denoiser only ever sees $x_{T-1}$ drawn from $q(x_T \mid x_0)$ during training,
# a distribution that still contains the image. At sampling time it is handed pure
# noise, an input it has never seen. Notebook 02 reproduces the classic demo and
# shows the consequence: its samples stay static.
#
# **Takeaways**
#
# - $q(x_t \mid x_0)$ is Gaussian with mean $\sqrt{\bar\alpha_t}\,x_0$ and variance
#   $1 - \bar\alpha_t$; `q_sample` draws from it in one step.
# - A schedule is good when $\bar\alpha_T \approx 0$ (the forward process really
#   ends in $\mathcal{N}(0, I)$) and the log-SNR falls steadily rather than all at once
#   (the cosine schedule's clipped last step is the exception to watch: notebook 03
#   meets it again).
# - Linear betas $10^{-4} \ldots 0.02$ need $T = 1000$; at $T = 200$ use
#   `NoiseSchedule.scaled_linear` or `NoiseSchedule.cosine`.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** The forward step shrinks $x_{t-1}$ by $\sqrt{1-\beta_t}$ before
#    adding noise. Suppose it did not: $x_t = x_{t-1} + \sqrt{\beta_t}\,\varepsilon$. For
#    data of variance about 1 and the classic betas at $T = 200$, what is
#    $\operatorname{Var}(x_T)$, and why would starting the sampler from $\mathcal{N}(0, I)$
#    then be wrong?
# 2. **A code change.** Add `NoiseSchedule.linear(1000, 1e-4, 0.02)` to the $L_T$
#    cell (one more line in the loop, or a new cell with the same three lines).
#    Predict $\sqrt{\bar\alpha_T}$ and $L_T$ in nats per image before you run it.
# 3. **A number to predict.** Half-way through the cosine schedule (index
#    $t = 99$, the paper's step 100), what fraction of the image's amplitude is
#    left, $\sqrt{\bar\alpha_t}$? Work it out from $f(t)$ in the table above, then
#    check with `NoiseSchedule.cosine(200).sqrt_alpha_bars[99]`.

# %% [markdown]
# ## Answers
#
# 1. Independent variances add: $\operatorname{Var}(x_T) = \operatorname{Var}(x_0) + \sum_t \beta_t
#    = 1 + 2.01 \approx 3.0$. The image is never shrunk, only buried: the process
#    ends at $\mathcal{N}(x_0, 2.01\,I)$, which still holds the image and does not have
#    unit variance, so $\mathcal{N}(0, I)$ is the wrong start on both counts. Such a
#    *variance-exploding* process is a valid diffusion too (the score-based models of
#    Song & Ermon use it), but its sampler must start from noise much wider than
#    the data.
# 2. ```python
#    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
#    mean_T, var_T = s.sqrt_alpha_bars[-1] * x0_batch, 1 - s.alpha_bars[-1]
#    print(s.sqrt_alpha_bars[-1], (0.5 * (var_T + mean_T**2 - 1 - np.log(var_T))).sum(axis=(1, 2, 3)).mean())
#    ```
#    $\sqrt{\bar\alpha_T} \approx e^{-5} \approx 0.0064$ (the approximation in the text), and
#    $L_T \approx 0.011$ nats per image on the 1000 images of the full run, against 39.4
#    for the same betas at $T = 200$: these betas were made for $T = 1000$.
# 3. $\sqrt{\bar\alpha_t} = \cos\big(\tfrac{100/200 + 0.008}{1.008}\cdot\tfrac{\pi}{2}\big) / \cos\big(\tfrac{0.008}{1.008}\cdot\tfrac{\pi}{2}\big)
#    = \cos(0.7916)/0.9999 \approx 0.703$. Half-way in time, 70 % of the amplitude is
#    left and $\bar\alpha_t \approx 0.49$: the log-SNR is about 0 (−0.02), so the cosine
#    schedule's midpoint is where signal and noise have equal power. The linear
#    schedule at the same index keeps 0.78 of the amplitude, the scaled linear one 0.28.
