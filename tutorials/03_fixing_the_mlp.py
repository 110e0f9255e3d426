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
# # 03 · Fixing the MLP, one flaw at a time
#
# Notebook 02 found why the classic MLP demo draws static: data off-centre in
# $[0, 1]$, a schedule that never reaches pure noise, time given as one number
# $t/T$ among 785 inputs, and a plain MLP. Here we fix those flaws **one at a
# time**, each with a switch of the package, and train every rung of this ladder
# on the same data, seed and number of epochs (5 here; the README's ladder table,
# made by `python -m keras_diffusion.bench ladder --epochs 2`, trains 2):
#
# | rung | what changes | switch |
# |---|---|---|
# | 1 | nothing: the classic demo | `TrainConfig(model="mlp_seed")` |
# | 2 | data in $[-1, 1]$ | `scaling="minus_one_one"` |
# | 3 | a schedule that ends in noise, $\bar\alpha_T \approx 0$ | `schedule="cosine"` |
# | 4 | a sinusoidal time embedding | `model_kwargs={"time_embedding": "sinusoidal"}` |
# | 5 | time in every block of a residual MLP | `model="mlp"` |
# | 6 | the same MLP predicts $x_0$ instead of $\varepsilon$ | `objective="x0"` |
#
# Each rung keeps the fixes before it. On the way we meet a fix of the
# *sampler*, not of training: clipping the predicted $\hat x_0$, without which
# the cosine schedule's first reverse step goes wrong.
#
# Full run: 7.4 min on a 2-core CPU (no GPU) shared with another job. Set `KERAS_DIFFUSION_QUICK=1` for a
# quick run (512 images, 1 epoch, a tiny `mlp`; the tests do).
#
# Prerequisites: notebook 01 (schedules) and notebook 02 (the classic demo and its flaws).

# %%
# %matplotlib inline
import logging
import os
import time

import numpy as np
from matplotlib.figure import Figure

from keras_diffusion import NoiseSchedule, build_model
from keras_diffusion.bench import loss_against_t
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.models import model_defaults
from keras_diffusion.models.embeddings import SinusoidalEmbedding
from keras_diffusion.plotting import ladder_figure, plot_samples
from keras_diffusion.reverse import sample
from keras_diffusion.training import sampling_clip, train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): less data, one epoch, a tiny mlp.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
LIMIT = 512 if QUICK else None  # training images (None: all 60,000)
EPOCHS = 1 if QUICK else 5  # the same for every rung; the classic demo trains for 5
MLP_KWARGS = {"hidden": 64, "blocks": 1} if QUICK else {}  # {}: the mlp's defaults (hidden 512, 3 blocks)
N_SHOW = 16  # samples shown per rung
SEED = 0  # the same starting noise x_T for every rung's samples
SUFFIX = "_quick" if QUICK else ""  # run directories: runs/03_<rung><SUFFIX>, relative to this notebook
# Each rung's sampler is its own compiled loop, traced once; TensorFlow counts the
# traces of all of them together and warns about "retracing". Silence that.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
print(f"QUICK={QUICK}: limit={LIMIT}, epochs={EPOCHS}, mlp kwargs={MLP_KWARGS or 'defaults'}")

# %% [markdown]
# One helper trains a rung with `keras_diffusion.training.train` (the function
# behind `python -m keras_diffusion.train`), loads the trained denoiser back from
# its run directory with `load_run`, and draws `N_SHOW` samples from the same
# seed, so every rung starts its reverse chains from the same noise.

# %%
rungs = {}  # label -> what we keep of each rung for the comparison at the end


def train_rung(label, name, **settings):
    """Train one rung for EPOCHS epochs; return its denoiser, schedule and config (loaded from the run)."""
    config = TrainConfig(epochs=EPOCHS, limit=LIMIT, n_samples=N_SHOW, **settings)
    start = time.perf_counter()
    # overwrite=True: running the notebook again replaces its own earlier runs
    run_dir, history = train(config, out=f"runs/03_{name}{SUFFIX}", overwrite=True)
    minutes = (time.perf_counter() - start) / 60
    denoiser, schedule, config = load_run(run_dir)
    rungs[label] = dict(config=config, loss=history["loss"], minutes=minutes, params=denoiser.count_params(),
                        denoiser=denoiser, schedule=schedule)
    print(f"{label}: {minutes:.1f} min; loss per epoch {np.round(history['loss'], 3)}")
    print(f"  scaling={config.scaling}, schedule={schedule.name}, ema={config.ema}, clip={config.clip}")
    return denoiser, schedule, config


