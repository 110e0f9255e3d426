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
# # 10 · The theory behind the loss: the variational bound, scores, variances
#
# Notebooks 02 to 06 used three results without deriving them: that the simple
# loss $\|\varepsilon - \hat\varepsilon\|^2$ comes from a bound on the likelihood, that a
# noise predictor is a *score* (the gradient of a log density), and that the
# reverse step's variance may be fixed. This notebook derives each, one step at a
# time, and checks every step with numbers from the package itself. You will:
#
# 1. meet a denoiser that needs no training: the best *linear* one, fit in closed
#    form from the images' mean and covariance, the yardstick of the model ladder;
# 2. derive DDPM's variational bound and see $L_\text{simple}$ fall out of it, checked
#    against the package's own terms (`metrics.vb_terms`, the bits/dim of notebook 06);
# 3. derive Tweedie's formula, $\hat\varepsilon = -\sqrt{1-\bar\alpha_t}\,\nabla \log p_t(x_t)$, and
#    denoising score matching, checked in 784 dimensions and on a 1-D toy;
# 4. see what a learned variance would change in the bound.
#
# Full run: 1.1 min on a 2-core CPU (no GPU) shared with other jobs; it trains
# nothing. Set `KERAS_DIFFUSION_QUICK=1` for a quick run with fewer images and
# draws (0.5 min; the tests do).
#
# Prerequisites: notebooks 01 (the forward process), 02 (the loss and the reverse
# step) and 06 (bits per dimension).
#
# References: Ho, Jain & Abbeel 2020 (DDPM), https://arxiv.org/abs/2006.11239;
# Sohl-Dickstein et al. 2015, https://arxiv.org/abs/1503.03585; Efron 2011, *Tweedie's
# formula and selection bias*; Vincent 2011, *A connection between score matching and
# denoising autoencoders*; Song et al. 2021 (score SDEs), https://arxiv.org/abs/2011.13456;
# Nichol & Dhariwal 2021 (improved DDPM), https://arxiv.org/abs/2102.09672; Bao et al.
# 2022 (Analytic-DPM), https://arxiv.org/abs/2201.06503.

# %%
# %matplotlib inline
import logging
import os
import time

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from keras_diffusion import NoiseSchedule, build_model, q_sample, q_step
from keras_diffusion.data import load_images, scale_images
from keras_diffusion.metrics import vb_terms
from keras_diffusion.models.linear import fit_linear, linear_losses
from keras_diffusion.plotting import plot_samples
from keras_diffusion.reverse import posterior_mean, predict_x0, sample

# Quick mode (the tests set KERAS_DIFFUSION_QUICK=1): fewer images and random draws, same cells.
QUICK = os.environ.get("KERAS_DIFFUSION_QUICK") == "1"
N_FIT = 2000 if QUICK else None  # training images for the linear denoiser (None: all 60,000)
N_BOUND = 8 if QUICK else 128  # images for the bound: T denoiser calls for each
N_DRAWS = 100_000 if QUICK else 2_000_000  # random draws for the 1-D checks
# Each call of vb_terms compiles its own tf.function: silence the "retracing" notices.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
print(f"QUICK={QUICK}: fit on {N_FIT or 'all'} images, bound on {N_BOUND}, {N_DRAWS:,} draws")

# %% [markdown]
# ## A denoiser that needs no training
#
# Among all denoisers of the form $\hat\varepsilon = A_t x_t + b_t$, one affine map per
# $t$, which has the lowest loss? Only second moments enter a squared error of an
# affine map, so the answer needs just the images' mean $\mu$ and covariance
# $\Sigma = U \operatorname{diag}(\lambda) U^\top$. With $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$,
#
# $$\operatorname{Cov}(x_t) = \bar\alpha_t \Sigma + (1-\bar\alpha_t) I,\qquad \operatorname{Cov}(\varepsilon, x_t) = \sqrt{1-\bar\alpha_t}\,I,$$
#
# and least squares gives
#
# $$\hat\varepsilon = \sqrt{1-\bar\alpha_t}\,\big(\bar\alpha_t\Sigma + (1-\bar\alpha_t)I\big)^{-1}\big(x_t - \sqrt{\bar\alpha_t}\,\mu\big)
# = \sqrt{1-\bar\alpha_t}\;U \operatorname{diag}\!\Big(\frac{1}{\bar\alpha_t\lambda_i + 1-\bar\alpha_t}\Big) U^\top \big(x_t - \sqrt{\bar\alpha_t}\,\mu\big).$$
#
# Along each principal direction $i$ of the images, the noise (variance
# $1-\bar\alpha_t$) competes with the signal (variance $\bar\alpha_t\lambda_i$): "PCA
# denoising". What is left of $\varepsilon$ gives its loss, exactly:
#
# $$L_t = \frac{1}{D}\sum_{i=1}^{D} \frac{\bar\alpha_t\lambda_i}{\bar\alpha_t\lambda_i + 1-\bar\alpha_t},\qquad D = 784.$$
#
# If the images were Gaussian this would be the best denoiser of all, $E[\varepsilon \mid x_t]$.
# They are not, so a network can do better; but a network that does worse has not
# learned even this. The package has it as `build_model("linear")`, and `fit_linear`
# sets it from the images in seconds (`python -m keras_diffusion.train --model linear`
# does the same and writes an ordinary run directory).

