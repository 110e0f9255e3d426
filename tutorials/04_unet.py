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
# # 04 · A U-Net: convolutions, skip connections, and time in every block
#
# In notebook 03 no MLP trained to predict $\varepsilon$ drew clothes, and the same
# MLP trained to predict $x_0$ drew smooth garments short on detail. What is left is the fifth flaw of notebook 02:
# an MLP ignores that an image is a grid of neighbouring pixels. This notebook
# replaces the MLP with the package's U-Net (`model="unet"`), keeping everything
# else. You will:
#
# 1. see, on untrained networks, what an MLP cannot use and a
#    convolution can, and what that does to the number of parameters;
# 2. take the package's U-Net apart level by level, with skip connections;
# 3. see how the sinusoidal time embedding enters *every* residual block;
# 4. load it trained and look at its samples, its reverse chain and its loss, and check that it really uses $t$;
# 5. compare it with notebook 03's best MLP.
#
# Full run: 1.3 min on a shared 2-core CPU (no GPU). It loads the pretrained
# `unet-fashion-mnist` shipped with the package, or your own run of the default
# U-Net in `runs/04_unet` when there is one (`python -m keras_diffusion.train
# --model unet --out runs/04_unet` in `tutorials/`, 15 min here).
# `KERAS_DIFFUSION_QUICK=1` (the tests set it) always trains a tiny U-Net (widths 8 and 16, no attention, $T = 20$) on 512 images for 1 epoch,
# into `runs/04_unet_quick`; its samples are noise, the code paths are the same.
#
# Prerequisites: notebooks 01, 02 and 03 (the time embedding, clipping x̂_0).
#
# Reference: Ronneberger, Fischer & Brox 2015, *U-Net*, https://arxiv.org/abs/1505.04597;
# DDPM's U-Net: Ho, Jain & Abbeel 2020, appendix B, https://arxiv.org/abs/2006.11239.

# %%
# %matplotlib inline
import logging
import os
import pathlib
import time
from collections import defaultdict

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from matplotlib.figure import Figure

from keras_diffusion import build_model, q_sample
from keras_diffusion import pretrained
from keras_diffusion.checkpoint import CONFIG, HISTORY, load_run, read_config, read_state_epoch
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.models import model_defaults
from keras_diffusion.plotting import plot_loss, plot_reverse_grid, plot_samples, read_history
from keras_diffusion.reverse import sample
from keras_diffusion.training import sampling_clip, train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): a tiny U-Net, always trained here.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
if QUICK:
    # xla=False: compiling the training step with XLA takes longer than 8 batches of training
    CONFIG_04 = TrainConfig(model="unet", epochs=1, limit=512, n_samples=8, xla=False, timesteps=20,
                            model_kwargs={"widths": [8, 16], "blocks": 1, "attention": False})
    RUN_DIR = pathlib.Path("runs/04_unet_quick")  # relative to this notebook
else:
    CONFIG_04 = TrainConfig(model="unet")  # the default run; yours is trained from the command line (below)
    RUN_DIR = pathlib.Path("runs/04_unet")
N_SAMPLES = 8 if QUICK else 64  # samples drawn at the end
N_EVAL = 32 if QUICK else 256  # test images for the "does it use t" check
# Each sampler setting is its own compiled loop, traced once; TensorFlow counts the
# traces of all of them together and warns about "retracing". Silence that.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
keras.utils.set_random_seed(0)  # the untrained networks below get the same weights on every run
print(f"QUICK={QUICK}: run directory {RUN_DIR}, model kwargs {CONFIG_04.model_kwargs or 'the defaults'}")

# %% [markdown]
# ## What an MLP cannot use
#
# ### Shuffle the pixels
#
# The first layer of `mlp_seed` computes $h = \mathrm{relu}(W_1 x + b_1)$ with one
# weight per (pixel, unit) pair. Nothing in it says which pixels are neighbours:
# if we shuffle the 784 pixels of every image with one fixed permutation $P$, and
# shuffle the rows of $W_1$ (and the output units) the same way, the network
# computes exactly the same thing. So an MLP learns from images whose pixels
# have been scrambled into noise just as well as from Fashion-MNIST: it gets no
# help from the pixel next to a sleeve being probably sleeve too. Checked with the classic demo's
# network, untrained:

# %%
images, _ = load_images("fashion_mnist", "test", limit=N_EVAL)
x0 = scale_images(images, "minus_one_one")  # (N, 28, 28, 1) in [-1, 1]
perm = np.random.default_rng(0).permutation(28 * 28)  # P: new pixel i is old pixel perm[i]


def shuffle(x):
    """Apply P to the pixels of each image (N, 28, 28, 1)."""
    return x.reshape(len(x), -1)[:, perm].reshape(x.shape)


mlp = build_model("mlp_seed")  # random weights: flatten ⊕ t/T → 512 → 512 → 784
w1, b1, w2, b2, w3, b3 = mlp.get_weights()  # w1: (785, 512), the last row for t/T; w3: (512, 784)
shuffled_mlp = build_model("mlp_seed")
shuffled_mlp.set_weights([np.concatenate([w1[perm], w1[-1:]]), b1, w2, b2, w3[:, perm], b3[perm]])
t = np.full(8, 100)
eps_hat = mlp.predict([x0[:8], t], verbose=0)  # (8, 28, 28, 1)
eps_hat_shuffled = shuffled_mlp.predict([shuffle(x0[:8]), t], verbose=0)  # fed scrambled images
print(f"max |shuffled_mlp(P x) - P mlp(x)| = {np.abs(eps_hat_shuffled - shuffle(eps_hat)).max():.1e}")

# %% [markdown]
# Zero, up to float rounding: to an MLP the two data sets below are the same
# problem.
#
# ### Slide a filter
#
# A convolution does the opposite. A 3x3 `Conv2D` with $C$ filters has $9C$
# weights (plus $C$ biases) that it applies at **every** position, to each pixel
# and its 8 neighbours. Two consequences:
#
# - it can only combine neighbours, so scrambled images are not the same problem;
# - what it learns in one place works everywhere: shift the input and the output
#   shifts with it (it is *translation equivariant*), so a sleeve learned at the
#   left of an image is a sleeve at the right too.

# %%
conv = layers.Conv2D(4, 3, padding="same")  # random weights, like the U-Net's first layer (16 filters there)
shift = lambda x: np.roll(x, (3, 5), axis=(1, 2))  # noqa: E731  move the image 3 pixels down, 5 right
features = np.asarray(conv(x0[:8]))  # (8, 28, 28, 4)
features_of_shifted = np.asarray(conv(shift(x0[:8])))
inner = (slice(None), slice(4, -4), slice(6, -6))  # away from the borders, where np.roll wraps around
gap = np.abs(features_of_shifted - shift(features))[inner].max()
print(f"max |conv(shift x) - shift conv(x)| = {gap:.1e} (away from the borders)")

fig = Figure(figsize=(9, 2.6), layout="constrained")
axes = fig.subplots(1, 4)
panels = [
    (x0[0], "x_0", (-1, 1)),
    (shuffle(x0[:1])[0], "x_0, pixels shuffled by P", (-1, 1)),
    (features[0, ..., :1], "conv(x_0), filter 1", None),
    (features_of_shifted[0, ..., :1], "conv(x_0 shifted by 3, 5)", None),
]
for ax, (image, title, limits) in zip(axes, panels):
    ax.imshow(image[..., 0], cmap="gray", **({} if limits is None else dict(vmin=limits[0], vmax=limits[1])))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig

# %% [markdown]
# ### Parameters
#
# Weight sharing is also why a convolutional network can be *smaller* and still
# see more. `mlp_seed`'s first layer alone has $785 \times 512 + 512 = 402{,}432$
# parameters, each tied to one pixel; the U-Net's first layer has
# $3 \cdot 3 \cdot 1 \cdot 16 + 16 = 160$. For the whole denoisers:

# %%
for name in ("mlp_seed", "mlp", "unet"):
    print(f"{name:>8}: {build_model(name).count_params():>9,} parameters")

# %% [markdown]
# The U-Net has about half the parameters of the classic demo's MLP and a sixth of
# the residual `mlp` of notebook 03, because every weight is used at every
# position. The price is compute, not memory: a 3x3 convolution on a
# 28x28x16 map costs $28 \cdot 28 \cdot 9 \cdot 16 \cdot 16 \approx 1.8$ M
# multiply-adds for 2,320 weights.
#
# ## The package's U-Net
#
# Two stacked 3x3 convolutions see only 5x5 pixels. To see a whole garment, the U-Net (Ronneberger et al. 2015; DDPM's
# denoiser) goes **down** in resolution, where a 3x3 filter covers a larger part
# of the image, then comes back **up** to 28x28 to predict the noise of every
# pixel. Downsampling throws away detail the pixel-fine noise needs, so each level of the way down hands its feature maps **across**
# to the same level of the way up, where they are concatenated: the *skip
# connections*, the horizontal lines of the U.
#
# `keras_diffusion/models/unet.py`, with its defaults `widths=(16, 32, 64)`,
# `blocks=1`, `attention=True`:
#
# ```
#   down                                                           up
# 28x28x1 ─ conv 16 ─ res 16 ──────────────── skips ───────────── 2 × res 16 ─ conv 16→1 ─ ε̂
#                      │ conv stride 2                                ▲ upsample + conv
# 14x14                └ res 32 ──────────────────────────────── 2 × res 32
#                         │ conv stride 2                           ▲ upsample + conv
#  7x7                    └ res 64 ─ res 64 ─ attention ─ res 64 ─ 2 × res 64
# ```
#
# - **Residual blocks** ("res"): GroupNorm, swish, 3x3 conv, twice, plus the
#   block's input added back (through a 1x1 conv where the channels change).
#   GroupNorm, unlike BatchNorm, does not depend on the batch.
# - **Skip connections**: every output on the way down (6 of them) is
#   concatenated to the input of one residual block on the way up.
# - **Self-attention** at 7x7: each of the 49 positions looks at all others.
# - **Zero-initialised output**: the last conv starts at 0, so $\hat\varepsilon = 0$
#   at the start and the loss starts at exactly $E[\varepsilon^2] = 1$.
#
# Instead of its `summary()` (over 100 layers; try `build_model("unet").summary()`),
# here is where its parameters live, read from the model itself:

# %%
print("unet defaults:", model_defaults("unet"))
unet = build_model("unet", **(CONFIG_04.model_kwargs or {}))


def where(layer):
    """'time' for the time path's Dense layers, else the resolution of the feature maps the layer works on."""
    shape = layer.output.shape
    if isinstance(layer, layers.MultiHeadAttention):  # (B, H·W, C): attention over the lowest resolution
        side = round(shape[1] ** 0.5)
        return f"{side}x{side}"
    return f"{shape[1]}x{shape[2]}" if len(shape) == 4 else "time"


parts = defaultdict(lambda: defaultdict(int))
channels = defaultdict(set)
for layer in unet.layers:
    part = where(layer)
    parts[part]["parameters"] += layer.count_params()
    parts[part][type(layer).__name__] += 1
    if isinstance(layer, layers.Conv2D):
        channels[part].add(layer.output.shape[-1])
print(f"{'where':>6} | {'parameters':>10} | {'conv':>4} | {'norm':>4} | {'skips in':>8} | channels")
for part in sorted((p for p in parts if p not in ("time", "1x1")), key=lambda p: -int(p.split("x")[0])):
    n = parts[part]
    print(f"{part:>6} | {n['parameters']:>10,} | {n['Conv2D']:>4} | {n['GroupNormalization']:>4} | "
          f"{n['Concatenate']:>8} | {sorted(channels[part])}{'  + attention' if n['MultiHeadAttention'] else ''}")
