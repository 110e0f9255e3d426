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
# # 05 · Sampling: DDPM's 200 steps, DDIM's few
#
# Notebook 04 trained a U-Net that draws clothes, with DDPM's sampler: 200
# network calls per image. This notebook keeps the trained network and changes
# only the sampler. You will:
#
# 1. write DDPM's ancestral step (DDPM eq. 11) and its two choices of noise,
#    $\sigma_t^2 = \beta_t$ or the posterior variance $\tilde\beta_t$;
# 2. derive DDIM's step (Song et al. 2021, eq. 12) from the same trained network,
#    with $\eta = 0$ (deterministic) and $\eta = 1$ (DDPM again);
# 3. draw from the same starting noise $x_T$ with DDPM (200 steps) and DDIM with
#    10, 20, 50 and 100 steps, and time each;
# 4. see what determinism buys: the same $x_T$ gives, in most cases, the same
#    garment at any number of steps, so $x_T$ can be interpolated;
# 5. watch the reverse chain as a grid and as an animated GIF.
#
# Full run: 3.4 min on a 2-core CPU (no GPU) shared with other jobs. It samples
# the pretrained U-Net shipped with the package (`unet-fashion-mnist`: notebook
# 04's U-Net trained for 14 epochs, as the first cell prints; `python -m
# keras_diffusion.pretrained list` says how well), so it needs no training. To
# sample your own run from notebook 04 instead, start Jupyter with
# `KERAS_DIFFUSION_RUN=runs/04_unet`.
# Set `KERAS_DIFFUSION_QUICK=1` for a quick run (the tests do): it trains a tiny
# U-Net ($T = 20$) on 512 images for 1 epoch into `runs/05_unet_quick` and draws
# fewer images; the samples are noise, the code paths are the same.
#
# Prerequisites: notebooks 02 (DDPM's reverse step), 03 (clipping $\hat x_0$) and 04 (the U-Net).
#
# References: Ho, Jain & Abbeel 2020, *Denoising Diffusion Probabilistic Models*,
# https://arxiv.org/abs/2006.11239; Song, Meng & Ermon 2021, *Denoising Diffusion
# Implicit Models* (DDIM), https://arxiv.org/abs/2010.02502.

# %%
# %matplotlib inline
import logging
import os
import pathlib
import time

import numpy as np
from IPython.display import Image
from matplotlib.figure import Figure

from keras_diffusion import ddim_step, ddpm_step, pretrained, q_sample
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.plotting import ladder_figure, plot_reverse_grid, plot_samples, save_gif
from keras_diffusion.reverse import sample, timestep_sequence
from keras_diffusion.training import sampling_clip, train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): a tiny U-Net trained here, fewer images.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N = 8 if QUICK else 64  # images per timed batch
N_SHOW = 8  # images per row of the comparison figures
# Each sampler setting is its own compiled loop, traced once; TensorFlow counts the
# traces of all of them together and warns about "retracing". Silence that.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

if QUICK:  # a tiny U-Net with T = 20, trained here; overwrite=True replaces this notebook's earlier quick run
    quick_config = TrainConfig(model="unet", epochs=1, limit=512, n_samples=8, xla=False, timesteps=20,
                               model_kwargs={"widths": [8, 16], "blocks": 1, "attention": False})
    run_dir, _ = train(quick_config, out="runs/05_unet_quick", overwrite=True)
else:  # the pretrained U-Net, or your own run directory (relative to this notebook)
    run_dir = pretrained.run_or_pretrained(os.environ.get("KERAS_DIFFUSION_RUN"), "unet-fashion-mnist")
denoiser, schedule, config = load_run(run_dir)
clip = sampling_clip(config)  # (-1, 1): clip x̂_0 at every step (notebook 03)
T = schedule.timesteps
DDIM_STEPS = [steps for steps in (10, 20, 50, 100) if steps < T]  # S, the number of DDIM steps
MID = min(50, T)  # the DDIM steps of the interpolation below (50)
print(f"QUICK={QUICK}: {run_dir.name}, {config.epochs} epochs, {denoiser.count_params():,} parameters, {schedule}, clip={clip}")

# %% [markdown]
# One starting noise for the whole notebook: $x_T \sim \mathcal{N}(0, I)$, drawn
# once. Every sampler below starts from it (`sample(..., x_T=x_T)`), so any
# difference between two pictures comes from the sampler, not from the luck of
# the draw. The `seed` argument of `sample` then only sets the fresh noise $z$
# that a stochastic sampler adds at each step.

