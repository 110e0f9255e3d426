"""The reverse (denoising) process: one DDPM or DDIM step, and the whole chain.

The step functions are plain ``keras.ops`` math on tensors. ``sample`` runs
every step for a whole batch inside ONE compiled ``tf.function``: the
denoiser, the update and the noise all stay on the device, and the host sees
the result once at the end.
"""

import weakref

import numpy as np
import tensorflow as tf
from keras import ops

from keras_diffusion.forward import extract
from keras_diffusion.names import SAMPLERS, VARIANCES  # import-free, for fast --help

SPACINGS = ("uniform", "quadratic")


def predict_x0(schedule, x_t, t, eps_pred):
    """x̂_0 = (x_t − sqrt(1−ᾱ_t)·ε̂) / sqrt(ᾱ_t)   (DDPM eq. 4 solved for x_0; DDIM eq. 9)."""
    ndim = len(x_t.shape)
    return (x_t - extract(schedule, "sqrt_one_minus_alpha_bars", t, ndim) * eps_pred) / extract(
        schedule, "sqrt_alpha_bars", t, ndim
    )


def posterior_mean(schedule, x0, x_t, t):
    """μ̃_t(x_t, x_0) = coef1_t·x_0 + coef2_t·x_t, the mean of q(x_{t−1} | x_t, x_0)   (DDPM eq. 7)."""
    ndim = len(x_t.shape)
    return extract(schedule, "posterior_mean_coef1", t, ndim) * x0 + extract(schedule, "posterior_mean_coef2", t, ndim) * x_t