# %%
schedule = NoiseSchedule.cosine(200)  # the package's default: data in [-1, 1], cosine schedule
T, D = schedule.timesteps, 28 * 28
train_images, _ = load_images("fashion_mnist", "train", limit=N_FIT)
denoiser = build_model("linear")  # (x_t, t) -> ε̂, no trainable weights
start = time.perf_counter()
mean_loss = fit_linear(denoiser, train_images, "minus_one_one", schedule)
eigenvalues = denoiser.get_layer("gaussian_denoiser").eigenvalues.numpy().astype(np.float64)  # λ, ascending
losses = linear_losses(schedule.alpha_bars, eigenvalues)  # (T,): L_t above
print(f"fit on {len(train_images):,} images in {time.perf_counter() - start:.1f} s; "
      f"loss averaged over t: {mean_loss:.4f}")
print(f"eigenvalues of Σ: largest {eigenvalues[-1]:.2f}, the top 50 hold "
      f"{eigenvalues[-50:].sum() / eigenvalues.sum():.0%} of the variance; loss at t = 0, 50, 100, 199: "
      f"{', '.join(f'{losses[t]:.3f}' for t in (0, 50, 100, 199))}")
plot_samples(sample(denoiser, schedule, 16, seed=0, clip=(-1.0, 1.0)), "minus_one_one", title="linear denoiser: 16 samples", ncols=8)

# %% [markdown]
# With the package's default settings its mean loss is 0.164 (on all 60,000
# images; 0.110 with the classic demo's $[0, 1]$ data and linear betas), lower than
# every MLP of notebook 03, which needed minutes of training. Its samples are blurry,
# garment-shaped blobs: a Gaussian with the images' mean and covariance knows the
# silhouettes, not the garments. It is also the model the checks below use: every
# number of it is known in closed form, and it costs no training.
#
# ## The variational bound, step by step
#
# The reverse process $p_\theta(x_{0:T}) = p(x_T)\prod_t p_\theta(x_{t-1} \mid x_t)$ is a latent
# variable model for $x_0$; its likelihood $p_\theta(x_0) = \int p_\theta(x_{0:T})\,dx_{1:T}$ has
# no closed form. **Step 1** (Jensen's inequality, with the forward process as the
# proposal): for any $x_0$,
#
# $$-\log p_\theta(x_0) = -\log E_{q(x_{1:T} \mid x_0)}\Big[\frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\Big]
# \le E_q\Big[-\log \frac{p_\theta(x_{0:T})}{q(x_{1:T} \mid x_0)}\Big] = L.$$
#
# **Step 2** (Bayes' rule inside the Markov chain). For $t \ge 2$, conditioning on $x_0$
# changes nothing in a forward step, so
# $q(x_t \mid x_{t-1}) = q(x_t \mid x_{t-1}, x_0) = q(x_{t-1} \mid x_t, x_0)\,q(x_t \mid x_0)/q(x_{t-1} \mid x_0)$.
# Put that into $q(x_{1:T} \mid x_0) = \prod_t q(x_t \mid x_{t-1})$: the ratios
# $q(x_t \mid x_0)/q(x_{t-1} \mid x_0)$ telescope to $q(x_T \mid x_0)/q(x_1 \mid x_0)$, and
#
# $$L = \underbrace{D_\mathrm{KL}\big(q(x_T \mid x_0)\,\|\,p(x_T)\big)}_{L_T}
# + \sum_{t=2}^{T}\underbrace{E_q\,D_\mathrm{KL}\big(q(x_{t-1} \mid x_t, x_0)\,\|\,p_\theta(x_{t-1} \mid x_t)\big)}_{L_{t-1}}
# \;\underbrace{-\,E_q \log p_\theta(x_0 \mid x_1)}_{L_0}\qquad\text{(DDPM eq. 5)}.$$
#
# Every $L_{t-1}$ compares the model's step with the **posterior** of the forward
# process, which is known once $x_0$ is. **Step 3**: that posterior is Gaussian,
#
# $$q(x_{t-1} \mid x_t, x_0) = \mathcal{N}\big(\tilde\mu_t,\ \tilde\beta_t I\big),\quad
# \tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t,\quad
# \tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t\qquad\text{(DDPM eq. 6-7)},$$
#
# because $(x_{t-1}, x_t)$ given $x_0$ is jointly Gaussian (the product of two
# Gaussians, eq. 4 and eq. 2), and the conditional of a joint Gaussian is the linear
# regression of one on the other. So regress: draw $x_{t-1}$ from $q(x_{t-1} \mid x_0)$ with
# `q_sample`, take one forward step with `q_step`, and fit $x_{t-1} \approx a\,x_t + b$.
# The slope should be the schedule's `posterior_mean_coef2`, the intercept
# `posterior_mean_coef1` times $x_0$, and what is left the variance $\tilde\beta_t$:

# %%
rng = np.random.default_rng(0)
x0_pixel = np.full((N_DRAWS, 1, 1, 1), 0.5, np.float32)  # one pixel value, many draws
print(f"{'t':>4} | {'slope':>9} {'coef2':>9} | {'intercept':>9} {'coef1·x0':>9} | {'resid var':>10} {'β̃_t':>10}")
for t in (1, 20, 100, 190):
    x_prev = np.asarray(q_sample(schedule, x0_pixel, t - 1, rng.standard_normal(x0_pixel.shape)))  # x_{t-1} ~ q(· | x_0), eq. 4
    x_t = np.asarray(q_step(schedule, x_prev, t, rng.standard_normal(x0_pixel.shape)))  # one forward step, eq. 2
    x_prev, x_t = x_prev.ravel().astype(np.float64), x_t.ravel().astype(np.float64)
    # least squares of x_{t-1} on x_t: slope = Cov/Var, intercept from the means
    slope = np.mean((x_t - x_t.mean()) * (x_prev - x_prev.mean())) / np.var(x_t)
    intercept = x_prev.mean() - slope * x_t.mean()
    resid = np.var(x_prev - (slope * x_t + intercept))
    print(f"{t:>4} | {slope:9.5f} {schedule.posterior_mean_coef2[t]:9.5f} | {intercept:9.5f} "
          f"{schedule.posterior_mean_coef1[t] * 0.5:9.5f} | {resid:10.3e} {schedule.posterior_variance[t]:10.3e}")

# %% [markdown]
# The regression recovers eq. 6-7, to three or four digits for the slopes and
# within the sampling error elsewhere. **Step 4**: fix the
# model's variance to the same $\sigma_t^2 = \tilde\beta_t$ (DDPM's "fixed small" choice, the
# one the package's bound, `metrics.vb_terms`, uses; its DDPM sampler defaults to
# the "fixed large" $\sigma_t^2 = \beta_t$, `variance="beta"`, which DDPM found to sample
# as well, sec. 3.2). The KL of two Gaussians with equal variances is the squared
# distance of their means, so
#
# $$L_{t-1} = \frac{1}{2\tilde\beta_t}\,E_q\big\|\tilde\mu_t(x_t, x_0) - \mu_\theta(x_t, t)\big\|^2\qquad\text{(DDPM eq. 8)}.$$
#
# **Step 5** (the $\varepsilon$ parameterisation). The model predicts the noise, and its
# mean is the posterior mean with $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\varepsilon)/\sqrt{\bar\alpha_t}$
# put in for $x_0$ (which is DDPM eq. 11 rearranged, notebook 03). Then
# $\tilde\mu_t - \mu_\theta = \text{coef}_1\,(x_0 - \hat x_0)$ and $x_0 - \hat x_0 = \sqrt{1-\bar\alpha_t}\,(\hat\varepsilon - \varepsilon)/\sqrt{\bar\alpha_t}$, so
#
# $$L_{t-1} = w_t\,E\,\|\varepsilon - \hat\varepsilon\|^2,\qquad
# w_t = \frac{\beta_t^2}{2\tilde\beta_t\,\alpha_t\,(1-\bar\alpha_t)} = \frac{\beta_t}{2\,\alpha_t\,(1-\bar\alpha_{t-1})}\qquad\text{(DDPM eq. 12)}.$$
#
# Checked image by image, with the package's `predict_x0` and `posterior_mean`
# (what `metrics.vb_terms` uses) against the weighted squared error:

# %%
x0 = scale_images(train_images[:N_BOUND], "minus_one_one")  # (B, 28, 28, 1) in [-1, 1]
weights = np.full(T, np.nan)  # w_t for t = 1 .. T-1; t = 0 is the decoder's term, not a KL
weights[1:] = schedule.betas[1:] / (2 * schedule.alphas[1:] * (1 - schedule.alpha_bars_prev[1:]))
for t in (1, 50, 150):
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    x_t = np.asarray(q_sample(schedule, x0, t, eps))  # (B, 28, 28, 1)
    eps_hat = denoiser([x_t, np.full(len(x0), t)])  # (B, 28, 28, 1)
    gap = posterior_mean(schedule, x0, x_t, t) - posterior_mean(schedule, predict_x0(schedule, x_t, t, eps_hat), x_t, t)
    kl = np.sum(np.asarray(gap, np.float64) ** 2, axis=(1, 2, 3)) / (2 * schedule.posterior_variance[t])  # (B,): eq. 8
    weighted = weights[t] * np.sum((eps - np.asarray(eps_hat, np.float64)) ** 2, axis=(1, 2, 3))  # (B,): eq. 12
    print(f"t={t:>3}: KL (eq. 8) {kl.mean():10.4f} nats, w_t·‖ε − ε̂‖² (eq. 12) {weighted.mean():10.4f}; "
          f"largest relative gap over the images {np.max(np.abs(kl / weighted - 1)):.1e}")