# %%
x_T = np.random.default_rng(0).standard_normal((N, 28, 28, 1)).astype(np.float32)  # (N, 28, 28, 1)

# %% [markdown]
# ## DDPM: ancestral sampling (DDPM eq. 11)
#
# DDPM's reverse process is a Markov chain that undoes one forward step at a time,
# $T = 200$ network calls in all, from $t = T-1$ down to 0:
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\varepsilon_\theta(x_t, t)\Big) + \sigma_t z,
# \qquad z \sim \mathcal{N}(0, I)\quad\text{(no } z \text{ at the last step)}.$$
#
# The network only gives the mean; the variance $\sigma_t^2$ is a choice. DDPM
# (sec. 3.2) tried two and found they give similar samples:
#
# - $\sigma_t^2 = \beta_t$, the forward step's own variance (`variance="beta"`, the
#   package's and the classic demo's default). It is right when the data are
#   themselves $\mathcal{N}(0, I)$.
# - $\sigma_t^2 = \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t$, the variance of
#   the true posterior $q(x_{t-1} \mid x_t, x_0)$ (`variance="posterior"`). It is
#   right when $x_0$ is one fixed point, and always smaller than $\beta_t$.
#
# They differ most near $t = 0$, where $\tilde\beta_t$ falls to 0.404 of $\beta_t$ (at $t = 1$):

# %%
print(f"{'t':>4} | {'β_t':>8} | {'β̃_t':>8} | β̃_t / β_t")
for t in (T - 1, 3 * T // 4, T // 2, T // 4, T // 20, 1):  # 199, 150, 100, 50, 10, 1
    print(f"{t:>4} | {schedule.betas[t]:8.5f} | {schedule.posterior_variance[t]:8.5f} | "
          f"{schedule.posterior_variance[t] / schedule.betas[t]:9.3f}")

# %% [markdown]
# ## DDIM: the same network, another sampler (DDIM eq. 12)
#
# DDPM's loss (notebook 02) only ever uses the marginals $q(x_t \mid x_0)$ of the
# forward process: noise an image in one jump, predict the noise. Song et al.
# observed that many forward processes share those marginals, and that a network
# trained for one works for all. Among them they pick a family in which a step
# first **predicts the clean image**, then **re-noises it to the next noise
# level**, reusing the predicted noise:
#
# $$\hat x_0 = \frac{x_\tau - \sqrt{1-\bar\alpha_\tau}\,\hat\varepsilon}{\sqrt{\bar\alpha_\tau}},\qquad
# x_{\tau'} = \underbrace{\sqrt{\bar\alpha_{\tau'}}\,\hat x_0}_{\text{predicted image}}
# + \underbrace{\sqrt{1-\bar\alpha_{\tau'}-\sigma^2}\;\hat\varepsilon}_{\text{direction to } x_{\tau'}}
# + \underbrace{\sigma z}_{\text{fresh noise}}
# \qquad\text{(DDIM eq. 12)},$$
#
# $$\sigma = \eta\,\sqrt{\frac{1-\bar\alpha_{\tau'}}{1-\bar\alpha_\tau}}\,\sqrt{1-\frac{\bar\alpha_\tau}{\bar\alpha_{\tau'}}}\qquad\text{(DDIM eq. 16)}.$$
#
# (In the package's indexing, $\tau' = -1$ means "the data", $\bar\alpha_{-1} = 1$.)
# Two things follow.
#
# - **$\eta$ sets the noise.** With $\eta = 0$ there is no $z$: the whole chain is a
#   deterministic function of $x_T$. With $\eta = 1$ and every step
#   ($\tau' = \tau - 1$), $\sigma^2 = \tilde\beta_\tau$ and the step is DDPM's with the
#   posterior variance, written differently.
# - **Steps can be skipped.** Nothing in eq. 12 needs $\tau' = \tau - 1$: since the
#   network was trained on $q(x_t \mid x_0)$ for every $t$, the step can jump from
#   any $\tau$ to any earlier $\tau'$. DDIM visits a sub-sequence of $S \le T$
#   timesteps, $S$ network calls instead of $T$.
#
# `timestep_sequence(T, S)` gives that sub-sequence: it starts at $T - 1$ (where
# $x_T$ lives), ends at 0, and works whether or not $S$ divides $T$:

# %%
for steps in (10, 7, MID):
    seq = timestep_sequence(T, steps)
    print(f"S={steps:>3}: {seq if steps <= 10 else f'{seq[:6]} ... {seq[-3:]}'}")
print("quadratic spacing (from the DDIM paper), more steps near t = 0:", timestep_sequence(T, 10, spacing="quadratic"))

# %% [markdown]
# ### $\eta = 1$ is DDPM again
#
# First one step, with the trained network: noise a few test images to
# $t = T/2$, ask for $\hat\varepsilon$, and take DDPM's step with $\tilde\beta_t$ and
# DDIM's step from $\tau = t$ to $\tau' = t - 1$ with $\eta = 1$, with the same $z$:

# %%
n = min(N_SHOW, N)
rng = np.random.default_rng(2)
x0 = scale_images(load_images("fashion_mnist", "test", limit=n)[0], config.scaling)  # (n, 28, 28, 1)
t = T // 2
x_t = np.asarray(q_sample(schedule, x0, t, rng.standard_normal(x0.shape).astype(np.float32)))  # (n, 28, 28, 1)
eps_hat = denoiser([x_t, np.full(n, t)])  # (n, 28, 28, 1)
z = rng.standard_normal(x0.shape).astype(np.float32)
one_ddpm = np.asarray(ddpm_step(schedule, x_t, t, eps_hat, z, variance="posterior"))  # eq. 11, σ² = β̃
one_ddim = np.asarray(ddim_step(schedule, x_t, t, t - 1, eps_hat, eta=1.0, noise=z))  # eq. 12, η = 1
print(f"one step at t={t}: max |DDPM(β̃) - DDIM(η=1)| = {np.abs(one_ddpm - one_ddim).max():.1e}")

# %% [markdown]
# The same, up to float rounding. Now whole chains, all 200 steps, from the same
# $x_T$ and **the same $z$** (the same `seed`), first without clipping $\hat x_0$,
# then with it:

# %%
rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))  # noqa: E731  root mean square difference
chains = {}  # clip -> (DDPM with β̃, DDIM with η = 1), n images each
for clip_ in (None, clip):
    chains[clip_] = (
        sample(denoiser, schedule, n, variance="posterior", x_T=x_T[:n], seed=1, clip=clip_),
        sample(denoiser, schedule, n, sampler="ddim", eta=1.0, x_T=x_T[:n], seed=1, clip=clip_),
    )
    print(f"clip={clip_}: RMS |DDPM(β̃) - DDIM(η=1)| = {rms(*chains[clip_]):.3g}, "
          f"for images of RMS size {np.sqrt(np.mean(chains[clip_][0] ** 2)):.3g}")

