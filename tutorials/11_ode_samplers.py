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
# # 11 · The ODE and fast samplers
#
# Notebook 05 found that DDIM with $\eta = 0$ makes the image a deterministic
# function of $x_T$, and that fewer steps give "a coarser solution of the same
# ODE". This notebook writes that ODE down, solves it exactly where that is
# possible, and measures how fast each of the package's samplers approaches the
# exact solution. You will:
#
# 1. write the probability-flow ODE of the discrete DDPM schedule in DDIM's
#    variables $\bar x = x/\sqrt{\bar\alpha}$, $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$, where
#    it reads $d\bar x/d\sigma = \hat\varepsilon$ and a DDIM step is exactly an Euler step;
# 2. solve it in closed form for Gaussian data, where the package's linear
#    denoiser (notebook 10) is the exact $\hat\varepsilon$, and check the solution;
# 3. measure the error of DDIM, DPM-Solver++(2M) and Heun against that solution,
#    against the number of steps and of network evaluations (NFE), and see why
#    doubling the steps halves DDIM's error and quarters the others';
# 4. see why Heun needs its own time grid (Karras et al.'s $\rho = 7$ spacing)
#    on the package's cosine schedule, on the closed form and on the shipped U-Net;
# 5. make the denoiser deliberately wrong and measure which samplers forgive it:
#    the deterministic ones carry an early error to the end, the stochastic
#    ones (DDPM, DDIM with $\eta = 1$, SDE-DPM-Solver++, Heun with churn) shrink it;
# 6. put the design choices of Karras et al. 2022 (EDM) next to what the package does.
#
# Full run: 2.1 min on a 2-core CPU (no GPU) shared with other jobs. It trains
# nothing: the linear denoiser is fit in closed form in seconds, and the few
# pictures at the end come from the pretrained `unet-fashion-mnist` (or your run
# in `KERAS_DIFFUSION_RUN`). Set `KERAS_DIFFUSION_QUICK=1` for a quick run with
# fewer images, samples and step counts (the tests do).
#
# Prerequisites: notebooks 05 (DDPM and DDIM) and 10 (the linear denoiser, Tweedie's formula).
#
# References: Song, Meng & Ermon 2021, *Denoising Diffusion Implicit Models* (DDIM),
# https://arxiv.org/abs/2010.02502; Song et al. 2021, *Score-Based Generative
# Modeling through Stochastic Differential Equations*, https://arxiv.org/abs/2011.13456;
# Karras, Aittala, Aila & Laine 2022, *Elucidating the Design Space of
# Diffusion-Based Generative Models* (EDM), https://arxiv.org/abs/2206.00364;
# Lu et al. 2022, *DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
# Probabilistic Models*, https://arxiv.org/abs/2211.01095.

# %%
# %matplotlib inline
import logging
import os
import time

import numpy as np
import tensorflow as tf
from keras import ops
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from keras_diffusion import NoiseSchedule, build_model, ddim_step, pretrained, q_sample, samplers
from keras_diffusion.checkpoint import load_run
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.models.linear import fit_linear
from keras_diffusion.plotting import ladder_figure
from keras_diffusion.reverse import predict_x0, sample, timestep_sequence
from keras_diffusion.training import sampling_clip

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): fewer images, samples and step counts, same cells.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_FIT = 2000 if QUICK else 10_000  # training images for the Gaussian fit
N_PATHS = 16  # starting noises x_T for the error measurements
N_STATS = 64 if QUICK else 500  # samples for the mean and variance of each sampler
N_UNET = 4 if QUICK else 8  # U-Net images per sampler at the end
# Each sampler setting compiles its own loop: silence TensorFlow's "retracing" notices.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

start = time.perf_counter()
train_images, _ = load_images("fashion_mnist", "train", limit=N_FIT)
schedule = NoiseSchedule.cosine(200)  # the package's default, the shipped U-Net's
denoiser = build_model("linear")  # (x_t, t) -> ε̂, exact for Gaussian data
fit_linear(denoiser, train_images, "minus_one_one", schedule)
layer = denoiser.get_layer("gaussian_denoiser")
mu = layer.mean.numpy().astype(np.float64)  # (D,): the images' mean
lam = layer.eigenvalues.numpy().astype(np.float64)  # (D,): eigenvalues λ of their covariance, ascending
U = layer.eigenvectors.numpy().astype(np.float64)  # (D, D): eigenvectors, one a column
T, D = schedule.timesteps, mu.size
print(f"QUICK={QUICK}: Gaussian fit to {len(train_images):,} images in {time.perf_counter() - start:.1f} s; "
      f"λ from {lam[0]:.1e} to {lam[-1]:.1f}")

# %% [markdown]
# ## The probability-flow ODE in DDIM's variables
#
# The forward process gives $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$. Divide
# by $\sqrt{\bar\alpha_t}$:
#
# $$\bar x_t = \frac{x_t}{\sqrt{\bar\alpha_t}} = x_0 + \sigma_t\,\varepsilon,\qquad
# \sigma_t = \sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}}.$$
#
# In these variables diffusion only *adds* noise, of standard deviation $\sigma$
# (Karras et al. 2022 call it the variance-exploding form, with $\sigma(t) = t$,
# $s(t) = 1$; DDIM sec. 4.3 uses the same $\bar x$ and $\sigma$). The density of
# $\bar x$ at level $\sigma$ is the data's density blurred by $\mathcal{N}(0, \sigma^2 I)$, so
# it obeys the heat equation $\partial p/\partial\sigma = \sigma\,\Delta p$. The same
# change of $p$ is made by moving every point with velocity $v = -\sigma\nabla\log p$
# (the continuity equation $\partial p/\partial\sigma = -\nabla\cdot(p\,v) = \sigma\,\Delta p$). By
# Tweedie's formula (notebook 10) $\nabla \log p = -E[\varepsilon \mid \bar x]/\sigma$, so the
# velocity is the noise predictor itself:
#
# $$\frac{d\bar x}{d\sigma} = \hat\varepsilon(x_t, t),\qquad x_t = \sqrt{\bar\alpha_t}\,\bar x
# \qquad\text{(Karras et al. 2022, eq. 1 and 3, with } \sigma(t) = t,\ s(t) = 1\text{)}.$$
#
# This is Song et al.'s probability-flow ODE (2021, eq. 13) for the VP SDE. Written
# back in $x$ and $\bar\alpha$, with $\beta(t) = -d\log\bar\alpha/dt$, it is
# $dx/dt = -\tfrac12\beta(t)\big(x - \hat\varepsilon/\sqrt{1-\bar\alpha}\big)$ (use $x = \sqrt{\bar\alpha}\,\bar x$
# and $d\sigma/dt = \beta/(2\sigma\bar\alpha)$); the $\bar x$ form is simpler because its
# right-hand side is the network's output and nothing else. Starting from
# $\bar x = x_T/\sqrt{\bar\alpha_{T-1}}$ and integrating down to $\sigma = 0$ maps each noise to
# one image, and if $\hat\varepsilon$ is exact the images have the data's distribution.
#
# **DDIM is Euler's method on it.** DDIM's step with $\eta = 0$,
# $x_{\tau'} = \sqrt{\bar\alpha_{\tau'}}\,\hat x_0 + \sqrt{1-\bar\alpha_{\tau'}}\,\hat\varepsilon$, divided by
# $\sqrt{\bar\alpha_{\tau'}}$ and with $\hat x_0 = \bar x_\tau - \sigma_\tau\hat\varepsilon$, is
#
# $$\bar x_{\tau'} = \hat x_0 + \sigma_{\tau'}\hat\varepsilon = \bar x_\tau + (\sigma_{\tau'} - \sigma_\tau)\,\hat\varepsilon(x_\tau, \tau)
# \qquad\text{(DDIM eq. 13: one Euler step from } \sigma_\tau \text{ to } \sigma_{\tau'}\text{)}.$$
#
# Checked on the package's `ddim_step`, from a few noised training images:

# %%
def noise_levels(schedule):
    """σ_t = sqrt((1 − ᾱ_t)/ᾱ_t) for t = 0..T−1: the noise level of x̄ = x/sqrt(ᾱ)."""
    return np.sqrt((1.0 - schedule.alpha_bars) / schedule.alpha_bars)


sigmas = noise_levels(schedule)
x0 = scale_images(train_images[:8], "minus_one_one")  # (8, 28, 28, 1) in [-1, 1]
rng = np.random.default_rng(0)
for t, t_next in ((199, 150), (120, 80), (30, 0)):
    x_t = np.asarray(q_sample(schedule, x0, t, rng.standard_normal(x0.shape).astype(np.float32)))  # (8, 28, 28, 1)
    eps_hat = np.asarray(denoiser([x_t, np.full(8, t)]))  # (8, 28, 28, 1)
    ddim = np.asarray(ddim_step(schedule, x_t, t, t_next, eps_hat)) / schedule.sqrt_alpha_bars[t_next]  # x̄_{τ'}
    euler = x_t / schedule.sqrt_alpha_bars[t] + (sigmas[t_next] - sigmas[t]) * eps_hat  # x̄_τ + (σ_τ' − σ_τ)·ε̂
    print(f"τ={t:>3} (σ={sigmas[t]:8.2f}) → τ'={t_next:>3} (σ={sigmas[t_next]:5.3f}): "
          f"max |DDIM − Euler| / max |x̄_τ'| = {np.abs(ddim - euler).max() / np.abs(euler).max():.1e}")

# %% [markdown]
# Equal to float32 rounding: the DDIM sampler *is* the Euler method, and its
# error is the Euler method's error. To measure that error we need the exact
# solution.
#
# ## The exact ODE solution for Gaussian data
#
# For data $x_0 \sim \mathcal{N}(\mu, \Sigma)$, $\Sigma = U\operatorname{diag}(\lambda)U^\top$, the level-$\sigma$ variable
# $\bar x = x_0 + \sigma\varepsilon$ is $\mathcal{N}(\mu, \Sigma + \sigma^2 I)$, and the best noise predictor is
# linear (notebook 10): $E[\varepsilon \mid \bar x] = \sigma(\Sigma + \sigma^2 I)^{-1}(\bar x - \mu)$. The
# package's linear denoiser is exactly this, written in $x_t$: substitute
# $x_t = \sqrt{\bar\alpha}\,\bar x$ and $\sqrt{1-\bar\alpha} = \sigma\sqrt{\bar\alpha}$ into its formula
# $\sqrt{1-\bar\alpha}\,(\bar\alpha\Sigma + (1-\bar\alpha)I)^{-1}(x_t - \sqrt{\bar\alpha}\,\mu)$. So for the
# Gaussian with the images' mean and covariance the linear denoiser is a perfect
# model, and a sampler's only error is its discretisation of the ODE.
#
# Along each eigenvector $u_i$ the ODE separates. With $z_i = u_i^\top(\bar x - \mu)$,
#
# $$\frac{dz_i}{d\sigma} = \frac{\sigma\,z_i}{\lambda_i + \sigma^2} = \frac{z_i}{2}\,\frac{d}{d\sigma}\log(\lambda_i + \sigma^2)
# \quad\Longrightarrow\quad z_i(\sigma) = z_i(\sigma_\text{max})\,\sqrt{\frac{\lambda_i + \sigma^2}{\lambda_i + \sigma_\text{max}^2}},$$
#
# from $\sigma_\text{max} = \sigma_{T-1}$, where every sampler starts. Each direction shrinks from
# the noise's size to the data's: at $\sigma = 0$, $z_i$ is $\sqrt{\lambda_i/(\lambda_i + \sigma_\text{max}^2)}$
# times its start, whatever path the samplers take to get there. Two checks:
# the closed form satisfies the ODE with the package's $\hat\varepsilon$ (a centred
# difference in $\sigma$ against the denoiser's output), and its end point is
# distributed as the data (a sample of noises).

# %%
def ode_solution(schedule, x_T, sigma):
    """x̄(σ) of the probability-flow ODE from x_T at t = T−1 for the Gaussian N(μ, U·diag(λ)·Uᵀ): (n, D), float64."""
    sigma_max = noise_levels(schedule)[-1]
    z = (x_T.reshape(len(x_T), -1) / schedule.sqrt_alpha_bars[-1] - mu) @ U  # (n, D): eigen-coordinates of x̄ − μ
    return mu + (z * np.sqrt((lam + sigma**2) / (lam + sigma_max**2))) @ U.T


x_T = np.random.default_rng(1).standard_normal((N_PATHS, 28, 28, 1)).astype(np.float32)  # (16, 28, 28, 1)
for t in (190, 100, 10):
    h = 1e-3 * sigmas[t]
    slope = (ode_solution(schedule, x_T, sigmas[t] + h) - ode_solution(schedule, x_T, sigmas[t] - h)) / (2 * h)  # (n, D)
    x_t = (schedule.sqrt_alpha_bars[t] * ode_solution(schedule, x_T, sigmas[t])).reshape(x_T.shape).astype(np.float32)
    eps_hat = np.asarray(denoiser([x_t, np.full(N_PATHS, t)])).reshape(N_PATHS, -1)  # (n, D)
    print(f"t={t:>3}: max |dx̄/dσ (closed form) − ε̂ (package)| / max |ε̂| = {np.abs(slope - eps_hat).max() / np.abs(eps_hat).max():.1e}")
ends = ode_solution(schedule, np.random.default_rng(2).standard_normal((4000, 28, 28, 1)), 0.0)  # (4000, D)
print(f"x̄(0) from 4,000 noises: total variance {ends.var(axis=0).sum():.1f} against the data's tr Σ = {lam.sum():.1f}; "
      f"RMS of (mean − μ) {np.sqrt(np.mean((ends.mean(axis=0) - mu) ** 2)):.4f}, "
      f"against a sampling error of sqrt(tr Σ / (D·4000)) = {np.sqrt(lam.sum() / (D * 4000)):.4f}")

# %% [markdown]
# The closed form solves the ODE to the accuracy of float32 and of the
# difference quotient, and its end points have the data's mean and spread, to
# within the sampling error of 4,000 draws.
#
# One detail of the discrete model: it knows only the timesteps $0, \dots, T-1$, so no
# sampler can integrate down to $\sigma = 0$. Every sampler's last move goes from
# $t = 0$ (where $\sigma_0$ is small but not 0) straight to the data by returning
# $\hat x_0$ there. The right reference for a sampler is therefore the exact ODE
# state at $t = 0$ followed by that same last move; it differs from $\bar x(0)$ only
# slightly:

# %%
def reference(schedule, model, x_T):
    """What an exact ODE solver returns: the exact state at t = 0, then every sampler's last move, x̂_0 at t = 0."""
    x_at_0 = (schedule.sqrt_alpha_bars[0] * ode_solution(schedule, x_T, noise_levels(schedule)[0])).reshape(x_T.shape).astype(np.float32)
    t0 = np.zeros(len(x_T), np.int32)
    return np.asarray(predict_x0(schedule, x_at_0, t0, model([x_at_0, t0]))).reshape(len(x_T), -1)  # (n, D)