# %% [markdown]
# Equal to float32 rounding. **Step 6**: the whole bound, with the package's
# `metrics.vb_terms` (the function behind `evaluate --bpd`, notebook 06), without
# clipping $\hat x_0$ so that eq. 12 holds exactly. For the linear denoiser the expected
# squared error at $t$ is $D\,L_t$ with $L_t$ from the eigenvalues, so each term should
# be $w_t\,D\,L_t$ on average over the images it was fit on:

# %%
start = time.perf_counter()
prior, kl, decoder = vb_terms(denoiser, schedule, x0, noise_seed=0, clip=None)  # nats per image: (B,), (T-1, B), (B,)
to_bits = 1 / (D * np.log(2))  # nats per image -> bits per dimension
measured = kl.mean(axis=1)  # (T-1,): L_{t-1} for package t = 1 .. T-1
predicted = weights[1:] * D * losses[1:]  # (T-1,): w_t·D·L_t
print(f"vb_terms on {len(x0)} images: {time.perf_counter() - start:.0f} s")
per_image = kl.sum(axis=0) * to_bits  # (B,): each image's denoising terms, bits/dim
print(f"denoising terms, summed over t: {per_image.mean():.4f} ± {per_image.std() / np.sqrt(len(per_image)):.4f} bits/dim "
      f"measured (± one standard error over the images), {predicted.sum() * to_bits:.4f} predicted from the eigenvalues")
print(f"the bound: prior {prior.mean() * to_bits:.1e} + denoising {measured.sum() * to_bits:.3f} "
      f"+ decoder {decoder.mean() * to_bits:.3f} = {(prior.mean() + measured.sum() + decoder.mean()) * to_bits:.3f} bits/dim")

fig = Figure(figsize=(11, 3.6), layout="constrained")
left, right = fig.subplots(1, 2)
t_axis = np.arange(1, T)
left.plot(t_axis, measured * to_bits, lw=2, label="metrics.vb_terms (sampled ε)")
left.plot(t_axis, predicted * to_bits, "--", color="k", lw=1, label=r"$w_t\,D\,L_t$ (eigenvalues)")
left.set(yscale="log", xlabel="timestep t", ylabel="bits/dim", title=r"$L_{t-1}$ of the linear denoiser")
left.legend(fontsize=8)
left.grid(alpha=0.3, which="both")
right.plot(t_axis, weights[1:] * D, color="C2")
right.set(yscale="log", xlabel="timestep t", ylabel=r"$w_t\,D$ (nats per unit of loss)", title=r"the bound's weight of each $t$")
right.grid(alpha=0.3, which="both")
fig

# %% [markdown]
# The package's terms follow the closed form at every $t$, and the sums agree to
# within their sampling error: one $\varepsilon$ per image and $t$, and a sample of the
# images the expectation is over. (On test images
# rather than the images it was fit on, and with $\hat x_0$ clipped as
# `evaluate --bpd` does, the linear denoiser scores 5.62 bits/dim on 500 test
# images: better than notebook 03's MLP rungs, 6.57 to 11.09, worse than notebook
# 04's 2-epoch U-Net, 3.80. These numbers come from the Results pages
# (`docs/results/ladder.md`, `docs/results/quality.md`, each with its command) and
# are not rerun here; `python -m keras_diffusion.evaluate --run RUN --bpd --bpd-n 500`
# measures bits/dim this way, for the linear denoiser on a run of
# `python -m keras_diffusion.train --model linear`.)
#
# **Step 7**: $L_\text{simple}$. The weights $w_t$ (right) span orders of magnitude:
# the bound cares most about the steps next to the data, where $\tilde\beta_t$ is tiny.
# DDPM drops them and $L_T$ (no parameters), samples $t$ uniformly, and lets the
# $t = 1$ term of the sum stand in for $L_0$: the decoder's discrete likelihood,
# approximated by the Gaussian density times the bin width (DDPM sec. 3.4). In the
# package's 0-based timesteps that is $t = 0$, one of the $T$ values the loss draws:
#
# $$L_\text{simple} = E_{t,\,x_0,\,\varepsilon}\,\big\|\varepsilon - \hat\varepsilon(x_t, t)\big\|^2\qquad\text{(DDPM eq. 14)},$$
#
# a reweighting of the bound that puts relatively more weight on the noisy steps.
# Two consequences. A model with separate parameters for each $t$, like the linear
# denoiser, has the **same** optimum under any positive weighting: the weights
# only decide how a shared network trades one $t$ against another. And for such a
# network the trade matters: on CIFAR-10 DDPM's Table 1 reports FID 3.17 with
# $L_\text{simple}$ against 13.51 with the true bound, at a slightly worse bound (3.75
# against 3.70 bits/dim).
#
# ## The score-function view
#
# **Tweedie's formula.** Let $p_t$ be the density of $x_t$, the data pushed through
# $q(x_t \mid x_0) = \mathcal{N}(\sqrt{\bar\alpha_t}\,x_0, (1-\bar\alpha_t) I)$. Differentiate
# $p_t(x) = \int q(x \mid x_0)\,p(x_0)\,dx_0$ under the integral: since
# $\nabla_x q(x \mid x_0) = -q(x \mid x_0)\,(x - \sqrt{\bar\alpha_t}\,x_0)/(1-\bar\alpha_t)$ and
# $x - \sqrt{\bar\alpha_t}\,x_0 = \sqrt{1-\bar\alpha_t}\,\varepsilon$,
#
# $$\nabla \log p_t(x_t) = \frac{\nabla p_t(x_t)}{p_t(x_t)} = -\frac{E[\varepsilon \mid x_t]}{\sqrt{1-\bar\alpha_t}},
# \qquad\text{so}\qquad E[\varepsilon \mid x_t] = -\sqrt{1-\bar\alpha_t}\;\nabla \log p_t(x_t).$$
#
# The minimiser of $L_\text{simple}$ at each $t$ is the conditional mean
# $E[\varepsilon \mid x_t]$, so **a perfectly trained noise predictor is a scaled score**:
# it points from $x_t$ away from where the noisy data are dense. Check it where the
# score is known. If the images were Gaussian, $p_t = \mathcal{N}(\sqrt{\bar\alpha_t}\,\mu,\ \bar\alpha_t\Sigma + (1-\bar\alpha_t) I)$
# and the linear denoiser is $E[\varepsilon \mid x_t]$. Below, the score of that Gaussian
# comes from automatic differentiation of its log density, written with a Cholesky
# factor of a covariance computed afresh with `np.cov`: no eigenvectors, none of
# the linear denoiser's code.