def show_samples(label, denoiser, schedule, config, clip):
    """Draw N_SHOW samples from SEED, keep them (uint8) for the comparison, and plot them."""
    x = sample(denoiser, schedule, N_SHOW, seed=SEED, clip=clip)  # (N_SHOW, 28, 28, 1), float32
    rungs[label]["samples"] = to_uint8(x, config.scaling)
    rungs[label]["clip"] = clip
    title = f"{label}: final loss {rungs[label]['loss'][-1]:.3f}, clip={clip}"
    return plot_samples(x, config.scaling, title=title)


# %% [markdown]
# ## Rung 1: the classic demo
#
# Exactly notebook 02's model and settings: pixels in $[0, 1]$, linear betas
# $10^{-4} \ldots 0.02$ with $T = 200$, time as $t/T$, no clipping.

# %%
denoiser, schedule, config = train_rung("1 classic demo", "classic", model="mlp_seed")
show_samples("1 classic demo", denoiser, schedule, config, clip=sampling_clip(config))

# %% [markdown]
# Static, as in notebook 02. `sampling_clip(config)` is `None` here: the classic
# demo does not clip (more on clipping at rung 3).
#
# ## Rung 2: data in $[-1, 1]$
#
# The noise $\varepsilon \sim \mathcal{N}(0, I)$ is centred on 0 with variance 1.
# DDPM maps pixels to $x_0 = 2p - 1 \in [-1, 1]$ so that the data are centred
# too and as strong as the schedule assumes: in $[0, 1]$ the pixels have half
# the range, a quarter of the signal power, and a mean of 0.29 that the network
# must learn to put back at each $t$. One switch, `scaling="minus_one_one"`;
# everything else stays the demo's.

# %%
denoiser, schedule, config = train_rung("2 + data in [-1, 1]", "minus_one_one", model="mlp_seed", scaling="minus_one_one")
show_samples("2 + data in [-1, 1]", denoiser, schedule, config, clip=sampling_clip(config))

# %% [markdown]
# **Do not compare this loss with rung 1's.** The loss is the error on
# $\varepsilon$, and how hard $\varepsilon$ is to guess depends on how much
# signal $x_t$ holds: with the dimmer $[0, 1]$ data, $x_t$ is almost all noise and
# $\hat\varepsilon \approx x_t / \sqrt{1 - \bar\alpha_t}$ is already a good answer.
# Changing the data range (or, next, the schedule) changes the task, so its
# loss moves for reasons that have nothing to do with sample quality. Losses
# are comparable only between rungs with the same scaling and schedule
# (rungs 3 to 5 below).
#
# ## Rung 3: a schedule that ends in noise
#
# Notebook 01 showed that linear betas $10^{-4} \ldots 0.02$ were tuned for
# $T = 1000$: at $T = 200$ they leave $\sqrt{\bar\alpha_T} \approx 0.36$ of the image
# in $x_T$, so training never shows the network the pure noise that sampling
# starts from. Two schedules fix that (notebook 01 plots both):
#
# - `scaled_linear`: the same linear betas times $1000/T$ (improved-diffusion's
#   "linear"), so that $T = 200$ destroys the image as $T = 1000$ did;
# - `cosine` (Nichol & Dhariwal 2021, eq. 17): $\bar\alpha_t = f(t)/f(0)$ with
#   $f(t) = \cos^2\!\big(\tfrac{t/T + s}{1 + s}\cdot\tfrac{\pi}{2}\big)$, which removes
#   the signal more evenly over $t$ and ends at $\bar\alpha_T \approx 0$.

# %%
print(f"{'schedule':>13} | sqrt(ᾱ_T) at T=200")
for name in ("linear", "scaled_linear", "cosine"):
    print(f"{name:>13} | {NoiseSchedule.from_name(name, 200).sqrt_alpha_bars[-1]:.1e}")

