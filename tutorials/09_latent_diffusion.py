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
# # 09 · Latent diffusion: diffuse in a smaller space
#
# Every step of the reverse chain calls the U-Net on the whole 28x28 image, 200
# times per sample. Most of those 784 numbers carry detail that a classifier,
# or an eye, hardly needs. Latent diffusion (Rombach et al. 2022, the idea
# behind Stable Diffusion) splits the work in two stages:
#
# 1. an **autoencoder** squeezes each image into a small latent, here
#    $z \in \mathbb{R}^{7 \times 7 \times 4}$ (196 numbers), and decodes it back;
# 2. the **same diffusion model** as before (schedule, forward process, loss,
#    DDPM and DDIM, one compiled loop) learns the distribution of the latents.
#
# A sample is a latent drawn by the reverse chain, then decoded. You will:
#
# 1. train (or load) the autoencoder and write its loss, reconstruction plus a
#    small KL term, next to its code;
# 2. see why the latents are rescaled to unit variance (the *scale factor*);
# 3. check that the latent space is smooth enough to diffuse in;
# 4. run the unchanged core on latents and decode;
# 5. time a latent step against a pixel step, and read the measured trade:
#    speed against quality.
#
# Full run: 0.45 min on a 2-core CPU (no GPU) shared with other jobs. It reads the
# pretrained `latent-fashion-mnist` shipped with the package, a latent run trained with
# `python -m keras_diffusion.train --latent --conditional` (the defaults of
# `--latent`: the autoencoder for 2 epochs, then the latent U-Net for 4; 66 min
# here, 19 of them the autoencoder's, on a CPU that other trainings shared all
# along). To read your own latent run instead, start Jupyter with
# `KERAS_DIFFUSION_RUN=runs/09_latent`.
# Set `KERAS_DIFFUSION_QUICK=1` for a quick run (the tests do): it trains a tiny
# latent run ($T = 20$) on 512 images for one epoch; the pictures are noise, the
# code paths are the same.
#
# Prerequisites: notebooks 02 (DDPM's loss), 04 (the U-Net) and 05 (DDPM and DDIM).
#
# References: Rombach, Blattmann, Lorenz, Esser & Ommer 2022, *High-Resolution
# Image Synthesis with Latent Diffusion Models*, https://arxiv.org/abs/2112.10752;
# Kingma & Welling 2014, *Auto-Encoding Variational Bayes*, https://arxiv.org/abs/1312.6114.

# %%
# %matplotlib inline
import json
import logging
import os
import pathlib
import time

import numpy as np
import tensorflow as tf

from keras_diffusion import latent, pretrained
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.forward import q_sample
from keras_diffusion.models import build_model
from keras_diffusion.plotting import classic_timesteps, plot_grid, plot_samples
from keras_diffusion.reverse import sample
from keras_diffusion.training import train

QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_SHOW = 8  # images per row of the figures
N_TIME = 16 if QUICK else 128  # images per timed sampling call
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # each sampler setting is its own compiled loop

if QUICK:  # a tiny latent run with T = 20, trained here
    quick = TrainConfig(latent=True, epochs=1, autoencoder_epochs=1, limit=512, n_samples=8, xla=False, timesteps=20,
                        model_kwargs={"widths": [16], "attention": False})
    run_dir, _ = train(quick, out="runs/09_latent_quick", overwrite=True)
else:  # the pretrained latent run, or your own (relative to this notebook)
    run_dir = pretrained.run_or_pretrained(os.environ.get("KERAS_DIFFUSION_RUN"), "latent-fashion-mnist")
denoiser, schedule, config = load_run(run_dir)  # the latent U-Net: a run like any other
autoencoder, scale, info = latent.load_autoencoder(run_dir)  # the first stage, from <run>/autoencoder/
T = schedule.timesteps
print(f"QUICK={QUICK}: {run_dir.name}: U-Net on {tuple(denoiser.inputs[0].shape[1:])} latents ({denoiser.count_params():,} parameters), "
      f"{schedule}; autoencoder {autoencoder.count_params():,} parameters, trained {info['epochs']} epochs in {info['seconds']:.0f} s")

