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
# # 06 · Measuring sample quality: FID, class coverage and bits per dimension
#
# Pictures tell a working model from a broken one (notebooks 02 and 03), but not
# a good model from a slightly better one: two grids of 64 samples from close
# models look the same. This notebook puts numbers on samples with
# `keras_diffusion.metrics`. You will:
#
# 1. meet the feature network: Inception, the network behind published FIDs, does
#    not fit 28x28 greyscale, so the package ships its own small Fashion-MNIST
#    classifier; we measure its accuracy and look at its 128 features;
# 2. compute FID, the Fréchet distance between Gaussians fitted to those features,
#    check it on cases whose answer we know, and measure its bias with the number
#    of images $n$: the real-data *floor*;
# 3. measure class coverage, the predicted-class histogram and its entropy, which
#    catches mode collapse;
# 4. score the U-Net of notebook 04 (trained for 14 epochs): FID beside its floor,
#    entropy, histogram;
# 5. compute bits per dimension, DDPM's variational bound (eq. 5) on test images,
#    term by term, and see at which $t$ the bits are spent.
#
# Full run: 4 min on a 2-core CPU shared with other jobs (no GPU). Set
# `KERAS_DIFFUSION_QUICK=1` for a quick run (fewer images, and a tiny U-Net
# trained for one epoch in place of the pretrained one; the tests do).
#
# It scores the pretrained U-Net shipped with the package (`unet-fashion-mnist`,
# notebook 04's U-Net trained longer), so it needs no training; start Jupyter
# with `KERAS_DIFFUSION_RUN=runs/04_unet` to score your own run of notebook 04.
#
# Prerequisites: notebook 04 (the U-Net); notebooks 01 and 02 for the schedule
# and the reverse process, 05 for DDIM.
#
# References: Heusel et al. 2017, *GANs Trained by a Two Time-Scale Update Rule
# Converge to a Local Nash Equilibrium* (FID), https://arxiv.org/abs/1706.08500;
# Ho, Jain & Abbeel 2020 (DDPM), https://arxiv.org/abs/2006.11239.

# %%
# %matplotlib inline
import logging
import os
import time
import warnings

import numpy as np
from matplotlib.figure import Figure
from scipy.linalg import LinAlgWarning
from scipy.ndimage import gaussian_filter

from keras_diffusion import metrics, pretrained
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.metrics import CLASSES, Evaluator
from keras_diffusion.plotting import plot_samples
from keras_diffusion.reverse import sample
from keras_diffusion.training import clip_range, sampling_clip, train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): fewer images, a tiny U-Net.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_ACCURACY = 500 if QUICK else 10_000  # test images for the classifier's accuracy (10,000: all)
FLOOR_NS = (150, 200) if QUICK else (200, 500, 1000, 2000)  # n at which we measure the floor
N_SAMPLES = 150 if QUICK else 1000  # images scored; FID needs more than the 128 features
DDIM_STEPS = 50  # sampler steps (at most T)
N_BPD = 8 if QUICK else 200  # test images for bits/dim: T denoiser calls per batch
N_TERMS = 8 if QUICK else 64  # test images for the per-t plot of the bound
RUN = os.environ.get("KERAS_DIFFUSION_RUN")  # your own run directory, relative to this notebook (default: the pretrained U-Net)
SEED = 0  # the same real subsets as `python -m keras_diffusion.evaluate` (its --seed 0)
# Each call of bits_per_dim / vb_terms compiles its own tf.function: silence the "retracing" notices.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
# Keras warns that the evaluator's feature model, built with a list of one input, gets a bare array: harmless.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
# Some features are 0 for every image, so covariances are singular and sqrtm says so; FID handles it (see below).
warnings.filterwarnings("ignore", category=LinAlgWarning)
print(f"QUICK={QUICK}: {N_SAMPLES} samples, floor at n={FLOOR_NS}, bits/dim on {N_BPD} test images")

