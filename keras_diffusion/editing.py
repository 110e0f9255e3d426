"""Editing real images with a trained denoiser: inpainting, super-resolution, image-to-image, translation.

None of them trains anything: each reuses the denoiser through the one
reverse loop of ``reverse.sample``, and differs only in what happens to the
state between its steps, or where the chain starts.

    inpaint        RePaint (Lugmayr et al. 2022): after each step the known pixels
                   of x_{t−1} are replaced by the original noised to t−1.
    super_resolve  ILVR (Choi et al. 2021): after each step the low frequencies
                   φ(x_{t−1}) are replaced by those of the noised low-resolution image.
    img2img        SDEdit (Meng et al. 2022): no constraint at all; the chain starts
                   at t_0 = strength·T from the input noised to t_0.
    translate      DDIB (Su et al. 2023): the input is encoded to x_T by deterministic
                   DDIM run upwards under its own condition (``invert``), then decoded
                   by DDIM under another: a class or a prompt changes, the layout stays.

A constraint is an object that ``sample`` traces into its compiled loop: ``key``
(what decides the graph), ``inputs(start, size)`` (the arrays of one batch) and
``apply(schedule, x, t, inputs, seed)`` → the adjusted x_t, where t = −1 is the
final image. Images here are floats in the run's data range, as ``sample``
returns them; masks are 1 where the model paints and 0 where the original stays.
"""

import math
import weakref

import numpy as np
from keras import ops

from keras_diffusion import backends, samplers
from keras_diffusion.forward import q_sample
from keras_diffusion.names import MASKS  # import-free, for fast --help
from keras_diffusion.reverse import sample, timestep_sequence


def q_sample_to(schedule, x0, t, noise):
    """x_t ~ q(x_t | x_0) for a scalar t in [−1, T−1]: DDPM eq. 4, and x_0 itself, exactly, at t = −1."""
    return ops.where(t >= 0, q_sample(schedule, x0, ops.maximum(t, 0), noise), x0)


# --- inpainting -------------------------------------------------------------------------


