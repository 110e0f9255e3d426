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
# # 02 · The classic MLP denoiser, and why its samples are static
#
# The "MLP denoiser" demo is many people's first diffusion model: a flattened
# 28x28 image and $t/T$ go into a small MLP that predicts the noise; linear betas
# $10^{-4} \ldots 0.02$ with $T = 200$; five epochs; then a Python loop of
# `model.predict` calls, one per reverse step. Its samples are pure static. This
# notebook reproduces it with the package, then takes it apart:
#
# 1. build `mlp_seed` (the demo's network, exactly) and train it with DDPM's loss;
# 2. look at the classic 2x6 figure, the loss curve and 64 samples;
# 3. find out *why* the samples are static, with measurements, not guesses;
# 4. time the package's compiled sampler against the demo's per-step `model.predict` loop.
#
# Full run: 1 min on a 2-core CPU (no GPU) shared with another job. Set `KERAS_DIFFUSION_QUICK=1` for a
# quick run (512 images, 1 epoch; the tests do).
#
# Prerequisite: notebook 01 (the forward process and the schedules).

# %%
# %matplotlib inline
import logging
import os
import time

import numpy as np
from matplotlib.figure import Figure

from keras_diffusion import build_model, ddpm_step, q_sample
from keras_diffusion.checkpoint import load_run
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.plotting import plot_classic, plot_loss, plot_reverse_grid, plot_samples
from keras_diffusion.reverse import sample
from keras_diffusion.training import train

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): less data, fewer epochs and steps.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
LIMIT = 512 if QUICK else None  # training images (None: all 60,000)
EPOCHS = 1 if QUICK else 5  # the classic demo trains for 5
N_EVAL = 256 if QUICK else 1000  # test images for the diagnostics
CLASSIC_STEPS = 5 if QUICK else 20  # reverse steps of the classic loop that we time
RUN_DIR = "runs/02_mlp_seed_quick" if QUICK else "runs/02_mlp_seed"  # relative to this notebook
# Each figure's sampler is its own compiled loop, traced once; TensorFlow counts the
# traces of all of them together and warns about "retracing". Silence that.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
print(f"QUICK={QUICK}: limit={LIMIT}, epochs={EPOCHS}, run directory {RUN_DIR}")

# %% [markdown]
# ## The network: `mlp_seed`
#
# $$\hat\varepsilon = \varepsilon_\theta(x_t, t) = W_3\,\mathrm{relu}\big(W_2\,\mathrm{relu}(W_1 [\,\mathrm{flatten}(x_t);\ t/T\,] + b_1) + b_2\big) + b_3$$
#
# 784 pixels and one number for time in, 784 numbers out, reshaped to 28x28x1.
# Every denoiser in the package is called the same way, `denoiser([x_t, t])`, with
# integer timesteps $t \in \{0, \dots, T-1\}$; `mlp_seed` divides $t$ by $T$ itself
# (the `TimeScale` layer).

# %%
denoiser = build_model("mlp_seed")  # image_shape=(28, 28, 1), timesteps=200, hidden=512
denoiser.summary()

# %% [markdown]
# ## Training: DDPM Algorithm 1
#
# Each training step takes a batch of clean images $x_0$, draws a timestep and a
# noise for each, noises the images in one jump with the closed form of notebook 01,
# and asks the network for the noise back:
#
# $$t \sim \mathcal{U}\{0, \dots, T-1\},\quad \varepsilon \sim \mathcal{N}(0, I),\quad
# L_\text{simple} = \big\| \varepsilon - \varepsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t\big) \big\|^2
# \qquad\text{(DDPM eq. 14)}.$$
#
# In the package this is `DiffusionModel.train_step`, run by Keras' `fit`.
# `keras_diffusion.training.train` does the whole run (it is what
# `python -m keras_diffusion.train` calls): it loads the data, builds the model and
# the schedule the config asks for, trains, and writes a run directory with
# `config.json`, the weights, `history.csv` and figures.
#
# `TrainConfig(model="mlp_seed")` fills in the model's defaults, which are the
# classic demo's: pixels in $[0, 1]$, linear betas $10^{-4} \ldots 0.02$, $T = 200$,
# batch 128, Adam with learning rate $10^{-3}$, no EMA of the weights.