# %% [markdown]
# We take `schedule="cosine"`, the default of the package's `mlp` and `unet`
# (`schedule="scaled_linear"` is the same one-word switch). We also set
# `clip=True` for this rung and the next; what that does, and why it matters
# with this schedule, comes right after the samples. First, the samples
# **without** clipping:

# %%
denoiser, schedule, config = train_rung("3 + cosine schedule", "cosine", model="mlp_seed", scaling="minus_one_one", schedule="cosine", clip=True)
no_clip = sample(denoiser, schedule, N_SHOW, seed=SEED, clip=None)  # (N_SHOW, 28, 28, 1)
plot_samples(no_clip, config.scaling, title="3 + cosine schedule, clip=None")

# %% [markdown]
# ## Clipping $\hat x_0$
#
# Every reverse step can be written through the model's guess of the clean image.
# Solve the closed form $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ for $x_0$:
#
# $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},
# \qquad
# x_{t-1} = \underbrace{\frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}}_{\text{coef}_1}\,\hat x_0
# + \underbrace{\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}}_{\text{coef}_2}\,x_t + \sigma_t z
# \qquad\text{(DDPM eq. 7)}.$$
#
# This is the same update as DDPM eq. 11 of notebook 02, rearranged. But it
# shows where an error $\delta$ in $\hat\varepsilon$ goes: into $\hat x_0$ multiplied
# by $\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t}$, and into $x_{t-1}$ multiplied by
# $\beta_t / (\sqrt{1-\bar\alpha_t}\sqrt{\alpha_t})$. With the cosine schedule the first
# reverse step ($t = T-1$) has $\sqrt{\bar\alpha_t} \approx 2.5 \cdot 10^{-4}$ and
# $\beta_t = 0.999$ (the cap that keeps it from being exactly 1):

# %%
print(f"{'schedule':>13} | {'t':>3} | sqrt(ᾱ_t) | error x in x̂_0 | error x in x_(t-1)")
for name in ("linear", "cosine"):
    s = NoiseSchedule.from_name(name, 200)
    for t in (199, 198, 190, 100, 0):
        to_x0 = s.sqrt_one_minus_alpha_bars[t] / s.sqrt_alpha_bars[t]
        to_prev = s.betas[t] / (s.sqrt_one_minus_alpha_bars[t] * np.sqrt(s.alphas[t]))
        print(f"{name:>13} | {t:>3} | {s.sqrt_alpha_bars[t]:9.1e} | {to_x0:14.1f} | {to_prev:17.2f}")

# %% [markdown]
# At the first cosine step an error in $\hat\varepsilon$ is blown up about 4000
# times in $\hat x_0$ and 30 times in $x_{T-1}$; with the linear schedule the
# factors are at most 2.6 and 0.02. A network whose $\hat\varepsilon$ is off by a
# little at $t = T-1$ (all of ours are) throws the chain far outside the data
# range in one step. The later steps do not pull it back: each divides by
# $\sqrt{\alpha_t}$, a factor $1/\sqrt{\bar\alpha_T}$ over the whole chain, 2.75 for
# the linear schedule (notebook 02) but about 4000 for the cosine one, and only
# a very accurate $\hat\varepsilon$ cancels that.
#
# The fix, from DDPM's reference code: **clip $\hat x_0$ to the data range**
# before it enters the update. $\hat x_0$ is a guess of an image, and no image
# has pixels outside $[-1, 1]$; where nothing is clipped the update is unchanged.
# In the package it is the `clip` argument of `sample` (and of `ddpm_step`),
# `clip=(-1, 1)`. A run's `config.clip` says whether its sampling should clip,
# and `keras_diffusion.training.sampling_clip(config)` turns that into the
# argument: the data range, or `None`.

# %%
clip = sampling_clip(config)
print(f"config.clip={config.clip}, sampling_clip(config)={clip}")
clipped = sample(denoiser, schedule, N_SHOW, seed=SEED, clip=clip)  # the same x_T and z as no_clip
for name, x in (("clip=None   ", no_clip), (f"clip={clip}", clipped)):
    outside = np.mean(np.abs(x) > 1)
    print(f"{name}: std {x.std():6.2f}, range [{x.min():8.2f}, {x.max():7.2f}], pixels outside [-1, 1]: {outside:.0%}")