# %%
x_fit = scale_images(train_images, "minus_one_one").reshape(len(train_images), -1).astype(np.float64)  # (N, 784)
mu, sigma = x_fit.mean(axis=0), np.cov(x_fit, rowvar=False, bias=True)  # the images' mean and covariance
test_images, _ = load_images("fashion_mnist", "test", limit=8)
x0_test = scale_images(test_images, "minus_one_one")  # (8, 28, 28, 1)
for t in (10, 100, 190):
    a = schedule.alpha_bars[t]
    chol = tf.constant(np.linalg.cholesky(a * sigma + (1 - a) * np.eye(D)))  # C = L·Lᵀ, float64
    x_t = np.asarray(q_sample(schedule, x0_test, t, rng.standard_normal(x0_test.shape)))  # (8, 28, 28, 1)
    x = tf.Variable(x_t.reshape(8, D).astype(np.float64))
    with tf.GradientTape() as tape:
        z = tf.linalg.triangular_solve(chol, tf.transpose(x - np.sqrt(a) * mu))  # L⁻¹(x − sqrt(ᾱ)μ), (D, 8)
        log_p = -0.5 * tf.reduce_sum(z**2)  # log N(x; sqrt(ᾱ)μ, C) up to a constant, summed over the 8 images
    score = tape.gradient(log_p, x).numpy()  # (8, D): ∇ log p_t(x_t)
    eps_hat = np.asarray(denoiser([x_t, np.full(8, t)])).reshape(8, D)
    gap = np.abs(eps_hat + np.sqrt(1 - a) * score).max() / np.abs(eps_hat).max()
    print(f"t={t:>3}: max |ε̂ + sqrt(1 − ᾱ_t)·∇log p_t(x_t)| / max |ε̂| = {gap:.1e}")

# %% [markdown]
# The linear denoiser is $-\sqrt{1-\bar\alpha_t}$ times the score of the Gaussian fitted to
# the images, to float32 precision. Real images are not Gaussian, and the true
# $E[\varepsilon \mid x_t]$ is not linear in $x_t$. The smallest case that shows it: one pixel
# that is either black or white, $x_0 = \pm 1$ with equal probability. Then $p_t$ is a
# mixture of two Gaussians and everything has a closed form:
#
# $$E[x_0 \mid x_t] = \tanh\!\Big(\frac{\sqrt{\bar\alpha_t}\,x_t}{1-\bar\alpha_t}\Big),\qquad
# E[\varepsilon \mid x_t] = \frac{x_t - \sqrt{\bar\alpha_t}\,E[x_0 \mid x_t]}{\sqrt{1-\bar\alpha_t}} = -\sqrt{1-\bar\alpha_t}\,\nabla\log p_t(x_t),$$
#
# while the linear denoiser of these data (mean 0, variance 1) is $\hat\varepsilon = \sqrt{1-\bar\alpha_t}\,x_t$.
# Below, $E[\varepsilon \mid x_t]$ **measured** by averaging the noise of many draws whose
# $x_t$ falls in the same narrow bin, against the formula and the linear denoiser:

# %%
def binary_pixel(t, n, rng):
    """(x_0, ε, x_t) for n draws of a pixel that is −1 or +1."""
    a = schedule.alpha_bars[t]
    x0_, eps_ = rng.choice([-1.0, 1.0], n), rng.standard_normal(n)
    return x0_, eps_, np.sqrt(a) * x0_ + np.sqrt(1 - a) * eps_