# %%
config = TrainConfig(model="mlp_seed", epochs=EPOCHS, limit=LIMIT)
start = time.perf_counter()
# overwrite=True: running the notebook again replaces its own earlier run
run_dir, history = train(config, out=RUN_DIR, overwrite=True)
print(f"trained in {(time.perf_counter() - start) / 60:.1f} min; loss per epoch: {np.round(history['loss'], 3)}")

# %% [markdown]
# `train` returns the run directory and the loss history. The trained network
# and its schedule come back from the run directory, the same way
# `python -m keras_diffusion.sample --run ...` gets them:

# %%
denoiser, schedule, config = load_run(run_dir)
T = schedule.timesteps
print(schedule)
print(f"scaling={config.scaling}, batch_size={config.batch_size}, lr={config.lr}, ema={config.ema}, epochs={config.epochs}")
print("files:", sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# ## The classic figure
#
# Row 1 is the forward process on a training image: $x_t$ at $t = 0, 50, 100, 150, 199$.
# Row 2 is the reverse process, DDPM Algorithm 2: start from $x_T \sim \mathcal{N}(0, I)$
# and apply, for $t = T-1$ down to 0,
#
# $$x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\varepsilon_\theta(x_t, t)\Big) + \sigma_t z,
# \qquad z \sim \mathcal{N}(0, I),\ \sigma_t^2 = \beta_t\ (\text{no noise at the last step})
# \qquad\text{(DDPM eq. 11)}.$$
#
# The columns show the chain after the steps at $t = 199, 150, 100, 50, 0$.

# %%
train_images, _ = load_images("fashion_mnist", "train", limit=4)
x0_train = scale_images(train_images, config.scaling)  # (4, 28, 28, 1) in [0, 1]
plot_classic(denoiser, schedule, x0_train[0], scaling=config.scaling, seed=0)

# %% [markdown]
# Row 1 ends, as notebook 01 predicted, with the boot still visible at $t = 199$.
# Row 2 never becomes a garment. Four samples through the reverse chain, and the
# loss:

# %%
plot_reverse_grid(denoiser, schedule, n=4, scaling=config.scaling, seed=1)

# %%
plot_loss(history, title="mlp_seed: training loss")

# %% [markdown]
# The loss drops in the first epoch and then sits near 0.87: predicting
# $\varepsilon$ as 0 would score 1.0. For scale from the other side, the best
# *linear* denoiser, fit in closed form in seconds from the data's mean and
# covariance (notebook 10), scores 0.110 averaged over $t$ in these same settings.
# Now 64 samples, drawn by the package's
# compiled sampler (`keras_diffusion.reverse.sample`, all $T$ steps of Algorithm 2
# for the whole batch in one `tf.function`):

# %%
start = time.perf_counter()
samples = sample(denoiser, schedule, 64, seed=0)  # (64, 28, 28, 1), float32
first_call = time.perf_counter() - start  # includes tracing the tf.function
plot_samples(samples, config.scaling, title="mlp_seed: 64 samples")

# %% [markdown]
# Static, as in the original demo. This is the expected result for this model,
# not a bug in the reproduction. The rest of the notebook finds out why.
#
# ## Why the samples are static
#
# ### 1. The samples are noise, amplified
#
# Look at the numbers behind the picture, next to the data's:

# %%
test_images, _ = load_images("fashion_mnist", "test", limit=N_EVAL)
x0_test = scale_images(test_images, config.scaling)  # (N, 28, 28, 1) in [0, 1]
print(f"data    : mean {x0_test.mean():6.3f}, std {x0_test.std():6.3f}, range [{x0_test.min():.2f}, {x0_test.max():.2f}]")
print(f"samples : mean {samples.mean():6.3f}, std {samples.std():6.3f}, range [{samples.min():.2f}, {samples.max():.2f}]")
print(f"1 / sqrt(ᾱ_T) = {1 / schedule.sqrt_alpha_bars[-1]:.2f}")

# %% [markdown]
# The samples' standard deviation is several times that of the data, and of the
# $\mathcal{N}(0, I)$ noise they started from. The plot clips everything outside
# $[0, 1]$ to black or white: static.
#
# Every reverse step divides by $\sqrt{\alpha_t}$, a factor $1/\sqrt{\bar\alpha_T} \approx 2.75$
# over the whole chain, and adds fresh noise $\sigma_t z$. A good $\hat\varepsilon$
# subtracts just the noise that cancels both. A denoiser that always answered
# $\hat\varepsilon = 0$ would subtract nothing: each step would be
# $x_{t-1} = x_t/\sqrt{\alpha_t} + \sqrt{\beta_t}\,z$, so the variance would follow
# $v_{t-1} = v_t/\alpha_t + \beta_t$ from $v_T = 1$ (no $z$ at the last step):

# %%
v = 1.0
for t in reversed(range(T)):
    v = v / schedule.alphas[t] + (schedule.betas[t] if t > 0 else 0.0)
print(f"std of the samples if ε̂ were always 0: {np.sqrt(v):.2f}; std of mlp_seed's samples: {samples.std():.2f}")

# %% [markdown]
# The trained denoiser does little better than answering zero: the reverse chain
# mostly amplifies its starting noise. So why is $\hat\varepsilon$ so poor?
#
# ### 2. It barely uses $t$
#
# The right $\hat\varepsilon$ for an input depends strongly on $t$: at $t = 0$ the
# noise is a whisper on top of the image ($\sqrt{1-\bar\alpha_0} = 0.01$), at
# $t = 199$ it is most of $x_t$. Give the trained network the *same* $x_t$ twice,
# once labelled $t = 0$ and once $t = 199$, and compare its answers. Alongside, the
# loss at each $t$ on test images.

# %%
rng = np.random.default_rng(0)
print(f"{'t':>4} | {'loss':>6} | corr(ε̂ told t=0, ε̂ told t=199)")
for t in (0, 10, 50, 100, 150, 199):
    eps = rng.standard_normal(x0_test.shape).astype(np.float32)
    x_t = np.asarray(q_sample(schedule, x0_test, t, eps))  # (N, 28, 28, 1)
    eps_hat = denoiser.predict([x_t, np.full(len(x_t), t)], verbose=0)  # told the true t
    as_0 = denoiser.predict([x_t, np.zeros(len(x_t), int)], verbose=0)  # told t = 0
    as_199 = denoiser.predict([x_t, np.full(len(x_t), T - 1)], verbose=0)  # told t = 199
    loss = np.mean((eps - eps_hat) ** 2)
    print(f"{t:>4} | {loss:6.3f} | {np.corrcoef(np.ravel(as_0), np.ravel(as_199))[0, 1]:31.3f}")

# %% [markdown]
# The answers for "$t = 0$" and "$t = 199$" are nearly the same: the network has
# learned one compromise for every noise level. At small $t$ its loss is that of
# answering 0, and nowhere does it get much below 0.85.
#
# That is **not** because the noise cannot be predicted. At $t = 199$,
# $x_t = 0.36\,x_0 + 0.93\,\varepsilon$ is mostly noise, and the answer
# $\hat\varepsilon = x_t/\sqrt{1-\bar\alpha_t}$, which needs no training at all, errs
# only by $\sqrt{\bar\alpha_t/(1-\bar\alpha_t)}\,x_0$: its loss is
# $\mathrm{SNR}(t)\cdot E[x_0^2] = 0.152 \times 0.21 = 0.032$ on these test images.
# That one-line formula beats the trained MLP from about $t = 65$ on (0.31 at $t = 100$,
# 0.10 at $t = 150$), and the best linear denoiser scores 0.008 at $t = 199$. The MLP
# fails a nearly trivial task, which points at its architecture and its
# optimisation, not at the data. Two of its flaws explain it. It sees time as **one input
# among 785**, a number in $[0, 1)$ that the first Dense layer mixes with the
# pixels; nothing makes that number stand out, and a ReLU MLP turns a smooth
# scalar into only gently varying outputs. DDPM instead feeds a sinusoidal
# embedding of $t$ (many frequencies, like a transformer's positions) into every
# block of its network. And even with a perfect time signal it could not output
# $x_t/\sqrt{1-\bar\alpha_t}$: its last layer maps 512 units to 784 pixels, so $\hat\varepsilon$
# can only lie in a 512-dimensional subspace, and the 272 other directions of
# $\varepsilon$ are never predicted. That alone costs at least $272/784 = 0.347$ at
# every $t$ (`tests/test_loss_floor.py` checks it), more than ten times 0.032.
#
# ### 3. Training never shows it the noise it starts from
#
# Notebook 01 showed that with these betas $\sqrt{\bar\alpha_T} \approx 0.36$. At the
# last training timestep the network sees $x_{T-1} = 0.36\,x_0 + 0.93\,\varepsilon$:
# noise with a garment in it. Sampling starts from $x_T \sim \mathcal{N}(0, I)$,
# noise with no garment in it, an input that never occurs in training. The first
# reverse steps are asked to denoise something the network has not learned about,
# and whatever it answers, there is no garment for it to find.
#
# How much does this mismatch cost by itself? Less than it seems: the linear
# denoiser of notebook 10, in exactly these settings (data in $[0, 1]$, these betas,
# no clipping), starts from the same pure noise and draws garment-shaped blobs
# (standard deviation 0.26, against the data's 0.36), not static. The mismatch
# costs detail in the first steps; the static comes from the denoiser.

# %%
eps = rng.standard_normal(x0_test.shape).astype(np.float32)
x_last = np.asarray(q_sample(schedule, x0_test, T - 1, eps))  # what training shows at t = T-1
print(f"sqrt(ᾱ_T) = {schedule.sqrt_alpha_bars[-1]:.3f}: training's x_(T-1) keeps {schedule.sqrt_alpha_bars[-1]:.0%} of the image")
print(f"corr(x_(T-1), x_0) in training: {np.corrcoef(np.ravel(x_last), np.ravel(x0_test))[0, 1]:.3f}; "
      f"for sampling's x_T ~ N(0, I) it is 0")

# %% [markdown]
# ### 4. The data are in $[0, 1]$
#
# The noise is centred on 0 and has variance 1; DDPM scales pixels to $[-1, 1]$
# so that the data are on the same footing. In $[0, 1]$ the pixels have half that
# range (a quarter of the signal power, so every $t$ is noisier than the schedule
# intends) and a mean of about 0.29 that the network has to learn to add back
# in exactly the right amount at each $t$, with the weak time signal of point 2.
#
# ### 5. An MLP ignores image structure
#
# `Flatten` throws away which pixels are neighbours. To an MLP a sleeve at the left
# and the same sleeve one pixel to the right are unrelated inputs; it must learn
# each of the 784 positions separately, from 60,000 images, with 1 million weights.
# A convolution looks at local patches and shares its weights across positions,
# which is how the U-Net of later notebooks sees images.
#
# ### Where this goes next
#
# Notebook 03 starts fixing these flaws one at a time: data in $[-1, 1]$, a
# schedule that really ends in noise (`NoiseSchedule.scaled_linear` or
# `NoiseSchedule.cosine`, notebook 01), and a sinusoidal time embedding in every
# block (the package's `mlp` model), before later notebooks replace the MLP with
# a U-Net (`unet`).
#
# ## Speed: one compiled loop against a `model.predict` per step
#
# The classic demo samples with a Python loop: for each of the 200 steps, call
# `model.predict` (which builds batches, runs callbacks and copies the result to
# NumPy), then do the update on the host. `keras_diffusion.reverse.sample` runs all
# 200 steps for the whole batch inside one `tf.function`: the graph is traced once,
# and the tensors stay where they are until the end.
#
# We time both for 64 images. The classic loop is timed for the first
# `CLASSIC_STEPS` steps only and **extrapolated** to 200 (each step costs the same),
# so that this notebook stays fast. It uses the package's `ddpm_step` for the
# update, so both loops do the same math.

# %%
def classic_loop(denoiser, schedule, x_T, steps, seed=0):
    """The classic demo's reverse loop: one model.predict per step, for the first `steps` steps."""
    rng = np.random.default_rng(seed)
    x, n = x_T, len(x_T)
    for t in range(schedule.timesteps - 1, schedule.timesteps - 1 - steps, -1):
        eps_hat = denoiser.predict([x, np.full(n, t)], verbose=0)  # (n, 28, 28, 1), one call per step
        x = np.asarray(ddpm_step(schedule, x, t, eps_hat, rng.standard_normal(x.shape).astype(np.float32)))
    return x


n = 64
x_T = np.random.default_rng(0).standard_normal((n, 28, 28, 1)).astype(np.float32)
classic_loop(denoiser, schedule, x_T, 1)  # warm-up: Keras builds its predict function once
start = time.perf_counter()
classic_loop(denoiser, schedule, x_T, CLASSIC_STEPS)
classic_per_step = (time.perf_counter() - start) / CLASSIC_STEPS

start = time.perf_counter()
sample(denoiser, schedule, n, seed=1)  # the settings of the 64 samples above: their compiled loop is reused
compiled = time.perf_counter() - start

print(f"classic loop, model.predict per step: {classic_per_step * 1000:.0f} ms a step; "
      f"timed {CLASSIC_STEPS} steps, EXTRAPOLATED to {T} steps: {classic_per_step * T:.1f} s for {n} images")
print(f"package, one compiled tf.function   : {compiled:.2f} s for {n} images, all {T} steps (measured; "
      f"{first_call:.2f} s on the first call, which also traces the graph)")
print(f"speed-up ≈ {classic_per_step * T / compiled:.0f}x")

# %% [markdown]
# **Takeaways**
#
# - The package reproduces the classic demo, loss near 0.87 and static samples included.
# - The static is noise that the reverse chain amplifies (by $1/\sqrt{\bar\alpha_T} \approx 2.75$,
#   plus the noise it adds) because the denoiser removes little more of it than one
#   that always answers 0: it barely distinguishes one $t$ from another and its
#   output has rank 512 of 784. At $t = 199$ it scores 0.851 where the untrained answer
#   $x_t/\sqrt{1-\bar\alpha_t}$ scores 0.032: the network fails, not the task. It also
#   never saw pure noise in training ($\sqrt{\bar\alpha_T} \approx 0.36$), its data are
#   off-centre, and it ignores the image's 2-D structure.
# - Sampling belongs in one compiled loop: the per-step `model.predict` loop is
#   tens of times slower for the same math.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** At $t = 199$ the trained MLP scores 0.851, while
#    $\hat\varepsilon = x_t/\sqrt{1-\bar\alpha_t}$, with no training, scores 0.032. Give two
#    reasons why `mlp_seed` cannot even learn that formula.
# 2. **A code change.** Replace the trained MLP by the closed-form linear denoiser
#    (notebook 10) and run the "does it use $t$" cell again:
#    ```python
#    from keras_diffusion.models.linear import fit_linear
#    denoiser = build_model("linear")
#    print(fit_linear(denoiser, load_images("fashion_mnist", "train")[0], config.scaling, schedule))
#    ```
#    Before running it, predict its loss at $t = 0$ and $t = 199$, and whether its
#    answers for "told $t = 0$" and "told $t = 199$" will correlate as the MLP's did.
#    Then draw 64 samples with `sample(denoiser, schedule, 64, seed=0)`: static, or not?
# 3. **A number to predict.** If $\hat\varepsilon$ were always 0, the classic schedule's
#    samples would have a standard deviation of 3.75 (the recursion above). Predict
#    the same number for `NoiseSchedule.cosine(200)` before running the recursion with it.

# %% [markdown]
# ## Answers
#
# 1. (a) Its output has rank 512: the last layer maps 512 units to 784 pixels, so
#    $\hat\varepsilon$ lies in a 512-dimensional subspace and the 272 other directions of
#    $\varepsilon$ are never predicted, a loss of at least $272/784 = 0.347$ at every $t$.
#    The formula needs all 784 directions (it is the identity map, scaled).
#    (b) The right gain changes with $t$, from $1/\sqrt{1-\bar\alpha_0} = 100$ to 1.07 at
#    $t = 199$, and the network barely tells one $t$ from another ($t/T$ is one input
#    among 785; its answers for "$t = 0$" and "$t = 199$" correlate at 0.96 to 0.998):
#    it learned one compromise for all noise levels.
# 2. It fits in about 10 s and its mean loss over $t$ is 0.110. On the 1000 test
#    images of the full run its loss is 0.951, 0.500, 0.109, 0.039, 0.017 and 0.008
#    at $t$ = 0, 10, 50, 100, 150 and 199: below the MLP at every $t$, and 100 times
#    lower at $t = 199$. Its answers told $t = 0$ and $t = 199$ correlate at only 0.21 to
#    0.37: a separate linear map for each $t$ uses time fully. Its samples are
#    garment-shaped blobs (standard deviation 0.26, range −1.3 to 1.6), not static,
#    in exactly the settings that made the MLP's static: the schedule's flaw
#    ($\sqrt{\bar\alpha_T} = 0.36$) costs detail, the MLP costs the rest.
# 3. About 4,060. The chain divides by $\sqrt{\alpha_t}$ at every step, $1/\sqrt{\bar\alpha_T}$ in
#    all, and with the cosine schedule $\sqrt{\bar\alpha_T} = 2.5 \cdot 10^{-4}$, so
#    $1/\sqrt{\bar\alpha_T} = 4{,}058$; the added noise hardly counts next to that. Any error in
#    $\hat\varepsilon$ is amplified as much, which is why notebook 03 clips $\hat x_0$ with
#    this schedule.