# %% [markdown]
# ## Why a number, and which network
#
# A useful number compares *distributions*: are the samples as sharp as real
# images, as varied, and in the same proportions? The Fréchet Inception Distance
# (FID, Heusel et al. 2017) does so with statistics of features from a trained
# image network. Papers take Inception-v3's 2048 pooled features. That network saw
# 299x299 colour photographs of ImageNet: a 28x28 greyscale garment would have to be
# blown up ten times and copied into three channels, its features would describe
# ImageNet's categories, and the weights are a download that an offline machine
# cannot make.
#
# So the package ships its own feature network, trained on Fashion-MNIST:
# `metrics.build_classifier()` builds a small CNN (two conv stages, global average
# pooling, a 128-unit `features` layer, then 10 logits) and
# `metrics.load_classifier()` loads its weights from
# `keras_diffusion/weights/fashion_mnist_classifier.weights.h5` (made with
# `python -m keras_diffusion.evaluate --train-classifier`: 6 epochs, seed 0, random
# shifts of up to 2 pixels). FIDs measured with it compare with each other, never
# with the Inception FIDs of papers.

# %%
classifier = metrics.load_classifier()  # the shipped weights
classifier.summary(line_length=90)

# %% [markdown]
# `Evaluator` wraps the classifier: `features(images)` returns the 128 features
# of the `features` layer and the predicted class of each uint8 image. The
# classifier's accuracy on the 10,000 test images, which it never saw in training:

# %%
evaluator = Evaluator(classifier, seed=SEED)
test_images, test_labels = load_images("fashion_mnist", "test", limit=N_ACCURACY)  # uint8 (N, 28, 28, 1)
start = time.perf_counter()
features, predicted = evaluator.features(test_images)  # (N, 128) float64, (N,) class indices
seconds = time.perf_counter() - start
print(f"{len(test_images):,} test images in {seconds:.1f} s: accuracy {np.mean(predicted == test_labels):.1%}")
dead = int(np.sum(features.max(axis=0) == 0))  # features that are 0 for every image
print(f"features {features.shape}: {np.mean(features == 0):.0%} of the values are 0 (a ReLU layer); "
      f"{dead} of the {features.shape[1]} features are 0 on every image")

# %%
confusion = np.zeros((len(CLASSES), len(CLASSES)), int)  # rows: true class, columns: predicted
np.add.at(confusion, (test_labels, predicted), 1)
centred = features - features.mean(axis=0)
_, _, components = np.linalg.svd(centred, full_matrices=False)
projected = centred @ components[:2].T  # (N, 2): the first two principal components

fig = Figure(figsize=(12, 4.6), layout="constrained")
left, right = fig.subplots(1, 2)
image = left.imshow(confusion / confusion.sum(axis=1, keepdims=True), cmap="Blues", vmin=0, vmax=1)
left.set_xticks(range(len(CLASSES)), CLASSES, rotation=60, ha="right", fontsize=8)
left.set_yticks(range(len(CLASSES)), CLASSES, fontsize=8)
left.set(xlabel="predicted", ylabel="true", title="confusion on the test images (share of each true class)")
fig.colorbar(image, ax=left, shrink=0.8)
for k, name in enumerate(CLASSES):
    points = projected[test_labels == k]
    right.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color=f"C{k}", label=name)
right.set(xlabel="principal component 1", ylabel="principal component 2", title="the 128 features, projected to 2-D")
right.legend(fontsize=7, markerscale=4, loc="best")
fig

# %% [markdown]
# The confusions are the ones a person makes: shirts with T-shirts, pullovers and
# coats. In feature space each class is a cloud of its own: two of the 128
# directions already set footwear, trousers and bags apart, while the tops overlap
# there and need the other directions. FID measures how far the cloud of generated
# images lies from the cloud of real ones in these 128 dimensions.
#
# ## FID: the Fréchet distance of two Gaussians
#
# Fit a Gaussian $\mathcal{N}(\mu_1, \Sigma_1)$ to the features of real images and
# $\mathcal{N}(\mu_2, \Sigma_2)$ to those of generated images (means of shape (128,),
# covariances (128, 128), `metrics.gaussian_fit`). FID is the Fréchet (2-Wasserstein)
# distance between the two Gaussians:
#
# $$d^2 = \|\mu_1-\mu_2\|^2 + \mathrm{Tr}\big(\Sigma_1+\Sigma_2-2(\Sigma_1\Sigma_2)^{1/2}\big).$$
#
# The first term asks whether the features are right *on average* (the mix of
# classes, the brightness, the shapes); the second whether they *vary* as much
# and in the same directions. It is 0 only when both Gaussians are the same.
# `metrics.frechet_distance(mu1, cov1, mu2, cov2)` computes it (with `scipy.linalg.sqrtm`
# for the matrix square root), and `metrics.fid_from_features(f1, f2)` fits the two
# Gaussians first. The features that are 0 on every image (printed above: ReLU
# units the training switched off) add nothing to either term, but they make both
# covariances singular; `frechet_distance` is guarded for that (symmetrised
# covariances, a small diagonal offset if the square root is not finite,
# round-off imaginary parts dropped). Two cases with a known answer:
#
# - move every feature by the same $\delta$: the covariances stay the same, the trace
#   term is $\mathrm{Tr}(2\Sigma - 2\Sigma) = 0$, and $d^2 = \|\delta\|^2$ exactly;
# - scale the spread, $\Sigma_2 = c^2\Sigma_1$: then $(\Sigma_1\Sigma_2)^{1/2} = c\,\Sigma_1$ and
#   $d^2 = (1 - c)^2\,\mathrm{Tr}\,\Sigma_1$; twice the spread ($c = 2$) costs $\mathrm{Tr}\,\Sigma_1$.