# %% [markdown]
# Without clipping the two chains agree to rounding (the images themselves are
# huge: notebook 03 showed why the cosine schedule needs clipping). DDPM's
# clipped step (notebook 03) is the posterior mean of the clipped $\hat x_0$,
# which amounts to re-deriving the noise from the clipped image,
# $\tilde\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\mathrm{clip}(\hat x_0))/\sqrt{1-\bar\alpha_t}$.
# The package's DDIM step does the same by default (`recompute_eps=True`, as
# GLIDE does and diffusers' `use_clipped_model_output`), so with clipping too
# the two chains agree to rounding (RMS $1.15 \cdot 10^{-6}$ for images of RMS
# size 0.778). With `recompute_eps=False` DDIM would clip
# $\hat x_0$ but keep the network's $\hat\varepsilon$ for the direction term: in
# the first steps of the cosine schedule, where $\sqrt{\bar\alpha_t}$ is tiny and
# clipping acts on almost every pixel, the two estimates disagree and the chains
# part.
#
# The three stochastic samplers side by side, with clipping (as the run samples),
# same $x_T$ and same $z$:

# %%
drawn = {
    "DDPM, σ²=β": sample(denoiser, schedule, n, variance="beta", x_T=x_T[:n], seed=1, clip=clip),
    "DDPM, σ²=β̃": chains[clip][0],
    f"DDIM, η=1, S={T}": chains[clip][1],
}
print(f"RMS difference, DDPM β vs DDPM β̃  : {rms(drawn['DDPM, σ²=β'], drawn['DDPM, σ²=β̃']):.4f}")
ladder_figure(list(drawn), [to_uint8(x, config.scaling) for x in drawn.values()])

