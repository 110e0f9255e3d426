"""The reverse (denoising) process: one DDPM or DDIM step, and the whole chain.

The step functions are plain ``keras.ops`` math on tensors. ``sample`` runs
every step for a whole batch inside ONE compiled function: the denoiser, the
update and the noise all stay on the device, and the host sees the result
once at the end. On TensorFlow that is a ``tf.function``; on JAX the same
moves run as an ``ops.fori_loop`` under ``jax.jit``, and on PyTorch eagerly
without gradients (``backends.compiled``). Which update the loop makes is the
sampler's step rule, looked up by name in ``keras_diffusion.samplers``.
"""

import logging
import weakref

import numpy as np
from keras import ops

from keras_diffusion import backends, samplers
from keras_diffusion.forward import extract, q_step
from keras_diffusion.names import VARIANCES  # import-free, for fast --help
from keras_diffusion.samplers import SPACINGS, nfe  # noqa: F401  (import-free; nfe is re-exported for callers of sample)

KARRAS_RHO = 7.0  # Karras et al. 2022, eq. 5: ρ = 7 spends more steps at low noise


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


def ddim_step(schedule, x_t, t, t_prev, eps_pred, eta=0.0, noise=None, clip=None, recompute_eps=True):
    """x_{τ'} = sqrt(ᾱ_{τ'})·x̂_0 + sqrt(1−ᾱ_{τ'}−σ²)·ε̂ + σ·z   (DDIM eq. 12).

    σ = η·sqrt((1−ᾱ_{τ'})/(1−ᾱ_τ))·sqrt(1−ᾱ_τ/ᾱ_{τ'})   (DDIM eq. 16): η = 0 is
    deterministic, η = 1 with τ' = τ−1 is DDPM with σ² = β̃.

    Args:
        t: the current timestep τ in [0, T-1], a scalar or shape (B,).
        t_prev: the next timestep τ' < τ; −1 means "the data" (ᾱ = 1).
        eta: η ≥ 0, the amount of fresh noise.
        noise: z, shaped like x_t; needed only when eta > 0.
        clip: ``None`` or a (low, high) range for x̂_0.
        recompute_eps: with ``clip``, re-derive ε̂ = (x_t − sqrt(ᾱ_τ)·x̂_0)/sqrt(1−ᾱ_τ)
            from the clipped x̂_0 (as GLIDE does; diffusers' ``use_clipped_model_output``),
            so the step does not mix a clipped x̂_0 with the network's unclipped ε̂.
            Only then is η = 1 with every step the clipped DDPM step with σ² = β̃.
    """
    x_t = ops.convert_to_tensor(x_t, "float32")
    eps_pred = ops.cast(eps_pred, "float32")
    ndim = len(x_t.shape)
    x0_pred = predict_x0(schedule, x_t, t, eps_pred)
    if clip is not None:
        x0_pred = ops.clip(x0_pred, clip[0], clip[1])
        if recompute_eps:
            eps_pred = (x_t - extract(schedule, "sqrt_alpha_bars", t, ndim) * x0_pred) / extract(
                schedule, "sqrt_one_minus_alpha_bars", t, ndim
            )
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


def timestep_sequence(timesteps, steps=None, spacing="uniform", schedule=None):
    """The descending timesteps τ_S > ... > τ_1 a sampler visits: starts at T−1, ends at 0.

    Works for any S ≤ T, whether or not S divides T; ``quadratic`` spacing
    (DDIM sec. 5) puts more steps near t = 0, where images get their detail;
    ``karras`` spaces the noise levels σ = sqrt((1−ᾱ)/ᾱ) of ``schedule`` as
    Karras et al. 2022, eq. 5 (ρ = 7), each moved to the timestep nearest in log σ.
    """
    steps = timesteps if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if steps > timesteps:
        raise ValueError(f"steps must be <= timesteps (T={timesteps}), got steps={steps}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}; got {spacing!r}")
    if spacing == "karras" and (schedule is None or schedule.timesteps < timesteps):
        raise ValueError("karras spacing needs schedule=: the noise schedule whose σ_t it spaces")
    if steps == 1:
        return np.array([timesteps - 1])
    if spacing == "uniform":
        return np.round(np.linspace(0, timesteps - 1, steps)).astype(int)[::-1].copy()
    if spacing == "quadratic":
        seq = np.round(np.linspace(0, np.sqrt(timesteps - 1), steps) ** 2).astype(int)
    else:
        log_sigmas = np.log(np.sqrt((1.0 - schedule.alpha_bars[:timesteps]) / schedule.alpha_bars[:timesteps]))  # (T,), increasing
        low, high = np.exp(log_sigmas[[0, -1]] / KARRAS_RHO)
        # σ_i = (σ_min^{1/ρ} + i/(S−1)·(σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ, ascending here   (Karras et al. 2022, eq. 5)
        targets = KARRAS_RHO * np.log(low + np.linspace(0, 1, steps) * (high - low))
        seq = np.argmin(np.abs(log_sigmas[None, :] - targets[:, None]), axis=1)
    return _distinct(seq, timesteps)[::-1].copy()


