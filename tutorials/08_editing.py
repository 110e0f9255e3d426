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
# 5. measure each: label agreement, PSNR/SSIM against the originals, FID.
#
# Full run: 6.5 min on a 2-core CPU (no GPU) shared with other jobs. It needs a
# trained U-Net: by default the pretrained `unet-fashion-mnist` shipped with the
# package (notebook 04's U-Net trained longer; `python -m keras_diffusion.pretrained
# list`), or any run directory given in the environment variable
# `KERAS_DIFFUSION_RUN`, such as notebook 04's `runs/04_unet`. Set
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
# Where the model sees enough of the garment (the box, the random pixels), the
# fill is plausible: the missing pixels come back nearly as they were. With half
# the image gone it must guess, and the guesses often do not match the known half:
# a second sleeve of another shade, a shoe cut off at the middle. That is the
# weakness of replacement. The known half enters each step as the original *plus
# independent noise*, so at high $t$ the generated half only sees noise on the
# other side, and by the time the known half is clear, the generated half has
# already committed to a shape.
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
# The cost is about $r$ times the network calls: RePaint buys harmony with
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
# On `N_EVAL` test images, does the filled image keep the class of the original,
# and are the known pixels untouched? (The 500-image numbers with FID are at the end.)

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
# Bicubic blurs; ILVR draws sharp edges, stripes and seams that the input only
# hints at. Sharp is not the same as right: where 7x7 pixels leave a choice, the
# model makes one, and it may differ from the original. PSNR and SSIM
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
# Up to about 0.4 the garment is the original with small changes; around 0.6
# the model starts to replace parts, and by 0.8 it keeps little more than the
# silhouette's brightness. How far, in numbers, on `N_EVAL` images:

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
# The rectangles come back as garments: the model keeps the layout it was given
# and draws the texture, shading and outline of a real one, differently for each
# seed. Lower the strength and the drawing shows through; raise it and the
# layout goes too.
#
# ## The measurements: 500 test images
#
# `python benchmarks/editing.py --run runs/cond --n 500` measures all three
# methods on test images 0-499 with the package's classifier and writes
# `assets/editing.json` and the figures `assets/editing_*.png`. FID needs more
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
#   $r - 1$ times) lets the fill agree with them, at $r$ times the cost.
# - ILVR replaces the low frequencies $\phi(x_{t-1})$ by those of the noised
#   low-resolution input; with block averaging $\phi$ is a projection, and the
#   result is consistent with the input exactly.
# - SDEdit noises to $t_0 = \text{strength}\cdot T$ and denoises: strength trades
#   faithfulness to the input for realism.