# %%
delta = np.full(metrics.FEATURES, 0.1)  # every feature moved by 0.1
print(f"mean shift : fid_from_features = {metrics.fid_from_features(features, features + delta):.6f}, "
      f"|δ|² = {delta @ delta:.6f}")
mu, cov = metrics.gaussian_fit(features)  # (128,), (128, 128)
print(f"2x spread  : frechet_distance  = {metrics.frechet_distance(mu, cov, mu, 4 * cov):.6f}, "
      f"Tr Σ = {np.trace(cov):.6f}")
half = len(features) // 2
print(f"two halves of the same {len(features):,} test images: FID = {metrics.fid_from_features(features[:half], features[half:]):.3f}")

# %% [markdown]
# The last line is the catch: two sets of **real** images from the same
# distribution do not score 0. $\mu$ and $\Sigma$ are estimated from $n$ images,
# the estimates are noisy, and noise can only add distance. For the mean term
# alone, with independent sets of $n$ images each,
# $\mathbb{E}\,\|\hat\mu_1-\hat\mu_2\|^2 = \|\mu_1-\mu_2\|^2 + (\mathrm{Tr}\,\Sigma_1 + \mathrm{Tr}\,\Sigma_2)/n$,
# and the covariance term has a bias of its own. So FID is **biased upwards, by an
# amount that shrinks with $n$**, and an FID at $n = 500$ cannot be compared with one
# at $n = 2000$.
#
# `Evaluator.floor(n)` measures that bias on real data: FID between $n$ random
# training images and $n$ random test images, which is what a perfect model would
# score at this $n$. Every FID in this package is reported beside its floor at the
# same $n$ (`Evaluator.score` does it for you).

# %%
floors = {}
for n in FLOOR_NS:
    start = time.perf_counter()
    floors[n] = evaluator.floor(n)
    print(f"n = {n:>5}: floor {floors[n]:7.3f}   n·floor {n * floors[n]:7.0f}   ({time.perf_counter() - start:.1f} s)")

ns = np.array(FLOOR_NS)
mean_bias = 2 * np.trace(cov) / ns  # (Tr Σ_1 + Tr Σ_2)/n with Σ_1 ≈ Σ_2 ≈ the test features' Σ
fig = Figure(figsize=(6.5, 3.8), layout="constrained")
ax = fig.subplots()
ax.plot(ns, [floors[n] for n in FLOOR_NS], marker="o", label="floor: FID(n train images, n test images)")
ax.plot(ns, mean_bias, ls="--", color="gray", label=r"mean term alone, $(\mathrm{Tr}\,\Sigma_1 + \mathrm{Tr}\,\Sigma_2)/n$")
ax.set(xscale="log", yscale="log", xlabel="n (images in each set)", ylabel="FID", title="FID of real against real data: the floor")
ax.set_xticks(ns, [str(n) for n in ns])
ax.set_xticks([], minor=True)  # label only the measured n
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig

# %% [markdown]
# The floor falls about as $1/n$ ($n \cdot$ floor changes little), and the
# mean term is only part of it: most of the bias comes from the 128x128 covariance,
# whose $128 \cdot 129/2 = 8256$ entries are estimated from $n$ images. A model is
# only as good as the gap between its FID and the floor at the same $n$.
#
# ## Class coverage: which classes are drawn
#
# FID folds everything into one number. A second, easier one comes from the
# classifier's labels: the histogram $h$ of predicted classes over $n$ samples, and
# its normalised entropy
#
# $$H = -\frac{1}{\log 10}\sum_{k=1}^{10} p_k \log p_k, \qquad p_k = \frac{h_k}{n},$$
#
# which is 1 when all ten classes are drawn equally often (Fashion-MNIST has 6,000
# training images of each), $\log k / \log 10$ when only $k$ classes are drawn
# equally (0.48 for three), and 0 for a single class.
#
# This is what catches **mode collapse**: a generator that covers only some of the
# data's modes (here: classes), perhaps perfectly. It is the classic failure of GANs,
# whose generator is rewarded for fooling a discriminator, not for covering the data.
# A diffusion model is trained to denoise *every* training image, so forgetting a
# class raises its loss and full collapse is rare; but an undertrained model or an
# aggressive sampler can still skew the mix towards easy classes.
#
# `Evaluator.score(images)` returns all the numbers at once for $n$ uint8 images:
# FID against $n$ test images, the floor at the same $n$, the histogram and the
# entropy. Three fake "models" made of real images show what each number sees:
# real training images (a perfect model), real images of three classes only (a
# collapsed one) and real images blurred (every class, but no detail).

# %%
train_images, train_labels = load_images("fashion_mnist", "train")
rng = np.random.default_rng(SEED)
three = [CLASSES.index(name) for name in ("Trouser", "Sneaker", "Bag")]
collapsed = rng.choice(train_images[np.isin(train_labels, three)], N_SAMPLES, replace=False)
real = evaluator.real_images("train", N_SAMPLES)  # a random subset (the floor's training images)
blurred = np.round(gaussian_filter(real.astype(np.float32), sigma=(0, 1, 1, 0))).astype(np.uint8)

scores = {}
for name, images in (("real training images", real), ("3 classes only", collapsed), ("blurred (σ = 1 pixel)", blurred)):
    scores[name] = evaluator.score(images)

print(f"{'n = ' + str(N_SAMPLES):<24} | {'FID':>8} | {'floor':>6} | {'entropy':>7}")
for name, s in scores.items():
    print(f"{name:<24} | {s['fid']:8.2f} | {s['floor']:6.2f} | {s['class_entropy']:7.3f}")
plot_samples(np.concatenate([real[:8], collapsed[:8], blurred[:8]]), title="real · 3 classes only · blurred")