# %% [markdown]
# $\sigma_t^2 = \beta_t$ and $\sigma_t^2 = \tilde\beta_t$ give nearly the same images
# (RMS difference 0.03): the two variances differ only in the last steps (table
# above), when the garment is already made. DDIM with $\eta = 1$ draws the same
# images as DDPM with $\tilde\beta_t$ in every column: the two chains agree to
# rounding (previous cell). All three are samplers of the same model; how their
# images compare in quality, over thousands of samples, is for notebook 06.
#
# ## DDPM against DDIM, from the same $x_T$, with timings
#
# Now the question that matters in practice: how few steps can DDIM ($\eta = 0$)
# take? All samplers start from the same `N` noises $x_T$. `sample` compiles one
# `tf.function` per setting the first time it meets it (tracing the loop), so each
# setting is called three times, in three rounds over all settings: the first
# call includes tracing; the two repeat calls are the honest cost of drawing a
# batch, and we keep the faster of them (anything else running on the machine
# only ever slows a call down, and rounds spread such slowdowns over all
# settings). The repeat calls also tell us whether the same seed gives the same
# images.

# %%
settings = {f"DDPM, {T} steps": dict(sampler="ddpm")}
settings.update({f"DDIM, {steps} steps": dict(sampler="ddim", steps=steps, eta=0.0) for steps in sorted(DDIM_STEPS, reverse=True)})
results = {label: dict(steps=kwargs.get("steps", T), times=[], images=[]) for label, kwargs in settings.items()}
for _ in range(3):  # round 1 traces each setting's loop, rounds 2 and 3 repeat it
    for label, kwargs in settings.items():
        start = time.perf_counter()
        images = sample(denoiser, schedule, N, x_T=x_T, seed=0, clip=clip, **kwargs)  # (N, 28, 28, 1)
        results[label]["times"].append(time.perf_counter() - start)
        results[label]["images"].append(images)
print(f"{'sampler':>16} | {'first call (s)':>14} | {'repeat call (s)':>15} | {'images/s':>8} | repeats identical to the first")
for label, r in results.items():
    first, *repeats = r["images"]
    r["images"], r["seconds"] = first, min(r["times"][1:])
    identical = all(np.array_equal(first, again) for again in repeats)
    print(f"{label:>16} | {r['times'][0]:14.2f} | {r['seconds']:15.2f} | {N / r['seconds']:8.1f} | {identical}")

# %% [markdown]
# Seconds per batch of `N` images against the number of steps (repeat calls):

# %%
steps = np.array([r["steps"] for r in results.values()])
seconds = np.array([r["seconds"] for r in results.values()])
slope, intercept = np.polyfit(steps, seconds, 1)  # seconds ≈ intercept + slope · steps
print(f"seconds ≈ {intercept:.2f} + {slope * 1000:.1f} ms × steps, for {N} images "
      f"({slope / N * 1000:.2f} ms per image per network call)")