def make_mask(mask, n=1, shape=(28, 28, 1), seed=0):
    """The pixels to fill, float32 (n, H, W, 1): 1 where the model paints, 0 where the original stays.

    Args:
        mask: a name, ``box`` (the centre, half the side), ``left``, ``right``,
            ``top``, ``bottom`` (that half), ``random`` (each pixel with
            probability 1/2, a new pattern per image), or an array of 0/1 (or
            bool) shaped (H, W), (H, W, 1), or one per image (n, H, W[, 1]).
        n: number of images.
        shape: (H, W, C) of the images.
        seed: seed of the ``random`` mask.
    """
    height, width = shape[0], shape[1]
    if isinstance(mask, str):
        rows, cols = np.mgrid[:height, :width]
        regions = {
            "box": (abs(rows - (height - 1) / 2) < height / 4) & (abs(cols - (width - 1) / 2) < width / 4),
            "left": cols < width // 2,
            "right": cols >= width // 2,
            "top": rows < height // 2,
            "bottom": rows >= height // 2,
        }
        if mask == "random":
            return (np.random.default_rng(seed).random((n, height, width, 1)) < 0.5).astype(np.float32)
        if mask not in regions:
            raise ValueError(f"mask must be one of {', '.join(MASKS)} or an array, got {mask!r}")
        mask = regions[mask]
    mask = np.asarray(mask)
    if mask.ndim in (2, 3) and mask.shape[:2] == (height, width) and mask.shape[2:] in ((), (1,)):
        mask = mask.reshape(1, height, width, 1)
    elif mask.ndim in (3, 4) and mask.shape[1:3] == (height, width) and mask.shape[3:] in ((), (1,)) and len(mask) in (1, n):
        mask = mask.reshape(-1, height, width, 1)
    else:
        raise ValueError(f"mask must be ({height}, {width}) or one per image ({n}, {height}, {width}, 1), got shape {mask.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"mask must hold only 0 (keep) and 1 (fill), got values such as {np.setdiff1d(mask, (0, 1))[:3]}")
    return np.broadcast_to(mask.astype(np.float32), (n, height, width, 1)).copy()


class Replace:
    """Inpainting's constraint: x_t = m ⊙ x_t^known + (1 − m) ⊙ x_t   (RePaint eqs. 8-10).

    x_t^known ~ q(x_t | x_0) is the original noised to the state's level, drawn
    afresh at every step; m = 1 − mask marks the known pixels. At t = −1 the
    known pixels are the original itself, so they come out unchanged.
    """

    key = ("replace",)

    def __init__(self, images, mask):
        self.images = np.asarray(images, np.float32)  # (N, H, W, C) x_0
        self.known = np.asarray(mask) == 0  # (N, H, W, 1) bool, True where the original stays

    def inputs(self, start, size):
        return {"x0": self.images[start : start + size], "known": self.known[start : start + size]}

    def apply(self, schedule, x, t, inputs, seed):
        noise = backends.stateless_normal(ops.shape(x), seed)  # (B, H, W, C)
        known = q_sample_to(schedule, inputs["x0"], t, noise)  # x_t^known
        # where, not m·a + (1 − m)·b: exact, and a NaN in the generated part cannot leak into the kept one
        return ops.where(inputs["known"], known, x)


def inpaint(denoiser, schedule, images, mask, resample=1, jump=10, seed=None, **sample_kwargs):
    """Fill the masked pixels of real images; the others stay exactly as they were.

    ``resample=1`` is the replacement method; ``resample=r > 1`` is RePaint's
    resampling (Lugmayr et al. 2022, Algorithm 1): every ``jump`` steps the
    chain goes back up ``jump`` forward steps q(x_t | x_{t−1}), r − 1 times, so
    that the generated part can adapt to the known one. Resampling needs the
    DDPM sampler (the default); replacement works with every sampler.

    Args:
        denoiser, schedule: a trained denoiser and its schedule.
        images: (N, H, W, C) float images in the run's data range.
        mask: a name or an array (``make_mask``): 1 = fill, 0 = keep.
        resample: r ≥ 1, RePaint's resamplings per jump.
        jump: j ≥ 1, RePaint's jump length in steps.
        seed: integer seed; the same seed gives the same result.
        **sample_kwargs: passed to ``sample`` (sampler, steps, clip, labels, batch_size, ...).

    Returns:
        float32 (N, H, W, C).
    """
    images = _check_images(images, _image_shape(denoiser, sample_kwargs))
    mask = make_mask(mask, len(images), images.shape[1:], seed=0 if seed is None else seed)
    constraint = Replace(images, mask)
    return sample(denoiser, schedule, len(images), seed=seed, constraint=constraint, jump=jump, resample=resample, **sample_kwargs)


# --- super-resolution -------------------------------------------------------------------


def downsample(x, factor):
    """Average over factor × factor blocks: (B, H, W, C) → (B, H/factor, W/factor, C)."""
    return ops.average_pool(ops.convert_to_tensor(x, "float32"), factor, factor, padding="valid")


def upsample(x, factor):
    """Repeat each pixel factor × factor times (nearest neighbour): (B, h, w, C) → (B, h·factor, w·factor, C)."""
    return ops.repeat(ops.repeat(x, factor, axis=1), factor, axis=2)


def low_pass(x, factor):
    """φ_N(x) = upsample(downsample(x)): ILVR's low-pass filter, here a projection, φ(φ(x)) = φ(x)."""
    return upsample(downsample(x, factor), factor)


class LowPass:
    """ILVR's constraint: x_t = φ(y_t) + (I − φ)(x_t), y_t ~ q(y_t | y)   (Choi et al. 2021, Algorithm 1).

    y is the low-resolution reference brought to full size; the step keeps the
    model's high frequencies and takes the low ones from the reference noised
    to the same level. Because φ is a projection, φ(result) = φ(y) exactly.
    """

    def __init__(self, reference, factor):
        self.reference, self.factor = np.asarray(reference, np.float32), int(factor)  # (N, H, W, C)
        self.key = ("low_pass", self.factor)

    def inputs(self, start, size):
        return {"y": self.reference[start : start + size]}

    def apply(self, schedule, x, t, inputs, seed):
        noise = backends.stateless_normal(ops.shape(x), seed)  # (B, H, W, C)
        y_t = q_sample_to(schedule, inputs["y"], t, noise)
        return x - low_pass(x, self.factor) + low_pass(y_t, self.factor)


def super_resolve(denoiser, schedule, low_res, factor=None, seed=None, **sample_kwargs):
    """Upsample images by ``factor`` with an unconditional model, by ILVR.

    Args:
        low_res: (N, H/factor, W/factor, C) float images in the run's data range,
            e.g. ``downsample(images, 4)``: 7x7 for 28x28 at factor 4.
        factor: the upsampling factor (default: the denoiser's size over the
            input's); it must divide the denoiser's image size.
        seed, **sample_kwargs: as for ``inpaint``.

    Returns:
        float32 (N, H, W, C), whose factor × factor block means are those of ``low_res``.
    """
    shape = _image_shape(denoiser, sample_kwargs)
    low_res = np.asarray(low_res, np.float32)
    if low_res.ndim != 4 or low_res.shape[3] != shape[2]:
        raise ValueError(f"low_res must be (N, height, width, {shape[2]}) images, got shape {low_res.shape}")
    if factor is None:
        factor = shape[0] // low_res.shape[1]
    factor = check_factor(factor, shape[0])
    if low_res.shape[1:3] != (shape[0] // factor, shape[1] // factor):
        raise ValueError(
            f"factor {factor} takes {shape[0] // factor}x{shape[1] // factor} images to {shape[0]}x{shape[1]}, "
            f"got {low_res.shape[1]}x{low_res.shape[2]}"
        )
    _check_images(low_res, low_res.shape[1:])
    reference = ops.convert_to_numpy(upsample(low_res, factor))  # (N, H, W, C)
    return sample(denoiser, schedule, len(low_res), seed=seed, constraint=LowPass(reference, factor), **sample_kwargs)


def check_factor(factor, size=28):
    """The factor as an int, if it is an integer ≥ 2 that divides the image size; else a ValueError."""
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 2 or size % factor:
        divisors = [d for d in range(2, size + 1) if size % d == 0]
        raise ValueError(f"factor must be an integer that divides {size} ({', '.join(map(str, divisors))}), got {factor!r}")
    return int(factor)


# --- image-to-image ---------------------------------------------------------------------


def sdedit_start(schedule, strength, steps=None, spacing="uniform"):
    """(t_0, steps from t_0) for SDEdit at ``strength``, or (None, 0) when there is nothing to do.

    As in KerasHub's image-to-image: of the S steps a full chain takes, skip
    the first ⌊S·(1 − strength)⌋ and run the rest, so strength 1 starts from
    (almost) pure noise and ignores the image, and t_0 ≈ strength·T.
    """
    strength = check_strength(strength)
    seq = timestep_sequence(schedule.timesteps, steps, spacing, schedule)
    # 1e-9: 200·(1 − 0.9) is 19.999999999999996 in floats, and 20 steps were meant
    skip = math.floor(len(seq) * (1 - strength) + 1e-9)
    return (None, 0) if skip >= len(seq) else (int(seq[skip]), len(seq) - skip)


def check_strength(strength):
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating, np.integer)) or not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1] (1: ignore the image, near 0: keep it), got {strength!r}")
    return float(strength)


