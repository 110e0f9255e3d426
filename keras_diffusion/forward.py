"""The forward (noising) process q: the closed form and the Markov chain.

Noise is always an argument, so that a test, a grader or a figure can fix it.
Written with ``keras.ops`` so the math does not depend on the backend.
"""

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
    x_prev = ops.convert_to_tensor(x_prev, "float32")
    ndim = len(x_prev.shape)
    beta = extract(schedule, "betas", t, ndim)
    return ops.sqrt(1.0 - beta) * x_prev + ops.sqrt(beta) * ops.cast(noise, "float32")


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