def rms(a, b):
    """Root mean square difference per pixel."""
    return float(np.sqrt(np.mean((np.asarray(a).reshape(len(a), -1) - np.asarray(b).reshape(len(b), -1)) ** 2)))


target = reference(schedule, denoiser, x_T)  # (16, D)
print(f"σ_0 = {sigmas[0]:.4f}, σ_max = σ_(T−1) = {sigmas[-1]:.0f}; "
      f"RMS |reference − x̄(0)| = {rms(target, ode_solution(schedule, x_T, 0.0)):.1e} per pixel")

# %% [markdown]
# ## Error against steps: first and second order
#
# To see a method's order, the grid must be refined regularly: each doubling of
# the steps must halve every interval. On the discrete model a sampler can only
# visit integer timesteps, and on $T = 200$ most step counts put the steps at
# rounded, irregular places. So, as `tests/test_samplers.py` does, we measure the
# order on a finer stand-in for continuous time: $T = 1025$ linear betas
# ($10^{-4}$ to $0.02$, smooth from step to step) and $S = 17, 33, 65, \dots$ steps, whose
# $S - 1 = 16, 32, 64, \dots$ intervals divide $T - 1 = 1024$ exactly. The linear
# denoiser is fit again for this schedule: the same Gaussian, another $\bar\alpha$.
#
# Each setting also counts the network evaluations it makes (the denoiser is
# wrapped in a counter that runs inside the compiled loop) and compares them with
# `samplers.nfe`.

# %%
fine = NoiseSchedule.linear(1025)
fine_denoiser = build_model("linear", timesteps=fine.timesteps)
fit_linear(fine_denoiser, train_images, "minus_one_one", fine)
fine_target = reference(fine, fine_denoiser, x_T)
calls = tf.Variable(0, dtype=tf.int64)  # images the denoiser has been called on


def counted(inputs):
    """The fine denoiser, counting its calls (inside the compiled loop too)."""
    calls.assign_add(tf.cast(tf.shape(inputs[0])[0], tf.int64))
    return fine_denoiser(inputs)


ODE_SAMPLERS = ("ddim", "dpmpp_2m", "heun")
order_steps = (17, 33) if QUICK else (17, 33, 65, 129, 257, 513)
errors = {name: [] for name in ODE_SAMPLERS}  # sampler -> error at each step count
for name in ODE_SAMPLERS:
    for steps in order_steps:
        calls.assign(0)
        out = sample(counted, fine, N_PATHS, sampler=name, steps=steps, x_T=x_T, image_shape=(28, 28, 1))
        assert int(calls.numpy()) == N_PATHS * samplers.nfe(name, steps), (name, steps, int(calls.numpy()))
        errors[name].append(rms(out, fine_target))
print(f"{'sampler':>9} | " + " | ".join(f"S={s:>3} (NFE)" for s in order_steps))
for name in ODE_SAMPLERS:
    print(f"{name:>9} | " + " | ".join(f"{e:.2e} ({samplers.nfe(name, s):>4})" for e, s in zip(errors[name], order_steps)))
print("\nerror ratio when the steps double (S → 2S − 1):")
for name in ODE_SAMPLERS:
    ratios = np.array(errors[name][:-1]) / np.array(errors[name][1:])
    print(f"{name:>9} | " + "  ".join(f"{r:.2f}" for r in ratios))
print("every count of network calls agreed with samplers.nfe")

# %%
fig = Figure(figsize=(11, 3.8), layout="constrained")
by_steps, by_nfe = fig.subplots(1, 2)
labels = {"ddim": "DDIM (η = 0)", "dpmpp_2m": "DPM-Solver++(2M)", "heun": "Heun"}
for name in ODE_SAMPLERS:
    by_steps.plot(order_steps, errors[name], "o-", label=labels[name])
    by_nfe.plot([samplers.nfe(name, s) for s in order_steps], errors[name], "o-", label=labels[name])
s = np.array(order_steps, float)
for ax in (by_steps, by_nfe):  # reference slopes through the first DDIM point
    ax.plot(s, errors["ddim"][0] * (s[0] / s), ":", color="gray", label="slope −1")
    ax.plot(s, errors["ddim"][0] * (s[0] / s) ** 2, "--", color="gray", label="slope −2")
    ax.set(xscale="log", yscale="log", ylabel="RMS error per pixel against the exact ODE")
    ax.xaxis.set_minor_formatter(NullFormatter())  # label the measured step counts only
    ax.grid(alpha=0.3, which="both")
by_steps.set_xticks(order_steps, [str(steps) for steps in order_steps])
by_steps.set(xlabel="steps S", title="error against steps (T = 1025, exact denoiser)")
by_nfe.set(xlabel="network evaluations (NFE)", title="error against cost")
by_steps.legend(fontsize=8)
fig

# %% [markdown]
# DDIM's error halves each time the steps double: its ratios approach 2. Heun's
# and DPM-Solver++(2M)'s rise towards 4, DPM-Solver++'s from further below (the
# ratios printed above). Against the network evaluations Heun's line moves right
# by a factor of about two, since its $N$ steps cost $2N - 1$ calls; on this fine
# grid it still ends below DPM-Solver++'s, while at the fewest evaluations the
# two are level.
#
# ### Why 2x and 4x: the local truncation error
#
# Write the ODE as $\bar x' = f(\bar x, \sigma)$ and take a step of size $h$. The exact
# solution is a Taylor series, $\bar x(\sigma + h) = \bar x + h f + \tfrac{h^2}{2}\bar x'' + O(h^3)$.
#
# - **Euler (DDIM)** keeps $\bar x + h f$: each step is wrong by $\tfrac{h^2}{2}\bar x''$, its
#   *local* truncation error. Crossing a fixed interval of $\sigma$ takes $\propto 1/h$ steps,
#   and (as long as the ODE does not amplify errors much) the local errors add up
#   to a global error $\propto h^2 \cdot 1/h = h$. Halve $h$, halve the error: **first order, ratio 2**.
# - **Heun** averages the slope at both ends, $\bar x + \tfrac{h}{2}\big(f(\bar x, \sigma) + f(\bar x + hf, \sigma + h)\big)$.
#   Expanding the second slope to first order in $h$ reproduces the $\tfrac{h^2}{2}\bar x''$ term
#   exactly, so the local error is $O(h^3)$ (the trapezoidal rule's $-\tfrac{h^3}{12}\bar x'''$
#   plus terms of the same order), the global error $O(h^2)$, and halving $h$ divides it by
#   four: **second order, ratio 4**, for two evaluations per step.
# - **DPM-Solver++(2M)** gets the same order for one evaluation per step: it
#   reuses the previous step's $\hat x_0$ to extrapolate (a multistep method, like
#   Adams–Bashforth), so its local error is $O(h^3)$ too. Its first step (no history
#   yet) and its last step are first order; one first-order step adds a local error
#   $O(h^2)$, which is of the same order as the global error, so the method stays
#   second order, but the extra term makes the ratio reach 4 later.
#
# The ratios are asymptotic: they hold once $h$ is small against the scale on
# which $\hat\varepsilon$ changes. The next section shows what happens when it is not.
#
# ## The shipped schedule: why Heun needs its own grid
#
# The U-Net of notebooks 04 to 08 uses the cosine schedule with $T = 200$, whose
# last $\beta$ is capped at 0.999: $\sigma$ runs from $\sigma_0 = 0.016$ to
# $\sigma_{199} \approx 4058$ (printed above). Here are the
# three samplers against the exact solution for that schedule, with the uniform
# grid of notebook 05 and with Karras et al.'s grid, $\sigma_i = \big(\sigma_\text{max}^{1/\rho} + \tfrac{i}{S-1}(\sigma_\text{min}^{1/\rho} - \sigma_\text{max}^{1/\rho})\big)^\rho$
# with $\rho = 7$ (EDM eq. 5; `spacing="karras"`, each $\sigma_i$ moved to the
# timestep nearest in $\log\sigma$):

