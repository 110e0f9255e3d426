"""The forward (noising) process q: the closed form and the Markov chain.

Noise is always an argument, so that a test, a grader or a figure can fix it.
Written with ``keras.ops`` so the math does not depend on the backend.
"""

import keras
import numpy as np
from keras import ops


def extract(schedule, name, t, ndim):
    """schedule.<name>[t] for a batch of timesteps, shaped (B, 1, ..., 1) to broadcast over x.

    Args:
        schedule: a ``NoiseSchedule``.
        name: the schedule array to read, e.g. ``"alpha_bars"``.
        t: integer timesteps, a scalar or shape (B,).
        ndim: rank of the tensor the result multiplies.
    """
    values = ops.take(schedule.tensor(name), ops.cast(t, "int32"))  # (B,) or ()
    return ops.reshape(values, (-1,) + (1,) * (ndim - 1))


def q_sample(schedule, x0, t, noise):
    """x_t = sqrt(ᾱ_t)·x_0 + sqrt(1−ᾱ_t)·ε   (DDPM eq. 4, the closed form of q(x_t | x_0)).

    Args:
        schedule: a ``NoiseSchedule``.
        x0: clean images, shape (B, ...), float.
        t: integer timesteps in [0, T-1], a scalar or shape (B,).
        noise: ε ~ N(0, I), shaped like x0.

    Returns:
        x_t, shaped like x0.
    """
    _check_inputs(schedule, "x0", x0, t, noise)
    x0 = ops.convert_to_tensor(x0, "float32")
    ndim = len(x0.shape)
    return (
        extract(schedule, "sqrt_alpha_bars", t, ndim) * x0
        + extract(schedule, "sqrt_one_minus_alpha_bars", t, ndim) * ops.cast(noise, "float32")
    )


def q_step(schedule, x_prev, t, noise):
    """x_t = sqrt(1−β_t)·x_{t−1} + sqrt(β_t)·ε   (DDPM eq. 2, one step of the Markov chain).

    Here ``x_prev`` is the input to step t: the data itself when t = 0.
    """
    _check_inputs(schedule, "x_prev", x_prev, t, noise)
    x_prev = ops.convert_to_tensor(x_prev, "float32")
    ndim = len(x_prev.shape)
    beta = extract(schedule, "betas", t, ndim)
    return ops.sqrt(1.0 - beta) * x_prev + ops.sqrt(beta) * ops.cast(noise, "float32")


def _check_inputs(schedule, name, x, t, noise):
    """Raise ValueError, quoting the value, when x, t or noise cannot be what the caller meant.

    Shapes are checked always (they are known when a graph is traced, so this
    costs nothing per step); values only when they are already on the host or
    eager, never for a symbolic tensor inside ``fit`` or the sampling loop,
    where reading them would cost a device-to-host copy every step.
    """
    x_shape, t_shape, noise_shape = _shape(x), _shape(t), _shape(noise)
    if None in (x_shape, t_shape, noise_shape):
        return  # a rank not known until run time: nothing to check here
    if not x_shape:
        raise ValueError(f"{name} must have a batch axis, got a scalar {name}={x!r}")
    if not _same_shape(noise_shape, x_shape):
        raise ValueError(f"noise must have the shape of {name} {x_shape}, got {noise_shape}")
    if len(t_shape) > 1 or (t_shape and not _same_shape(t_shape, x_shape[:1])):
        raise ValueError(f"t must be a scalar or one timestep per image, shape ({x_shape[0]},); got shape {t_shape}")
    t_values = _host_value(t)
    if t_values is not None and t_values.size:
        if t_values.dtype.kind not in "iuf" or np.any(t_values != np.round(t_values)):
            raise ValueError(f"t must be integer timesteps, got t={_quote(t_values)}")
        bad = t_values[(t_values < 0) | (t_values > schedule.timesteps - 1)]
        if bad.size:
            raise ValueError(
                f"t must be in [0, {schedule.timesteps - 1}] for a schedule of T={schedule.timesteps}, got t={_quote(bad)}"
            )
    x_values = _host_value(x)
    if x_values is not None and not np.all(np.isfinite(x_values)):
        count = int(np.sum(~np.isfinite(x_values)))
        raise ValueError(f"{name} holds {count} non-finite values (NaN or inf), e.g. {x_values[~np.isfinite(x_values)][0]}")


def _shape(value):
    """The static shape as a tuple (None for a size known only at run time); None when even the rank is unknown."""
    try:
        return tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
    except ValueError:  # TensorShape of unknown rank
        return None


def _same_shape(a, b):
    """Equal rank and equal sizes wherever both are known (None: not known until run time)."""
    return len(a) == len(b) and all(i is None or j is None or i == j for i, j in zip(a, b))


def _host_value(value):
    """``value`` as a NumPy array if it can be read without a device round trip in compiled code, else None."""
    if isinstance(value, (np.ndarray, np.generic, int, float, list, tuple)):
        return np.asarray(value)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # an eager tensor has a value; a symbolic one (in tf.function, fit, sample) does not
        if tf.executing_eagerly() and isinstance(value, tf.Tensor) and hasattr(value, "numpy"):
            return value.numpy()
    return None


def _quote(values):
    values = np.ravel(values)
    shown = ", ".join(str(v) for v in values[:5].tolist()) + (", ..." if values.size > 5 else "")
    return shown if values.size == 1 else f"[{shown}]"


def q_trajectory(schedule, x0, noise_fn):
    """Run the Markov chain for all T steps and return every state, shape (T, B, ...).

    Slow by design (T small steps): it exists to show that iterating ``q_step``
    gives the same distribution as one ``q_sample``. ``noise_fn(t)`` returns ε
    for step t.
    """
    x, states = ops.convert_to_tensor(x0, "float32"), []
    for t in range(schedule.timesteps):
        x = q_step(schedule, x, t, noise_fn(t))
        states.append(x)
    return ops.stack(states)


def forward_snapshots(schedule, x0, timesteps, seed=0):
    """x_t for every image at each of ``timesteps``, computed in one batched call.

    Each image keeps one ε for all t, so a row of a grid shows the same noise
    growing while the signal fades.

    Args:
        schedule: a ``NoiseSchedule``.
        x0: clean images, shape (B, H, W, C).
        timesteps: K integer timesteps in [0, T-1].
        seed: seed of the noise.

    Returns:
        NumPy float32 array of shape (B, K, H, W, C).
    """
    x0 = np.asarray(x0, dtype=np.float32)
    timesteps = np.asarray(timesteps, dtype=np.int32)
    schedule.check_t(timesteps)
    batch, k = x0.shape[0], timesteps.size
    noise = np.random.default_rng(seed).standard_normal(x0.shape).astype(np.float32)
    # (B·K, H, W, C): image b at timestep k sits at row b·K + k
    x0_rep = np.repeat(x0, k, axis=0)
    noise_rep = np.repeat(noise, k, axis=0)
    t_rep = np.tile(timesteps, batch)
    x_t = q_sample(schedule, x0_rep, t_rep, noise_rep)
    return ops.convert_to_numpy(x_t).reshape((batch, k) + x0.shape[1:])