fig = Figure(figsize=(5.5, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(steps[1:], seconds[1:], "o", label="DDIM, η = 0")
ax.plot(steps[:1], seconds[:1], "s", color="C3", label="DDPM")
ax.plot([0, T], [intercept, intercept + slope * T], "--", color="gray", label="linear fit")
for label, r in results.items():
    ax.annotate(label.split(", ")[1], (r["steps"], r["seconds"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
ax.set(xlabel="network calls (steps)", ylabel=f"seconds per batch of {N}", title="sampling time")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig

# %% [markdown]
# The time is proportional to the number of network calls, for DDPM and DDIM
# alike: about 95 ms per step for a batch of 64 (1.5 ms per image and call), and
# the line starts near 0 s (0.01 s); next to the U-Net, the update itself costs
# nothing. DDIM with 10 steps drew 64 images in 0.89 s, against 18.85 s for DDPM's
# 200 steps, 21 times faster ($18.85 / 0.89 \approx 21$, for 20 times fewer network
# calls). Other jobs shared the two cores during this run, yet every repeat time
# lies within 0.33 s of the line (DDIM-100 is the farthest, above it); the first
# calls, which include tracing each new loop, took 1.7 to 8.8 s longer than the
# repeats. And every repeat gave the same images, bit for bit: the same seed, the
# same samples.
#
# And the images: the first `N_SHOW` of each batch, one row per sampler, the
# same $x_T$ in each column (the DDPM row uses `seed=0` for its fresh noise $z$).
# Two more rows: DDPM from the same $x_T$ with other fresh noise (`seed=1`), and
# DDPM with that same `seed=1` but **another** $x_T$.

# %%
results["DDPM, seed 1"] = dict(images=drawn["DDPM, σ²=β"])  # drawn above: the same x_T, seed=1
other_x_T = np.random.default_rng(3).standard_normal((n, 28, 28, 1)).astype(np.float32)
results["DDPM, seed 1, other x_T"] = dict(images=sample(denoiser, schedule, n, x_T=other_x_T, seed=1, clip=clip))
labels = list(results)
ladder_figure(labels, [to_uint8(results[label]["images"][:n], config.scaling) for label in labels])

# %% [markdown]
# Read it by columns. In seven of the eight columns the four DDIM rows show the
# **same garment**: 50 steps give an image hard to tell from the 100-step one,
# 20 and 10 steps change details (at 10 steps the white shirt in the fifth column
# is wider), but it stays the same ankle boot, sandal, trousers or T-shirt. The
# first column is the exception: a sneaker at 100 and 50 steps, a blurred mix of
# shapes at 20 steps and trousers at 10, so there the coarser steps led to another
# garment. The DDPM row, from the same $x_T$, shows other images altogether (its
# first column is a sneaker too, but another one), and DDPM with `seed=1` yet
# others. The last two rows, DDPM with `seed=1` from two different $x_T$, are the
# same images: for DDPM the image is decided by the fresh noise $z$, hardly at all
# by $x_T$. More on that below.
#
# ## Quality against steps: why the noise helps an imperfect model
#
# Which of these samplers draws the *best* images? That takes thousands of
# samples and notebook 06's FID, more than this notebook should spend, so this
# notebook does not measure it. The table below was made by
#
# ```bash
# python -m keras_diffusion.train --model unet --epochs 5 --out runs/default5
# python benchmarks/sampler_steps.py --run runs/default5 --n 500 --steps 10 25 50 100 \
#     --json assets/sampler_steps.json --figure assets/sampler_steps.png
# ```
#
# and is not rerun here: FID of 500 samples per setting (lower is better; 500 real
# images score about 0.83 against another 500), from the same starting noise. Its
# model is a 5-epoch run of the default U-Net, not the 14-epoch
# `unet-fashion-mnist` this notebook samples, so the numbers describe that
# 5-epoch model, not the one above.
#
# | sampler | 10 steps | 25 | 50 | 100 |
# |---|---|---|---|---|
# | DDIM, eta 0 | 17.3 | 14.0 | 12.2 | 11.6 |
# | DDIM, eta 0, network's ε̂ (`recompute_eps=False`) | 19.3 | 16.4 | 16.1 | 17.1 |
# | DDIM, eta 0.5 | 15.2 | 10.6 | 8.7 | 7.8 |
# | DDIM, eta 1 | 15.9 | 8.9 | 5.2 | 3.8 |
# | DDPM, all 200 steps | | | | 4.4 (at 200 steps) |
#
# ![FID against sampling steps](../assets/sampler_steps.png)
#
# Two lessons in one table.
#
# **Clipping needs a consistent step.** When $\hat x_0$ is clipped, the network's
# $\hat\varepsilon$ no longer agrees with it, and a DDIM step that uses both mixes two
# estimates. `sample` re-derives $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\hat x_0)/\sqrt{1-\bar\alpha_t}$
# from the clipped $\hat x_0$ (`recompute_eps=True`, the default, as GLIDE does).
# Without it (the second row) deterministic DDIM got *worse* past 50 steps; with it,
# every added step helps.
#
# **Noise corrects an imperfect model.** A deterministic sampler ($\eta = 0$)
# follows the network's errors wherever they lead: an error made at step $t$ shifts
# every later step. A stochastic one adds fresh noise at each step, which washes out
# part of what went wrong before, so errors do not pile up (Karras et al. 2022,
# sec. 4). That is why $\eta = 1$ scores a lower FID than $\eta = 0$ at every step
# count in the table, by 1.4 at 10 steps (15.9 against 17.3) and by 5 to 8 from 25
# steps on; why it comes close to DDPM's 200 steps at 50 (5.2 against 4.4) and
# passes it at 100 (3.8), with a quarter to half of DDPM's network calls; and why
# $\eta = 0.5$ lies in between from 25 steps on. With only 10 steps the three are
# close (15.2 to 17.3, $\eta = 0.5$ the lowest): too few steps for the noise to
# correct much. The price of
# $\eta > 0$ is what the next section shows: the image is no longer a function of
# $x_T$ alone.
#
# ## Determinism: $x_T$ decides the image
#
# With $\eta = 0$ each step is a deterministic function, so the whole sampler is a
# map $x_T \mapsto x_0$ (Song et al. show that it follows an ODE, and fewer steps are
# a coarser solution of the same ODE). How close are the images of the same
# $x_T$ at different step counts? Root mean square difference per image (pixels
# in $[-1, 1]$), against DDIM with 100 steps; for scale, two **different** samples
# of the same sampler:

# %%
finest = f"DDIM, {max(DDIM_STEPS)} steps"  # 100 steps (fewer in quick mode)
reference = results[finest]["images"]
print(f"{'':>16}   RMS difference to {finest} from the same x_T (mean over the images)")
for label in labels[:-1]:  # the last row started from another x_T
    print(f"{label:>16} | {np.mean([rms(a, b) for a, b in zip(results[label]['images'], reference)]):.3f}")
others = np.roll(reference, 1, axis=0)  # each image paired with another sample's
print(f"{'another sample':>16} | {np.mean([rms(a, b) for a, b in zip(others, reference)]):.3f}   ({finest} against itself)")
same_z = [rms(a, b) for a, b in zip(results["DDPM, seed 1"]["images"], results["DDPM, seed 1, other x_T"]["images"])]
print(f"\nDDPM, seed 1: x_T against another x_T, same z: {np.mean(same_z):.3f}")

# %% [markdown]
# From the same $x_T$, DDIM's 50-, 20- and 10-step images are 0.035, 0.131 and
# 0.274 from the 100-step one, against 0.954 between two different samples: fewer
# steps move the image, much less than another sample would, and mostly do not
# replace it (of the eight images shown above, one, in the first column, changed
# garment at 20 and 10 steps). DDPM's image from the same $x_T$ is 0.827 away,
# nearly as far as another sample; but two DDPM chains with the same $z$ and
# different $x_T$ end 0.013 apart. Why $x_T$ hardly matters to DDPM
# here: look at the first step of each sampler, written with the schedule's
# numbers.

# %%
t, t_next = T - 1, timestep_sequence(T, MID)[1]
print(f"DDPM, first step (t={t}):       x_{t - 1} = {schedule.posterior_mean_coef1[t]:.3f}·clip(x̂_0) "
      f"+ {schedule.posterior_mean_coef2[t]:.3f}·x_T + {np.sqrt(schedule.betas[t]):.3f}·z")
print(f"DDIM-{MID}, first step (to τ'={t_next}): x_{t_next} = {schedule.sqrt_alpha_bars[t_next]:.3f}·clip(x̂_0) "
      f"+ {schedule.sqrt_one_minus_alpha_bars[t_next]:.3f}·ε̂")

# %% [markdown]
# The cosine schedule's last $\beta$ is 0.999 (its cap): DDPM's first step keeps 3%
# of $x_T$ and replaces the rest with fresh noise, so DDPM really starts from its
# first $z$, and its image depends on the seed, not on $x_T$. DDIM's first step
# carries $\hat\varepsilon$ forward at full weight, and at $t = 199$, where
# $\sqrt{\bar\alpha_t} \approx 2.5 \cdot 10^{-4}$, the noise in $x_T$ is $x_T$ itself
# (notebook 04: the loss there is 0.001), so $\hat\varepsilon \approx x_T$ and $x_T$ is carried
# through the whole chain. With DDIM, $x_T$ is a code for the image.
#
# ### Interpolating $x_T$
#
# Because the image is a function of $x_T$ alone, walking from one noise $x_T^a$ to
# another $x_T^b$ walks between their images. We walk along the sphere (*slerp*),
# not the straight line: a $\mathcal{N}(0, I)$ sample of 784 pixels has length
# close to $\sqrt{784} = 28$, and the midpoint of a straight line between two of
# them is only about $28/\sqrt 2$ long, a noise the network never sees. With
# $\theta$ the angle between $x_T^a$ and $x_T^b$:
#
# $$x_T(\lambda) = \frac{\sin\big((1-\lambda)\theta\big)}{\sin\theta}\,x_T^a + \frac{\sin(\lambda\theta)}{\sin\theta}\,x_T^b,\qquad \lambda \in [0, 1].$$

# %%
def slerp(a, b, lambdas):
    """Spherical interpolation between two noises a, b (28, 28, 1): one image per λ."""
    theta = np.arccos(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return np.stack([(np.sin((1 - lam) * theta) * a + np.sin(lam * theta) * b) / np.sin(theta) for lam in lambdas])


lambdas = np.linspace(0, 1, 9)
pairs = [(0, 1), (2, 3)]
walks = np.concatenate([slerp(x_T[i], x_T[j], lambdas) for i, j in pairs]).astype(np.float32)  # (2·9, 28, 28, 1)
path = sample(denoiser, schedule, len(walks), sampler="ddim", steps=MID, x_T=walks, clip=clip)
plot_samples(path, config.scaling, ncols=len(lambdas), title=f"DDIM-{MID} from slerp(x_T^a, x_T^b, λ), λ = 0 … 1")

# %% [markdown]
# Each row walks from the image of $x_T^a$ to that of $x_T^b$: in the first, a
# patterned sneaker turns step by step into a plain grey ankle boot, its outline
# rising and its pattern fading; in the second, a sandal stays a sandal for three
# images, jumps to a dark long-sleeved top for three, then to trousers. So the
# change can be gradual or come in a few jumps, but every image along the way is
# still a garment. With DDPM the same walk would give unrelated
# images: its fresh noise, not $x_T$, decides them.
#
# ## The reverse chain, step by step
#
# `sample(..., snapshots=timesteps)` keeps the batch after the step at each given
# $t$ (the snapshot at $t = 0$ is the result), inside the same compiled loop.
# `plot_reverse_grid` draws them for a few images, here DDPM with its 200 steps:

# %%
fractions = np.array([1, 0.95, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0])
columns_t = np.unique(np.minimum((fractions * T).round().astype(int), T - 1))[::-1]  # 199, 190, 175, ..., 25, 0
plot_reverse_grid(denoiser, schedule, n=4, timesteps=columns_t, scaling=config.scaling, seed=0, clip=clip)

# %% [markdown]
# The same as an animation: 16 images, 30 snapshots from $t = 199$ to $t = 0$ after
# the starting noise, written by `keras_diffusion.plotting.save_gif` to
# `runs/05_reverse.gif` (the last frame stays longer):

# %%
frames_t = np.unique(np.linspace(0, T - 1, min(30, T)).round().astype(int))[::-1]  # 199 ... 0
x_T_16 = np.random.default_rng(1).standard_normal((16, 28, 28, 1)).astype(np.float32)
_, snaps = sample(denoiser, schedule, 16, x_T=x_T_16, seed=0, clip=clip, snapshots=frames_t)  # (16, 30, 28, 28, 1)
frames = np.concatenate([x_T_16[:, None], snaps], axis=1)  # (16, 31, 28, 28, 1): x_T first
# scale=1: noise does not compress, so every pixel costs; the browser draws it twice as large
gif = save_gif(frames, pathlib.Path("runs/05_reverse.gif"), config.scaling, ncols=4, scale=1)
print(f"{gif}: {frames.shape[1]} frames, {os.path.getsize(gif) / 1000:.0f} kB")
Image(filename=gif, width=250)

# %% [markdown]
# In the grid and in the GIF the frames are noise down to about $t = 165$; the
# first outlines show between $t \approx 150$ and $t \approx 125$ (the ankle
# boot first), most garments are recognizable by $t \approx 80$ (a dark pullover,
# faint against the noise, only from $t \approx 40$), and the last frames only
# remove the remaining noise. The GIF is 458 kB: noise does not compress, and
# all but the last frames hold some.
#
# ## What next
#
# Pictures and timings say how fast a sampler is, not how good its images are.
# Notebook 06 puts a number on quality: the Fréchet distance (FID) between
# samples and real images in the features of a Fashion-MNIST classifier, next to
# its real-data floor. The same measurement over step counts is one command
# (`--run runs/04_unet` instead of `--pretrained` scores your run of notebook 04):
#
# ```bash
# python -m keras_diffusion.evaluate --pretrained unet-fashion-mnist --n 500 --sampler ddim --steps 10 20 50 100 200
# ```
#
# **Takeaways**
#
# - DDPM's sampler takes all $T$ steps and adds fresh noise at each; its variance
#   can be $\beta_t$ or $\tilde\beta_t$.
# - DDIM (eq. 12) reuses the same trained network: predict $\hat x_0$, re-noise it
#   to the next visited level. It can skip steps; with $\eta = 0$ it adds no noise,
#   and with $\eta = 1$ and every step it is DDPM with $\tilde\beta_t$.
# - Sampling time is proportional to the number of network calls.
# - With $\eta = 0$ the image is a function of $x_T$: the same seed gives the same
#   image, fewer steps mostly give the same garment, and interpolating $x_T$
#   interpolates images.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** DDPM's step goes from $t$ to $t - 1$ only; DDIM's can jump from
#    any $\tau$ to any earlier $\tau'$, with the same trained network. What in the way
#    the network was trained allows the jump?
# 2. **A code change.** The package's DDIM step re-derives
#    $\hat\varepsilon = (x_t - \sqrt{\bar\alpha_t}\,\mathrm{clip}(\hat x_0))/\sqrt{1-\bar\alpha_t}$ from the clipped $\hat x_0$
#    (`recompute_eps=True`, the default, as GLIDE does). Run the cell that compares
#    whole chains of DDPM ($\tilde\beta$) and DDIM ($\eta = 1$) again, once as it is and
#    once with `recompute_eps=False` in the DDIM call. Predict the RMS difference with
#    clipping in each case.
# 3. **A number to predict.** From the fitted line
#    (seconds ≈ 0.01 + 0.0949 × steps for 64 images), predict the time DDIM with 20
#    steps takes, then compare with the table.
# 4. **Code to write.** Write DDIM's update yourself, in NumPy, from $x_\tau$, $\hat\varepsilon$,
#    $\bar\alpha_\tau$ and $\bar\alpha_{\tau'}$ (eq. 12, with $\sigma$ from eq. 16 and no clipping):
#    ```python
#    def my_ddim_step(x_t, eps_hat, alpha_bar, alpha_bar_next, eta=0.0, z=None):
#        ...  # return x_τ'
#    ```
#    Check it against the package's `ddim_step` on the images of the cell
#    "$\eta = 1$ is DDPM again" (its `x_t`, `n` and `z`), for a jump of 10 steps from
#    $\tau = T/2$, with $\eta = 0$ and $\eta = 1$. What should your function return for
#    $\tau' = -1$, where $\bar\alpha_{\tau'} = 1$?

# %% [markdown]
# ## Answers
#
# 1. The loss only ever used the marginals $q(x_t \mid x_0)$: noise an image to level
#    $t$ in one jump, predict the noise. The network never learned anything about
#    single steps $t \to t - 1$, so any process with the same marginals suits it, and
#    DDIM's family, which predicts $\hat x_0$ and re-noises it to the next visited
#    level, has them for every sub-sequence of timesteps. DDPM's step, as eq. 11
#    writes it, undoes one forward step (its $\alpha_t$ and $\beta_t$ are one step's), so it
#    takes every step.
# 2. With `recompute_eps=True` the two chains agree to float rounding, clipped or
#    not: DDIM with $\eta = 1$ and every step *is* the clipped DDPM step with the
#    posterior variance once both use the same, clipped $\hat x_0$
#    (`tests/test_reverse.py` checks one step to $10^{-4}$; whole chains of 200 steps
#    with the linear denoiser of notebook 10 agree to an RMS of $10^{-6}$). With
#    `recompute_eps=False` the clipped $\hat x_0$ is mixed with the network's unclipped
#    $\hat\varepsilon$ and the two chains part: predict a difference far above rounding,
#    a visible fraction of the images' RMS size, because in the first steps of the
#    cosine schedule clipping changes almost every pixel of $\hat x_0$. The saved
#    output shows only the first case (RMS $1.15 \cdot 10^{-6}$ for images of RMS
#    size 0.778); run the second to see how far the chains part.
# 3. $0.01 + 0.0949 \times 20 \approx 1.91$ s; the table measured 1.89 s (the CPU was
#    shared while this notebook ran, yet every repeat time lies within 0.33 s of the
#    line). Per image and network call that is about $0.0949 / 64 \approx 1.5$ ms.
# 4. Predict $\hat x_0$ (DDIM eq. 9), then re-noise it to $\bar\alpha_{\tau'}$:
#    ```python
#    def my_ddim_step(x_t, eps_hat, alpha_bar, alpha_bar_next, eta=0.0, z=None):
#        x0_hat = (x_t - np.sqrt(1 - alpha_bar) * eps_hat) / np.sqrt(alpha_bar)  # predicted image
#        sigma = eta * np.sqrt((1 - alpha_bar_next) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_next))  # eq. 16
#        x_next = np.sqrt(alpha_bar_next) * x0_hat + np.sqrt(1 - alpha_bar_next - sigma**2) * eps_hat  # eq. 12
#        return x_next + sigma * z if eta > 0 else x_next
#
#
#    t, t_next = T // 2, T // 2 - 10
#    eps = np.asarray(denoiser([x_t, np.full(n, t)]))  # (n, 28, 28, 1)
#    for eta in (0.0, 1.0):
#        mine = my_ddim_step(x_t, eps, schedule.alpha_bars[t], schedule.alpha_bars[t_next], eta, z)
#        package = np.asarray(ddim_step(schedule, x_t, t, t_next, eps, eta=eta, noise=z))
#        print(f"eta={eta}: max |mine - ddim_step| = {np.abs(mine - package).max():.1e}")
#    ```
#    Both differences should be float32 rounding, about $10^{-6}$. For $\tau' = -1$,
#    $\bar\alpha_{\tau'} = 1$ makes $\sigma = 0$ and the direction term vanish: the step
#    returns $\hat x_0$ itself, whatever $\eta$ is (the package extends its $\bar\alpha$
#    array by a 1 for exactly this).