# %%
print("uniform:", timestep_sequence(T, 10), "\nkarras: ", timestep_sequence(T, 10, "karras", schedule))
grid_steps = (10,) if QUICK else (5, 10, 20, 50)
print(f"\nRMS error per pixel against the exact ODE, cosine schedule T = {T}")
print(f"{'sampler':>9} {'spacing':>8} | " + " | ".join(f"S={steps:>6}" for steps in grid_steps))
grid_errors = {}
for name in ODE_SAMPLERS:
    for spacing in ("uniform", "karras"):
        grid_errors[name, spacing] = [
            rms(sample(denoiser, schedule, N_PATHS, sampler=name, steps=steps, spacing=spacing, x_T=x_T), target) for steps in grid_steps
        ]
        print(f"{name:>9} {spacing:>8} | " + " | ".join(f"{e:8.3g}" for e in grid_errors[name, spacing]))

# %% [markdown]
# With the uniform grid, DDIM and DPM-Solver++ converge and Heun is off by orders
# of magnitude. With the Karras grid Heun converges too, though at equal cost
# (its $S$ steps are $2S - 1$ evaluations) it stays behind DPM-Solver++, which the
# Karras grid helps most of all. The reason for Heun's failure is the first
# step. On the uniform grid it jumps from $\sigma_{199} \approx 4058$ to $\sigma_{177}$, a few units,
# in one step. Along an eigenvector with $\lambda_i \ll \sigma^2$ the solution is
# $z \propto \sigma$, a straight line, which Euler and Heun both follow exactly; but
# the first few directions have $\lambda_i$ of tens, larger than $\sigma_{177}^2$, and
# there the solution bends. Euler's slope, taken at $\sigma_{199}$, is about $z/\sigma$, and
# the step removes almost all of $z$, close to what the exact solution does; Heun's
# corrector averages it with the slope at the end, where $z$ has nearly stopped
# shrinking, and so removes too little: the image keeps a large multiple of
# $x_T$. The factor by which each method multiplies $z_i$ in that step:

# %%
t_a, t_b = timestep_sequence(T, 10)[:2]  # 199 → 177
s_a, s_b = sigmas[t_a], sigmas[t_b]
print(f"first uniform step of 10: σ {s_a:.0f} → {s_b:.2f}")
for lam_i in (lam[-1], lam[-10], 1.0, 0.01):
    exact = np.sqrt((lam_i + s_b**2) / (lam_i + s_a**2))
    slope_a, h = s_a / (lam_i + s_a**2), s_b - s_a  # dz/dσ = slope·z
    euler = 1 + h * slope_a
    heun = 1 + h * 0.5 * (slope_a + s_b / (lam_i + s_b**2) * euler)
    print(f"λ = {lam_i:7.2f}: exact ×{exact:.2e}, Euler (DDIM) ×{euler:.2e}, Heun ×{heun:.2e}")

# %% [markdown]
# In the largest directions Euler's factor is about half the exact one, Heun's
# over a hundred times too large (the first line); where $\lambda_i$ is small, all
# three agree. DPM-Solver++ avoids the trap differently: it steps in $\log\sigma$ (its $h$ is a
# difference of log-SNRs) and treats the part of the ODE that is linear in $\bar x$
# exactly. The Karras grid avoids it for Heun by spacing $\sigma^{1/7}$ evenly, so
# consecutive $\sigma$'s are a bounded ratio apart. But look at where the Karras grid
# of 10 steps sits on this schedule: $\sigma_\text{max} = 4058$ is fifty times EDM's 80,
# and $\rho = 7$ spends six of the ten timesteps between $t = 199$ and $t = 194$
# (printed above). The package takes $\sigma_\text{min}$ and $\sigma_\text{max}$ from the
# schedule, so on the cosine schedule many Karras steps go to the nearly pure noise
# at the top.
#
# ## Heun and DPM-Solver++ side by side
#
# Both are second-order solvers of the same ODE, written here in the same
# variables ($\bar x$, $\sigma$; $\hat x_0 = \bar x - \sigma\hat\varepsilon$ is the denoiser $D(\bar x; \sigma)$),
# for a step from $\sigma_i$ to $\sigma_{i+1} < \sigma_i$:
#
# | | Heun (Karras et al. 2022, Algorithm 1) | DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) |
# |---|---|---|
# | variable it steps in | $\sigma$ | $\lambda = -\log\sigma$ (half the log-SNR), $h_i = \log(\sigma_i/\sigma_{i+1})$ |
# | predictor | $d_i = (\bar x_i - D(\bar x_i; \sigma_i))/\sigma_i = \hat\varepsilon_i$, $\ \tilde x = \bar x_i + (\sigma_{i+1} - \sigma_i)\,d_i$ (Euler: DDIM) | $D_i = \big(1 + \tfrac{1}{2r_i}\big)\hat x_0^{(i)} - \tfrac{1}{2r_i}\hat x_0^{(i-1)}$, $\ r_i = h_{i-1}/h_i$ |
# | step | $\bar x_{i+1} = \bar x_i + (\sigma_{i+1} - \sigma_i)\,\tfrac12\big(d_i + d'_i\big)$, $\ d'_i = (\tilde x - D(\tilde x; \sigma_{i+1}))/\sigma_{i+1}$ | $\bar x_{i+1} = \tfrac{\sigma_{i+1}}{\sigma_i}\,\bar x_i + \big(1 - \tfrac{\sigma_{i+1}}{\sigma_i}\big)\,D_i$ |
# | first-order steps | the last (to $\sigma = 0$, where $d'$ would divide by 0): Euler | the first (no $\hat x_0^{(i-1)}$ yet) and the last ($h = \infty$): $D_i = \hat x_0^{(i)}$, which is DDIM |
# | network calls for $N$ steps | $2N - 1$ | $N$ (one new $\hat x_0$ a step; the previous one is reused) |
#
# The DPM-Solver++ row is Lu et al.'s $x_{t_i} = \frac{\sigma^\text{VP}_{t_i}}{\sigma^\text{VP}_{t_{i-1}}}x_{t_{i-1}} - \alpha_{t_i}(e^{-h_i} - 1)D_i$
# (their $\alpha_t = \sqrt{\bar\alpha_t}$, $\sigma^\text{VP}_t = \sqrt{1-\bar\alpha_t}$) divided by $\alpha_{t_i}$: since
# $\sigma^\text{VP}/\alpha$ is our $\sigma$ and $e^{-h_i} = \sigma_{i+1}/\sigma_i$, a step moves $\bar x$ a fraction
# $1 - \sigma_{i+1}/\sigma_i$ of the way to the (extrapolated) clean image. With $D_i = \hat x_0^{(i)}$
# that is again DDIM: $\bar x_i + (\sigma_{i+1} - \sigma_i)\hat\varepsilon_i$. So both methods are
# DDIM plus a correction; Heun pays for its correction with a second call at the
# step's end, DPM-Solver++ takes it from the previous step for free.
#
# **NFE accounting.** A sampler's cost is its number of network evaluations,
# `samplers.nfe(sampler, steps)`: `steps` for DDIM, DDPM and both DPM-Solver++
# variants, $2 \cdot \text{steps} - 1$ for Heun, twice that under classifier-free
# guidance (notebook 07), which runs the network with and without the label. At
# equal cost, Heun gets about half as many steps:

# %%
print(f"{'steps':>5} | " + " | ".join(f"{name:>12}" for name in samplers.SAMPLERS[1:]) + " | heun, CFG w > 0")
for steps in (5, 10, 20, 50):
    print(f"{steps:>5} | " + " | ".join(f"{samplers.nfe(name, steps):>12}" for name in samplers.SAMPLERS[1:])
          + f" | {samplers.nfe('heun', steps, guidance=1.0):>15}")

# %% [markdown]
# ## Stochastic samplers forgive an early mistake
#
# Each ODE solver has a stochastic sibling that follows the same marginals but
# adds fresh noise on the way:
#
# - **DDIM with $\eta > 0$** (DDIM eq. 12 and 16, notebook 05): at $\eta = 1$ and every step it is
#   DDPM with the posterior variance $\tilde\beta_t$; with fewer steps, DDPM's ancestral
#   sampling on a sub-sequence.
# - **SDE-DPM-Solver++(2M)** (`dpmpp_2m_sde`; Lu et al. 2022, sec. 5): in our variables
#   $\bar x_{i+1} = (\sigma_{i+1}/\sigma_i)^2\,\bar x_i + \big(1 - (\sigma_{i+1}/\sigma_i)^2\big)D_i + \sigma_{i+1}\sqrt{1 - (\sigma_{i+1}/\sigma_i)^2}\,z$:
#   it moves further towards $D_i$ and makes up the lost spread with noise.
# - **Heun with churn** (Karras et al. 2022, Algorithm 2): before each step, raise the
#   noise from $\sigma_i$ to $\hat\sigma = (1 + \gamma)\sigma_i$ by adding $\sqrt{\hat\sigma^2 - \sigma_i^2}\,z$, then take
#   the Heun step from $\hat\sigma$; $\gamma = \min(S_\text{churn}/N, \sqrt2 - 1)$. The package uses
#   $S_\text{tmin} = 0$, $S_\text{tmax} = \infty$, $S_\text{noise} = 1$, and moves $\hat\sigma$ to the nearest
#   noisier timestep.
#
# All of them, with steps enough, discretise the reverse SDE rather than the
# ODE. In our variables it is $d\bar x = 2\sigma\,\nabla\log p\;d\sigma + \sqrt{2\sigma}\,d\bar w$ run
# from large $\sigma$ to small (Karras et al. eq. 6 with $\beta(t) = \dot\sigma/\sigma$): the
# drift is twice the ODE's, and the noise makes up for it.
#
# **What that buys.** Suppose the model is right at every noise level below some
# $\sigma_*$, but at $\sigma > \sigma_*$ it believes the data are brighter: it is the exact
# denoiser of $\mathcal{N}(\mu + \Delta, \Sigma)$ there. When the sampler reaches $\sigma_*$, its
# samples are offset by $\Delta$. From there the model is right, and the two dynamics treat
# the offset differently. Along $u_i$ the offset $m_i = u_i^\top\Delta$ evolves with the drift,
# $-\nabla\log p = (\bar x - \mu)/(\lambda_i + \sigma^2)$ per direction:
#
# $$\text{ODE: } \frac{dm_i}{d\sigma} = \frac{\sigma\,m_i}{\lambda_i + \sigma^2} \Rightarrow m_i(0) = m_i\sqrt{\frac{\lambda_i}{\lambda_i + \sigma_*^2}},\qquad
# \text{SDE: } \frac{dm_i}{d\sigma} = \frac{2\sigma\,m_i}{\lambda_i + \sigma^2} \Rightarrow m_i(0) = m_i\,\frac{\lambda_i}{\lambda_i + \sigma_*^2}.$$
#
# The ODE shrinks the offset only as fast as it shrinks the spread of $\bar x$
# ($\sqrt{\lambda_i + \sigma^2}$): in units of that spread the error stays what it was at $\sigma_*$. The
# SDE shrinks it by the square of that factor, so it ends closer to the data. (In
# general, a deterministic invertible flow transports the wrong distribution and
# the right one alike and keeps their KL divergence; the noise of the SDE lets
# the two forget where they started.) An error that the model makes at *every*
# level is another matter: the model is then the exact denoiser of a different
# data set, and every sampler converges to that one.
#
# Three models, then: the exact linear denoiser; the same with the brightness
# error $\Delta = 0.2$ (on $[-1, 1]$ pixels) at every $t$; and the same with the error
# only for $t \ge t_* = 180$. Being the exact denoiser of shifted data, the
# faulty one is the linear denoiser called on a shifted input,
# $\hat\varepsilon_\Delta(x_t, t) = \hat\varepsilon(x_t - \sqrt{\bar\alpha_t}\,\Delta, t)$: a small wrapper, as
# `guidance` wraps a model.

# %%
DELTA, T_STAR = 0.2, 180
sqrt_alpha_bars = ops.convert_to_tensor(schedule.sqrt_alpha_bars.astype("float32"))  # (T,)


def brighter(from_t):
    """The linear denoiser of data brighter by DELTA at every t >= from_t: ε̂(x_t − sqrt(ᾱ_t)·Δ, t), exact below."""

    def model(inputs):
        x_t, t = inputs
        shift = ops.where(t >= from_t, ops.take(sqrt_alpha_bars, t), 0.0) * DELTA  # (B,)
        return denoiser([x_t - ops.reshape(shift, (-1, 1, 1, 1)), t])  # (B, 28, 28, 1)

    return model


models = {"exact": denoiser, "wrong at every t": brighter(0), f"wrong at t ≥ {T_STAR}": brighter(T_STAR)}
if QUICK:  # fewer loops to compile
    del models["wrong at every t"]
sampler_settings = {
    "DDIM, η = 0, 50 steps": dict(sampler="ddim", steps=50),
    "DPM-Solver++(2M), 50": dict(sampler="dpmpp_2m", steps=50),
    "Heun, karras, 25": dict(sampler="heun", steps=25, spacing="karras"),
    "DDIM, η = 1, 50 steps": dict(sampler="ddim", steps=50, eta=1.0),
    "SDE-DPM-Solver++, 50": dict(sampler="dpmpp_2m_sde", steps=50),
    "Heun, karras, 25, churn 10": dict(sampler="heun", steps=25, spacing="karras", churn=10.0),
    "DDPM, 200 steps": dict(sampler="ddpm"),
}
sigma_star = sigmas[T_STAR]
offset = U.T @ np.full(D, DELTA)  # (D,): Δ in eigen-coordinates
predicted = {kind: float(np.mean(U @ (factor * offset))) for kind, factor in
             (("ODE", np.sqrt(lam / (lam + sigma_star**2))), ("SDE", lam / (lam + sigma_star**2)))}
print(f"predicted brightness error, model wrong above σ* = σ_{T_STAR} = {sigma_star:.2f}: "
      f"ODE {predicted['ODE']:+.4f}, SDE {predicted['SDE']:+.4f}; model wrong at every t: {DELTA:+.4f} for both")
samples, start = {}, time.perf_counter()
for model_name, model in models.items():
    for label, settings in sampler_settings.items():
        out = sample(model, schedule, N_STATS, seed=0, image_shape=(28, 28, 1), batch_size=N_STATS, **settings)
        samples[model_name, label] = out.reshape(N_STATS, D).astype(np.float64)  # (n, D)