def _distinct(seq, timesteps):
    """An ascending sequence from 0 made strictly increasing and ending at T−1: rounding crowds steps near 0."""
    steps = len(seq)
    seq = np.array(seq, dtype=int)
    for i in range(1, steps):  # push duplicates up, then keep the top at T−1
        seq[i] = max(seq[i], seq[i - 1] + 1)
    return np.minimum(seq, timesteps - steps + np.arange(steps))


def step_plan(seq, jump=1, resample=1):
    """The loop's moves: (t, up) pairs, where a down move at t takes x_t to x_{t−1}.

    Without resampling this is ``seq`` itself, all down. RePaint's resampling
    (Lugmayr et al. 2022, Algorithm 1 and sec. 4.2) goes back up ``jump`` steps
    of the forward chain q(x_t | x_{t−1}) every ``jump`` steps, ``resample − 1``
    times, so that the constrained and the generated parts harmonise; an up
    move at t takes x_{t−1} back to x_t. Resampling needs a sampler that takes
    every step (``samplers.Entry.every_step``: DDPM).
    """
    if resample == 1:
        return [(int(t), False) for t in seq]
    timesteps = len(seq)
    left = {s: resample - 1 for s in range(0, timesteps - jump, jump)}  # state index s: x_s (−1 is x_0)
    plan, s = [], timesteps - 1
    while s >= 0:
        plan.append((s, False))
        s -= 1
        if left.get(s, 0) > 0:
            left[s] -= 1
            for _ in range(jump):
                s += 1
                plan.append((s, True))
    return plan


def _validate(sampler, variance, eta, churn, n, jump, resample):
    samplers.entry(sampler)
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    if not churn >= 0:
        raise ValueError(f"churn must be >= 0, got {churn}")
    for name, value in (("n", n), ("jump", jump), ("resample", resample)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    samplers.check_options(sampler, eta, churn, resample)


# denoiser -> {settings: compiled loop}. Weak keys, and the loops reach the
# denoiser only through a weakref, so deleting a model frees its graphs.
_LOOPS = weakref.WeakKeyDictionary()


class _ExpectedRetracing(logging.Filter):
    """Drops TensorFlow's retracing warning about the sampling loop, and only that one.

    Each sampler setting (steps, eta, guidance, ...) compiles its own loop once
    and caches it; TensorFlow counts those separate functions as one function
    that keeps retracing and warns, which reads like a bug in a notebook.
    """

    def filter(self, record):
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "_compiled_loop" in message)


if backends.name() == "tensorflow":
    import tensorflow as tf

    tf.get_logger().addFilter(_ExpectedRetracing())


def _plan_tables(plan):
    """The plan as four arrays indexed by move: t, whether it goes up, the next down timestep τ' and the last one."""
    downs = [t for t, up in plan if not up]
    next_down, last_down = {}, {}  # the timestep after each down move (DDIM's τ') and before it (−2: none)
    for t_last, t_now, t_next in zip([-2] + downs[:-1], downs, downs[1:] + [-1]):
        next_down.setdefault(t_now, t_next)
        last_down.setdefault(t_now, t_last)
    return (
        np.array([t for t, _ in plan], np.int32),  # (P,)
        np.array([up for _, up in plan], bool),  # (P,)
        np.array([next_down.get(t, t - 1) for t, _ in plan], np.int32),  # (P,)
        np.array([last_down.get(t, -2) for t, _ in plan], np.int32),  # (P,)
    )