def img2img(denoiser, schedule, images, strength=0.5, seed=None, sampler="ddpm", steps=None, spacing="uniform", noise=None, **sample_kwargs):
    """SDEdit: x_{t_0} = sqrt(ᾱ_{t_0})·x + sqrt(1−ᾱ_{t_0})·ε, then the reverse chain from t_0   (Meng et al. 2022, Algorithm 1).

    Args:
        images: (N, H, W, C) float images in the run's data range (real or hand-edited).
        strength: in (0, 1], how far the result may move from the input
            (t_0 ≈ strength·T; ``sdedit_start``).
        sampler, steps, spacing: as for ``sample``; a sampler that skips steps
            takes ≈ strength·steps of them, DDPM every step below t_0.
        noise: ε, shaped like ``images`` (default: drawn from ``seed``).
        seed, **sample_kwargs: as for ``inpaint``.

    Returns:
        float32 (N, H, W, C).
    """
    images = _check_images(images, _image_shape(denoiser, sample_kwargs))
    every_step = samplers.entry(sampler).every_step  # DDPM takes all the steps below t_0; the others S·strength
    t0, length = sdedit_start(schedule, strength, None if every_step else steps, spacing)
    if t0 is None:
        return images.copy()
    seed = int(np.random.SeedSequence().generate_state(1)[0] % 2**31) if seed is None else int(seed)
    noise = np.random.default_rng([seed, 1]).standard_normal(images.shape).astype(np.float32) if noise is None else noise
    x_t0 = ops.convert_to_numpy(q_sample(schedule, images, t0, noise))  # (N, H, W, C)
    steps = None if every_step else length
    return sample(denoiser, schedule, len(images), sampler=sampler, steps=steps, spacing=spacing, seed=seed, start=t0, x_T=x_t0, **sample_kwargs)