print(f"{N_STATS} samples for each of {len(samples)} settings in {time.perf_counter() - start:.0f} s\n")
faulty = [name for name in models if name != "exact"]
brightness = {key: float(np.mean(out.mean(axis=0) - mu)) for key, out in samples.items()}  # mean image − μ, over pixels
print(f"{'':>27} | {'exact model':^22} | " + " | ".join(f"{name:^18}" for name in faulty))
print(f"{'sampler':>27} | {'bright':>7} {'RMS':>6} {'var':>6} | " + " | ".join(f"{'Δ bright':>9} {'spread':>8}" for _ in faulty))
for label in sampler_settings:
    exact = samples["exact", label]
    mean_error = exact.mean(axis=0) - mu  # (D,)
    row = f"{label:>27} | {brightness['exact', label]:+7.3f} {np.sqrt(np.mean(mean_error**2)):6.3f} {exact.var(axis=0).sum() / lam.sum():6.3f} | "
    moved = [samples[name, label] - exact for name in faulty]  # (n, D): how far the faulty model moved each sample
    row += " | ".join(f"{brightness[name, label] - brightness['exact', label]:+9.4f} {np.abs(m - m.mean(axis=0)).max():8.1e}" for name, m in zip(faulty, moved))
    print(row)

# %% [markdown]
# For the exact model: `bright`, the mean over pixels of (the samples' mean image
# − the data's mean image), where a brightness error would show; `RMS`, the root
# mean square of that difference over pixels; `var`, the samples' total variance
# over the data's, $\operatorname{tr}\Sigma$. For the faulty models, `Δ bright` is how much
# brighter their samples are than the exact model's. The same seed draws the same
# $x_T$ and the same fresh noise for every model, and with a linear denoiser every
# sampler is an affine map of those noises; the faulty models change only its
# constant term, so each moves *every* sample by the same image (`spread`, the
# largest deviation of a sample's move from the average move, is float32
# rounding, small against the moves). Their
# brightness errors are therefore free of sampling noise, and their variances are
# the exact model's. The brightness errors in a figure:

# %%
fig = Figure(figsize=(9, 3.6), layout="constrained")
ax = fig.subplots()
positions = np.arange(len(sampler_settings))
width = 0.8 / len(faulty)
for k, model_name in enumerate(faulty):
    shifts = [brightness[model_name, label] - brightness["exact", label] for label in sampler_settings]
    ax.bar(positions + (k - (len(faulty) - 1) / 2) * width, shifts, width, label=f"model {model_name}", color=f"C{k + 1}")
ax.axhline(DELTA, color="C1", lw=1, label=f"Δ = {DELTA}")
for kind, style in (("ODE", ":"), ("SDE", "--")):
    ax.axhline(predicted[kind], color="k", linestyle=style, lw=1, label=f"predicted for t ≥ {T_STAR}, {kind}")
ax.axvline(2.5, color="gray", lw=0.8)
ax.set_xticks(positions, [label.replace(", ", ",\n", 1) for label in sampler_settings], fontsize=7)
ax.set(ylim=(0, 0.3), ylabel="brightness error of the samples",
       title=f"a denoiser brighter by Δ = {DELTA}: deterministic (left) and stochastic (right) samplers")
ax.legend(fontsize=7, loc="upper center", ncol=3)
ax.grid(alpha=0.3, axis="y")
fig

# %% [markdown]
# What the numbers show:
#
# - **Exact model:** every sampler's mean image is the data's to within the
#   sampling error of its samples ($\sqrt{\operatorname{tr}\Sigma/(D n)}$ per pixel, about the `RMS`
#   column), and its brightness error is small. The variances are further off,
#   by sampler (the `var` column): at these step counts that is each sampler's
#   own discretisation error, and it is the same under every model.
# - **Wrong at every $t$:** every sampler, deterministic or stochastic, draws samples
#   brighter by $\Delta$: there is nothing to correct, since the model is the exact
#   model of other data.
# - **Wrong above $t_* = 180$:** the three deterministic samplers keep about the
#   brightness error of the ODE prediction, and the four stochastic ones keep less,
#   about that of the SDE prediction (Heun with churn, which re-noises by
#   $\gamma = 0.4$ at each of its 25 steps, a little more than the others).
#
# So the noise does not make a sampler more accurate in general: it makes it
# forget the past. An error made early, at high noise, is partly washed out by
# the exact model's later steps; the ODE carries it to the end. Karras et al.
# (2022, sec. 4) make the same argument for their Algorithm 2, and it fits
# notebook 05's FID table (`benchmarks/sampler_steps.py` on a 5-epoch run of the
# default U-Net), where DDIM with $\eta = 1$ scored better than $\eta = 0$ at every step
# count, by more with more steps. The price: a stochastic sampler's own
# discretisation error falls more slowly than an ODE solver's, so it needs more
# steps before the correction pays.
#
# ## Few steps on the shipped U-Net
#
# The ODE samplers by eye on the pretrained U-Net: the same starting noises in
# every row, at most 19 network evaluations each, with the clipping of $\hat x_0$
# the run samples with. For scale, the share of pixels at the ends of $[-1, 1]$ in
# real images (black backgrounds make it large):

# %%
run_dir = pretrained.run_or_pretrained(os.environ.get("KERAS_DIFFUSION_RUN"), "unet-fashion-mnist")
unet, unet_schedule, unet_config = load_run(run_dir)
clip = sampling_clip(unet_config)
unet_x_T = np.random.default_rng(3).standard_normal((N_UNET, 28, 28, 1)).astype(np.float32)
unet_settings = {
    "DDIM, 10 steps (10 NFE)": dict(sampler="ddim", steps=10),
    "DPM-Solver++(2M), 10 (10 NFE)": dict(sampler="dpmpp_2m", steps=10),
    "DPM-Solver++(2M), 10, karras (10 NFE)": dict(sampler="dpmpp_2m", steps=10, spacing="karras"),
    "Heun, 10 steps (19 NFE)": dict(sampler="heun", steps=10),
    "Heun, 10, karras (19 NFE)": dict(sampler="heun", steps=10, spacing="karras"),
}
if QUICK:  # one row: the same code, fewer loops to compile
    unet_settings = dict(list(unet_settings.items())[:1])
start = time.perf_counter()
drawn = {label: sample(unet, unet_schedule, N_UNET, x_T=unet_x_T, clip=clip, **settings) for label, settings in unet_settings.items()}
print(f"{run_dir.name}: {len(drawn)} rows of {N_UNET} in {time.perf_counter() - start:.0f} s")
real = scale_images(load_images("fashion_mnist", "test", limit=1000)[0], unet_config.scaling)  # (1000, 28, 28, 1)
for label, images in {"real test images": real, **drawn}.items():
    saturated = np.mean(np.abs(images) > 0.99)  # share of pixels at the ends of [-1, 1]
    print(f"{label:>38}: mean pixel {images.mean():+.3f}, {saturated:.0%} of pixels at ±1")
ladder_figure(list(drawn), [to_uint8(images, unet_config.scaling) for images in drawn.values()])