def optimal_eps(t, x_t):
    """E[ε | x_t] for the ±1 pixel: minus sqrt(1 − ᾱ_t) times the score of the two-Gaussian mixture."""
    a = schedule.alpha_bars[t]
    return (x_t - np.sqrt(a) * np.tanh(np.sqrt(a) * x_t / (1 - a))) / np.sqrt(1 - a)


fig = Figure(figsize=(11, 3.4), layout="constrained")
axes = fig.subplots(1, 3)
print(f"{'t':>4} | {'ᾱ_t':>6} | loss of E[ε|x_t] | loss of the linear denoiser (= ᾱ_t) | largest |binned mean − formula|")
for ax, t in zip(axes, (40, 100, 160)):
    a = schedule.alpha_bars[t]
    _, eps_, x_t = binary_pixel(t, N_DRAWS, rng)
    edges = np.linspace(-3, 3, 61)
    which = np.digitize(x_t, edges)
    centres, means, expected = [], [], []
    for k in range(1, len(edges)):
        inside = which == k
        if inside.sum() > 200:  # enough draws for a mean
            centres.append(x_t[inside].mean())
            means.append(eps_[inside].mean())
            expected.append(optimal_eps(t, x_t[inside]).mean())  # the formula averaged over the same bin
    centres, means = np.array(centres), np.array(means)
    gap = np.abs(means - np.array(expected)).max()
    print(f"{t:>4} | {a:6.3f} | {np.mean((eps_ - optimal_eps(t, x_t)) ** 2):16.4f} | "
          f"{np.mean((eps_ - np.sqrt(1 - a) * x_t) ** 2):35.4f} | {gap:.3f}")
    grid = np.linspace(-3, 3, 200)
    ax.plot(centres, means, "o", ms=3, label="binned mean of ε (measured)")
    ax.plot(grid, optimal_eps(t, grid), color="k", lw=1, label=r"$-\sqrt{1-\bar\alpha_t}\,\nabla\log p_t$")
    ax.plot(grid, np.sqrt(1 - a) * grid, "--", color="C3", label="linear denoiser")
    ax.set(xlabel=r"$x_t$", title=f"t = {t}, ᾱ_t = {a:.2f}", ylim=(-3, 3))
    ax.grid(alpha=0.3)
axes[0].set_ylabel(r"$\hat\varepsilon$")
axes[0].legend(fontsize=7)
fig

# %% [markdown]
# The measured conditional mean lies on the score formula (in each bin the mean
# of the noise and the mean of the formula agree within the bin's sampling error,
# a few hundredths at most, where few draws land between the two peaks). While
# signal is left ($t = 40$ and 100), the optimum is far from a straight line: near
# each of the two pixel values it reads the noise off as the distance to that
# value, and between them it turns around. The linear denoiser cannot follow: at
# $t = 40$ its loss (0.90) is almost twenty times the optimum's (0.048). Near pure
# noise ($t = 160$) the two coincide. That gap is what a network can win over PCA
# denoising, and it lives in the steps with signal left.
#
# **Denoising score matching.** A network $s_\theta(x_t)$ could be trained to match the
# score directly, $E\,\|s_\theta(x_t) - \nabla\log p_t(x_t)\|^2$, if the score were known. It is
# not, but Vincent (2011) showed that regressing on the score of the *noising
# kernel* instead,
#
# $$E_{x_0,\,\varepsilon}\,\big\|s_\theta(x_t) - \nabla_{x_t}\log q(x_t \mid x_0)\big\|^2
# = E\,\big\|s_\theta(x_t) - \nabla\log p_t(x_t)\big\|^2 + C_t,$$
#
# has the same minimiser ($C_t$ does not depend on $\theta$). Here
# $\nabla_{x_t}\log q(x_t \mid x_0) = -\varepsilon/\sqrt{1-\bar\alpha_t}$, so with $s_\theta = -\hat\varepsilon/\sqrt{1-\bar\alpha_t}$ the
# left side is $\|\varepsilon - \hat\varepsilon\|^2/(1-\bar\alpha_t)$: **$L_\text{simple}$ at $t$ is denoising
# score matching weighted by $1-\bar\alpha_t$** (the weighting $\lambda(t) = \sigma_t^2$ of Song et al.
# 2021). The identity, checked on the binary pixel with the linear denoiser as
# $s_\theta$: the gap between its denoising score matching loss and that of the true
# score equals its squared distance to the true score.

# %%
for t in (40, 100, 160):
    a = schedule.alpha_bars[t]
    _, eps_, x_t = binary_pixel(t, N_DRAWS, rng)
    kernel_score = -eps_ / np.sqrt(1 - a)  # ∇ log q(x_t | x_0)
    true_score = -optimal_eps(t, x_t) / np.sqrt(1 - a)  # ∇ log p_t(x_t)
    linear_score = -x_t  # −ε̂/sqrt(1 − ᾱ) with the linear ε̂ = sqrt(1 − ᾱ)·x_t: the score of N(0, 1)
    dsm_gap = np.mean((linear_score - kernel_score) ** 2) - np.mean((true_score - kernel_score) ** 2)
    explicit = np.mean((linear_score - true_score) ** 2)
    print(f"t={t:>3}: DSM(linear) − DSM(true score) = {dsm_gap:.4f};  E‖s_linear − ∇log p_t‖² = {explicit:.4f}")