# --- translation ---------------------------------------------------------------------------


def ddim_inverse_step(schedule, x, t, t_next, eps_pred):
    """x_{t'} = sqrt(ᾱ_{t'})·x̂_0 + sqrt(1−ᾱ_{t'})·ε̂, x̂_0 = (x_t − sqrt(1−ᾱ_t)·ε̂)/sqrt(ᾱ_t), t' > t   (DDIM eq. 12, η = 0, upwards).

    The deterministic DDIM step run towards noise (Song et al. 2021, sec. 4.3;
    DDIB's encoder, Su et al. 2023, eq. 6): the ODE is integrated from t to t'
    with ε̂ read at the start of the step. t = −1 is the data itself (ᾱ = 1), so
    the first step from a clean image is x_{t'} = sqrt(ᾱ_{t'})·x_0 + sqrt(1−ᾱ_{t'})·ε̂.
    Where ε̂ does not change over a step, ``ddim_step`` from t' back to t undoes it exactly.
    """
    x = ops.convert_to_tensor(x, "float32")
    ndim = len(x.shape)
    alpha_bars = ops.convert_to_tensor(np.append(1.0, schedule.alpha_bars).astype("float32"))  # ᾱ_{−1} = 1 first

    def alpha_bar(step):
        return ops.reshape(ops.take(alpha_bars, ops.cast(step, "int32") + 1), (-1,) + (1,) * (ndim - 1))

    eps_pred = ops.cast(eps_pred, "float32")
    x0_pred = (x - ops.sqrt(1 - alpha_bar(t)) * eps_pred) / ops.sqrt(alpha_bar(t))
    return ops.sqrt(alpha_bar(t_next)) * x0_pred + ops.sqrt(1 - alpha_bar(t_next)) * eps_pred


def condition_kwargs(denoiser, condition):
    """``sample``'s keyword for a condition: ``labels=`` for a class-conditional denoiser, ``prompts=`` for a text one.

    ``condition`` is one class (int) or one per image for the first, one text
    or one per image for the second, and None for an unconditional draw.
    """
    from keras_diffusion.models.embeddings import num_classes_of
    from keras_diffusion.models.prompt import prompt_tokenizer_of

    if condition is None:
        return {}
    if prompt_tokenizer_of(denoiser) is not None:
        if not isinstance(condition, str) and not all(isinstance(c, str) for c in np.ravel(condition)):
            raise ValueError(f"this denoiser is text-conditioned: give a prompt (a string, or one per image), got {condition!r}")
        return {"prompts": condition if isinstance(condition, str) else list(np.ravel(condition))}
    if num_classes_of(denoiser) is None:
        raise ValueError("translation changes the condition of a conditional denoiser: train one with --conditional or --text")
    labels = np.asarray(condition)
    if labels.dtype.kind not in "iu":
        raise ValueError(f"this denoiser is class-conditional: give class numbers (one, or one per image), got {condition!r}")
    return {"labels": labels}