def _compiled_loop(denoiser, schedule, rule, plan, snap_pos, guide, constraint, jit_compile):
    """One compiled function that runs every move of ``plan`` for a batch (cached per settings).

    Each down move lets the sampler's step rule take the state (and its
    history, for multistep rules) from t to the next visited timestep, asking
    the guide for ε̃ (the denoiser, perhaps guided) as often as the rule needs;
    then the constraint (an edit) adjusts the new state. An up move re-noises
    one step with q(x_t | x_{t−1}).
    """
    settings = (rule.key, tuple(plan), tuple(snap_pos), guide.key)
    key = (tuple(schedule.betas),) + settings + (None if constraint is None else constraint.key, jit_compile)
    cache = _LOOPS.setdefault(denoiser, {})
    if key in cache:
        return cache[key]
    if backends.name() != "tensorflow":
        cache[key] = _neutral_loop(denoiser, schedule, rule, plan, snap_pos, guide, constraint)
        return cache[key]
    tables = _plan_tables(plan)
    plan_t, plan_up, plan_prev, plan_last = (tf.constant(table) for table in tables)
    any_up = bool(np.any(tables[1]))
    draws_noise = rule.noisy or any_up  # an up move is q(x_t | x_{t−1}): it needs noise whatever the rule
    snap_pos_t = tf.constant(snap_pos, tf.int32)  # (K,)
    denoiser_ref = weakref.ref(denoiser)

    def down(x, history, move, z, labels, inputs, seed):
        batch = tf.shape(x)[0]

        def eps(x_t, t):
            return guide.eps(denoiser_ref(), schedule, x_t, tf.fill([batch], t), labels)  # (B, H, W, C)

        x, history = rule.step(eps, x, move, z, history)
        return (x if constraint is None else constraint.apply(schedule, x, move.t_prev, inputs, seed)), history

    @tf.function(jit_compile=jit_compile, reduce_retracing=True)
    def loop(x, seed, labels, inputs):
        shape = x.shape
        snaps = tf.zeros(tf.concat([[len(snap_pos)], tf.shape(x)], 0))  # (K, B, H, W, C)
        history = rule.start(x)  # e.g. the previous x̂_0 of a multistep rule, shaped like x
        for i in tf.range(len(plan)):
            move = samplers.Move(plan_t[i], plan_prev[i], plan_last[i])
            step_seed = tf.random.experimental.stateless_fold_in(seed, i)
            # a deterministic rule reads no noise: skip the draw (one normal tensor per step)
            z = tf.random.stateless_normal(tf.shape(x), seed=step_seed) if draws_noise else None
            edit_seed = tf.random.experimental.stateless_fold_in(step_seed, 1)
            if any_up:
                x, history = tf.cond(
                    plan_up[i], lambda: (q_step(schedule, x, move.t, z), history), lambda: down(x, history, move, z, labels, inputs, edit_seed)
                )
            else:
                x, history = down(x, history, move, z, labels, inputs, edit_seed)
            # keep the static shape: some denoisers lose the batch size, and the loop needs it fixed
            x = tf.ensure_shape(x, shape)
            history = tuple(tf.ensure_shape(h, shape) for h in history)
            if len(snap_pos):
                hit = tf.reshape(tf.cast(tf.equal(snap_pos_t, i), x.dtype), (-1, 1, 1, 1, 1))
                snaps = hit * x[None] + (1 - hit) * snaps
        return x, snaps

    cache[key] = loop
    return loop