show_samples("3 + cosine schedule", denoiser, schedule, config, clip=clip)

# %% [markdown]
# Same network, same noise, same schedule; only the sampler changed. From here
# on every rung clips (`model="mlp"` clips by default).
#
# ## Rung 4: a sinusoidal time embedding
#
# Notebook 02 found that `mlp_seed` gives nearly the same answer whether it is
# told $t = 0$ or $t = 199$: $t/T$ is one input among 785, a number that the first
# layer mixes with the pixels. DDPM describes $t$ instead by many sines and cosines,
# the transformer's position encoding (Vaswani et al. 2017, sec. 3.5):
#
# $$\mathrm{emb}(t) = \big[\sin(\omega_0 t), \dots, \sin(\omega_{d/2-1} t),\ \cos(\omega_0 t), \dots, \cos(\omega_{d/2-1} t)\big],
# \qquad \omega_i = 10000^{-i/(d/2)},\quad i = 0, \dots, d/2 - 1.$$
#
# The frequencies fall geometrically from $\omega_0 = 1$ (a period of $2\pi \approx 6$
# steps) towards $1/10000$ (the *max period* of 10000 is the transformer's).
# Fast channels tell neighbouring $t$ apart, slow ones say roughly where in
# $[0, T)$ we are; and since $\sin^2 + \cos^2 = 1$ every $t$ gets a vector of the
# same length, $|\mathrm{emb}(t)|^2 = d/2$, with
# $\mathrm{emb}(t)\cdot\mathrm{emb}(t') = \sum_i \cos\big(\omega_i (t - t')\big)$: nearby
# timesteps get similar vectors, distant ones different vectors. `SinusoidalEmbedding`
# computes it; here for $d = 32$, the size `mlp_seed` uses:

# %%
T = 200
emb = np.asarray(SinusoidalEmbedding(32)(np.arange(T)))  # (T, 32)
periods = 2 * np.pi / np.exp(-np.log(10000) * np.arange(16) / 16)
print(f"emb shape {emb.shape}; |emb(t)|² = {np.mean(np.sum(emb ** 2, axis=1)):.1f} for every t; "
      f"periods of the 16 frequencies: {periods[0]:.1f} to {periods[-1]:.0f} steps")
