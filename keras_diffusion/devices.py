"""Where training runs and in what precision: tf.distribute strategies and mixed float16.

``--strategy mirrored`` copies the model to every local GPU; ``--strategy
multiworker`` to every GPU of every machine listed in ``TF_CONFIG``. Either
way ``--batch-size`` is the global batch: each step splits it across the
replicas and sums their gradients. ``--mixed-precision`` computes the
denoiser in float16 on GPUs; the loss and the schedule stay float32.
"""

import contextlib
import json
import os
import warnings

import keras
import tensorflow as tf

from keras_diffusion.names import STRATEGIES  # import-free, for fast --help


class DeviceWarning(UserWarning):
    """A setting that works here but is not what it is meant for (float16 on a CPU)."""


class StrategyError(ValueError):
    """A strategy that cannot start: reported in one line."""


def make_strategy(name):
    """The ``tf.distribute.Strategy`` called ``name``; ``default`` is TensorFlow's one-device strategy.

    Create it before any other TensorFlow op runs: MultiWorkerMirroredStrategy
    configures the runtime's collective ops and refuses once it has started.
    """
    if name not in STRATEGIES:
        raise StrategyError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # every local GPU; without one, every logical CPU (one, unless split as the tests do)
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    _check_tf_config(os.environ.get("TF_CONFIG"))
    return tf.distribute.MultiWorkerMirroredStrategy()


def _check_tf_config(text):
    """Refuse a missing or malformed TF_CONFIG before TensorFlow tries to use it."""
    example = 'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\''
    if not text:
        raise StrategyError(f"--strategy multiworker needs the TF_CONFIG environment variable on every machine, e.g. {example}")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise StrategyError(f"TF_CONFIG is not valid JSON ({error.msg}): {text}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict) or not isinstance(config.get("task"), dict):
        raise StrategyError(f"TF_CONFIG needs a \"cluster\" and a \"task\" object, e.g. {example}; got {text}")


def is_chief(strategy):
    """True on the one worker that writes the run directory (always true on one machine)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    # without a "chief" task, worker 0 is the chief (TensorFlow's convention)
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def workers(strategy):
    """How many machines (chief and workers in TF_CONFIG) train together; 1 without a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 1
    jobs = resolver.cluster_spec().as_dict()
    return max(1, sum(len(jobs.get(job, ())) for job in ("chief", "worker")))


@contextlib.contextmanager
def precision(mixed):
    """Build the layers made inside in mixed_float16 when ``mixed``; the global policy is restored after.

    Layers keep the policy they were built with, so training and sampling stay
    mixed while later code (and later tests) get float32 again. Variables are
    float32 either way, so a mixed run's weights load into a float32 model.
    """
    previous = keras.mixed_precision.global_policy()
    if mixed:
        if not tf.config.list_physical_devices("GPU"):
            warnings.warn("--mixed-precision on a CPU: float16 is emulated there and slower than float32", DeviceWarning, stacklevel=3)
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)