TRANSLATE_SIGMA = 15.0  # translate inverts up to σ_t = sqrt((1−ᾱ_t)/ᾱ_t) <= this (t = 190 of the cosine schedule, T = 200)


def translate_start(schedule, sigma=TRANSLATE_SIGMA):
    """The last timestep whose noise level σ_t = sqrt((1−ᾱ_t)/ᾱ_t) is at most ``sigma`` (T−1 if all are; 0 if none is).

    DDIM's inversion is exact only while ε̂ changes little within a step; on
    the cosine schedule the last steps jump in σ from 14 (t = 190) to 4,058
    (t = 199), and an inversion carried that far loses the image (measured
    in docs/results/text.md). A latent at σ ≈ 15, where a garment's pixels
    are about 1/25 of the noise, still lets the target condition redraw it.
    """
    sigmas = np.sqrt((1.0 - schedule.alpha_bars) / schedule.alpha_bars)
    return int(max(np.searchsorted(sigmas, sigma, side="right") - 1, 0))


_INVERSIONS = weakref.WeakKeyDictionary()  # denoiser -> {settings: compiled loop}, as reverse._LOOPS


def _inversion_loop(denoiser, schedule, ascending, guide):
    """One compiled loop that takes a batch from the data (t = −1) up through ``ascending`` with DDIM (cached)."""
    key = (tuple(schedule.betas), tuple(ascending), guide.key)
    cache = _INVERSIONS.setdefault(denoiser, {})
    if key in cache:
        return cache[key]
    starts = np.array([-1] + list(ascending[:-1]), np.int32)  # (S,) the timestep each step leaves
    ends = np.array(list(ascending), np.int32)  # (S,) the timestep it reaches
    denoiser_ref = weakref.ref(denoiser)
    if backends.name() != "tensorflow":
        starts, ends = ops.convert_to_tensor(starts), ops.convert_to_tensor(ends)

        def run(x, labels):
            def body(i, x):
                t, t_next = ops.zeros((x.shape[0],), "int32") + ops.take(starts, i), ops.zeros((x.shape[0],), "int32") + ops.take(ends, i)
                eps = guide.eps(denoiser_ref(), schedule, x, ops.maximum(t, 0), labels)  # the clean image is read at t = 0
                return ddim_inverse_step(schedule, x, t, t_next, eps)

            return ops.fori_loop(0, len(ascending), body, x)

        cache[key] = backends.compiled(run, denoiser.variables)
        return cache[key]
    import tensorflow as tf

    starts, ends = tf.constant(starts), tf.constant(ends)

    @tf.function(reduce_retracing=True)
    def loop(x, labels):
        shape, batch = x.shape, tf.shape(x)[0]
        for i in tf.range(len(ascending)):
            t, t_next = tf.fill([batch], starts[i]), tf.fill([batch], ends[i])
            eps = guide.eps(denoiser_ref(), schedule, x, tf.maximum(t, 0), labels)  # the clean image is read at t = 0
            x = tf.ensure_shape(ddim_inverse_step(schedule, x, t, t_next, eps), shape)
        return x

    cache[key] = loop
    return loop