fig = Figure(figsize=(11, 3.4), layout="constrained")
left, right = fig.subplots(1, 2, width_ratios=[1.7, 1])
image = left.imshow(emb.T, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
left.set(xlabel="timestep t", ylabel="channel (0-15 sin, 16-31 cos)", title="SinusoidalEmbedding(32): emb(t), t = 0..199")
fig.colorbar(image, ax=left)
image = right.imshow(emb @ emb.T / 16, cmap="viridis", vmin=-1, vmax=1)
right.set(xlabel="t'", ylabel="t", title="emb(t)·emb(t') / |emb|²")
fig.colorbar(image, ax=right)
fig

# %% [markdown]
# On the left, the top channels (fast frequencies) flip sign every few steps;
# the lower sine channels are slow ramps, and with $T = 200$ the slowest ones
# (periods in the thousands of steps) barely move, so only part of the 32
# channels carries information here. On the right, the similarity of two
# embeddings depends only on $t - t'$ and falls off away from the diagonal.
#
# `model_kwargs={"time_embedding": "sinusoidal"}` swaps `mlp_seed`'s $t/T$ for
# `SinusoidalEmbedding(32)` followed by a small MLP (Dense 128 swish, Dense 128),
# as DDPM's U-Net does, and leaves the rest of the demo alone: the 128 numbers
# are concatenated to the 784 pixels at the input.

# %%
denoiser, schedule, config = train_rung(
    "4 + sinusoidal time", "sinusoidal", model="mlp_seed", scaling="minus_one_one", schedule="cosine", clip=True,
    model_kwargs={"time_embedding": "sinusoidal"},
)
show_samples("4 + sinusoidal time", denoiser, schedule, config, clip=sampling_clip(config))

# %% [markdown]
# ## Rung 5: time in every block, `model="mlp"`
#
# Concatenated at the input, even a good embedding is still diluted by the first
# layer. The package's `mlp` gives it to every block and makes the network deep
# enough to use it, with the two tools that make deep MLPs train: residual
# connections and LayerNorm. With $e = \mathrm{MLP}(\mathrm{emb}(t))$ ($d = 128$ here):
#
# $$h_0 = W_\text{in}\,\mathrm{flatten}(x_t),\qquad
# h_{k+1} = h_k + W_k^{b}\,\mathrm{swish}\big(W_k^{a}\,\mathrm{LayerNorm}(h_k) + W_k^{e}\,e\big),\qquad
# \hat\varepsilon = W_\text{out}\,\mathrm{LayerNorm}(h_K).$$
#
# Every block adds its own learned projection of the time embedding, so every
# layer knows the noise level. Its defaults are the fixes so far ($[-1, 1]$,
# cosine, clipping) **plus one more**: an exponential moving average (EMA) of the
# weights with momentum 0.999, which samples with a smoothed copy of the
# weights. So this rung changes two things, the architecture and the EMA.

# %%
print("mlp defaults:", model_defaults("mlp"))
build_model("mlp", **MLP_KWARGS).summary(line_length=100)

# %%
denoiser, schedule, config = train_rung("5 mlp (time in every block)", "mlp", model="mlp", model_kwargs=MLP_KWARGS)
show_samples("5 mlp (time in every block)", denoiser, schedule, config, clip=sampling_clip(config))

# %% [markdown]
# ## Rung 6: predict $x_0$, not $\varepsilon$, `objective="x0"`
#
# One more switch, this time of what the network is asked for. The same `mlp`
# can output a guess $\hat x_0$ of the clean image instead of the noise; since
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$, that guess
# gives a noise estimate too,
#
# $$\hat\varepsilon = \frac{x_t - \sqrt{\bar\alpha_t}\,\hat x_0}{\sqrt{1-\bar\alpha_t}},
# \qquad\text{so}\qquad
# \lVert x_0 - \hat x_0\rVert^2 = \frac{1-\bar\alpha_t}{\bar\alpha_t}\,\lVert \varepsilon - \hat\varepsilon\rVert^2 .$$
#
# The package puts that formula after the network (a layer `EpsFromX0`, in
# float32), so every sampler still gets $\hat\varepsilon$, and trains on
# $\lVert x_0 - \hat x_0\rVert^2$. Two things change for the MLP. The loss is the
# $\varepsilon$-loss divided by the signal-to-noise ratio $\bar\alpha_t/(1-\bar\alpha_t)$:
# it weighs the noisy steps, where the garment has to be invented, far more
# than the clean ones. And $\hat\varepsilon$ now contains $x_t$ itself: at small
# $t$, where predicting $\varepsilon$ means copying the noise pixel by pixel
# through every layer, the formula does the copying, and the 512-unit output
# layer no longer bounds the rank of $\hat\varepsilon$.

# %%
denoiser, schedule, config = train_rung("6 mlp, predicts x0", "mlp_x0", model="mlp", model_kwargs=MLP_KWARGS, objective="x0")
show_samples("6 mlp, predicts x0", denoiser, schedule, config, clip=sampling_clip(config))

# %% [markdown]
# Its training loss is in $x_0$ units, so it does not compare with the curves
# of rungs 1 to 5. The cell below scores rungs 3 to 6 (they share the data range
# and the schedule) on test images, at a few $t$, with the same noise for every
# rung (`bench.loss_against_t`, what the README's ladder uses): the
# $\varepsilon$-loss of each rung's $\hat\varepsilon$, and the $x_0$ error
# $\lVert x_0 - \hat x_0\rVert^2$ of the same prediction, which is the
# $\varepsilon$-loss divided by the SNR.

# %%
test_pixels, _ = load_images("fashion_mnist", "test", limit=200 if QUICK else 1000)
TS = [0, 10, 50, 100, 150, 199]
print(f"{'rung':<28} | loss | " + " | ".join(f"t={t:>3}" for t in TS))
for label in [label for label in rungs if rungs[label]["config"].schedule == "cosine"]:
    r = rungs[label]
    eps_loss = np.array(loss_against_t(DiffusionModel(r["denoiser"], r["schedule"]), test_pixels, "minus_one_one", TS))
    x0_loss = eps_loss / r["schedule"].snr[TS]  # ‖x_0 − x̂_0‖² = ‖ε − ε̂‖² / SNR(t), image by image
    print(f"{label:<28} | ε    | " + " | ".join(f"{v:5.3f}" for v in eps_loss))
    print(f"{'':<28} | x_0  | " + " | ".join(f"{v:5.3f}" for v in x0_loss))

# %% [markdown]
# ## The ladder side by side
#
# The first 8 samples of each rung, all from the same starting noise $x_T$ and
# the same noise $z$ at every step:

# %%
labels = list(rungs)
ladder_figure(labels, [rungs[label]["samples"][:8] for label in labels])

# %% [markdown]
# And the losses, epoch by epoch (remember: only rungs 3 to 5 share a data range,
# a schedule and a loss, so only their curves compare; rung 6's is in $x_0$ units):

# %%
fig = Figure(figsize=(6.5, 3.6), layout="constrained")
ax = fig.subplots()
for label in labels:
    loss = rungs[label]["loss"]
    ax.plot(range(1, len(loss) + 1), loss, marker="o", label=label)
ax.set(xlabel="epoch", ylabel="MSE on ε", title="training loss per rung")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig

# %% [markdown]
# A loss cannot rank rungs that solve different tasks, so we add one rough,
# task-independent number: how far each sample is from its **nearest training
# image** (root mean square over pixels in $[0, 1]$). Static is far from every
# garment; a sample that looks like clothes has a close neighbour. For scale, the
# same number for real test images. It is not a quality metric (a blurry
# average garment scores well, and it cannot see variety); FID comes in a later
# notebook.

# %%
reference, _ = load_images("fashion_mnist", "train", limit=2000 if QUICK else 20000)
reference = scale_images(reference, "zero_one").reshape(len(reference), -1)  # (R, 784) in [0, 1]


def nearest_distance(pixels):
    """RMS distance of each uint8 image (N, 28, 28, 1) to its nearest reference image."""
    x = pixels.reshape(len(pixels), -1).astype(np.float32) / 255  # (N, 784)
    d2 = (x**2).sum(1)[:, None] + (reference**2).sum(1)[None, :] - 2 * x @ reference.T  # (N, R)
    return np.sqrt(np.maximum(d2.min(axis=1), 0) / x.shape[1])  # (N,)


test_images, _ = load_images("fashion_mnist", "test", limit=N_SHOW)
print(f"{'rung':<28} | {'params':>9} | {'scaling':>13} | {'schedule':>8} | {'clip':>11} | {'min':>4} | "
      f"{'final loss':>10} | {'nearest-image distance':>22}")
for label in labels:
    r = rungs[label]
    config = r["config"]
    print(f"{label:<28} | {r['params']:>9,} | {config.scaling:>13} | {config.schedule:>8} | {str(r['clip']):>11} | "
          f"{r['minutes']:4.1f} | {r['loss'][-1]:10.4f} | {nearest_distance(r['samples']).mean():22.3f}")
print(f"{'real test images':<28} | {'':>9} | {'':>13} | {'':>8} | {'':>11} | {'':>4} | {'':>10} | "
      f"{nearest_distance(test_images).mean():22.3f}")

# %% [markdown]
# ## What each fix bought
#
# Measured in the full run above (5 epochs of the 60,000 images per rung, on a
# 2-core CPU). The README's ladder table, made by `python -m keras_diffusion.bench
# ladder --epochs 2` and not rerun here, trains each rung for 2 epochs instead, so
# its losses are a little higher (0.49 for the `mlp` against 0.45 here):
#
# - **Data in $[-1, 1]$ and the cosine schedule** change the *task*: after them
#   the model is trained on the pure noise that sampling starts from. Alone they
#   do not make clothes, and rung 3 only samples sensibly because $\hat x_0$ is
#   clipped: without it the same network's samples reach pixel values in the
#   thousands (printed above).
# - **The sinusoidal embedding** at the input changes little: rung 4's loss
#   (0.93) and samples are much like rung 3's (0.89). A good description of $t$ does not
#   help when the first layer mixes it into 784 pixels.
# - **Time in every block** (the `mlp`) is the first change the loss sees: it
#   halves it (about 0.45 against about 0.9 for rungs 3 and 4, the same task),
#   and its samples get blobs of light and dark, closer to real images than any
#   earlier rung (the nearest-image distance falls from 0.50-0.51 for rungs 1 and 2
#   and 0.43 for rungs 3 and 4 to 0.38; real test images score 0.12).
#
# None of rungs 1 to 5 draws clothes after 5 epochs. Rung 6 does:
#
# - **Predicting $x_0$** (rung 6) is the change that makes the MLP draw clothes:
#   the same network as rung 5, the same 5 epochs (2.2 min against 1.8), and its
#   samples are shoes, boots, tops and trousers, smooth and short on detail. Their
#   nearest-image distance is 0.121, the same as real test images', against 0.38
#   for rung 5. The table of losses against $t$ says why. Rungs 3 to 5 never learn
#   to predict $\varepsilon$: their $\varepsilon$-loss is 0.99-1.01 at $t = 0$ (no better than
#   $\hat\varepsilon = 0$) and 0.36-0.92 even at $t = 199$, where $x_t$ *is* the noise.
#   Rung 6's $\varepsilon$-loss is 0.000 at $t = 199$ and 0.060 at $t = 100$; at $t = 0$ it
#   is 146: an $x_0$ error of 0.037 times the SNR there, 3,921 (exercise 4). But at
#   that step the sampler takes $\hat x_0$, whose error is small.
#
# What these runs show, and what they do not:
#
# - With the cosine schedule, clipping $\hat x_0$ is needed to *sample* at all
#   (rung 3 without it reaches pixel values in the thousands).
# - They do **not** show that an MLP cannot denoise: rung 6 does. And the best *linear* denoiser,
#   fit in closed form in seconds from the images' mean and covariance (`model="linear"`;
#   not fit in this notebook), scores 0.164 in the settings of rungs 3 to 5 (notebook 10
#   fits it and prints that number), below rungs 1 to 5 (0.45 to 0.93); 0.110 in rung 1's
#   settings and 0.194 in rung 2's (`python -m keras_diffusion.train --model linear
#   --scaling zero_one --schedule linear`, and with `--scaling minus_one_one`). No
#   $\varepsilon$-rung has learned even what "PCA denoising" gets for free.
# - Every rung's output layer maps 512 units to 784 pixels, so its $\hat\varepsilon$ lies
#   in a 512-dimensional subspace and its loss cannot fall below $272/784 = 0.347$
#   at any $t$ (exercise 3). The `mlp`'s 0.448 sits close to that floor: a good part
#   of what this ladder measures is that bottleneck and a short budget, not "MLPs
#   against convolutions".
#
# Does an MLP without the bottleneck close the gap, at equal wall-clock rather
# than equal epochs? This notebook does not measure it; the README's "At equal
# wall-clock" tables do, made by `python -m keras_diffusion.bench ladder --seconds 120`
# (FID of 500 samples): with the same two minutes of training, the `mlp` at 1024 units
# halves the test loss of the 512-unit one (0.200 against 0.434) but still draws
# no clothes (FID 59 against the U-Net's 33, most samples one class). The same
# two MLPs predicting $x_0$ score FID 7.3 and 6.0 with samples of every class,
# better than the U-Net at that budget (33 with $\varepsilon$, 16 with $x_0$); notebook 06
# explains FID. Given 23 to 29 epochs in those two minutes, rungs 1 to 4 still draw
# static.
#
# **Next:** notebook 04 keeps the core (schedule, forward and reverse processes,
# clipping) and the $\varepsilon$ objective, and replaces the MLP with a U-Net
# (`model="unet"`): convolutions that see neighbouring pixels, skip connections,
# and the time embedding in every residual block. Its samples have the detail
# rung 6's lack.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** Rung 2's final loss (0.922) is higher than rung 1's (0.865).
#    Did moving the data to $[-1, 1]$ make the model worse? Use the closed-form linear
#    denoiser (notebook 10; `python -m keras_diffusion.train --model linear` fits it) as a
#    yardstick: its mean loss is 0.110 in rung 1's settings, 0.194 in rung 2's and 0.164
#    in those of rungs 3 to 5.
# 2. **A code change.** Add the linear baseline to the ladder, before rung 1:
#    ```python
#    denoiser, schedule, config = train_rung("0 linear (closed form)", "linear", model="linear")
#    show_samples("0 linear (closed form)", denoiser, schedule, config, clip=sampling_clip(config))
#    ```
#    (`train` fits it in closed form: no gradient step.) Predict its loss, roughly how
#    long it takes and its nearest-image distance before running the notebook.
# 3. **A number to predict.** The `mlp`'s last layer maps 512 units to 784 pixels.
#    What is the lowest loss that *any* weights could reach with it, at any $t$, when
#    the noise $\varepsilon$ is white? Compare with its final loss.
# 4. **A number to predict.** Rung 6's $\hat x_0$ is off by $\lVert x_0 - \hat x_0\rVert^2 = 0.037$
#    per pixel at $t = 0$, where $\bar\alpha_0 = 0.99974$. What $\varepsilon$-loss does that give?
#    And what $x_0$ error does rung 5's $\varepsilon$-loss of 0.994 at $t = 0$ amount to?
#    Which of the two would you rather sample with at the last step?

# %% [markdown]
# ## Answers
#
# 1. No: the task changed. Brighter, centred data leave more signal in $x_t$ at every
#    $t$, so $\varepsilon$ is harder to guess and even the best linear denoiser scores more
#    (0.194 against 0.110). Divide each loss by the baseline of its settings: rung 1 is
#    at 7.9 times the baseline (0.865/0.110), rung 2 at 4.8 (0.922/0.194), rungs 3 and 4
#    at 5.4 and 5.7 (0.891/0.164, 0.927/0.164), the `mlp` at 2.7 (0.448/0.164). By that yardstick $[-1, 1]$ helped;
#    and no rung comes near the baseline, which needs no training.
# 2. Its loss is 0.164, exactly (computed from the eigenvalues of the images'
#    covariance, not estimated). Fitting it takes about 10 s on a 2-core CPU (one
#    pass to get the covariance, one eigendecomposition), faster than one epoch of
#    any rung; the notebook then also draws the run's figures. Its samples are
#    blurry, garment-shaped blobs; with the two lines added, their nearest-image distance
#    comes out at about 0.21 (not in the saved outputs), against 0.38 to 0.51 for the MLP
#    rungs and 0.12 for real images. The README's quality numbers, made by
#    `python -m keras_diffusion.evaluate --run runs/linear --n 2000 --sampler ddim --steps 50`
#    and `python -m keras_diffusion.bench ladder` (not run here), say the same: FID 52
#    (DDIM-50, $n = 2000$) where the MLP rungs scored 70 to 85.
# 3. $272/784 = 0.347$. Whatever its input, the layer's output $W h + b$ lies in a
#    512-dimensional subspace, and the part of a white $\varepsilon$ outside it carries
#    $272/784$ of its energy on average (`tests/test_loss_floor.py` checks it, even for
#    a network told $\varepsilon$ itself). The `mlp` ends at 0.448, only 0.10 above that floor:
#    much of what separates it from the linear baseline's 0.164 is this bottleneck,
#    not the lack of convolutions. A width of at least 784 (`MLP_KWARGS = {"hidden": 1024}`)
#    removes the floor.
# 4. The two losses differ by the SNR, $\bar\alpha_0/(1 - \bar\alpha_0) = 0.99974/0.00026 = 3{,}921$:
#    $\lVert\varepsilon - \hat\varepsilon\rVert^2 = \mathrm{SNR} \cdot \lVert x_0 - \hat x_0\rVert^2 = 3{,}921 \times 0.037 = 146$,
#    what the table printed. Rung 5's 0.994 is an $x_0$ error of $0.994/3{,}921 = 0.00025$,
#    150 times smaller than rung 6's: at $t = 0$, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_0}\,\hat\varepsilon)/\sqrt{\bar\alpha_0}$
#    is almost $x_t$ whatever $\hat\varepsilon$ is. So at the last step rung 5 is the better
#    denoiser, and it does not matter: its $x_t$ is static by then, because it failed at
#    the noisy steps that make the garment, where rung 6 succeeds. The $\varepsilon$-loss
#    weighs the clean steps, the $x_0$-loss the noisy ones.