# %% [markdown]
# The rows behave as the closed form predicted. On the uniform grid DDIM and
# DPM-Solver++ draw the same images from the same noises; on the Karras grid
# DPM-Solver++ and Heun draw the same images as each other, which in some
# columns are other garments (the second column is a bag on the uniform grid, a
# shoe on the Karras grid). At 10 steps some images are unfinished textures in
# every row that works. Heun on the uniform grid, which failed on the exact
# denoiser, fails here too: its images are salt-and-pepper noise, nearly every
# pixel pushed to $\pm 1$ (the printed shares). How the samplers compare in quality
# over thousands of samples is a question for FID, below.
#
# ## FID against NFE on the shipped U-Net
#
# This notebook does not measure it: 500 images a setting take minutes per
# sampler. The table and figure were made by
#
# ```bash
# python benchmarks/sampler_nfe.py --pretrained unet-fashion-mnist --n 500 --nfe 5 10 15 20 25 \
#     --json assets/sampler_nfe.json --figure assets/sampler_nfe.png
# ```
#
# on the same shipped U-Net, and are not rerun here: FID of 500 samples per
# setting from the same starting noises (lower is better; 500 real images score
# 0.83 against another 500), a budget of NFE calls spent as that many steps, or
# as Heun's largest $N$ with $2N - 1$ calls (in brackets). `ddim_eta1` is DDIM with
# $\eta = 1$. The Karras grid's DDIM cell at NFE 50 comes from a first, longer pass.
#
# | sampler | spacing | NFE 5 | NFE 10 | NFE 15 | NFE 20 | NFE 25 | NFE 50 |
# |---|---|---|---|---|---|---|---|
# | ddim | uniform | 22.20 | 12.43 | 9.72 | 8.32 | 7.66 |  |
# | ddim_eta1 | uniform | 19.76 | 9.43 | 6.91 | 5.60 | 5.62 |  |
# | dpmpp_2m | uniform | 18.45 | 11.51 | 9.00 | 7.63 | 7.13 |  |
# | dpmpp_2m_sde | uniform | 17.82 | 8.01 | 5.39 | 3.96 | 3.58 |  |
# | heun | uniform | 59.39 | 59.26 (9) | 59.10 | 58.69 (19) | 59.02 |  |
# | ddim | quadratic | 34.91 | 21.74 | 15.01 | 12.34 | 10.69 |  |
# | dpmpp_2m | quadratic | 31.64 | 20.25 | 13.72 | 11.24 | 9.57 |  |
# | dpmpp_2m_sde | quadratic | 28.47 | 14.46 | 9.44 | 6.04 | 5.16 |  |
# | heun | quadratic | 63.88 | 58.68 (9) | 59.02 | 59.11 (19) | 58.94 |  |
# | ddim | karras | 37.06 | 18.47 | 11.41 | 8.91 | 7.72 | 6.08 |
# | dpmpp_2m | karras | 36.04 | 5.62 | 3.25 | 3.68 | 4.17 |  |
# | dpmpp_2m_sde | karras | 36.61 | 6.47 | 1.85 | 1.62 | 1.59 |  |
# | heun | karras | 68.21 | 49.73 (9) | 20.55 | 10.23 (19) | 6.14 |  |
# | ddpm, all 200 steps (NFE 200) | uniform | 2.11 | | | | | |
#
# ![FID against NFE for every sampler and spacing](../assets/sampler_nfe.png)
#
# What this notebook predicted, the table measures. The second-order ODE solvers
# need the Karras grid: on it DPM-Solver++(2M) reaches FID 3.25 at 15 calls, where
# DDIM needs 50 calls for 6.08; on the uniform grid Heun fails at every budget
# (about 59), as it failed on the exact denoiser above. The deterministic solvers
# stall (DPM-Solver++(2M) is worse at 20 and 25 calls than at 15): the shipped
# U-Net is not the exact denoiser, and an ODE solver carries its errors to the end.
# The stochastic DPM-Solver++(2M) on the Karras grid forgives them: 1.62 at 20
# calls, below DDPM with all 200 steps (2.11). That is why it is the package's
# default sampler (`python -m keras_diffusion.sample` draws with it;
# `docs/results/sampling.md` has the confirmation at $n = 2000$).
#
# ## The EDM paper's design choices, and this package's
#
# Karras et al. 2022 separate a diffusion model into independent choices. For
# each, what EDM recommends and what this package does:
#
# | design choice | EDM (Karras et al. 2022) | this package |
# |---|---|---|
# | ODE variables | $\sigma(t) = t$, $s(t) = 1$: integrate $d\bar x/d\sigma$ (sec. 3) | the network works on $x_t$ of the discrete VP schedule; `heun` and the table above integrate in $\bar x = x_t/\sqrt{\bar\alpha_t}$, $\sigma_t = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$, `dpmpp_2m` in $\log\sigma$ |
# | preconditioning $D = c_\text{skip}\bar x + c_\text{out}F(c_\text{in}\bar x; c_\text{noise})$ | $c_\text{in} = 1/\sqrt{\sigma^2 + \sigma_\text{data}^2}$, $c_\text{skip} = \sigma_\text{data}^2/(\sigma^2 + \sigma_\text{data}^2)$, $c_\text{out} = \sigma\sigma_\text{data}/\sqrt{\sigma^2 + \sigma_\text{data}^2}$, $c_\text{noise} = \tfrac14\ln\sigma$, $\sigma_\text{data} = 0.5$ (Table 1) | the network sees $x_t = \bar x/\sqrt{1 + \sigma^2}$ ($c_\text{in}$ with $\sigma_\text{data} = 1$) and the integer $t$ through a sinusoidal embedding; `--objective eps` (the default) is $c_\text{skip} = 1$, $c_\text{out} = -\sigma$, EDM's "VP" column; `--objective v` is $c_\text{skip} = 1/(1 + \sigma^2)$, $c_\text{out} = -\sigma/\sqrt{1 + \sigma^2}$, EDM's own preconditioning with $\sigma_\text{data} = 1$; `--objective x0` is $c_\text{skip} = 0$, $c_\text{out} = 1$ |
# | noise levels during training | $\ln\sigma \sim \mathcal{N}(P_\text{mean} = -1.2,\ P_\text{std} = 1.2)$ | $t$ uniform on $\{0, \dots, T-1\}$ (DDPM); the $\sigma$ this implies is printed below |
# | loss weighting | $\lambda(\sigma) = (\sigma^2 + \sigma_\text{data}^2)/(\sigma\sigma_\text{data})^2$ on $\lVert D - x_0\rVert^2$, i.e. unit weight on $F$'s error | uniform weight on the chosen objective, which puts $\text{SNR} = 1/\sigma^2$ (eps), 1 (x0) or $1 + 1/\sigma^2$ (v: EDM's $\lambda(\sigma)$ with $\sigma_\text{data} = 1$) on $\lVert x_0 - \hat x_0\rVert^2$; `--loss-weight min_snr`: $\min(\text{SNR}, \gamma)$ (Hang et al. 2023, `--min-snr-gamma`, default 5) |
# | ODE solver | Heun, second order, Euler on the last step (Algorithm 1) | `--sampler heun` (Algorithm 1, $2N - 1$ NFE), and `dpmpp_2m`, `ddim`; the default of `sample` is `ddpm` |
# | time steps | $\rho = 7$ between $\sigma_\text{min} = 0.002$ and $\sigma_\text{max} = 80$ (eq. 5) | `--spacing karras`: $\rho = 7$ between $\sigma_0$ and $\sigma_{T-1}$ of the run's schedule, each moved to the nearest timestep in $\log\sigma$; the default is `uniform` |
# | stochastic sampling | churn: $\gamma_i = \min(S_\text{churn}/N, \sqrt2 - 1)$ for $\sigma_i \in [S_\text{tmin}, S_\text{tmax}]$, noise scaled by $S_\text{noise}$ (Algorithm 2) | `--churn` ($S_\text{churn}$) with $S_\text{tmin} = 0$, $S_\text{tmax} = \infty$, $S_\text{noise} = 1$; also `ddpm`, `ddim --eta`, `dpmpp_2m_sde` |
#
# (The $c$'s of the package follow from $x_t = \bar x/\sqrt{1 + \sigma^2}$ and the formulas of
# `models/objective.py`: $\hat x_0 = \bar x - \sigma\hat\varepsilon$ for eps, and
# $\hat x_0 = \sqrt{\bar\alpha}\,x_t - \sqrt{1 - \bar\alpha}\,\hat v = \bar x/(1 + \sigma^2) - \sigma\hat v/\sqrt{1 + \sigma^2}$ for v.)
# The data's own $\sigma_\text{data}$ and the noise levels that uniform $t$ draws, next to
# EDM's log-normal:

# %%
sigma_data = np.sqrt(lam.sum() / D)  # RMS spread of a pixel around the mean image, [-1, 1] pixels
edm_sigmas = np.exp(-1.2 + 1.2 * np.random.default_rng(4).standard_normal(100_000))  # EDM's training σ
print(f"σ_data of these images: {sigma_data:.2f} (EDM assumes 0.5)")
print(f"{'quantile':>8} | σ_t, t uniform (cosine, T = {T}) | σ, EDM's log-normal")
for q in (0.05, 0.25, 0.5, 0.75, 0.95):
    print(f"{q:>8.2f} | {np.quantile(sigmas, q):29.3f} | {np.quantile(edm_sigmas, q):8.3f}")
high = np.quantile(edm_sigmas, 0.95)
print(f"share of draws with σ above EDM's 95% quantile ({high:.2f}): uniform t {np.mean(sigmas > high):.0%}, EDM 5%; "
      f"above EDM's σ_max = 80: uniform t {np.mean(sigmas > 80):.1%}")

# %% [markdown]
# Uniform $t$ on the cosine schedule draws much noisier levels than EDM's
# log-normal: more than a quarter of its draws lie above the level that only 5%
# of EDM's exceed, and its last two timesteps lie beyond EDM's $\sigma_\text{max}$ (the
# printed shares). EDM concentrates training on the middle levels because, by
# its sec. 5, the loss can hardly be reduced at very low or very high noise.
# This package's data are also a little more spread out than EDM's assumed
# $\sigma_\text{data}$ (printed).
#
# **Takeaways**
#
# - In $\bar x = x/\sqrt{\bar\alpha}$ and $\sigma = \sqrt{(1-\bar\alpha)/\bar\alpha}$ the probability-flow ODE is
#   $d\bar x/d\sigma = \hat\varepsilon$, and a DDIM step ($\eta = 0$) is one Euler step of it.
# - For Gaussian data the ODE has a closed form, and the linear denoiser is exact:
#   a sampler's error is then its discretisation error alone.
# - Doubling the steps halves DDIM's error (first order) and quarters Heun's and
#   DPM-Solver++'s (second order, once the steps are small); Heun pays $2N - 1$
#   network calls for $N$ steps, DPM-Solver++ $N$.
# - Order is asymptotic: on the cosine schedule's uniform grid Heun's first step is
#   far too long, and it needs the Karras grid; DPM-Solver++ works on either.
# - A deterministic sampler carries an early model error to the end; a stochastic
#   one shrinks it. An error the model makes at every noise level, none corrects.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** Derive `samplers.nfe("heun", N) = 2N − 1` from Algorithm 1. How
#    many evaluations do 10 Karras steps of Heun cost with classifier-free guidance?
# 2. **A derivation.** Show that DDIM with $\eta = 1$ and every step ($\tau' = \tau - 1$) is DDPM
#    with $\sigma_t^2 = \tilde\beta_t$: first the noise, then the mean.
# 3. **A prediction.** In the table of the cosine schedule, predict before looking
#    what the Karras grid changes for DDIM, and what it changes for Heun, and why the
#    two answers differ.
# 4. **A code change.** Make the model wrong only *below* $t_*$: replace `brighter(T_STAR)`
#    by a model that shifts its input where `t < from_t`. Which samplers now end
#    closer to the data, the deterministic or the stochastic ones? Predict the two
#    brightness errors from the formulas before running it.

# %% [markdown]
# ## Answers
#
# 1. Each of the $N$ steps evaluates $D$ once at its start ($d_i$) and once at its end
#    ($d'_i$), except the last, which ends at $\sigma = 0$, where $d'$ would divide by zero: it
#    is an Euler step with one evaluation. $2(N - 1) + 1 = 2N - 1$. Ten steps cost 19;
#    with classifier-free guidance every evaluation runs the network twice (with and
#    without the label), 38 (`samplers.nfe("heun", 10, guidance=1.0)`, as in the table above).
# 2. With $\tau' = \tau - 1 = t - 1$, DDIM eq. 16 gives
#    $\sigma^2 = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\big(1 - \frac{\bar\alpha_t}{\bar\alpha_{t-1}}\big) = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t = \tilde\beta_t$,
#    since $\bar\alpha_t/\bar\alpha_{t-1} = \alpha_t = 1 - \beta_t$. The mean is
#    $\sqrt{\bar\alpha_{t-1}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{t-1} - \tilde\beta_t}\;\hat\varepsilon$; write $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$ and use
#    $1 - \bar\alpha_{t-1} - \tilde\beta_t = (1-\bar\alpha_{t-1})\,\frac{1 - \bar\alpha_t - \beta_t}{1 - \bar\alpha_t} = \frac{(1-\bar\alpha_{t-1})^2\,\alpha_t}{1 - \bar\alpha_t}$
#    (because $1 - \bar\alpha_t - \beta_t = \alpha_t(1 - \bar\alpha_{t-1})$). The coefficient of $x_t$ is then
#    $\frac{\sqrt{\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}$, DDPM eq. 7's `posterior_mean_coef2`, and that of $\hat x_0$ is
#    $\sqrt{\bar\alpha_{t-1}} - \frac{\sqrt{\alpha_t\bar\alpha_t}(1-\bar\alpha_{t-1})}{1-\bar\alpha_t} = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}$, `posterior_mean_coef1`.
#    So the step is the posterior mean of $\hat x_0$ plus $\tilde\beta_t$-noise: DDPM's step with
#    $\tilde\beta_t$ (notebook 05 checks it numerically, one step and whole chains).
# 3. For DDIM, little: its Euler step is exact where $z \propto \sigma$, so long steps at the
#    top cost it almost nothing, and the Karras grid spends many of its steps
#    there; its errors in the table are only a little smaller on the Karras grid.
#    For Heun, everything:
#    the uniform grid's first step is too long for its corrector (the factors
#    printed in that section), and the Karras grid replaces it by steps whose $\sigma$
#    ratios are bounded. The two differ because the two methods are wrong in
#    different places: Euler in the curved part of the path, Heun's trapezoid on
#    one long step whose end slope is unlike its start slope.
# 4. The stochastic ones end *further* from the data. Now the sampler arrives at
#    $\sigma_*$ with the right distribution and then follows a model whose data are
#    brighter; an ODE moves the mean offset $m_i$ from $-\Delta_i$ (relative to the model's
#    mean) to $-\Delta_i\sqrt{\lambda_i/(\lambda_i + \sigma_*^2)}$ and an SDE to $-\Delta_i\,\lambda_i/(\lambda_i + \sigma_*^2)$, so
#    the final brightness error is $\Delta$ minus each of the two predictions printed
#    in the stochastic section: larger for the SDE. The noise makes a sampler
#    forget the past and trust the model of the present, and here the present
#    is wrong.