def invert(denoiser, schedule, images, condition=None, steps=50, spacing="uniform", start=None, batch_size=256):
    """x_T of each image: DDIM with η = 0 run from the data up to t = T−1 under ``condition`` (``ddim_inverse_step``).

    The inverse of ``sample(..., sampler="ddim", eta=0, steps=steps, spacing=spacing, x_T=...)``
    under the same condition, up to the change of ε̂ within each step: the
    same S timesteps, visited upwards, S network calls an image.

    Args:
        images: (N, H, W, C) float images in the run's data range.
        condition: the class(es) or prompt(s) the images are encoded under
            (``condition_kwargs``); None for an unconditional denoiser.
        steps, spacing: DDIM's steps S ≤ T and their spacing (``reverse.timestep_sequence``).
        start: the timestep to stop at (default T−1); S ≤ start + 1.
        batch_size: images per compiled call.

    Returns:
        float32 (N, H, W, C): the latents x_start.
    """
    from keras_diffusion.guidance import Guide

    images = _check_images(images, _image_shape(denoiser, {}))
    if start is not None and (isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < schedule.timesteps):
        raise ValueError(f"start must be an integer timestep in [0, {schedule.timesteps - 1}], got {start!r}")
    length = schedule.timesteps if start is None else int(start) + 1
    ascending = timestep_sequence(length, steps, spacing, schedule)[::-1]  # 0, ..., start
    kwargs = condition_kwargs(denoiser, condition)
    guide = Guide(denoiser, **kwargs)  # w = 0: the conditional ε̂ alone, as DDIB encodes
    labels = guide.labels(kwargs.get("labels"), len(images))
    loop = _inversion_loop(denoiser, schedule, ascending, guide)
    batches = range(0, len(images), batch_size)
    return np.concatenate(
        [backends.to_numpy(loop(ops.convert_to_tensor(images[i : i + batch_size]), ops.convert_to_tensor(labels[i : i + batch_size]))) for i in batches]
    )


def translate(denoiser, schedule, images, source, target, steps=50, spacing="uniform", guidance=0.0, clip=None, start=None, batch_size=256, progress=None):
    """Image-to-image translation by dual diffusion implicit bridges   (Su et al. 2023, Algorithm 1).

    x_T = ``invert``(x_0 | source), then x̂_0 = DDIM with η = 0 from x_T under
    ``target``. Both halves are deterministic ODE solves, so the latent x_T
    keeps what the two conditions share (where the garment is, how bright),
    and the decoder redraws what the target changes. Classifier-free guidance
    ``guidance`` = w ≥ 0 applies to the decoding only; the encoding is the
    plain conditional ε̂.

    Args:
        denoiser, schedule: a class-conditional or text-conditioned denoiser and its schedule.
        images: (N, H, W, C) float images in the run's data range.
        source: what the images are: classes (int, or one per image) or prompts (str, or one per image).
        target: what they should become, in the same form.
        steps, spacing: DDIM's steps and their spacing, the same both ways.
        guidance: w of the decoding under ``target``.
        clip: ``None`` or a (low, high) range for x̂_0 while decoding.
        start: the timestep of the latents, where the inversion stops and the
            decoding starts (default: ``translate_start(schedule)``).
        batch_size: images per compiled call.
        progress: as for ``sample``, called as the decoding finishes batches.

    Returns:
        float32 (N, H, W, C).
    """
    start = translate_start(schedule) if start is None else start
    x_T = invert(denoiser, schedule, images, source, steps, spacing, start, batch_size)
    kwargs = condition_kwargs(denoiser, target)
    return sample(
        denoiser, schedule, len(x_T), sampler="ddim", steps=steps, eta=0.0, spacing=spacing, x_T=x_T, clip=clip, start=start,
        guidance=guidance, batch_size=batch_size, seed=0, progress=progress, **kwargs,
    )


# --- shared checks ----------------------------------------------------------------------


def _image_shape(denoiser, sample_kwargs):
    return tuple(sample_kwargs.get("image_shape") or denoiser.inputs[0].shape[1:])


def _check_images(images, shape):
    images = np.asarray(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(f"images must be (N, {', '.join(map(str, shape))}) to fit the denoiser, got shape {images.shape}")
    if len(images) == 0:
        raise ValueError("no images to edit")
    if images.dtype == np.uint8 or images.dtype.kind not in "fi" or not np.isfinite(images).all() or np.abs(images).max() > 2:
        raise ValueError(
            f"images must be finite floats in the run's data range, [-1, 1] or [0, 1], got {images.dtype} values "
            f"up to {np.nanmax(np.abs(images)) if images.dtype.kind in 'fiu' else '?'}: scale uint8 pixels with data.scale_images"
        )
    return images.astype(np.float32)