# %% [markdown]
# ## What learned variances would change
#
# The network gives the mean of each reverse step; its variance $\sigma_t^2$ was fixed
# to $\tilde\beta_t$ (or $\beta_t$). With any $\sigma_t^2$, the KL of two Gaussians gives, per image,
#
# $$L_{t-1}(\sigma_t^2) = \frac{D}{2}\Big(\frac{\tilde\beta_t}{\sigma_t^2} - 1 + \log\frac{\sigma_t^2}{\tilde\beta_t}\Big)
# + \frac{\|\tilde\mu_t - \mu_\theta\|^2}{2\sigma_t^2}.$$
#
# The first part is 0 at $\sigma_t^2 = \tilde\beta_t$; the second is the mean's error. For a
# given mean error $e_t = E\|\tilde\mu_t - \mu_\theta\|^2/D$ the best variance is
# $\sigma_t^{*2} = \tilde\beta_t + e_t$ (set the derivative to 0): **an imperfect mean wants a
# wider step**. Bao et al. (2022) compute it in closed form from a trained model;
# improved DDPM (Nichol & Dhariwal 2021) learns it, as an interpolation
# $\sigma_t^2 = \exp(v\log\beta_t + (1 - v)\log\tilde\beta_t)$ between the two fixed choices, trained
# with $L_\text{simple} + 0.001\,L_\text{vlb}$. The mean, and so $L_\text{simple}$, does not change.
# What does change: the bound, and the noise the sampler adds. From the terms
# measured above, $e_t = 2\tilde\beta_t L_{t-1}/D$, so the bound under each choice is:

# %%
beta_tilde, beta = schedule.posterior_variance[1:], schedule.betas[1:]  # (T-1,): package t = 1 .. T-1
mean_error = 2 * beta_tilde * measured / D  # (T-1,): e_t, per pixel
best = beta_tilde + mean_error  # σ*²
choices = {
    "σ² = β̃ (fixed, the package)": beta_tilde,
    "σ² = β (fixed)": beta,
    "σ² = β̃ + e_t (optimal)": best,
    "optimal, kept in [β̃, β] (improved DDPM's range)": np.clip(best, beta_tilde, beta),
}
for name, var in choices.items():
    terms = D / 2 * (beta_tilde / var - 1 + np.log(var / beta_tilde)) + D * mean_error / (2 * var)  # (T-1,) nats
    print(f"{name:>48}: denoising terms {terms.sum() * to_bits:.3f} bits/dim")
ratio = best / beta_tilde
print(f"σ*²/β̃_t: {ratio[0]:.1f} at t = 1, {ratio[49]:.2f} at t = 50, {ratio[-1]:.3f} at t = {T - 1}; "
      f"σ*² exceeds β_t at {np.sum(best > beta)} of {T - 1} steps")

# %% [markdown]
# A learned (here: optimal) variance can only lower the bound, and it lowers it
# where the mean is poor. For the linear denoiser the denoising terms fall from
# 4.08 to 3.40 bits/dim, almost all of it at the steps near the data, where the
# mean's error is large next to the tiny $\tilde\beta_t$ ($\sigma_t^{*2}$ is 2.4 times $\tilde\beta_t$ at
# $t = 1$ and equal to it from $t \approx 50$ on); for this model the fixed $\sigma_t^2 = \beta_t$
# gets most of the way (3.44). (The first line's label "the package" means the
# package's bound, which fixes $\sigma_t^2 = \tilde\beta_t$; its DDPM sampler's default,
# $\sigma_t^2 = \beta_t$, is the second line.) A well-trained U-Net's means are better near the
# data, so its gain is smaller; but its sampler would still take wider steps where
# it is unsure, which is part of what lets improved DDPM sample well with far
# fewer steps.
#
# **Takeaways**
#
# - The best affine denoiser has a closed form (PCA denoising): 0.164 with the
#   package's defaults, below every MLP rung; it is the yardstick a network must beat.
# - DDPM's bound is Jensen's inequality plus Bayes' rule in the Markov chain; with a
#   fixed variance each term is a weighted $\|\varepsilon - \hat\varepsilon\|^2$ (eq. 12), and
#   $L_\text{simple}$ drops the weights. The package's `vb_terms` matches the closed form.
# - The optimal noise predictor is $-\sqrt{1-\bar\alpha_t}$ times the score of the noisy
#   data (Tweedie), and $L_\text{simple}$ is denoising score matching weighted by $1-\bar\alpha_t$.
# - A learned variance leaves the mean alone and lowers the bound where the mean errs:
#   the optimum is $\tilde\beta_t$ plus the mean's squared error.

