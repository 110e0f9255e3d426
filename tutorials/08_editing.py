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
# # 08 · Editing real images: inpainting, super-resolution, image-to-image
#
# A trained diffusion model knows what Fashion-MNIST looks like at every noise
# level. So far we only asked it to draw from nothing. This notebook makes it
# **edit** real images, with no new training and no new sampler: the same
# reverse loop of notebooks 02 and 05, with one small change to the state between
# its steps. You will:
#
# 1. see that an edit is a *constraint* the loop applies after every step, and
#    write one yourself in a few lines;
# 2. fill in missing pixels (inpainting) by replacement, then with RePaint's
#    resampling (Lugmayr et al. 2022), which goes back up the chain to harmonise;
# 3. upsample 7x7 and 14x14 images to 28x28 with ILVR (Choi et al. 2021), which
#    swaps the low frequencies of each state for those of the input;
# 4. redraw a real or hand-edited image with SDEdit (Meng et al. 2022): noise it
#    part of the way, then denoise, with `strength` choosing how far;
# 5. measure each on 64 test images: label agreement, and PSNR/SSIM against the
#    originals; a saved benchmark on 500 images, made with another model, adds FID.
#
# Full run: 8.1 min on a 2-core CPU (no GPU) shared with other jobs. It needs a
# trained U-Net: by default the pretrained `unet-fashion-mnist` shipped with the
# package (notebook 04's U-Net trained longer; `python -m keras_diffusion.pretrained
# list`), or any run directory given in the environment variable
# `KERAS_DIFFUSION_RUN`, such as notebook 04's `runs/04_unet`. The outputs saved
# here come from the pretrained `unet-fashion-mnist`, the default U-Net trained
# 14 epochs (the first code cell prints it). Set
# `KERAS_DIFFUSION_QUICK=1` for a quick run (the tests do): it trains a tiny
# U-Net ($T = 20$) for one epoch and edits fewer images; the pictures are then
# noise, the code paths the same.
#
# Prerequisites: notebooks 01 (the forward process, $q(x_t \mid x_0)$ in one
# jump), 02 and 05 (the reverse step, DDPM and DDIM), 06 (the classifier and FID).
#
# References: Lugmayr et al. 2022, *RePaint: Inpainting using Denoising Diffusion
# Probabilistic Models*, https://arxiv.org/abs/2201.09865; Choi et al. 2021,
# *ILVR: Conditioning Method for Denoising Diffusion Probabilistic Models*,
# https://arxiv.org/abs/2108.02938; Meng et al. 2022, *SDEdit: Guided Image
# Synthesis and Editing with Stochastic Differential Equations*,
# https://arxiv.org/abs/2108.01073.

# %%
# %matplotlib inline
import json
import logging
import os
import pathlib
import time
import warnings

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from keras_diffusion import editing, pretrained
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.edit import hole_view, plot_edits
from keras_diffusion.forward import q_sample
from keras_diffusion.metrics import Evaluator
from keras_diffusion.reverse import sample, step_plan, timestep_sequence
from keras_diffusion.training import sampling_clip, train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): a tiny U-Net trained here, fewer images.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_SHOW = 8  # images in each figure
N_EVAL = N_SHOW if QUICK else 64  # images for the numbers measured here (quick: N_SHOW, so the compiled loops are reused)
RESAMPLINGS = 2 if QUICK else 5  # RePaint's r shown here (the benchmark also runs 10)
# Each edit is its own compiled loop, traced once; TensorFlow counts the traces and warns about "retracing".
logging.getLogger("tensorflow").setLevel(logging.ERROR)
# Keras warns that the evaluator's feature model, built with a list of one input, gets a bare array: harmless.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")

if QUICK:  # a tiny U-Net with T = 20, trained here; overwrite=True replaces this notebook's earlier quick run
    quick_config = TrainConfig(model="unet", epochs=1, limit=512, n_samples=8, xla=False, timesteps=20,
                               model_kwargs={"widths": [8, 16], "blocks": 1, "attention": False})
    run_dir, _ = train(quick_config, out="runs/08_unet_quick", overwrite=True)
else:  # the pretrained U-Net, or your own run directory (relative to this notebook)
    run_dir = pretrained.run_or_pretrained(os.environ.get("KERAS_DIFFUSION_RUN"), "unet-fashion-mnist")
