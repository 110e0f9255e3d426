"""The few things TensorFlow, JAX and PyTorch do differently, in one place.

Everything else in the package is ``keras.ops`` and runs on whichever backend
Keras was started with (``KERAS_BACKEND=tensorflow|jax|torch``; TensorFlow is
the default). What Keras does not abstract lives here:

- a compiled function that reads the current weights: ``tf.function`` on
  TensorFlow, ``jax.jit`` over a ``keras.StatelessScope`` on JAX (weights
  passed in as arguments, so training on does not leave a compiled sampler
  with stale ones), and plain eager code under ``torch.no_grad`` on PyTorch,
  as KerasHub's ``generate`` does;
- fresh noise for step i of a loop from a seed, without state;
- the gradient of a sum with respect to an input (classifier guidance).

Each backend's random stream is its own: a seed repeats its images on one
backend, not across backends.
"""

import keras
import numpy as np


def name():
    """The backend Keras runs on: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    return keras.backend.backend()


class BackendError(ValueError):
    """Something asked of a backend it does not run on yet: the command lines report it in one line."""


def require_tensorflow(what):
    """Raise a one-line ``BackendError`` when ``what`` is asked for on a backend it does not run on yet."""
    if name() != "tensorflow":
        raise BackendError(
            f"{what} runs on the TensorFlow backend only for now (Keras runs on {name()}): "
            "start Python with KERAS_BACKEND=tensorflow, or leave KERAS_BACKEND unset"
        )


def to_numpy(x):
    """A tensor of any backend (or an array) as a NumPy array, read without a gradient."""
    if hasattr(x, "numpy") and name() == "tensorflow":
        return x.numpy()  # np.asarray(EagerTensor) warns under NumPy 2
    return keras.ops.convert_to_numpy(x)


def gpu_present():
    """Whether the backend sees a GPU."""
    if name() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if name() == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    import torch

    return torch.cuda.is_available()


def loop_seed(seed, first):
    """The seed of the batch that starts at image ``first``, in the form ``fold_in`` and ``stateless_normal`` read."""
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.constant([seed, first], tf.int32)
    if name() == "jax":
        import jax.numpy as jnp

        return jnp.asarray([seed, first], jnp.uint32)  # a raw JAX key
    return (int(seed), int(first))  # PyTorch runs its loop eagerly: Python ints


def fold_in(seed, i):
    """A new seed for step ``i`` (an int, or a scalar tensor in a compiled loop), independent of ``seed``'s other steps."""
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.random.experimental.stateless_fold_in(seed, i)
    if name() == "jax":
        import jax

        return jax.random.fold_in(seed, i)
    return (*seed, int(i))


def stateless_normal(shape, seed):
    """z ~ N(0, I) of ``shape``, float32, decided by ``seed`` alone: the same seed, the same z."""
    if name() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_normal(shape, seed=seed)
    if name() == "jax":
        import jax

        return jax.random.normal(seed, tuple(shape), "float32")
    # eager: mix the tuple of ints into one 32-bit seed for keras.random
    return keras.random.normal(tuple(shape), seed=int(np.random.SeedSequence(list(seed)).generate_state(1)[0]))


def normal(shape, seed, i):
    """``stateless_normal`` with the seed of step ``i``."""
    return stateless_normal(shape, fold_in(seed, i))


def compiled(fn, variables):
    """``fn(*args)`` compiled for JAX (reading ``variables`` as they are at each call), or run eagerly without gradients on PyTorch.

    TensorFlow's loops are ``tf.function``s written in ``reverse``, which
    keeps its measured speed; this is the other two backends' path.
    """
    variables = list(variables)
    if name() == "jax":
        import jax

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)
    if name() == "torch":
        import torch

        def eager(*args):
            with torch.no_grad():
                return fn(*args)

        return eager
    raise ValueError(f"backends.compiled is for jax and torch; on {name()} write a tf.function")


def gradient(fn, x):
    """∇_x Σ fn(x), shaped like x: ``fn`` maps a batch to one value per image."""
    if name() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(fn(x))
        return tape.gradient(total, x)
    if name() == "jax":
        import jax

        return jax.grad(lambda x: keras.ops.sum(fn(x)))(keras.ops.convert_to_tensor(x, "float32"))
    import torch

    with torch.enable_grad():
        x = keras.ops.convert_to_tensor(x, "float32").detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(keras.ops.sum(fn(x)), x)
    return grad