# %% [markdown]
# ## Exercises
#
# Try each before reading the answers below.
#
# 1. **Short answer.** The linear denoiser minimises $L_\text{simple}$ and also each
#    term $L_{t-1}$ of the bound, among affine denoisers. Why does the weighting of the
#    $t$ not matter for it, when DDPM found that it matters a great deal for a U-Net?
# 2. **A code change.** Fit the linear denoiser with the classic demo's settings,
#    `fit_linear(denoiser, train_images, "zero_one", NoiseSchedule.linear(200))`, and
#    predict its mean loss before running it. Then draw samples with
#    `sample(denoiser, NoiseSchedule.linear(200), 16, seed=0)`: static, or not?
# 3. **A number to predict.** For the binary pixel at $t = 199$ (the cosine schedule's
#    last step), predict the loss of the linear denoiser and of $E[\varepsilon \mid x_t]$.
# 4. **Code to write.** Write the posterior of Step 3 (eq. 6-7) from `schedule.betas`
#    and `schedule.alpha_bars` alone:
#    ```python
#    def my_posterior(x0, x_t, t):  # t >= 1, an int
#        ...  # return (μ̃_t, an array like x_t; β̃_t, a number)
#    ```
#    Check the mean against the package's `posterior_mean(schedule, x0, x_t, t)` and
#    the variance against `schedule.posterior_variance[t]`, on the images `x0` of the
#    bound cells noised with `q_sample`, for $t = 1$, 50 and 150. What would your
#    function return at $t = 0$, and what should it?

# %% [markdown]
# ## Answers
#
# 1. It has separate parameters $A_t, b_t$ for every $t$, so each term of the sum is
#    minimised on its own and any positive weight of a term leaves its minimiser
#    unchanged. A U-Net shares its weights across all $t$: the weights then decide how
#    much accuracy at one noise level it gives up for another, and $L_\text{simple}$
#    spends more of its capacity on the noisy steps, which decide what the sample
#    looks like, than the bound would.
# 2. Its mean loss is 0.110 with all 60,000 images (the number notebook 02 quotes),
#    against 0.865 for the classic MLP in the same settings (its last epoch in
#    notebook 02). Its samples are garment-shaped blobs, not static (standard
#    deviation 0.26, against 3.43 for the MLP's): the classic settings do not by
#    themselves make static, the MLP does.
# 3. Both are about $\bar\alpha_{199} = 6 \cdot 10^{-8}$: at the last step $x_t$ is pure noise,
#    $\hat\varepsilon = x_t$ is almost exactly right, and the linear denoiser's loss
#    $\bar\alpha_t/(\bar\alpha_t + 1 - \bar\alpha_t) = \bar\alpha_t$ equals the optimum's to within a
#    rounding error. The two denoisers differ only where signal is left.
# 4. Read $\bar\alpha_{t-1}$ at index $t - 1$ and use $\alpha_t = 1 - \beta_t$:
#    ```python
#    def my_posterior(x0, x_t, t):
#        beta, alpha_bar, alpha_bar_prev = schedule.betas[t], schedule.alpha_bars[t], schedule.alpha_bars[t - 1]
#        coef1 = np.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)  # of x_0, eq. 7
#        coef2 = np.sqrt(1 - beta) * (1 - alpha_bar_prev) / (1 - alpha_bar)  # of x_t
#        return coef1 * x0 + coef2 * x_t, (1 - alpha_bar_prev) / (1 - alpha_bar) * beta  # μ̃_t, β̃_t
#
#
#    for t in (1, 50, 150):
#        x_t = np.asarray(q_sample(schedule, x0, t, rng.standard_normal(x0.shape).astype(np.float32)))  # (B, 28, 28, 1)
#        mean, variance = my_posterior(x0, x_t, t)
#        print(f"t={t:>3}: max |μ̃ - posterior_mean| = {np.abs(mean - np.asarray(posterior_mean(schedule, x0, x_t, t))).max():.1e}, "
#              f"β̃ = {variance:.4e} against {schedule.posterior_variance[t]:.4e}")
#    ```
#    On the 128 images of the bound cells, with a fresh `rng = np.random.default_rng(0)`,
#    it printed mean differences of
#    $8.8 \cdot 10^{-8}$, $1.9 \cdot 10^{-7}$ and $2.8 \cdot 10^{-7}$ (float32 rounding) and
#    $\tilde\beta_t$ equal to four digits: $1.5203 \cdot 10^{-4}$ at $t = 1$, as the regression
#    cell found. At $t = 0$, `alpha_bars[t - 1]` is NumPy's `alpha_bars[-1]`, the *last*
#    $\bar\alpha$, about $6 \cdot 10^{-8}$: a silent error. The right value is $\bar\alpha_{-1} = 1$
#    (nothing noised yet), which the schedule's `alpha_bars_prev` holds in its first
#    place. With it $1 - \bar\alpha_0 = \beta_0$, so the coefficients are 1 and 0 and
#    $\tilde\beta_0 = 0$: the "posterior" at $t = 0$ is $x_0$ itself, which is why the bound's
#    $t = 0$ term is the decoder's $L_0$, not a KL.