def _neutral_loop(denoiser, schedule, rule, plan, snap_pos, guide, constraint):
    """The loop of ``_compiled_loop`` in ``keras.ops`` for JAX and PyTorch: the same moves as an ``ops.fori_loop``.

    Called as ``loop(x, seed, labels, inputs)`` with ``seed`` from
    ``backends.loop_seed``; returns (x_0, snapshots (K, B, H, W, C)).
    """
    tables = _plan_tables(plan)
    any_up = bool(np.any(tables[1]))
    plan_t, plan_up, plan_prev, plan_last = (ops.convert_to_tensor(table) for table in tables)
    draws_noise = rule.noisy or any_up
    snap_pos_t = ops.convert_to_tensor(np.asarray(snap_pos, np.int32))  # (K,)
    denoiser_ref = weakref.ref(denoiser)

    def run(x, seed, labels, inputs):
        batch = x.shape[0]

        def eps(x_t, t):
            return guide.eps(denoiser_ref(), schedule, x_t, ops.zeros((batch,), "int32") + t, labels)  # (B, H, W, C)

        def down(x, history, move, z, edit_seed):
            x, history = rule.step(eps, x, move, z, history)
            return (x if constraint is None else constraint.apply(schedule, x, move.t_prev, inputs, edit_seed)), tuple(history)

        def body(i, state):
            x, history, snaps = state
            move = samplers.Move(ops.take(plan_t, i), ops.take(plan_prev, i), ops.take(plan_last, i))
            step_seed = backends.fold_in(seed, i)
            z = backends.stateless_normal(x.shape, step_seed) if draws_noise else None
            edit_seed = backends.fold_in(step_seed, 1)
            if any_up:
                x, history = ops.cond(
                    ops.take(plan_up, i), lambda: (q_step(schedule, x, move.t, z), history), lambda: down(x, history, move, z, edit_seed)
                )
            else:
                x, history = down(x, history, move, z, edit_seed)
            if len(snap_pos):
                hit = ops.reshape(ops.cast(ops.equal(snap_pos_t, i), x.dtype), (-1, 1, 1, 1, 1))
                snaps = hit * x[None] + (1 - hit) * snaps
            return x, tuple(history), snaps

        snaps = ops.zeros((len(snap_pos),) + tuple(x.shape))
        x, _, snaps = ops.fori_loop(0, len(plan), body, (x, tuple(rule.start(x)), snaps))
        return x, snaps

    variables = denoiser.variables + (guide.classifier.variables if guide.classifier is not None else [])
    return backends.compiled(run, variables)


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
    labels=None,
    guidance=0.0,
    classifier=None,
    classifier_scale=0.0,
    recompute_eps=True,
    churn=0.0,
    constraint=None,
    start=None,
    jump=1,
    resample=1,
    progress=None,
    prompts=None,
    negative_prompt=None,
):
    """Draw n images by running the reverse chain from x_T ~ N(0, I).

    Args:
        denoiser: a model called as ``denoiser([x_t, t])`` returning ε̂,
            ``denoiser([x_t, t, y])`` when class-conditional, or
            ``denoiser([x_t, t, tokens])`` when text-conditioned.
        schedule: the ``NoiseSchedule`` the denoiser was trained with.
        n: number of images.
        sampler: a name in ``samplers.SAMPLERS``: ``"ddpm"`` (every step, DDPM
            Algorithm 2), ``"ddim"``, ``"dpmpp_2m"``, ``"dpmpp_2m_sde"`` or ``"heun"``.
        steps: number of sampler steps S ≤ T (default T); DDPM always takes T.
            ``samplers.nfe(sampler, steps, guidance)`` is their cost in network calls.
        eta: DDIM's η (0 = deterministic).
        seed: integer seed; the same seed gives the same images.
        snapshots: timesteps at which to keep the batch; the snapshot at t is
            the state after the step at t (so t = 0 is the final image). When
            steps < T, a t between visited steps is taken after the first
            visited step ≤ t.
        clip: ``None`` or a (low, high) range for x̂_0 at every step.
        variance: DDPM's σ_t², ``"beta"`` or ``"posterior"``.
        spacing: the timestep spacing of S < T steps: ``"uniform"``, ``"quadratic"``
            or ``"karras"`` (``timestep_sequence``).
        image_shape: (H, W, C); read from the denoiser's input when omitted.
        batch_size: images per compiled call.
        x_T: optional starting noise, shape (n, H, W, C).
        jit_compile: compile the loop with XLA.
        labels: the class of each image, int (n,) or one int for all; for a
            conditional denoiser (default: its null label, an unconditional
            draw) or for classifier guidance.
        guidance: classifier-free guidance weight w ≥ 0 (``guidance.cfg_eps``).
        classifier: a noise-aware classifier ``classifier([x_t, t])`` → logits.
        classifier_scale: classifier guidance scale s ≥ 0 (``guidance.classifier_eps``).
        recompute_eps: DDIM with ``clip`` re-derives ε̂ from the clipped x̂_0
            (see ``ddim_step``); the other solvers always work from the clipped x̂_0.
        churn: Heun's S_churn ≥ 0 (Karras et al. 2022, Algorithm 2): 0 is the
            deterministic ODE solver.
        constraint: an edit applied inside the loop after every step (see
            ``editing``): an object with ``key`` (hashable settings),
            ``inputs(start, size)`` (a dict of the batch's arrays) and
            ``apply(schedule, x, t, inputs, seed)``, which returns the state
            x_t adjusted (t = −1: the final image).
        start: the timestep the chain starts from, with ``x_T`` the state
            there (default T−1; SDEdit starts lower).
        jump, resample: RePaint's resampling (``step_plan``); 1 and 1 = none.
        progress: called with the number of images done after each batch
            (``progress.SamplingProgress`` prints a line when one took long).
        prompts: for a text-conditioned denoiser (``train --text``), the text
            of each image, a list of n, or one string for all (default: the
            null prompt, an unconditional draw). ``guidance`` is then w on
            prompts: ε̃ = (1 + w)·ε(x_t, prompt) − w·ε(x_t, ∅).
        negative_prompt: a text that takes the null prompt's place in ε(x_t, ∅):
            guidance then steers away from it.

    Returns:
        float32 NumPy images (n, H, W, C); with ``snapshots`` also an array
        (n, K, H, W, C) of the states at those timesteps.
    """
    from keras_diffusion.guidance import Guide

    _validate(sampler, variance, eta, churn, n, jump, resample)
    if samplers.entry(sampler).every_step and steps not in (None, schedule.timesteps):
        others = " or ".join(f"sampler={name!r}" for name in samplers.STEPPED)
        raise ValueError(f"the {sampler} sampler takes all T={schedule.timesteps} steps; use {others} for steps={steps}")
    length = schedule.timesteps if start is None else _start_length(schedule, start, x_T)
    seq = timestep_sequence(length, steps, spacing, schedule)
    plan = step_plan(seq, jump, resample)
    snap_t = np.asarray([] if snapshots is None else snapshots, dtype=int).reshape(-1)
    schedule.check_t(snap_t)
    # position in the plan of the last down move at the first visited step <= each requested t
    snap_pos = np.array([max(i for i, (t, up) in enumerate(plan) if not up and t == seq[np.argmax(seq <= s)]) for s in snap_t], dtype=int)
    image_shape = tuple(image_shape or denoiser.inputs[0].shape[1:])
    seed = int(np.random.SeedSequence().generate_state(1)[0] % 2**31) if seed is None else int(seed)
    clip = None if clip is None else (float(clip[0]), float(clip[1]))
    guide = Guide(denoiser, labels, guidance, classifier, classifier_scale, prompts, negative_prompt)
    all_labels = guide.labels(labels, n)
    if len(all_labels) != n or (guide.tokenizer is None and all_labels.ndim != 1):
        raise ValueError(f"labels must be one label or one per image, shape ({n},); got shape {all_labels.shape}")
    rule = samplers.entry(sampler).load()(
        schedule, len(seq), clip=clip, eta=float(eta), variance=variance, recompute_eps=bool(recompute_eps), churn=float(churn)
    )
    loop = _compiled_loop(denoiser, schedule, rule, plan, snap_pos, guide, constraint, jit_compile)

    images, snaps = [], []
    for first in range(0, n, batch_size):
        size = min(batch_size, n - first)
        x, s = _run_batch(loop, seed, first, size, image_shape, x_T, all_labels, constraint)
        images.append(backends.to_numpy(x))
        snaps.append(np.moveaxis(backends.to_numpy(s), 0, 1))  # (B, K, H, W, C)
        if progress is not None:
            progress(first + size)
    images = np.concatenate(images)
    return (images, np.concatenate(snaps)) if snapshots is not None else images