n_blocks = parts["time"]["Dense"] - 2  # every residual block has one Dense; the other two are the time MLP
print(f"{'time':>6} | {parts['time']['parameters']:>10,} | the time MLP (2 Dense) + one Dense in each of the {n_blocks} residual blocks")
print(f"total: {unet.count_params():,} parameters in {len(unet.layers)} layers")

# %% [markdown]
# Three quarters of the parameters sit at 7x7, where the channels are widest. The
# 28x28 level has 4% of them, yet costs about as much compute (17 to 21 M multiply-adds per image at each of the
# three levels): 16 times as many positions, a quarter of the channels.
#
# ## Time in every residual block
#
# Notebook 03 found that giving the sinusoidal embedding $\mathrm{emb}(t)$ to every
# block lets a network tell noise levels apart; the U-Net does the same. Once per call, $t$ becomes a vector
#
# $$e = W_2\,\mathrm{swish}\big(W_1\,\mathrm{emb}(t) + b_1\big) + b_2 \in \mathbb{R}^{4 w_0}$$
#
# (`time_embedding(t, 16)`: a 16-dim `SinusoidalEmbedding` and two Dense layers of
# 64). Then each residual block with input $x$ and width $w$ computes
#
# $$h = \mathrm{Conv}\big(\mathrm{swish}(\mathrm{GN}(x))\big) + \underbrace{W_b\,e}_{\texttt{Dense(w)(emb)}},\qquad
# \mathrm{out} = \mathrm{skip}(x) + \mathrm{Conv}\big(\mathrm{swish}(\mathrm{GN}(h))\big).$$
#
# $W_b e$ has one number per channel, added at every one of the $H \times W$
# positions: a **per-channel bias that depends on $t$**. Each block can thereby
# switch features on or off by noise level: at $t = 190$ it guesses a whole
# garment from faint hints, at $t = 10$ it finds a whisper of noise on a sharp
# image. The line in `res_block`:
#
# ```python
# h = h + layers.Reshape((1, 1, width))(layers.Dense(width)(emb))  # time, broadcast over H, W
# ```
#
# ## The trained U-Net: yours, or the pretrained one
#
# The package's default run trains this U-Net for 3 epochs of the 60,000 images
# (batch 64, Adam $2 \cdot 10^{-3}$, EMA 0.995, cosine schedule, $T = 200$): 15 min on a 2-core CPU with native bfloat16,
# against seconds per epoch for the MLPs. So this notebook does not make you wait:
#
# - if `runs/04_unet` holds a finished run of your own, it loads it; train one, in
#   `tutorials/`, with
#
#   ```bash
#   python -m keras_diffusion.train --model unet --out runs/04_unet
#   ```
#
#   (a run stopped part-way continues with `--resume runs/04_unet`);
# - otherwise it loads the pretrained `unet-fashion-mnist` shipped with the
#   package: the same model and settings, trained for 14 epochs instead of 3 (the
#   cell prints the hours, which overstate the compute: most epochs shared the 2
#   cores with other jobs). The saved outputs come from it.
#
# In quick mode it always trains the tiny U-Net.

# %%
def finished(run_dir):
    """True when run_dir holds a run that completed all its epochs and drew its figures."""
    if not (run_dir / CONFIG).is_file():
        return False
    config, _, _ = read_config(run_dir)
    return read_state_epoch(run_dir) >= config.epochs and (run_dir / "samples.png").is_file()


if QUICK:  # overwrite=True: running the notebook again replaces its own earlier run
    run_dir, _ = train(CONFIG_04, out=RUN_DIR, overwrite=True)
elif finished(RUN_DIR):
    run_dir = RUN_DIR
    print(f"{run_dir} holds a finished run of yours: loaded, not retrained")