# %% [markdown]
# ## Stage 1: an autoencoder with a small KL term
#
# The encoder $E$ is a few convolutions, two of them with stride 2
# (28 → 14 → 7, a downsampling factor $f = 4$ as in the paper's "KL-f4" models),
# ending in $C = 4$ channels. The decoder $D$ mirrors it. Like a VAE, the
# encoder does not give one point but a Gaussian, $q(z \mid x) = \mathcal N(\mu, \sigma^2)$,
# and training draws $z = \mu + \sigma \odot \varepsilon$ (the reparameterisation
# trick). The loss is the reconstruction error plus a **small** KL divergence to
# $\mathcal N(0, I)$ (Rombach et al. sec. 3.1, "KL-reg"; Kingma & Welling app. B):
#
# $$\mathcal L = \underbrace{\lVert x - D(\mu + \sigma\odot\varepsilon)\rVert^2}_{\text{mean over pixels}}
# \;+\; \beta\;\underbrace{\tfrac12\big(\mu^2 + \sigma^2 - 1 - \log\sigma^2\big)}_{\text{KL, mean over latent numbers}},
# \qquad \beta = 10^{-4}.$$
#
# A full VAE ($\beta$ near 1) would force the latents towards pure noise and blur
# the images; $\beta = 10^{-4}$ only keeps the latents at a sensible scale and
# makes the encoder add a little noise, so that nearby latents must decode to
# nearby images. The package's `Autoencoder.losses_of` against the formula, on a
# few test images:

# %%
test, test_labels = load_images("fashion_mnist", "test", limit=1000)
x = scale_images(test[:N_SHOW], config.scaling)  # (8, 28, 28, 1)
mean, log_var = (np.asarray(v, np.float64) for v in autoencoder.encode(x))  # (8, 7, 7, 4) each
_, _, kl = autoencoder.losses_of(x)
kl_by_hand = np.mean(0.5 * (mean**2 + np.exp(log_var) - 1 - log_var))
print(f"latent shape {mean.shape[1:]}: {np.prod(mean.shape[1:])} numbers for {np.prod(x.shape[1:])} pixels")
print(f"KL per latent number: model {float(kl):.4f}, by hand {kl_by_hand:.4f}; encoder noise σ: median {np.median(np.exp(log_var / 2)):.3f}")

# %% [markdown]
# How good are the reconstructions? PSNR in dB on uint8 pixels
# (`tf.image.psnr`, peak 255), on the first 1000 test images, and eight of them:

# %%
reconstruct = lambda images: to_uint8(latent.decode(autoencoder, scale, latent.encode(autoencoder, scale, scale_images(images, config.scaling))), config.scaling)  # noqa: E731
recon = reconstruct(test)
print(f"reconstruction PSNR: {latent.psnr(test, recon):.2f} dB over {len(test)} test images")
plot_grid(np.stack([test[:N_SHOW], recon[:N_SHOW]]), row_titles=["x", "D(E(x))"], title="the autoencoder's reconstructions")

# %% [markdown]
# 24.9 dB: the shapes come back, and fine texture (stripes, prints, checks)
# comes back softened. Everything the diffusion model will ever draw passes
# through $D$, so this blur is about a floor under its quality: the measurement
# at the end puts a number on it (the FID of the reconstructions themselves).
# The KL term sits at about 4 per latent number, and the encoder's own noise
# $\sigma$ has shrunk to about 0.02: with $\beta = 10^{-4}$ the reconstruction
# wins, as intended.
#
# ## The scale factor: latents of unit variance
#
# Nothing in the autoencoder's loss fixes the overall scale of $\mu$: the KL term
# is too weak to. But the schedule assumes data of about unit scale: the forward
# process $z_t = \sqrt{\bar\alpha_t}\,z_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$ has, for data
# of standard deviation $s_z$, a signal-to-noise ratio $\bar\alpha_t s_z^2 / (1-\bar\alpha_t)$.
# Latents three times too large keep signal where the model expects noise (and
# the last $z_T$ is not $\mathcal N(0, I)$); too small, and they drown early.
# Rombach et al. (app. D.1) therefore multiply the latents by
#
# $$s = \frac{1}{\operatorname{std}(E(x))},$$
#
# measured once, over training images (here 10,000), and stored with the
# autoencoder; decoding divides by it again, $\hat x = D(z / s)$. The diffusion
# model only ever sees $z = s\,\mu(x)$:

# %%
train_images, _ = load_images("fashion_mnist", "train", limit=2000)
raw = latent.encode(autoencoder, 1.0, scale_images(train_images, config.scaling))  # μ(x), unscaled
z = latent.encode(autoencoder, scale, scale_images(train_images, config.scaling))  # s·μ(x)
print(f"s = {scale:.4f}; std of μ(x): {raw.std():.3f}; std of s·μ(x): {z.std():.3f}; per channel: {np.round(z.std(axis=(0, 1, 2)), 3)}")
t_mid = T // 2
snr = schedule.alpha_bars[t_mid] / (1 - schedule.alpha_bars[t_mid])
print(f"at t = {t_mid}, SNR = {snr:.3f} for unit-variance data; for the unscaled latents it would be {snr * raw.var():.3f}")

# %% [markdown]
# The encoder's latents had a spread of 1.47, so $s = 0.68$; unscaled, they
# would have kept twice the signal-to-noise ratio the schedule was built for at
# every $t$ (0.17 instead of 0.08 at $t = 100$). One scalar for all channels, as
# in the paper: the channels keep their own spreads (1.00, 1.06, 0.98 and 0.70
# here), and the whole is of unit variance. Here
# are the four channels of a few latents, each 7x7 number drawn as a 4x4 block
# on one grey scale from −3 (black) to 3 (white):

# %%
latent.plot_latents(autoencoder, scale, test[:N_SHOW], config.scaling)

# %% [markdown]
# The channels are not pictures of the garment, but they are not noise either:
# the silhouette shows through in places. They are a code that $D$ reads.
#
# ## Is the latent space smooth?
#
# The denoiser will never hit a latent exactly: its last step lands *near* the
# latents of real images. So nearby latents had better decode to nearby, still
# plausible images. Two checks: perturb $z$ with noise of 0.1 (a tenth of its
# spread), and walk in a straight line from one garment's latent to another's.

# %%
z_test = latent.encode(autoencoder, scale, scale_images(test[:N_SHOW], config.scaling))  # (8, 7, 7, 4)
noisy = z_test + 0.1 * np.random.default_rng(0).standard_normal(z_test.shape).astype(np.float32)
clean_pixels, noisy_pixels = (to_uint8(latent.decode(autoencoder, scale, v), config.scaling) for v in (z_test, noisy))
print(f"PSNR of D(z + 0.1·noise) against D(z): {latent.psnr(clean_pixels, noisy_pixels):.1f} dB")
lambdas = np.linspace(0, 1, N_SHOW)
walk = np.stack([(1 - lam) * z_test[0] + lam * z_test[1] for lam in lambdas] + [(1 - lam) * z_test[2] + lam * z_test[4] for lam in lambdas])
plot_samples(latent.decode(autoencoder, scale, walk), config.scaling, ncols=N_SHOW, title="D((1 − λ)·z_a + λ·z_b), λ = 0 … 1")

# %% [markdown]
# Noise of a tenth of the latents' spread changes the picture little (33 dB
# from the unperturbed decoding, against 25 dB for the autoencoder's own
# error). The straight walks are blends, close to a cross-fade of the two
# garments: smooth, but not a "semantic" path (a sneaker does not morph into a
# pullover). Smoothness is what the diffusion model needs; a small KL term buys
# that much, not more.
#
# ## Stage 2: the same diffusion model, on latents
#
# Nothing in the core knows about pixels. `DiffusionModel` takes any batch of
# $x_0$, here latents, and minimises DDPM's loss with `q_sample` and the schedule
# of notebook 01; `reverse.sample` runs its one compiled loop on any state shape.
# `train --latent` only puts the encoder in front: it encodes the training set
# once, $z_0 = s\,\mu(x)$, and fits on those. One training step by hand, on the
# latents of a few test images, with the run's U-Net:

# %%
model = DiffusionModel(denoiser, schedule, seed=0)
t = np.array([1, T // 4, T // 2, T - 1], np.int32)  # one timestep per image
eps = np.random.default_rng(1).standard_normal(z_test[: len(t)].shape).astype(np.float32)  # (4, 7, 7, 4)
z_t = np.asarray(q_sample(schedule, z_test[: len(t)], t, eps))  # √ᾱ_t·z_0 + √(1−ᾱ_t)·ε   (DDPM eq. 4)
inputs = [z_t, t] if not config.conditional else [z_t, t, np.full(len(t), 10)]  # the null label: unconditional
eps_hat = denoiser(inputs)  # (4, 7, 7, 4)
print(f"z_t {tuple(z_t.shape)}; loss ‖ε − ε̂‖² per t: {np.round(np.mean((eps - np.asarray(eps_hat)) ** 2, axis=(1, 2, 3)), 3)} at t = {t}")
labels = None if not config.conditional else np.full(len(t), 10)
print(f"the same through DiffusionModel.denoising_loss: {float(model.denoising_loss(z_test[: len(t)], tf.constant(t), eps, labels=labels)):.4f}")

# %% [markdown]
# The U-Net is notebook 04's, built for a 7x7x4 input. 28x28 was halved twice
# (28 → 14 → 7); 7x7 cannot be halved evenly, so the latent U-Net has **one
# level**, 64 channels wide, with self-attention over all 49 positions (a few
# 3x3 convolutions already see the whole 7x7 grid). The schedule is the linear
# one scaled by $1000/T$ rather than the cosine one: latents are not bounded
# like pixels, so $\hat x_0$ is not clipped, and unclipped, the cosine schedule's
# last step ($\sqrt{\bar\alpha}$ from $7.8\cdot10^{-3}$ to $2.5\cdot10^{-4}$, the table of notebook 03's
# "Clipping" section) would multiply the error of $\hat\varepsilon$ by
# $\sqrt{1-\bar\alpha_T}/\sqrt{\bar\alpha_T} = 4{,}058$ in DDIM's first $\hat x_0$ (182 for the
# scaled linear schedule used here, whose $\sqrt{\bar\alpha_T} = 5.5\cdot10^{-3}$ notebook 03
# printed too).
#
# Sampling is `sample` with the latent shape, then $D(z_0 / s)$. `python -m
# keras_diffusion.sample --run RUN` does exactly this for a latent run; here by hand,
# DDPM from the same seed as the run's figure:

# %%
z0 = sample(denoiser, schedule, 2 * N_SHOW, seed=0, image_shape=(7, 7, config.latent_channels))  # (16, 7, 7, 4)
pixels = latent.decode(autoencoder, scale, z0)  # (16, 28, 28, 1)
print(f"z_0: {z0.shape}, std {z0.std():.3f} (the training latents: 1); decoded: {pixels.shape}")
plot_samples(pixels, config.scaling, ncols=N_SHOW, title=f"latent DDPM samples, {T} steps, decoded")

# %% [markdown]
# The reverse chain, each state $z_t$ decoded (the figure `train` draws for a
# latent run). The decoder turns pure-noise latents into blobs of black and white,
# not into grey noise: it only knows how to draw garment-like strokes. Down to
# $t = 100$ the decoded states are such blobs; at $t = 50$ a rough outline
# shows, and the last 50 steps fill it in: the garment appears over the last
# half of the steps, as in pixel space. The last column holds the first four
# samples above again, although this chain starts from a different $z_T$
# (drawn with NumPy here, inside `sample` there): both calls use seed 0, so the
# same noise is added at every step, and over DDPM's 200 steps that noise
# shapes the sample more than $z_T$ does.

# %%
steps = classic_timesteps(T)  # the states shown: t = 199, 150, 100, 50, 0 for T = 200
z_T = np.random.default_rng(0).standard_normal((4, 7, 7, config.latent_channels)).astype(np.float32)
_, snaps = sample(denoiser, schedule, 4, seed=0, snapshots=steps[::-1], x_T=z_T)  # (4, 5, 7, 7, C)
chain = np.concatenate([z_T[:, None], snaps], axis=1)  # (4, 6, 7, 7, C)
decoded = latent.decode(autoencoder, scale, chain.reshape((-1,) + chain.shape[2:]))  # (24, 28, 28, 1)
plot_grid(to_uint8(decoded, config.scaling).reshape(chain.shape[:2] + decoded.shape[1:]), zoom=4,
          col_titles=["D(z_T)"] + [f"t={t}" for t in steps[::-1]], title="reverse process p(z_{t-1} | z_t), decoded")

# %% [markdown]
# ## What it costs: one network call, pixel against latent
#
# The time of a sampler is its number of network calls times the cost of one
# (notebook 05). Here is one call at batch 128 for the pixel U-Net of notebooks 04
# and 07 (built untrained: the weights do not change the cost) and for the run's
# latent U-Net, each traced first, then the best of three calls:

# %%
pixel_unet = build_model("unet", **({"widths": (8, 16), "attention": False} if QUICK else {}))


def seconds_per_call(net, shape, batch=N_TIME, repeat=3):
    call = tf.function(lambda x, t: net([x, t]))
    x, t_batch = tf.random.normal((batch, *shape)), tf.fill([batch], 3)
    call(x, t_batch)  # traced here, not timed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call(x, t_batch).numpy()
        times.append(time.perf_counter() - start)
    return min(times)


unconditional_latent = build_model("unet", image_shape=tuple(denoiser.inputs[0].shape[1:]), **config.model_kwargs)
pixel_call = seconds_per_call(pixel_unet, (28, 28, 1))
latent_call = seconds_per_call(unconditional_latent, tuple(denoiser.inputs[0].shape[1:]))
print(f"pixel U-Net ({pixel_unet.count_params():,} parameters): {1000 * pixel_call:.0f} ms per call of {N_TIME}")
print(f"latent U-Net ({unconditional_latent.count_params():,} parameters): {1000 * latent_call:.0f} ms per call of {N_TIME}"
      f"  -> {pixel_call / latent_call:.1f}x cheaper")
zeros = np.zeros((N_TIME, 7, 7, config.latent_channels), np.float32)
latent.decode(autoencoder, scale, zeros)  # the first call builds the decoder's graph: not timed
decode_times = []
for _ in range(3):  # the best of three, as for the network calls
    start = time.perf_counter()
    latent.decode(autoencoder, scale, zeros)
    decode_times.append(time.perf_counter() - start)
print(f"decoding {N_TIME} latents once: {1000 * min(decode_times):.0f} ms")

# %% [markdown]
# The latent U-Net has about as many parameters (650k against 600k), but works
# on 49 positions instead of 784, 196 and 49: each call was 4.2x cheaper here.
# A single timing wanders with the machine's load; the measurement below, timed
# inside the sampling loop, found 3.8x (DDPM) to 4.2x (DDIM-50).
# Decoding happens once per sample, not once per step: for 128 images it costs
# about one network call, next to the 50 or 200 calls of a sampler.
#
# ## Measured: latent against pixel diffusion
#
# The table the next cell prints comes from other runs and is not rerun here.
# It was made by the two commands that `assets/latent.json` records (the second
# times the training speeds side by side again, in float32 as the runs trained):
#
# ```bash
# python benchmarks/latent.py --pixel runs/cond --latent runs/latent_cond_e2 --n 2000 --speed-n 64 \
#     --json runs/latent_e2.json --figures runs/latent_figs
# python benchmarks/latent.py --pixel runs/cond --latent runs/latent_cond_e2 \
#     --parts train_images_per_second_side_by_side --json assets/latent.json
# ```
#
# They compare a pixel U-Net, `runs/cond` (notebook 07's class-conditional run,
# 2 epochs), with `runs/latent_cond_e2`, this notebook's latent run **after 2 of
# its 4 epochs**, the point where both had trained for the same wall-clock time
# on the same CPU (the latent run's time includes its autoencoder's). Both models
# are class-conditional and sampled without a label, i.e. as unconditional
# models. The last line is `python -m keras_diffusion.evaluate` (n = 2000, DDIM-50,
# $\eta = 0$) on the finished 4-epoch run, written to `assets/latent_e4_fid.jsonl`;
# the same FID, 17.163, is the quality that `python -m keras_diffusion.pretrained
# list` records for `latent-fashion-mnist`.

# %%
saved = pathlib.Path("../assets/latent.json")  # relative to tutorials/
if saved.is_file():
    measured = json.loads(saved.read_text())
    training, fid, speed = measured["training"], measured["fid_ddim50"], measured["sample_images_per_second"]
    side, ae = measured["train_images_per_second_side_by_side"], measured["autoencoder"]
    print(f"autoencoder: PSNR {ae['psnr_db']} dB on {ae['psnr_n']} test images; "
          f"FID of its reconstructions {ae['reconstruction_fid']} (n = {ae['reconstruction_fid_n']})\n")
    rows = [("training wall time (s)", training["pixel"]["seconds"], training["latent"]["total_seconds"]),
            ("  of which the autoencoder (s)", "", training["latent"]["autoencoder_seconds"]),
            ("training images/s (in the runs)", training["pixel"]["images_per_second"], training["latent"]["images_per_second"]),
            ("training images/s (side by side)", side["pixel U-Net"], side["latent U-Net"]),
            ("sampling images/s, DDIM-50", speed["pixel ddim-50"], speed["latent ddim-50"]),
            ("sampling images/s, DDPM", speed["pixel ddpm"], speed["latent ddpm"]),
            (f"FID, DDIM-50 (n = {fid['pixel']['n']}, floor {fid['pixel']['floor']})", fid["pixel"]["fid"], fid["latent"]["fid"]),
            ("class entropy", fid["pixel"]["class_entropy"], fid["latent"]["class_entropy"])]
    print(f"{'':>44} | {'pixel':>8} | {'latent':>8}")
    for name, pixel_value, latent_value in rows:
        print(f"{name:>44} | {pixel_value!s:>8} | {latent_value!s:>8}")
    print(f"\nsampling speed-up: {measured['sampling_speedup']}; FID latent / pixel: {measured['fid_ratio']}")
    longer = pathlib.Path("../assets/latent_e4_fid.jsonl")  # the same latent run after 4 epochs: this notebook's run
    if longer.is_file():
        row = json.loads(longer.read_text().splitlines()[0])
        print(f"the latent run after 4 epochs instead of 2: FID {row['fid']}, class entropy {row['class_entropy']} (n = {row['n']})")
else:
    print(f"{saved} not found: run python benchmarks/latent.py --pixel RUN --latent RUN from the repository root")

# %% [markdown]
# Read the table as a trade. The CPU was shared with other jobs throughout: the
# "in the runs" rows moved with the load; the side-by-side rows were timed one
# right after the other, in float32 as the runs trained, and compare fairly.
#
# - **Speed.** The latent model samples 4.2x faster with DDIM-50 and 3.8x
#   faster with DDPM, decoding included: the saving per call above. It also
#   trains 3.7x more images per second side by side, but the autoencoder comes
#   first and is not cheap (124 images/s side by side, against 67 for a pixel
#   U-Net step): at equal wall-clock the latent U-Net got 2 epochs, as many
#   images as the pixel U-Net saw.
# - **Quality.** At that equal wall-clock the latent model's FID is 23.6
#   against 20.6 (1.15x), with nearly the same class coverage (class entropy
#   0.88 against 0.90). The autoencoder's floor is low: its reconstructions
#   score 1.1, so the gap is the latent U-Net's, not the decoder's. Two more
#   epochs (1.42x the pixel run's wall-clock, 1.07x its compute side by side)
#   brought the latent FID to 17.2, below the pixel model's.
#
# On 28x28 images the saving is modest, because the pixel U-Net already works at
# 7x7 in its middle. It grows with the image: at 512x512, Stable Diffusion's
# $f = 8$ autoencoder turns 786,432 numbers into 16,384, a factor of 48, and
# makes diffusion affordable at all.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** The pixel runs clip $\hat x_0$ to $[-1, 1]$ at every step; the
#    latent run does not (`clip` is false in its config), and it uses the scaled
#    linear schedule, not the cosine one. Why not clip, and why does leaving the
#    clip out rule out the cosine schedule at $T = 200$?
# 2. **A code change.** Train with `--latent-channels 2` and with `--latent-channels 8`
#    (each trains its own autoencoder). Before running, predict: how many numbers
#    each latent holds, and the compression; which way the PSNR and the FID of the
#    reconstructions move; and what one call of the latent U-Net costs, against
#    $C = 4$ and against the pixel U-Net.
# 3. **A number to predict.** Leave out the scale factor: the diffusion model then
#    sees $\mu(x)$, of standard deviation 1.471. At $t = 100$ unit-variance latents have
#    a signal-to-noise ratio of 0.079. What is it for the unscaled latents there, at
#    which $t$ do they come down to 0.079, and is their $z_T$ still close to $\mathcal N(0, I)$?
# 4. **Code to write.** Write the two ends of the second stage yourself, from the
#    autoencoder's own `autoencoder.encode(x)`, which returns $(\mu, \log\sigma^2)$, and
#    `autoencoder.decode(z)`:
#    ```python
#    def my_scale_factor(autoencoder, x): ...  # s = 1 / std(μ(x))
#    def my_decode(autoencoder, s, z): ...  # x̂ = D(z / s), as NumPy
#    ```
#    Check `my_scale_factor` on the first 10,000 training images (`latent.SCALE_N`,
#    the images that set the stored `scale`) against `scale`, and `my_decode` on the
#    16 latent samples `z0` of the sampling cell against `latent.decode(autoencoder, scale, z0)`.
#    Why may the scale factor be measured on $\mu(x)$ rather than on draws
#    $\mu + \sigma \odot \varepsilon$?

# %% [markdown]
# ## Answers
#
# 1. Pixels have a known range, so clipping $\hat x_0$ to $[-1, 1]$ only removes values
#    no image can take. Latents have none: $z = s\,\mu(x)$ has unit variance overall
#    (the channels spread 1.00, 1.06, 0.98 and 0.70), but nothing bounds it, and any
#    box would either cut off real latents or be too wide to matter. Unclipped,
#    DDIM's first $\hat x_0 = (z_T - \sqrt{1-\bar\alpha_T}\,\hat\varepsilon)/\sqrt{\bar\alpha_T}$ turns an error
#    $\delta$ of $\hat\varepsilon$ into an error $\delta\,\sqrt{1-\bar\alpha_T}/\sqrt{\bar\alpha_T}$ of $\hat x_0$. At
#    $T = 200$ that factor is about 4,060 for the cosine schedule
#    ($\sqrt{\bar\alpha_T} = 2.5\cdot10^{-4}$) and 182 for the scaled linear one
#    ($\bar\alpha_T = 3.0\cdot10^{-5}$, $\sqrt{\bar\alpha_T} = 5.5\cdot10^{-3}$), computed from
#    `NoiseSchedule`. In pixel space the clip caps the damage; here only a gentler
#    last step can.
# 2. $7 \cdot 7 \cdot 2 = 98$ numbers (784/98 = 8 times fewer than pixels) and
#    $7 \cdot 7 \cdot 8 = 392$ (2 times), against 196 (4 times). A smaller code keeps less
#    detail: expect the PSNR to fall below 24.9 dB at $C = 2$ and to rise at $C = 8$,
#    and the reconstruction FID (1.1 at $C = 4$), the floor under the samples' FID,
#    to move the other way. The samples' FID need not follow: a 392-number latent
#    leaves the U-Net more to learn in its 4 epochs. Not measured here: run it.
#    The cost of a call hardly moves: only the U-Net's first and last 3x3
#    convolutions ($C \to 64$, $64 \to C$) see $C$, so the unconditional latent U-Net
#    has 644,994, 647,300 and 651,912 parameters at $C$ = 2, 4 and 8, and
#    23.70, 23.81 and 24.04 million multiply-adds per image (convolutions and
#    attention, counted from `models/unet.py`): every other layer works on the same
#    49 positions and widths whatever $C$. A 3x3 convolution costs positions $\times$
#    channels in $\times$ channels out $\times$ 9, and $784 \cdot 16^2 = 196 \cdot 32^2 = 49 \cdot 64^2$:
#    each of the pixel U-Net's three levels costs about as much as the latent
#    U-Net's one (19.1, 17.5 and 22.2 million multiply-adds per image at 28x28,
#    14x14 and 7x7), 58.8 million in all, 2.5 times the latent U-Net's 23.8 million.
#    The timed call was 4.2 times cheaper in this notebook's output (3.8 to 4.2
#    inside the sampling loop of the measured table), most likely
#    because what the count leaves out, normalisations, activations and memory
#    traffic, grows with the feature maps,
#    and those are 7 times smaller ($784 \cdot 16 + 196 \cdot 32 + 49 \cdot 64 = 21{,}952$
#    numbers across one map of each level, against $49 \cdot 64 = 3{,}136$).
# 3. The signal-to-noise ratio $\bar\alpha_t\,s_z^2/(1-\bar\alpha_t)$ grows with the data's
#    variance: $0.0785 \times 1.471^2 = 0.170$ (0.0785 is the 0.079 before rounding),
#    what the notebook printed. On the scaled linear schedule the unscaled latents
#    come down to 0.079 only at $t = 113$ ($\bar\alpha_t/(1-\bar\alpha_t) \cdot 1.471^2 = 0.0793$
#    there): every noise level arrives about 13 steps late in the middle of the
#    chain, a shift of $\ln 1.471^2 = 0.77$ in log-SNR at every $t$. The end is
#    unharmed: $z_T$ has variance
#    $\bar\alpha_T \cdot 1.471^2 + 1 - \bar\alpha_T = 1 + 1.164\,\bar\alpha_T = 1.00004$, still
#    $\mathcal N(0, I)$ to $10^{-4}$. For this autoencoder the scale factor corrects a
#    modest mismatch; it matters more for an encoder whose spread is far from 1.
# 4. Take $\mu$ and ignore $\log\sigma^2$; divide by $s$ before decoding:
#    ```python
#    def my_scale_factor(autoencoder, x):
#        mean, _ = autoencoder.encode(x)  # μ(x), (N, 7, 7, C)
#        return 1.0 / float(np.std(np.asarray(mean)))  # Rombach et al. app. D.1
#
#
#    def my_decode(autoencoder, s, z):
#        return np.asarray(autoencoder.decode(np.asarray(z, np.float32) / s))  # (N, 28, 28, 1)
#
#
#    train_10k, _ = load_images("fashion_mnist", "train", limit=10_000)
#    print(f"my s = {my_scale_factor(autoencoder, scale_images(train_10k, config.scaling)):.4f}, stored s = {scale:.4f}")
#    print(f"max |my_decode - latent.decode| = {np.abs(my_decode(autoencoder, scale, z0) - latent.decode(autoencoder, scale, z0)).max():.1e}")
#    ```
#    With `latent-fashion-mnist` on a 2-core CPU it printed `my s = 0.6794, stored
#    s = 0.6794` and `max |my_decode - latent.decode| = 0.0e+00`. The diffusion
#    model is trained on $z_0 = s\,\mu(x)$ (`train --latent` encodes with the mean), so
#    $\mu$ is the data whose spread must be 1; and the draws would change little:
#    the encoder's noise has a median $\sigma$ of 0.024 (the KL cell) against a spread
#    of 1.471 for $\mu$ (the scale cell).
