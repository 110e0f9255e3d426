"""Where training runs and in what precision: tf.distribute strategies and mixed bfloat16 or float16.

``--strategy mirrored`` copies the model to every local GPU; ``--strategy
multiworker`` to every GPU of every machine listed in ``TF_CONFIG``. Either
way ``--batch-size`` is the global batch: each step splits it across the
replicas and sums their gradients. ``--precision`` picks the denoiser's
compute dtype (mixed_bfloat16 by default where it pays, see
``auto_precision``; ``--mixed-precision`` is float16, for GPUs); the loss,
the schedule and the sampler's update stay float32.
"""

import contextlib
import json
import os
import warnings

import keras

from keras_diffusion import backends
from keras_diffusion.cpu import native_bf16
from keras_diffusion.names import PRECISIONS, STRATEGIES  # import-free, for fast --help


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
    if name != "default" and backends.name() != "tensorflow":
        raise StrategyError(f"--strategy {name} is TensorFlow's (tf.distribute); Keras runs on {backends.name()}: unset KERAS_BACKEND, or drop --strategy")
    import tensorflow as tf

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


def bf16_cpu(strategy="default", gpu=None):
    """True for a run on a CPU that computes bfloat16 in hardware (AVX-512 BF16 or AMX), with no GPU and no strategy.

    There, measured one variant a process on an AMD EPYC with AVX-512 BF16
    (TensorFlow 2.21; ``benchmarks/levers.py``, the README's levers), bf16
    without XLA trained fastest: mlp_seed at 18,877 images/s against 14,160
    in float32, the default U-Net at 275 against 257 (216 and 235 with XLA),
    the U-Net at the peer's widths at 109 against 93 (79 in bf16 with XLA). On
    AVX2-only CPUs bf16 is emulated (11 against 78 images/s on one), with a
    GPU the dtype that pays depends on the GPU (``--precision``), and a
    tf.distribute strategy keeps the model's settings.
    """
    if strategy != "default" or not native_bf16() or backends.name() != "tensorflow":
        return False  # measured on TensorFlow only: the other backends stay float32 until measured
    gpu = backends.gpu_present() if gpu is None else gpu
    return not gpu


def auto_precision(strategy="default", gpu=None):
    """The policy a run computes in when it did not choose one: mixed_bfloat16 on a ``bf16_cpu``, else float32."""
    return "mixed_bfloat16" if bf16_cpu(strategy, gpu) else "float32"


def training_precision(config):
    """The dtype policy of a run: ``config.precision`` (filled by ``TrainConfig.resolved``), or mixed_float16 for ``--mixed-precision``."""
    return config.precision or ("mixed_float16" if config.mixed_precision else "float32")


@contextlib.contextmanager
def precision(policy):
    """Build the layers made inside in ``policy`` (a PRECISIONS name; True: mixed_float16); restored after.

    Layers keep the policy they were built with, so training and sampling stay
    mixed while later code (and later tests) get float32 again. Variables are
    float32 either way, so a mixed run's weights load into a float32 model.
    """
    policy = {True: "mixed_float16", False: "float32", None: "float32"}.get(policy, policy)
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {policy!r}")
    previous = keras.mixed_precision.global_policy()
    if policy != "float32" and not backends.gpu_present():
        if policy == "mixed_float16":
            warnings.warn("--mixed-precision on a CPU: float16 is emulated there and slower than float32", DeviceWarning, stacklevel=3)
        elif not native_bf16():
            warnings.warn("mixed_bfloat16 on a CPU without AVX-512 BF16 or AMX: bf16 is emulated there and slower than float32", DeviceWarning, stacklevel=3)
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def with_precision(model, policy):
    """A copy of a functional ``model`` that computes in ``policy``, sharing nothing, with the same weights.

    Variables are float32 under every policy, so the copy's weights are the
    original's exactly; only the layers' compute dtype changes. ``model``
    itself is returned when it already computes in ``policy``.
    """
    if model.dtype_policy.name == policy:
        return model

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config:  # layers; the graph's plain operations (x + y) have no dtype
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    with precision(policy):  # the model itself takes the global policy, as one built in it would
        copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