else:
    run_dir = pretrained.path("unet-fashion-mnist")
    card = pretrained.entry("unet-fashion-mnist")
    print(f"no finished run in {RUN_DIR}: loading the pretrained unet-fashion-mnist, trained {card['epochs']} epochs "
          f"({card['hours']:.1f} h of training on {card['hardware']})")
denoiser, schedule, config = load_run(run_dir)
clip = sampling_clip(config)
print(f"{config.model}, {denoiser.count_params():,} parameters; {schedule}; scaling={config.scaling}, "
      f"epochs={config.epochs}, batch_size={config.batch_size}, lr={config.lr}, ema={config.ema}, clip={clip}")
print("files:", sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# ## The loss
#
# `history.csv` holds the loss of every epoch (the mean over its batches). A run trained with
# `--val 2000` also holds the loss on 2,000 test images after every epoch, and one
# trained with `--fid-every 1` the FID of 256 DDIM-50 samples after every epoch;
# the pretrained model was trained with both, and the figure draws them too:

# %%
history = read_history(run_dir / HISTORY)
print("loss per epoch:", np.round(history["loss"], 4))
plot_loss(history, title=f"{config.model}: training loss")

# %% [markdown]
# 0.115 after the first epoch, 0.082 after the second, 0.078 after the third, then
# slowly down to 0.0696 after the fourteenth: the first two epochs do most of the
# work. The loss
# on the test images (orange) falls from about 0.080 to about 0.065 and
# never rises, so the model does not over-fit; the FID (green squares, right axis;
# lower is better, notebook 06) falls from about 26 to about 7. For scale: answering $\hat\varepsilon = 0$
# scores 1.0, and the residual `mlp` of notebook 03 ends its second epoch near
# 0.49 (below).
#
# ## Samples
#
# DDPM's Algorithm 2 with all 200 steps, clipping $\hat x_0$ to $[-1, 1]$ (notebook
# 03), drawn by `keras_diffusion.reverse.sample` in one compiled loop:

# %%
start = time.perf_counter()
samples = sample(denoiser, schedule, N_SAMPLES, seed=0, clip=clip)  # (N, 28, 28, 1) in [-1, 1]
print(f"{N_SAMPLES} samples, {schedule.timesteps} steps: {time.perf_counter() - start:.1f} s (including tracing the loop)")
plot_samples(samples, config.scaling, title=f"{config.model}: {N_SAMPLES} samples, DDPM, {schedule.timesteps} steps")

# %% [markdown]
# Clothes, after 14 epochs: nearly every one plainly one of the ten classes, with
# clean outlines. What is still rough is the inside: blotchy light and dark patches
# on several shirts, pullovers and bags. For a run of your own, these are the run's `samples.png` (same weights,
# same seed). How good they are, as a number, is
# notebook 06's question (FID).
#
# The reverse chain of four samples: the noise $x_T$, then the chain after the
# steps at $t = 199, 150, 100, 50, 0$:

# %%
plot_reverse_grid(denoiser, schedule, n=4, scaling=config.scaling, seed=1, clip=clip)

# %% [markdown]
# At $t = 150$ the chains are still noise. By $t = 100$ a rough light region shows
# where the garment will be in three of them; at $t = 50$ they are plainly a
# long-sleeved top, a bag and an ankle boot. The coarse shape is decided in the
# middle of the chain, the detail in its last 50 steps. All four end as clothes: a
# dark T-shirt, a light long-sleeved shirt, a bag and an ankle boot.
#
# ## Does it use $t$?
#
# Given the same noisy images labelled $t = 0$ and $t = 199$, notebook 02's
# `mlp_seed` answered alike (correlation 0.960 to 0.998). The same test for the U-Net, with its loss at each $t$ on
# test images (its own schedule and data range, so not comparable with 02's):

# %%
rng = np.random.default_rng(0)
T = schedule.timesteps
print(f"{'t':>4} | {'loss':>6} | corr(ε̂ told t=0, ε̂ told t={T - 1})")
for t in (0, T // 20, T // 4, T // 2, 3 * T // 4, T - 1):  # 0, 10, 50, 100, 150, 199
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    x_t = np.asarray(q_sample(schedule, x0, t, eps))  # (N, 28, 28, 1)
    eps_hat = np.asarray(denoiser([x_t, np.full(len(x_t), t)]))  # told the true t
    as_0 = np.asarray(denoiser([x_t, np.zeros(len(x_t), int)]))
    as_last = np.asarray(denoiser([x_t, np.full(len(x_t), T - 1)]))
    loss = np.mean((eps - eps_hat) ** 2)
    print(f"{t:>4} | {loss:6.3f} | {np.corrcoef(np.ravel(as_0), np.ravel(as_last))[0, 1]:31.3f}")

# %% [markdown]
# Told $t = 0$ and $t = 199$, the U-Net answers the same input very differently:
# the two answers correlate at 0.04 when the input is nearly clean and at 0.90
# when it is nearly pure noise (there the best guess of the noise is mostly $x_t$
# itself). `mlp_seed` scored 0.960 to 0.998 everywhere:
# the time embedding in every block works.
#
# The loss falls from 0.45 at $t = 0$ to 0.001 at $t = 199$. At $t = 199$, $x_t$ is
# almost all noise and $\hat\varepsilon \approx x_t$ is nearly right. At $t = 0$ the
# noise is a whisper ($\sqrt{1-\bar\alpha_0} = 0.016$), hard to tell from the image's
# own fine texture; that error costs little, as the last step scales it by $\beta_0/\sqrt{1-\bar\alpha_0} \approx 0.016$,
# far below what a pixel can show.
#
# ## What one output pixel looks at
#
# Which input pixels does the U-Net use to predict the noise at one pixel? The
# gradient $\partial \hat\varepsilon_{14,14} / \partial x_t$ answers that. The pixel
# itself always counts most (its own noise is part of $x_t$ there), so the maps
# leave it out (black) and show how the rest spreads, for one test
# image at three noise levels (colour scale per panel):

# %%
columns = (T // 20, T // 2, T - T // 20)  # 10, 100, 190
eps = np.random.default_rng(1).standard_normal(x0[:1].shape).astype(np.float32)
rows, cols = np.mgrid[:28, :28]
distance = np.hypot(rows - 14, cols - 14)  # (28, 28): pixels from the centre
fig = Figure(figsize=(9, 3.2), layout="constrained")
axes = fig.subplots(1, 2 * len(columns))
for k, t in enumerate(columns):
    x_t = tf.convert_to_tensor(np.asarray(q_sample(schedule, x0[:1], t, eps)))  # (1, 28, 28, 1)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        centre = denoiser([x_t, tf.constant([t])])[0, 14, 14, 0]  # one pixel of ε̂
    grad = np.abs(tape.gradient(centre, x_t).numpy()[0, ..., 0])  # (28, 28)
    own = grad[14, 14] / grad.sum()
    grad[14, 14] = 0  # the rest: how far does it look?
    near = grad[10:19, 10:19].sum() / grad.sum()  # within 4 pixels of the centre
    mean_distance = (grad * distance).sum() / grad.sum()
    print(f"t={t:>3}: the pixel itself {own:4.0%} of the gradient; of the rest, {near:4.0%} within the 9x9 "
          f"around it, mean distance {mean_distance:.1f} pixels")
    axes[2 * k].imshow(x_t[0, ..., 0], cmap="gray", vmin=-2, vmax=2)
    axes[2 * k].set_title(f"x_t, t={t}", fontsize=9)
    axes[2 * k + 1].imshow(grad, cmap="magma")
    axes[2 * k + 1].set_title(f"|∂ε̂(14,14)/∂x_t|, t={t}\nmean distance {mean_distance:.1f} px", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig

# %% [markdown]
# At $t = 10$, on a nearly clean image, the U-Net denoises the centre from its
# close neighbours (66% of the rest of the gradient within 4 pixels, 5.1 pixels
# away on average). As the noise grows it looks further: at $t = 100$ along the boot's upper outline (48% within
# 4 pixels, 6.4 pixels away on average), at $t = 190$ in a band across nearly the
# whole width of the image, with only 22% of the rest within 4 pixels and a mean
# distance of 9.1 pixels, a third of the image. That is what the 7x7 level and the
# attention are for.
#
# ## The U-Net against notebook 03's best MLP
#
# Notebook 03's best rung trained on $\varepsilon$, as this U-Net is, is the
# residual `mlp` (3.5 M parameters). docs/results/ladder.md has the measured ladder, made by `python -m keras_diffusion.bench ladder --epochs 2`
# (2 epochs of the 60,000 images for every rung, on a 2-core CPU; not rerun here):
#
# | | `mlp` (notebook 03, rung 5) | `unet` (this notebook) |
# |---|---|---|
# | parameters | 3,500,816 | 600,481 |
# | training images per second | 1,639 | 120 |
# | one epoch | 37 s | 499 s |
# | loss after 2 epochs | 0.49 | 0.083 |
# | samples | static | clothes |
#
# With a sixth of the parameters, the U-Net's loss is six times lower and its
# samples are clothes, but each training image costs about 14 times as much. That
# is equal **epochs**, not equal cost; the same page measures equal wall-clock
# and the U-Net with one part taken away at a time.
#
# **Takeaways**
#
# - An MLP cannot use the layout of an image; a convolution shares a small filter
#   over all positions, so it uses neighbourhoods and what it learns anywhere
#   works everywhere.
# - The U-Net goes down to 7x7 to see whole garments and back up to 28x28 for
#   pixel-fine noise, with skip connections carrying the detail across.
# - The time embedding enters every residual block as a per-channel,
#   $t$-dependent bias, $h + \mathrm{Dense}(e)$.
#
# **Next:** notebook 05 keeps this U-Net and changes only the sampler: DDIM draws
# its images in a fraction of DDPM's 200 steps.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** The ladder gave the `mlp` and the U-Net the same 2 epochs. In
#    wall-clock time on this CPU, how many epochs of the `mlp` does the U-Net's budget
#    buy, and what command would give the fair comparison?
# 2. **A code change.** In the parameter table cell, build `build_model("unet", attention=False)`
#    and `build_model("unet", widths=(16, 32))` instead of the default. Predict first
#    which of the two removes more parameters, and roughly how many.
# 3. **A number to predict.** From the table (training: 1,639 against 120
#    images/s), predict how many times longer the U-Net takes to *sample* an image
#    with DDPM's 200 steps than the `mlp` does, then check with the ladder's sampling
#    speeds (DDPM 54.6 against 1.9 images/s; DDIM-50 206.6 against 6.1).

# %% [markdown]
# ## Answers
#
# 1. One U-Net epoch took 499 s and one `mlp` epoch 37 s, so the U-Net's two epochs
#    (998 s) buy about 27 epochs of the `mlp`:
#    `python -m keras_diffusion.train --model mlp --epochs 27` (about 17 min here)
#    compares them at equal wall-clock. docs/results/ladder.md measures equal
#    wall-clock with `python -m keras_diffusion.bench ladder --seconds 120`.
# 2. Dropping attention removes little: 600,481 → 583,713 parameters (16,768 fewer,
#    3 %: one attention layer at 7x7 with 64 channels). Dropping the 7x7 level removes
#    three quarters: 600,481 → 156,769 (3/4 of the parameters sit at 7x7). Fewer parameters is not less compute: the 28x28
#    level, with 4 % of the weights, costs as much per image as the 7x7 level.
# 3. Not 14: DDPM sampling is 29 times slower per image (54.6/1.9) and DDIM-50 34 times
#    (206.6/6.1). Training adds the backward pass and one random $t$ per
#    image; sampling runs the network 200 times in a row at batch 64. The ratio of
#    one is no estimate of the other: measure both.