def _run_batch(loop, seed, first, size, image_shape, x_T, all_labels, constraint):
    """Run the compiled loop on the batch of ``size`` images from ``first``: (x_0, snapshots), as tensors."""
    batch_seed = backends.loop_seed(seed, first)
    if x_T is not None:
        x = ops.convert_to_tensor(np.asarray(x_T, np.float32)[first : first + size])
    elif backends.name() == "tensorflow":
        x = tf.random.stateless_normal((size,) + image_shape, seed=batch_seed + [0, 2**30])  # the draw every figure's seed was made with
    else:
        x = backends.normal((size,) + image_shape, batch_seed, 2**31 - 1)  # past every move: the starting noise
    inputs = {} if constraint is None else {k: ops.convert_to_tensor(v) for k, v in constraint.inputs(first, size).items()}
    return loop(x, batch_seed, ops.convert_to_tensor(all_labels[first : first + size]), inputs)


def _start_length(schedule, start, x_T):
    """The number of timesteps a chain started at ``start`` visits (start + 1), checked."""
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < schedule.timesteps:
        raise ValueError(f"start must be an integer timestep in [0, {schedule.timesteps - 1}], got {start!r}")
    if x_T is None:
        raise ValueError("start needs x_T: the state x_start the chain starts from (for SDEdit, a noised image)")
    return int(start) + 1