def ddpm_step(schedule, x_t, t, eps_pred, noise, variance="beta", clip=None):
    """x_{t−1} = 1/sqrt(α_t)·(x_t − β_t/sqrt(1−ᾱ_t)·ε̂) + σ_t·z   (DDPM Algorithm 2, eq. 11).

    Args:
        schedule: a ``NoiseSchedule``.
        x_t: current samples, shape (B, ...).
        t: integer timestep(s) in [0, T-1], a scalar or shape (B,). No noise
            is added where t = 0: that step returns the mean.
        eps_pred: the denoiser's ε̂, shaped like x_t.
        noise: z ~ N(0, I), shaped like x_t.
        variance: σ_t² = β_t (``"beta"``, the classic demo) or the posterior
            β̃_t (``"posterior"``); DDPM sec. 3.2 found both work equally well.
        clip: ``None``, or a (low, high) range for x̂_0. With a range the mean
            is computed as the posterior mean of the clipped x̂_0 (DDPM eq. 7),
            which equals eq. 11 whenever nothing is clipped.

    Returns:
        x_{t−1}, shaped like x_t.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    eps_pred = ops.cast(eps_pred, "float32")
    ndim = len(x_t.shape)
    if clip is None:
        coef = extract(schedule, "betas", t, ndim) / extract(schedule, "sqrt_one_minus_alpha_bars", t, ndim)
        mean = (x_t - coef * eps_pred) / ops.sqrt(extract(schedule, "alphas", t, ndim))
    else:
        x0_pred = ops.clip(predict_x0(schedule, x_t, t, eps_pred), clip[0], clip[1])
        mean = posterior_mean(schedule, x0_pred, x_t, t)
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    name = "betas" if variance == "beta" else "posterior_variance"
    sigma = ops.sqrt(extract(schedule, name, t, ndim))
    not_last = ops.cast(ops.reshape(ops.cast(t, "int32") > 0, (-1,) + (1,) * (ndim - 1)), "float32")
    return mean + not_last * sigma * ops.cast(noise, "float32")


def ddim_step(schedule, x_t, t, t_prev, eps_pred, eta=0.0, noise=None, clip=None):
    """x_{τ'} = sqrt(ᾱ_{τ'})·x̂_0 + sqrt(1−ᾱ_{τ'}−σ²)·ε̂ + σ·z   (DDIM eq. 12).

    σ = η·sqrt((1−ᾱ_{τ'})/(1−ᾱ_τ))·sqrt(1−ᾱ_τ/ᾱ_{τ'})   (DDIM eq. 16): η = 0 is
    deterministic, η = 1 with τ' = τ−1 is DDPM with σ² = β̃.

    Args:
        t: the current timestep τ in [0, T-1], a scalar or shape (B,).
        t_prev: the next timestep τ' < τ; −1 means "the data" (ᾱ = 1).
        eta: η ≥ 0, the amount of fresh noise.
        noise: z, shaped like x_t; needed only when eta > 0.
        clip: ``None`` or a (low, high) range for x̂_0.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    eps_pred = ops.cast(eps_pred, "float32")
    ndim = len(x_t.shape)
    x0_pred = predict_x0(schedule, x_t, t, eps_pred)
    if clip is not None:
        x0_pred = ops.clip(x0_pred, clip[0], clip[1])
    alpha_bar = extract(schedule, "alpha_bars", t, ndim)
    # ᾱ_{−1} = 1: index t_prev + 1 into [1, ᾱ_0, ..., ᾱ_{T−1}]
    alpha_bars_ext = ops.convert_to_tensor(np.append(1.0, schedule.alpha_bars).astype("float32"))
    alpha_bar_prev = ops.reshape(ops.take(alpha_bars_ext, ops.cast(t_prev, "int32") + 1), (-1,) + (1,) * (ndim - 1))
    sigma = eta * ops.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev))
    direction = ops.sqrt(ops.maximum(1 - alpha_bar_prev - sigma**2, 0.0)) * eps_pred
    x_prev = ops.sqrt(alpha_bar_prev) * x0_pred + direction
    if eta > 0:
        if noise is None:
            raise ValueError("ddim_step with eta > 0 needs noise")
        x_prev = x_prev + sigma * ops.cast(noise, "float32")
    return x_prev


def timestep_sequence(timesteps, steps=None, spacing="uniform"):
    """The descending timesteps τ_S > ... > τ_1 a sampler visits: starts at T−1, ends at 0.

    Works for any S ≤ T, whether or not S divides T; ``quadratic`` spacing
    (DDIM sec. 5) puts more steps near t = 0, where images get their detail.
    """
    steps = timesteps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if steps > timesteps:
        raise ValueError(f"steps must be <= timesteps (T={timesteps}), got steps={steps}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {spacing!r}")
    if steps == 1:
        return np.array([timesteps - 1])
    if spacing == "uniform":
        seq = np.round(np.linspace(0, timesteps - 1, steps)).astype(int)
    else:
        seq = np.round(np.linspace(0, np.sqrt(timesteps - 1), steps) ** 2).astype(int)
        # squares crowd near 0: push duplicates up, then keep the top at T−1
        for i in range(1, steps):
            seq[i] = max(seq[i], seq[i - 1] + 1)
        seq = np.minimum(seq, timesteps - steps + np.arange(steps))
    return seq[::-1].copy()


def _validate(sampler, variance, eta, n):
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")


# denoiser -> {settings: compiled loop}. Weak keys, and the loops reach the
# denoiser only through a weakref, so deleting a model frees its graphs.
_LOOPS = weakref.WeakKeyDictionary()


def _compiled_loop(denoiser, schedule, sampler, seq, snap_pos, variance, eta, clip, jit_compile):
    """One tf.function that runs every step in ``seq`` for a batch (cached per settings)."""
    key = (tuple(schedule.betas), sampler, tuple(seq), tuple(snap_pos), variance, eta, clip, jit_compile)
    cache = _LOOPS.setdefault(denoiser, {})
    if key in cache:
        return cache[key]
    seq_t = tf.constant(seq, tf.int32)  # (S,)
    prev_t = tf.constant(np.append(seq[1:], -1), tf.int32)  # (S,)
    snap_pos_t = tf.constant(snap_pos, tf.int32)  # (K,)
    denoiser_ref = weakref.ref(denoiser)

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def loop(x, seed):
        batch, shape = tf.shape(x)[0], x.shape
        snaps = tf.zeros(tf.concat([[len(snap_pos)], tf.shape(x)], 0))  # (K, B, H, W, C)
        for i in tf.range(len(seq)):
            t = seq_t[i]
            eps_pred = denoiser_ref()([x, tf.fill([batch], t)])  # (B, H, W, C)
            z = tf.random.stateless_normal(tf.shape(x), seed=tf.random.experimental.stateless_fold_in(seed, i))
            if sampler == "ddpm":
                x = ddpm_step(schedule, x, t, eps_pred, z, variance=variance, clip=clip)
            else:
                x = ddim_step(schedule, x, t, prev_t[i], eps_pred, eta=eta, noise=z, clip=clip)
            # keep the static shape: some denoisers lose the batch size, and the loop needs it fixed
            x = tf.ensure_shape(x, shape)
            if len(snap_pos):
                hit = tf.reshape(tf.cast(tf.equal(snap_pos_t, i), x.dtype), (-1, 1, 1, 1, 1))
                snaps = hit * x[None] + (1 - hit) * snaps
        return x, snaps

    cache[key] = loop
    return loop


def sample(
    denoiser,
    schedule,
    n,
    sampler="ddpm",
    steps=None,
    eta=0.0,
    seed=None,
    snapshots=None,
    clip=None,
    variance="beta",
    spacing="uniform",
    image_shape=None,
    batch_size=256,
    x_T=None,
    jit_compile=False,
):
    """Draw n images by running the reverse chain from x_T ~ N(0, I).

    Args:
        denoiser: a model called as ``denoiser([x_t, t])`` returning ε̂.
        schedule: the ``NoiseSchedule`` the denoiser was trained with.
        n: number of images.
        sampler: ``"ddpm"`` (every step, DDPM Algorithm 2) or ``"ddim"``.
        steps: number of DDIM steps S ≤ T (default T); DDPM always takes T.
        eta: DDIM's η (0 = deterministic).
        seed: integer seed; the same seed gives the same images.
        snapshots: timesteps at which to keep the batch; the snapshot at t is
            the state after the step at t (so t = 0 is the final image). For
            DDIM, a t between visited steps is taken after the first visited
            step ≤ t.
        clip: ``None`` or a (low, high) range for x̂_0 at every step.
        variance: DDPM's σ_t², ``"beta"`` or ``"posterior"``.
        spacing: DDIM's timestep spacing, ``"uniform"`` or ``"quadratic"``.
        image_shape: (H, W, C); read from the denoiser's input when omitted.
        batch_size: images per compiled call.
        x_T: optional starting noise, shape (n, H, W, C).
        jit_compile: compile the loop with XLA.

    Returns:
        float32 NumPy images (n, H, W, C); with ``snapshots`` also an array
        (n, K, H, W, C) of the states at those timesteps.
    """
    _validate(sampler, variance, eta, n)
    if sampler == "ddpm" and steps not in (None, schedule.timesteps):
        raise ValueError(f"the ddpm sampler takes all T={schedule.timesteps} steps; use sampler='ddim' for steps={steps}")
    seq = timestep_sequence(schedule.timesteps, steps, spacing)
    snap_t = np.asarray([] if snapshots is None else snapshots, dtype=int).reshape(-1)
    schedule.check_t(snap_t)
    # position in seq of the first visited step <= each requested t
    snap_pos = np.array([int(np.argmax(seq <= t)) for t in snap_t], dtype=int)
    image_shape = tuple(image_shape or denoiser.inputs[0].shape[1:])
    seed = int(np.random.SeedSequence().generate_state(1)[0] % 2**31) if seed is None else int(seed)
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    loop = _compiled_loop(denoiser, schedule, sampler, seq, snap_pos, variance, float(eta), clip, jit_compile)

    images, snaps = [], []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        batch_seed = tf.constant([seed, start], tf.int32)
        if x_T is None:
            x = tf.random.stateless_normal((size,) + image_shape, seed=batch_seed + [0, 2**30])
        else:
            x = tf.convert_to_tensor(np.asarray(x_T, np.float32)[start : start + size])
        x, s = loop(x, batch_seed)
        images.append(x.numpy())
        snaps.append(np.moveaxis(s.numpy(), 0, 1))  # (B, K, H, W, C)
    images = np.concatenate(images)
    return (images, np.concatenate(snaps)) if snapshots is not None else images