denoiser, schedule, config = load_run(run_dir)
clip = sampling_clip(config)  # clip x̂_0 at every step, as the run samples (notebook 03)
T = schedule.timesteps
JUMP = min(10, T // 4)  # RePaint's jump length j (10 in the paper)
pixels, labels = load_images("fashion_mnist", "test", limit=N_EVAL)  # (N_EVAL, 28, 28, 1) uint8: real test images
x0 = scale_images(pixels, config.scaling)  # (N_EVAL, 28, 28, 1) in the run's range, [-1, 1]
evaluator = Evaluator()  # notebook 06's classifier: does an edit keep the garment's class?
print(f"QUICK={QUICK}: {run_dir.name} ({config.model}, {config.epochs} epochs, conditional={config.conditional}), {schedule}, "
      f"{N_EVAL} test images, clip={clip}")


def agreement(images):
    """The fraction of images the classifier assigns to the ORIGINAL test label."""
    return float(np.mean(evaluator.features(images)[1] == labels[: len(images)]))


print(f"the classifier on the untouched originals: {agreement(pixels):.0%} agree with the labels")

# %% [markdown]
# ## An edit is a constraint between steps
#
# Recall the reverse loop (notebook 05): from $x_{T-1}$, each step asks the
# network for $\hat\varepsilon$ and takes a DDPM (eq. 11) or DDIM (eq. 12) step to the
# next state. An editing method knows something about the image we want, the
# pixels that were not masked, or a low-resolution version, and after every
# step it **puts that knowledge back into the state**. Nothing else changes.
#
# `sample(..., constraint=c)` takes any object with three members:
#
# - `c.key`: the settings that decide the compiled graph (the loop is cached per key);
# - `c.inputs(start, size)`: the arrays of one batch (the known images, the masks);
# - `c.apply(schedule, x, t, inputs, seed)`: the state $x_t$ after a step, adjusted.
#   Here $t$ is the level the step arrived at; $t = -1$ is the final image,
#   where $\bar\alpha_{-1} = 1$.
#
# `apply` is traced into the one compiled loop (a `tf.function` over all steps),
# so it is TensorFlow code, and its randomness comes from `seed`. Here is the
# simplest useful constraint, written out in full: keep the left half of every image.

# %%
class KeepLeft:
    """After each step, the left half of x_t becomes the original noised to level t: x_t^known ~ q(x_t | x_0)."""

    key = ("keep_left",)

    def __init__(self, images):
        self.images = images  # (N, 28, 28, 1) x_0

    def inputs(self, start, size):
        return {"x0": self.images[start : start + size]}

    def apply(self, schedule, x, t, inputs, seed):
        noise = tf.random.stateless_normal(tf.shape(x), seed=seed)  # ε
        known = editing.q_sample_to(schedule, inputs["x0"], t, noise)  # sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·ε; x_0 at t = −1
        left = tf.range(28) < 14  # (28,) True on the left half
        return tf.where(left[None, None, :, None], known, x)


mine = sample(denoiser, schedule, N_SHOW, seed=0, clip=clip, constraint=KeepLeft(x0[:N_SHOW]))  # (8, 28, 28, 1)
packaged = editing.inpaint(denoiser, schedule, x0[:N_SHOW], "right", seed=0, clip=clip)
print("the notebook's constraint and editing.inpaint give the same images:", np.array_equal(mine, packaged))
print("the left halves are the originals, exactly:", np.array_equal(mine[:, :, :14], x0[:N_SHOW, :, :14]))

# %% [markdown]
# That *is* the package's inpainting: `editing.inpaint` builds the same constraint
# (`editing.Replace`) for any mask. The other two methods are constraints of the
# same size, or, for SDEdit, just a different start.
#
# ## Inpainting by replacement (RePaint eqs. 8-10)
#
# With a mask $m$ that is 1 on the known pixels, each step becomes
#
# $$x_{t-1}^{\text{known}} = \sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon,\qquad
# x_{t-1}^{\text{unknown}} \sim p_\theta(x_{t-1} \mid x_t),\qquad
# x_{t-1} = m \odot x_{t-1}^{\text{known}} + (1-m)\odot x_{t-1}^{\text{unknown}}.$$
#
# The first is the forward process of notebook 01 in one jump (`q_sample`), the
# second the usual reverse step, the third the constraint (`tf.where` above). At
# the last step the known part is $x_0$ itself, so the known pixels come out
# exactly as they went in. The package's masks say where to **fill** (1) and
# where to keep (0), by name or as an array: `--mask right` fills the right half.

# %%
masks = {name: editing.make_mask(name, N_SHOW, seed=1) for name in ("right", "bottom", "box", "random")}
filled = {name: to_uint8(editing.inpaint(denoiser, schedule, x0[:N_SHOW], mask, seed=0, clip=clip), config.scaling)
          for name, mask in masks.items()}
columns = {"original": pixels[:N_SHOW]}
for name, mask in masks.items():
    columns[f"{name}: input"] = hole_view(pixels[:N_SHOW], mask)  # the pixels to fill drawn as stripes
    columns[f"{name}: filled"] = filled[name]
plot_edits(columns, title=f"inpainting by replacement, DDPM {T} steps")

# %% [markdown]
# Where the model sees most of the garment, the fill is close. With the random
# mask (each pixel with probability 1/2) every image comes back nearly as it was,
# except that the pullover's "Lee" logo turns into dark blotches. The box (the
# centre quarter) is filled plausibly on the three pairs of trousers, but the logo
# becomes blotches again and the dark jacket gets a bright triangle in its middle.
# With half the image gone the model must guess, and the guesses often do not
# match the known half. Filling the right half, one pair of trousers becomes a
# light top with a dark print, another grows a bulge on its right leg, the boot
# gets a bright, jumbled right half and the pullover dark patches. Filling the
# bottom half, the boot stands on a flat white sole like a sandal's, a pair of
# trousers ends in a textured top, and the checked shirt in a plain grey lower
# half. That is the weakness of replacement. The known half enters each step as
# the original *plus independent noise*, so at high $t$ the generated half only
# sees noise on the other side, and by the time the known half is clear, the
# generated half has already committed to a shape.
#
# ## RePaint: resampling
#
# RePaint's fix (Lugmayr et al. 2022, sec. 4.2): after every `jump` = $j$ steps
# down, go **back up** $j$ steps with the forward step of notebook 01,
#
# $$x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\varepsilon\qquad\text{(DDPM eq. 2, } q(x_t \mid x_{t-1})\text{, the package's \texttt{q\_step})},$$
#
# and come down again, $r - 1$ times (`resample` = $r$). Each pass down lets the
# generated part adjust to the known part a little more. The loop's moves are a
# plan of (t, up?) pairs; for $T = 10$, $j = 3$, $r = 2$:

# %%
plan = step_plan(timestep_sequence(10), jump=3, resample=2)
print(" ".join(f"{t}{'↑' if up else '↓'}" for t, up in plan))
for r in (1, 5, 10):
    full = step_plan(timestep_sequence(T), JUMP, r)
    print(f"T={T}, j={JUMP}, r={r:>2}: {sum(not up for _, up in full):>5} network calls per image, {len(full):>5} moves")

# %% [markdown]
# The cost is about $r$ times the network calls: for $T = 200$ and $j = 10$, 960
# calls at $r = 5$ and 1910 at $r = 10$, against 200 without resampling (4.8 and
# 9.55 times). The up moves call no network. RePaint buys harmony with
# compute. Resampling climbs the chain one step at a time, so it needs DDPM's
# every-step sampler; replacement alone also works with DDIM. Replacement against
# RePaint on the right half, same seed:

# %%
mask = masks["right"]
start = time.perf_counter()
repainted = to_uint8(editing.inpaint(denoiser, schedule, x0[:N_SHOW], mask, resample=RESAMPLINGS, jump=JUMP, seed=0, clip=clip),
                     config.scaling)
print(f"RePaint r={RESAMPLINGS}, j={JUMP}: {time.perf_counter() - start:.1f} s for {N_SHOW} images")
plot_edits({"original": pixels[:N_SHOW], "input": hole_view(pixels[:N_SHOW], mask), "replacement": filled["right"],
            f"RePaint r={RESAMPLINGS}": repainted}, title="filling the right half")

# %% [markdown]
# RePaint with $r = 5$ repairs each failure of replacement in this figure: the
# trousers that became a top are trousers again, the bulge on the other pair is
# gone, the boot's right half is grey like its left (the boot comes out taller
# than the original), and the pullover loses its dark patches. It took 37.3 s for
# the 8 images, the trace of its compiled loop included.
#
# On 64 test images (`N_EVAL`), does the filled image keep the class of the
# original, and are the known pixels untouched? (The 500-image numbers with FID,
# measured with another model, are at the end.)

# %%
mask_eval = editing.make_mask("right", N_EVAL)
known = np.broadcast_to(mask_eval == 0, pixels.shape)
print(f"{'':>26} | agree with the label | known pixels exact")
print(f"{'originals':>26} | {agreement(pixels):20.0%} |")
print(f"{'right half black':>26} | {agreement(np.where(known, pixels, 0)):20.0%} |")
for r in (1, RESAMPLINGS):
    out = to_uint8(editing.inpaint(denoiser, schedule, x0, mask_eval, resample=r, jump=JUMP, seed=0, clip=clip), config.scaling)
    name = "replacement" if r == 1 else f"RePaint r={r}, j={JUMP}"
    print(f"{name:>26} | {agreement(out):20.0%} | {np.array_equal(out[known], pixels[known])}")

# %% [markdown]
# The classifier agrees with 89% of the 64 originals and with 48% once their right
# half is black. Replacement brings the agreement back to 73%, RePaint with
# $r = 5$ to 84%, and both keep the known pixels exactly.
#
# ## Super-resolution: ILVR
#
# Now the known thing is a low-resolution image $y$: each $f \times f$ block of the
# original averaged into one pixel, 7x7 for $f = 4$, 14x14 for $f = 2$. ILVR
# (Choi et al. 2021, Algorithm 1) uses a low-pass filter $\phi$, downsample then
# upsample by $f$, and after every step swaps the low frequencies of the state for
# those of $y$ noised to the same level:
#
# $$y_{t-1} = \sqrt{\bar\alpha_{t-1}}\,y + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon,\qquad
# x_{t-1} = \phi(y_{t-1}) + (I - \phi)(x'_{t-1}),\qquad x'_{t-1} \sim p_\theta(x_{t-1} \mid x_t).$$
#
# The network keeps making the detail, $(I - \phi)(x')$; the input decides the
# coarse picture. Which $\phi$? The package takes the **block average**, then
# **nearest-neighbour** repetition (`editing.low_pass`). That pair is a projection,
# $\phi(\phi(x)) = \phi(x)$, so at the last step $\phi(x_0) = \phi(y)$ holds exactly:
# the result, averaged back down, *is* the input, what a camera with bigger
# pixels would have measured. A bilinear or bicubic resize pair is smoother but
# not a projection, and applying it twice drifts:

# %%
phi = editing.low_pass(x0[:N_SHOW], 4)
bilinear = lambda x: tf.image.resize(tf.image.resize(x, (7, 7), "bilinear"), (28, 28), "bilinear")  # noqa: E731
print(f"block mean + nearest: max |φ(φ(x)) − φ(x)| = {np.abs(editing.low_pass(phi, 4) - phi).max():.1e}")
print(f"bilinear down + up:   max |φ(φ(x)) − φ(x)| = {np.abs(bilinear(bilinear(x0[:N_SHOW])) - bilinear(x0[:N_SHOW])).max():.2f}")

# %% [markdown]
# The block pair is a projection up to float rounding ($1.8 \cdot 10^{-7}$); the
# bilinear pair, applied a second time, moves some pixel by 0.23 on the range
# $[-1, 1]$.
#
# Super-resolution x4 and x2 of the same images, beside bicubic upsampling
# (`tf.image.resize`, the classic answer):

# %%
columns, low_res, results = {"original": pixels[:N_SHOW]}, {}, {}
for factor in (4, 2):
    low_res[factor] = editing.downsample(x0, factor).numpy()  # (N_EVAL, 28/f, 28/f, 1)
    results[factor] = {
        "bicubic": to_uint8(tf.image.resize(low_res[factor], (28, 28), "bicubic").numpy(), config.scaling),
        "ILVR": to_uint8(editing.super_resolve(denoiser, schedule, low_res[factor], factor, seed=0, clip=clip), config.scaling),
    }
    columns[f"{28 // factor}x{28 // factor} input"] = to_uint8(editing.upsample(low_res[factor][:N_SHOW], factor).numpy(), config.scaling)
    columns.update({f"{name} x{factor}": images[:N_SHOW] for name, images in results[factor].items()})
plot_edits(columns, title=f"super-resolution, ILVR with DDPM {T} steps")

# %% [markdown]
# Bicubic blurs; ILVR draws sharp edges, seams and textures that the input only
# hints at, and each of its images shows the same kind of garment as the
# original. Sharp is not the same as right: where 7x7 pixels leave a choice, the
# model makes one, and it may differ from the original. At x4 the "Lee" logo
# becomes dark blotches, the fifth garment, a shirt of fine, low-contrast
# texture, gets a busy high-contrast pattern, and the checked shirt loses its
# checks. At x2 the 14x14 input leaves less to choose: the checks come back and
# the logo sits where it was, though its letters no longer read "Lee". PSNR and SSIM
# (`tf.image.psnr`, `tf.image.ssim`) reward being close to the original pixel by
# pixel; label agreement asks whether the class survived. And the consistency
# that the projection promises: the ILVR image, averaged back down, against the input.

# %%
def psnr_ssim(images):
    a, b = pixels.astype(np.float32) / 255, images.astype(np.float32) / 255  # (N, 28, 28, 1) in [0, 1]
    return float(tf.reduce_mean(tf.image.psnr(a, b, 1.0))), float(tf.reduce_mean(tf.image.ssim(a, b, 1.0)))


print(f"{'':>12} | PSNR (dB) | SSIM  | agree with the label")
for factor in (4, 2):
    for name, images in results[factor].items():
        psnr, ssim = psnr_ssim(images)
        print(f"{name + f' x{factor}':>12} | {psnr:9.2f} | {ssim:.3f} | {agreement(images):.0%}")
again = editing.super_resolve(denoiser, schedule, low_res[4], 4, seed=0, clip=clip)  # float, before rounding to uint8
print(f"max |downsample(ILVR x4) − input| = {np.abs(editing.downsample(again, 4).numpy() - low_res[4]).max():.1e} (pixels in [-1, 1])")

# %% [markdown]
# At x4 ILVR beats bicubic on all three numbers: PSNR 17.16 against 15.91 dB,
# SSIM 0.564 against 0.433, label agreement 80% against 50%. At x2 it still gains
# on PSNR (21.86 against 19.18 dB) and SSIM (0.783 against 0.714), while the
# agreement is the same to one image (83% against 84%: 53 and 54 of 64). Averaged
# back down, the ILVR x4 images match their 7x7 inputs to $4.2 \cdot 10^{-7}$,
# float rounding: the projection holds.
#
# ## Image-to-image: SDEdit
#
# The last method has no constraint at all. Take an image $x$, real or edited by
# hand, noise it to a level $t_0$ with the forward process, and run the ordinary
# reverse chain from there (Meng et al. 2022, Algorithm 1):
#
# $$x_{t_0} = \sqrt{\bar\alpha_{t_0}}\,x + \sqrt{1-\bar\alpha_{t_0}}\,\varepsilon,\qquad
# x_{t_0} \to x_{t_0-1} \to \dots \to x_0 \text{ with } p_\theta.$$
#
# Noise washes out the detail of $x$ first and its coarse layout last, so the
# model keeps the layout and redraws the detail to look real. `strength` in
# $(0, 1]$ sets $t_0 \approx \text{strength}\cdot T$ with the meaning KerasHub's
# image-to-image task gives it: of the $S$ steps of a full chain, skip the first
# $\lfloor S(1-\text{strength})\rfloor$. Strength 1 ignores the input; near 0, the
# input comes back. It works with DDPM and with DDIM (then about strength·S steps).
# The code is `sample(..., start=t0, x_T=x_t0)`:

# %%
for strength in (0.1, 0.5, 1.0):
    print(f"strength {strength}: DDPM starts at t0 = {editing.sdedit_start(schedule, strength)[0]}, "
          f"DDIM-{min(50, T)} at t0 = {editing.sdedit_start(schedule, strength, min(50, T))[0]} "
          f"with {editing.sdedit_start(schedule, strength, min(50, T))[1]} steps")

# %% [markdown]
# Real test images redrawn at increasing strength (DDIM, 50 steps):

# %%
STEPS = min(50, T)
STRENGTHS = (0.3, 0.6, 1.0) if QUICK else (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)  # each strength: its own loop
redrawn = {s: to_uint8(editing.img2img(denoiser, schedule, x0, s, seed=0, sampler="ddim", steps=STEPS, clip=clip), config.scaling)
           for s in STRENGTHS}
plot_edits({"original": pixels[:N_SHOW], **{f"s={s}": images[:N_SHOW] for s, images in redrawn.items()}},
           title=f"SDEdit against strength (DDIM-{STEPS})")

# %% [markdown]
# Up to 0.4 the garment is the original with small changes: the "Lee" logo is
# still legible, the last shirt still checked. At 0.5 and 0.6 the model starts to
# replace details: the logo becomes a dark block, the checks fade. At 0.8 most
# images keep their silhouette and class, but the boot becomes a wide box like a
# bag and the long-sleeved shirt gets short sleeves. At 1.0 the images have
# nothing to do with their inputs: a T-shirt for the boot, trousers for the
# pullover, a sandal for a pair of trousers. How far, in numbers, on the 64
# images (`N_EVAL`):

# %%
distance = {s: float(np.mean(np.sqrt(np.mean((images / 255 - pixels / 255) ** 2, axis=(1, 2, 3))))) for s, images in redrawn.items()}
agree = {s: agreement(images) for s, images in redrawn.items()}
fig = Figure(figsize=(5.5, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(STRENGTHS, list(distance.values()), marker="o", label="RMS distance to the input (pixels in [0, 1])")
ax.plot(STRENGTHS, [1 - a for a in agree.values()], marker="s", label="class changed (fraction)")
ax.set(xlabel="strength", title=f"SDEdit on {N_EVAL} test images")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig

# %% [markdown]
# Both curves rise with strength, slowly up to 0.7 and steeply past 0.8. Read off
# the plot: the RMS distance is about 0.06 at strength 0.2, 0.12 at 0.6 and 0.44
# at 1.0. The fraction whose class changed starts at about 0.14, not 0, because
# the classifier already disagrees with 11% of the originals; it is about 0.25 at
# 0.6, 0.44 at 0.8 and 0.95 at 1.0, near the 0.9 that a class drawn at random
# would give.
#
# ### A hand-edited image
#
# SDEdit's real use is the other direction: start from something that is *not* a
# real image, a crude drawing, and let the model make it one. Three "drawings" made
# of rectangles: trousers (two legs), a bag (a box with a handle), a sneaker
# (a low wedge). Each redrawn with three seeds at strength 0.6:

# %%
def drawing(kind):
    """A crude 28x28 uint8 drawing of flat grey shapes, as a user might paint it."""
    image = np.zeros((28, 28), np.uint8)
    if kind == "trousers":
        image[3:26, 8:13] = image[3:26, 15:20] = 170
        image[3:9, 8:20] = 170
    elif kind == "bag":
        image[10:25, 4:24] = 140
        image[4:10, 9:11] = image[4:10, 17:19] = image[4:6, 9:19] = 140
    else:  # sneaker
        for row in range(12, 24):
            image[row, max(2, 22 - 2 * (row - 12)) : 26] = 200
        image[21:24, 2:26] = 230
    return image[..., None]


sketches = np.stack([drawing(kind) for kind in ("trousers", "bag", "sneaker")])  # (3, 28, 28, 1) uint8
sketch_x = scale_images(sketches, config.scaling)
columns = {"drawing": sketches}
for seed in range(3):
    columns[f"seed {seed}"] = to_uint8(editing.img2img(denoiser, schedule, sketch_x, 0.6, seed=seed, sampler="ddim", steps=STEPS, clip=clip),
                                       config.scaling)
plot_edits(columns, title=f"SDEdit of drawings, strength 0.6 (DDIM-{STEPS})", zoom=4)

# %% [markdown]
# The rectangles come back as garments: with each seed, textured trousers, a bag
# with a thin arched handle, and a sneaker. The model keeps the layout it was
# given and draws the texture, shading and outline of a real one, differently for
# each seed, though not always cleanly: seed 0's sneaker has a stray strap-like
# stroke above it, and seed 0's bag stray pixels at its left edge. Lower the
# strength and the drawing shows through; raise it and the layout goes too.
#
# ## The measurements on 500 test images, with another model
#
# The numbers below do not come from this notebook's model.
# `python benchmarks/editing.py --run runs/cond --n 500` measured all three
# methods on test images 0-499 with the package's classifier, using `runs/cond`:
# a class-conditional U-Net trained 2 epochs, edited without labels, that is with
# its null label, as an unconditional model. It wrote `assets/editing.json` and
# the figures `assets/editing_*.png`; `assets/editing.json` holds no measurement
# of the pretrained 14-epoch `unet-fashion-mnist` used above. FID needs more
# images than this notebook edits; compare FIDs with each other and with the
# real-data floor at the same $n$ (notebook 06). The saved numbers:

# %%
saved = pathlib.Path("../assets/editing.json")
bench = json.loads(saved.read_text()) if saved.is_file() else {}
if bench:
    print(f"run {bench['run']}, {bench['images']}, {bench['machine']}", end="")
for row in bench.get("inpaint", {}).get("rows", []):
    print("\ninpainting, right half:" if row["method"] == "originals" else "", end="")
    print(f"\n  {row['method']:>16} | agree {row['label_agreement']:.1%} | FID {row['fid']:6.2f} (floor {row['floor']:.2f})"
          + (f" | known exact {row['known_exact']} | DDPM, j={row['jump']}" if "known_exact" in row else ""), end="")
for row in bench.get("superres", {}).get("rows", []):
    print("\nsuper-resolution:" if row["method"] == "originals" else "", end="")
    extra = f" | PSNR {row['psnr']:5.2f} dB | SSIM {row['ssim']:.3f}" if "psnr" in row else ""
    print(f"\n  {row['method']:>16} | agree {row['label_agreement']:.1%} | FID {row['fid']:6.2f}{extra}", end="")
if "sdedit" in bench:
    print(f"\nSDEdit (DDIM-{bench['sdedit']['steps']}):", end="")
for row in bench.get("sdedit", {}).get("rows", []):
    print(f"\n  strength {row['strength']:.1f} (t0={row['t0']:>3}) | distance {row['distance']:.3f} | "
          f"agree {row['label_agreement']:.1%} | FID {row['fid']:6.2f}", end="")
print("" if bench else f"{saved} not found: run python benchmarks/editing.py --run RUN from the repository root")

# %% [markdown]
# On that model the comparisons come out as on this notebook's 64 images:
# RePaint $r = 5$ beats replacement (label agreement 81.6% against 74.6%, FID 3.32
# against 6.05), ILVR beats bicubic at x4 (76.0% against 55.0%, FID 5.86 against
# 24.39) while at x2 the two agree on about as many labels (88.2% against
# 88.6%), and SDEdit's FID rises with strength, from 1.24 at 0.1 to 20.96 at 1.0.
# For the 500 images, RePaint took 2407 s against replacement's 592 s
# (`seconds` in `assets/editing.json`), 4.1 times. The absolute numbers are that
# model's, not the pretrained U-Net's.
#
# ## What next
#
# The same commands from the shell, for the pretrained U-Net or any run
# (`--run runs/04_unet`) and any test images (or your own `.png`/`.npz`):
#
# ```bash
# python -m keras_diffusion.edit inpaint --pretrained unet-fashion-mnist --images test:0-15 --mask right --resample 5
# python -m keras_diffusion.edit superres --pretrained unet-fashion-mnist --images test:0-15 --factor 4 --npz sr.npz
# python -m keras_diffusion.edit img2img --pretrained unet-fashion-mnist --images drawing.png --strength 0.6 --sampler ddim --steps 50
# ```
#
# **Takeaways**
#
# - Editing needs no new training: a trained denoiser already knows the images at
#   every noise level, and an edit only changes the state between reverse steps.
# - Inpainting replaces the known pixels by the original noised to the current
#   level (RePaint eqs. 8-10); they come out exactly. Resampling (go up $j$ steps,
#   $r - 1$ times) lets the fill agree with them, at about $r$ times the network
#   calls (960 instead of 200 for $r = 5$, $j = 10$, $T = 200$).
# - ILVR replaces the low frequencies $\phi(x_{t-1})$ by those of the noised
#   low-resolution input; with block averaging $\phi$ is a projection, and the
#   result is consistent with the input exactly.
# - SDEdit noises to $t_0 \approx \text{strength}\cdot T$ and denoises: strength trades
#   faithfulness to the input for realism.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** After every step, replacement puts the known pixels back as
#    $\sqrt{\bar\alpha_{t-1}}\,x_0 + \sqrt{1-\bar\alpha_{t-1}}\,\varepsilon$, a fresh draw from
#    $q(x_{t-1} \mid x_0)$. Why not paste $x_0$ itself, and why do the known pixels
#    still come out exactly? Every step sees the known half; why then can the
#    generated half disagree with it (the trousers that became a top), and what
#    do RePaint's up moves change?
# 2. **A number to predict.** The plan cell printed 960 network calls per image
#    for $T = 200$, $j = 10$, $r = 5$. `step_plan` resamples at the states
#    $0, j, 2j, \dots$ below $T - j$, each time going up $j$ steps, $r - 1$ times.
#    Write the number of network calls as a formula in $T$, $j$, $r$, check it
#    against the printed 960 and 1910, and predict it for $j = 20$ and for $j = 5$,
#    both with $r = 5$. Then check with `step_plan` (it calls no network). Why is
#    the number of network calls, not the number of moves, the cost?
# 3. **A code change.** (a) In the two super-resolution cells, change
#    `for factor in (4, 2)` to `for factor in (7, 4, 2)` (factor 7: a 4x4 input),
#    and compute the round trip with `low_res[7]` and factor 7. Predict the
#    round-trip error, and where ILVR x7 lands against ILVR x4 in PSNR, SSIM and
#    label agreement. What would factor 28 give? (b) In the drawings cell, replace
#    strength 0.6 by 0.3, then by 0.9. Predict $t_0$ and the number of DDIM steps
#    for each from the rule of `sdedit_start`, and what the rows will look like.

# %% [markdown]
# ## Answers
#
# 1. The network was trained only on states $x_t \sim q(x_t \mid x_0)$, in which
#    every pixel carries noise of variance $1-\bar\alpha_t$, and it predicts
#    $\hat\varepsilon$ for the whole image at the level it is told. A state with clean
#    pixels on one side and noisy ones on the other is one it never saw: it would
#    look for noise in the clean half that is not there, and its $\hat x_0$, which
#    the step uses for the unknown half too, would be off. Drawing the known part
#    from $q(x_{t-1} \mid x_0)$ keeps the whole state at one noise level, as in
#    training. That noise shrinks with the level, and at the last step,
#    $t = -1$, $\bar\alpha_{-1} = 1$: the known part is $x_0$ itself. Hence "the left
#    halves are the originals, exactly: True" and "known pixels exact: True".
#    The disagreement: each known part is drawn independently of what the
#    network has generated, and the reverse step for the unknown half is the
#    ordinary one, which sees the known half only through $x_t$. At high $t$,
#    $\bar\alpha_t$ is close to 0 and the known half is nearly pure noise, so the
#    generated half settles its coarse shape with almost no information about
#    the other side; once the known half is clear, later steps only add detail.
#    An up move $q(x_t \mid x_{t-1})$ noises the combined state, generated half
#    included, so the next pass down predicts the generated half again from a
#    state whose two halves have already been through a step together, and
#    $r - 1$ such passes per block let it adjust. Measured here on 64 images:
#    label agreement 73% for replacement, 84% for RePaint $r = 5$ (89% for the
#    originals); in the figure, RePaint turns the top back into trousers.
# 2. Each resampling point adds $(r-1)\,j$ network calls. There are
#    $\lceil (T-j)/j \rceil$ points (the states $0, j, \dots$ below $T - j$), so
#    calls $= T + (r-1)\,j\,\lceil (T-j)/j \rceil$, which is $T + (r-1)(T-j)$ when $j$
#    divides $T$. Check: $200 + 4 \cdot 190 = 960$ and $200 + 9 \cdot 190 = 1910$, as
#    printed. For $j = 20$: $200 + 4 \cdot 180 = 920$; for $j = 5$: $200 + 4 \cdot 195 = 980$.
#    The last block, the one that reaches the image, is never resampled, so a
#    longer jump saves a little, but all three stay near $r\,T = 1000$. The up moves
#    (as many as the extra calls: $960 - 200 = 760$ of the printed 1720 moves) are
#    `q_step`, a multiply-add on the state with no network, so the time follows
#    the calls: predict $j = 5$ slightly slower and $j = 20$ slightly faster than
#    $j = 10$, by about 2% and 4% ($980/960$, $920/960$); not timed here. The
#    benchmark's wall times (another model, 500 images, a shared CPU) give
#    $2407 / 592 \approx 4.1$ for RePaint $r = 5$ against replacement, below the 4.8
#    of the calls: each time includes the trace of its own compiled loop and the
#    other jobs on the CPU, so read the count as the cost and the times as a
#    rough check.
# 3. (a) Block mean then repetition is a projection for every factor, so the x7
#    result, averaged back to 4x4, equals its input to float rounding: predict an
#    error of the size of the x4 line's $4.2 \cdot 10^{-7}$. A 4x4 input holds 16
#    numbers per image against 49 for 7x7, so the model has more to invent:
#    predict ILVR x7 below ILVR x4's 17.16 dB, 0.564 and 80%, and bicubic x7
#    blurrier still than bicubic x4 (15.91 dB, 0.433, 50%); not measured here.
#    Factor 28 is also allowed (it divides 28): $\phi(x)$ is then the image's mean
#    brightness in every pixel, and ILVR fixes only that. The result is in effect
#    a new sample with the original's mean brightness, like SDEdit at strength 1,
#    where about 0.95 of the 64 images changed class; predict an agreement near
#    chance, perhaps a little above, since brightness says something about the
#    class (a sandal covers less of the image than a pullover). Faithfulness is
#    then nearly gone, realism stays.
#    (b) `sdedit_start` skips the first $\lfloor S(1 - \text{strength})\rfloor$ of the
#    $S = 50$ DDIM timesteps, which are `round(linspace(0, 199, 50))` read from the
#    top. Strength 0.3: skip 35 and start at the 15th from the bottom, index 14,
#    $t_0 = \mathrm{round}(14 \cdot 199/49) = \mathrm{round}(56.9) = 57$, with $50 - 35 = 15$
#    steps. Strength 0.9: skip 5 (in floating point $50 \cdot (1 - 0.9)$ is
#    $4.999\ldots$; the function adds $10^{-9}$ before the floor), index 44,
#    $t_0 = \mathrm{round}(44 \cdot 199/49) = \mathrm{round}(178.7) = 179$, with 45 steps. The
#    benchmark's table printed the same $t_0$, 57 and 179: they depend on the
#    schedule and $S$, not on the model. At 0.3 expect the drawings to show
#    through: flat grey shapes with softer edges and some texture. The real
#    images at 0.2 and 0.4 moved by an RMS distance of only about 0.06 to 0.09
#    (the plot), so faithfulness wins. At 0.9 expect realistic garments whose
#    layout follows the drawings only loosely, some of another class; on real
#    images the benchmark's 2-epoch model kept the label of only 34.2% at 0.9.
#    Neither strength was run here.