# %%
def plot_histograms(results, title):
    """Bars of the predicted-class share for each {label: score dict}."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(results)
    for i, (label, s) in enumerate(results.items()):
        share = np.asarray(s["histogram"]) / s["n"]
        ax.bar(np.arange(len(CLASSES)) + (i - (len(results) - 1) / 2) * width, share, width,
               label=f"{label} (entropy {s['class_entropy']:.2f})")
    ax.axhline(1 / len(CLASSES), color="gray", ls=":", lw=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, fontsize=8)
    ax.set(ylabel="share of the images", title=title)
    ax.legend(fontsize=8)
    return fig


plot_histograms(scores, f"predicted classes of {N_SAMPLES} images")

# %% [markdown]
# - The real training images score FID = floor exactly: they *are* the floor's
#   training images, and the reference is the same $n$ test images. Their entropy is
#   close to 1.
# - Three classes only: the entropy drops to about 0.5 (0.48 for three classes
#   drawn equally; the classifier's few mistakes add a little) and FID jumps,
#   although every image is a real one. FID sees collapse as a moved mean and a
#   different covariance.
# - Blurred: every class is still there, so the entropy barely moves, but FID rises:
#   the features notice the lost detail. The entropy sees only coverage.
#
# FID sees both failures but cannot say which one it saw; the histogram can. Report both.
#
# ## Scoring the U-Net
#
# The full run scores the pretrained `unet-fashion-mnist`: notebook 04's U-Net,
# trained for 14 epochs on all 60,000 images (the cell prints it). The quick
# run trains a tiny U-Net for one epoch on 512 images instead: its samples are
# blobs, but every call below is the same.

# %%
if QUICK:
    config = TrainConfig(
        model="unet", model_kwargs={"widths": [8, 16], "attention": False}, epochs=1, limit=512, timesteps=20,
        n_samples=16, xla=False,  # XLA would take longer to compile than this run takes to train
    )
    run_dir, _ = train(config, out="runs/06_unet_quick", overwrite=True, verbose=0)
else:  # the pretrained U-Net, or your own run directory
    run_dir = pretrained.run_or_pretrained(RUN, "unet-fashion-mnist")
denoiser, schedule, config = load_run(run_dir)
print(f"{run_dir.name}: {config.model} with {denoiser.count_params():,} parameters, trained on {config.limit or 60_000:,} images "
      f"for epochs={config.epochs}; {schedule.name} schedule, T={schedule.timesteps}, clip={config.clip}")

# %% [markdown]
# We draw $n$ samples with DDIM (notebook 05; `sampler="ddim"`): 50
# deterministic steps instead of DDPM's $T = 200$, four times cheaper. The sampler is part of what is measured: an
# FID is only meaningful with its sampler, steps and $n$ next to it.
# `to_uint8` turns the samples into the classifier's input, exactly as a saved PNG
# would be.

# %%
steps = min(DDIM_STEPS, schedule.timesteps)
start = time.perf_counter()
x = sample(denoiser, schedule, N_SAMPLES, sampler="ddim", steps=steps, seed=SEED, clip=sampling_clip(config))  # (n, 28, 28, 1)
samples = to_uint8(x, config.scaling)  # uint8 (n, 28, 28, 1)
print(f"{N_SAMPLES} samples, DDIM with {steps} steps: {time.perf_counter() - start:.0f} s")
plot_samples(samples[:32], title=f"U-Net, DDIM {steps} steps: the first 32 of {N_SAMPLES} samples")

# %%
scores["U-Net samples"] = unet = evaluator.score(samples)
print(f"U-Net, n = {unet['n']}: FID {unet['fid']:.2f} (floor {unet['floor']:.2f} at the same n), "
      f"class entropy {unet['class_entropy']:.3f}")
plot_histograms({k: scores[k] for k in ("real training images", "U-Net samples")}, f"predicted classes of {N_SAMPLES} images")

# %% [markdown]
# Which samples landed in which class? Up to 12 samples for each predicted class
# (an empty row is a class the model never drew):

# %%
_, sample_classes = evaluator.features(samples)  # (n,) predicted class of each sample
per_row = 12
rows = np.zeros((len(CLASSES), 28, per_row * 28), np.uint8)  # one strip of 12 images a class
for k in range(len(CLASSES)):
    chosen = samples[sample_classes == k][:per_row, :, :, 0]  # (<=12, 28, 28)
    rows[k, :, : 28 * len(chosen)] = np.concatenate(list(chosen), axis=1) if len(chosen) else 0
fig = Figure(figsize=(7, 6.2), layout="constrained")
ax = fig.subplots()
ax.imshow(np.concatenate(list(rows), axis=0), cmap="gray", vmin=0, vmax=255)
ax.set_yticks(28 * np.arange(len(CLASSES)) + 14, [f"{name} ({n})" for name, n in zip(CLASSES, unet["histogram"])], fontsize=8)
ax.set_xticks([])
ax.set_title("U-Net samples by predicted class (count in brackets)")
fig

# %% [markdown]
# ## Bits per dimension: the likelihood bound
#
# FID and the histogram judge samples. A likelihood judges the *model*: how
# probable does it find real test images? A diffusion model has no exact
# likelihood, but DDPM (eq. 5) bounds the negative log-likelihood by a sum of
# terms, one per step of the chain:
#
# $$-\log p_\theta(x_0) \le L = \underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
# + \sum_{t=2}^{T} \underbrace{D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
# \;\underbrace{-\,\log p_\theta(x_0 \mid x_1)}_{L_0}$$
#
# (the paper's $t$ runs from 1 to $T$; the package's from 0 to $T-1$).
#
# - $L_T$, the **prior** term: how far the end of the forward process is from the
#   $\mathcal{N}(0, I)$ that sampling starts from. No parameters; with the cosine
#   schedule, $\bar\alpha_T \approx 0$ and it is nearly 0 (with notebook 01's linear
#   $T = 200$ schedule it would not be).
# - $L_{t-1}$, the **denoising** terms: the true posterior $q(x_{t-1} \mid x_t, x_0)$
#   (DDPM eq. 6-7, known because $x_0$ is) against the model's step. Both are Gaussians
#   with the same variance $\sigma_t^2 = \tilde\beta_t$ (DDPM's "fixed small" choice), so
#   each KL is $\|\tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\|^2 / (2\sigma_t^2)$, summed over the
#   784 pixels. It is estimated with one random $x_t$ per $t$ and image.
# - $L_0$, the **decoder**: pixels are 256 discrete values, so $p_\theta(x_0 \mid x_1)$ gives each
#   pixel the mass of a Gaussian $\mathcal{N}(\mu_\theta(x_1, 1), \sigma_1^2)$ over its bin, of width
#   $2/255$ in $[-1, 1]$, the first and last bins reaching to $\mp\infty$ (DDPM eq. 13,
#   `metrics.discretized_gaussian_log_likelihood`).
#
# In nats per image; divided by $784 \ln 2$ it becomes **bits per dimension**, the
# number of bits per pixel an ideal compressor built on the model would need.
# Fewer is better; 8 bits/dim is what storing raw uint8 pixels costs.
#
# `metrics.bits_per_dim` computes it on uint8 images, and needs $T$ denoiser calls
# per batch, one per term:

# %%
bpd_images = evaluator.real_images("test", N_BPD)  # the test images `evaluate --bpd --n N_BPD` uses
start = time.perf_counter()
bpd = metrics.bits_per_dim(denoiser, schedule, bpd_images, config.scaling, seed=SEED, clip=sampling_clip(config))
print(f"{N_BPD} test images, T = {schedule.timesteps}: {time.perf_counter() - start:.0f} s")
for name, part in (("L_T (prior)", "prior"), ("Σ L_(t-1) (denoising)", "kl"), ("L_0 (decoder)", "decoder"), ("total", "bpd")):
    print(f"{name:>22}: {bpd[part]:9.4f} bits/dim")

# %% [markdown]
# Where do the bits go? `metrics.vb_terms` returns every term of the bound for a
# batch, in nats per image: $L_T$ (B,), the $T-1$ denoising terms (T-1, B) and $L_0$ (B,).
# Averaged over a batch of test images and plotted against $t$:

# %%
x0 = scale_images(bpd_images[:N_TERMS], config.scaling)  # (B, 28, 28, 1) in the run's range
prior, kl, decoder = metrics.vb_terms(
    denoiser, schedule, x0, noise_seed=SEED, clip=sampling_clip(config), data_range=clip_range(config.scaling)
)
to_bits = 1 / (np.prod(x0.shape[1:]) * np.log(2))  # nats per image -> bits per dimension
kl_bits = kl.mean(axis=1) * to_bits  # (T-1,): the term at package t = 1 .. T-1
T = schedule.timesteps
t = np.arange(1, T)
first = t <= T // 10  # the 10 % of the steps nearest the data
print(f"{N_TERMS} images: prior {prior.mean() * to_bits:.2e}, denoising {kl_bits.sum():.3f}, decoder "
      f"{decoder.mean() * to_bits:.3f} bits/dim; the first 10 % of the steps hold {kl_bits[first].sum() / kl_bits.sum():.0%} "
      "of the denoising bits")

fig = Figure(figsize=(11, 3.8), layout="constrained")
left, right = fig.subplots(1, 2)
left.plot(t, kl_bits, lw=1.2, label=r"$L_{t-1}$: KL, denoising step at $t$")
left.scatter([0], [decoder.mean() * to_bits], color="C3", zorder=3, label=r"$L_0$: decoder")
left.scatter([T], [max(prior.mean() * to_bits, 1e-12)], color="C2", zorder=3, label=r"$L_T$: prior")
left.set(yscale="log", xlabel="timestep t", ylabel="bits/dim", title="the terms of the bound, mean over test images")
left.grid(alpha=0.3, which="both")
left.legend(fontsize=8)
bound = np.concatenate([[decoder.mean()], kl.mean(axis=1)]) * to_bits  # t = 0 .. T-1
right.plot(np.arange(T), np.cumsum(bound) / bound.sum())
right.set(xlabel="timestep t", ylabel="share of the bound", title=r"cumulative share of the bound, from $t = 0$ up")
right.grid(alpha=0.3)
fig

# %% [markdown]
# ## What the numbers say
#
# From the full run (seed 0; $n = 1000$ unless said otherwise):
#
# - **The classifier** is right on 91.8 % of the 10,000 test images, and 102 of its
#   128 features are alive: that is the space every FID here is measured in.
# - **The floor** falls about as $1/n$: 2.06 at $n = 200$, 0.83 at 500, 0.42 at 1000,
#   0.15 at 2000. An FID of 2 would be perfect at $n = 200$ and poor at $n = 2000$:
#   never quote an FID without its $n$.
# - **The U-Net** of notebook 04 (the pretrained model, 14 epochs; DDIM with 50
#   steps) scores **FID 5.87 against a floor of 0.42**, about 14 times the floor
#   ($5.87 / 0.418 = 14.0$). For scale, at the same $n$: real images blurred by one
#   pixel score 5.22, real images of three classes only 46.89. Its samples are
#   about as far from the data as blurred real images, a little further. How the
#   FID fell with training is in notebook 04's loss figure (256 DDIM-50 samples
#   after each epoch, about 26 after epoch 1 and 7 after epoch 14; at $n = 256$ the
#   floor is higher than at 1000, so those values do not compare with 5.87
#   directly). An FID within 3 times the floor (here $3 \cdot 0.418 = 1.25$) is
#   still far off: this gap is the number to watch as it trains longer.
# - **The sampler is part of the score.** DDIM with 50 deterministic steps is the
#   fast sampler these numbers use; it follows the model's errors. Notebook 05's
#   table (made by `benchmarks/sampler_steps.py` on a 5-epoch run of this U-Net,
#   $n = 500$; not rerun here or there) shows it at
#   FID 12.2 with DDIM-50 and $\eta = 0$, 5.2 with $\eta = 1$ and 4.4 with DDPM's 200
#   steps: always report DDPM or a stochastic sampler beside DDIM, and say which.
# - **Class entropy 0.979** (real images: 0.998): all ten classes are drawn, in
#   nearly the real proportions. The largest departures: shirts (14.9 %), bags
#   (13.7 %) and pullovers (13.5 %) are over-represented, coats (5.3 %) and ankle
#   boots (6.5 %) under-represented; the other five classes get 7.9 % to 11.1 %.
#   The montage shows what is left to fix: most samples are clean garments, but
#   some are over-exposed shapes with blotchy, speckled insides, and these land in
#   many classes, most visibly in the Coat, Shirt, Dress and Sandal rows. No
#   collapse, a mild skew.
# - **Bits/dim 3.47** on 200 test images (prior $3 \cdot 10^{-8}$, denoising 1.61,
#   decoder 1.86), less than half of the 8 bits of raw pixels. The bits sit next to
#   the data: the decoder $L_0$ alone is a little more than half of the bound
#   ($1.86 / 3.47 = 54$ %), and on the plot's 64 images the steps $t \le 20$ (the
#   first 10 %) hold 82 % of the denoising terms, while the steps near pure noise
#   cost almost nothing. The steps near the data, the last ones of sampling, decide
#   the exact grey level of each pixel, which a classifier's features barely see:
#   likelihood and sample quality measure different things. DDPM's Table 1 shows
#   the same trade from the other side: on CIFAR-10, training on its simplified
#   loss gave a much better FID than training on the bound itself (3.17 against
#   13.51) but a slightly worse bound (3.75 against 3.70 bits/dim).
#
# ## The same numbers from the command line
#
# `python -m keras_diffusion.evaluate` does all of the above for a run directory
# and prints one line of JSON (from the repository root):
#
# ```bash
# python -m keras_diffusion.evaluate --pretrained unet-fashion-mnist --n 2000 --sampler ddim --steps 50   # FID, floor, entropy, histogram
# python -m keras_diffusion.evaluate --run tutorials/runs/04_unet --bpd --no-fid --n 1000              # your run: bits/dim on 1000 test images
# python -m keras_diffusion.evaluate --real --n 2000                                                  # the floor alone
# python -m keras_diffusion.evaluate --npz samples.npz                                                # images from anywhere
# ```
#
# It uses the same classifier, the same seed (`--seed 0`) and so the same real
# subsets as this notebook: its floor at a given $n$ is the one above. During
# training, `metrics.FIDCallback` logs a cheap FID (DDIM, a few hundred samples)
# every few epochs, to watch it fall.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** Model A scores FID 2.0 on $n = 200$ samples, model B FID 1.0
#    on $n = 2000$. Which is better?
# 2. **A code change.** Score the closed-form linear denoiser (notebook 10), which
#    takes seconds to "train". From the repository root:
#    ```bash
#    python -m keras_diffusion.train --model linear --out runs/linear
#    python -m keras_diffusion.evaluate --run runs/linear --n 2000 --sampler ddim --steps 50 --bpd --bpd-n 500
#    ```
#    Before running it, predict where its FID, class entropy and bits/dim fall
#    between the MLP rungs (FID 70 to 85, entropy 0.2 to 0.3, 6.6 to 11 bits/dim in the
#    README) and the README's 2-epoch U-Net (29, 0.83, 3.8).
# 3. **A number to predict.** From the floors measured above, predict the floor at
#    $n = 4000$.
# 4. **Code to write.** Write FID and the class entropy yourself, in NumPy and
#    `scipy.linalg.sqrtm`, from the formulas above:
#    ```python
#    def my_fid(features1, features2):  # (N1, 128), (N2, 128) -> d²
#        ...
#
#    def my_entropy(histogram):  # (10,) counts -> H in [0, 1]
#        ...
#    ```
#    Check `my_fid` on the two halves of the test images (`features[:half]`,
#    `features[half:]`, which scored 0.100 above) and `my_entropy` on the U-Net's
#    histogram (`unet["histogram"]`, entropy 0.979). What must `my_entropy` do with
#    a class that was never drawn?

# %% [markdown]
# ## Answers
#
# 1. You cannot tell from these numbers. FID is biased by $n$: at $n = 200$ the floor
#    (real images against real images) is 2.06, so A scores as well as real data can
#    at that $n$; at $n = 2000$ the floor is 0.15, so B is 0.85 above it. Score both at
#    the same, large $n$, each beside its floor.
# 2. Those two commands, run once on a 2-core CPU (not part of this notebook's
#    outputs), give: FID 52.4 (floor 0.15), class entropy 0.26, 5.62 bits/dim (3.31
#    for the denoising terms, 2.31 for the decoder); with DDPM's 200 steps instead of
#    DDIM-50, FID 57.9 and entropy 0.14. Better than every MLP rung on FID and on
#    the bound, worse than the U-Net on both. The low entropy is its own failure:
#    its blurry blobs look like tops, and the classifier files 87 % of them (DDIM-50;
#    93 % with DDPM) as "Shirt". A denoiser that needs no training sets the bar that a
#    trained network must clear before its architecture can take the credit.
# 3. The product $n \cdot \text{floor}$ was about 410 at $n$ = 200 to 1000 and 300 at
#    2000, so expect a floor of about 0.075 to 0.10 at $n = 4000$
#    (`python -m keras_diffusion.evaluate --real --n 4000` measures it).
# 4. ```python
#    import scipy.linalg
#
#
#    def my_fid(features1, features2):
#        mu1, mu2 = features1.mean(axis=0), features2.mean(axis=0)  # (128,)
#        cov1, cov2 = np.cov(features1, rowvar=False), np.cov(features2, rowvar=False)  # (128, 128)
#        root = scipy.linalg.sqrtm(cov1 @ cov2).real  # (Σ1 Σ2)^(1/2); drop round-off imaginary parts
#        return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1 + cov2 - 2 * root))
#
#
#    def my_entropy(histogram):
#        p = np.asarray(histogram, np.float64) / np.sum(histogram)
#        p = p[p > 0]  # a class never drawn adds 0 (p log p -> 0 as p -> 0), not log 0
#        return float(-(p * np.log(p)).sum() / np.log(len(histogram)))
#
#
#    print(my_fid(features[:half], features[half:]), metrics.fid_from_features(features[:half], features[half:]))
#    print(my_entropy(unet["histogram"]), unet["class_entropy"])
#    ```
#    Each pair should agree to several digits: about 0.100 and 0.979. The dead
#    features make both covariances singular; `sqrtm` copes here, and where it
#    returns values that are not finite, `metrics.frechet_distance` adds $10^{-6}$ to
#    both diagonals and tries again, which yours could do too. Dividing by
#    $\log 10$, the number of classes, not the number of classes drawn, is what makes
#    a collapse onto three classes score 0.48 rather than 1.
