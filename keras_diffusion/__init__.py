"""keras_diffusion: denoising diffusion models on Fashion-MNIST, from the classic MLP demo to a U-Net."""

import importlib
import os

__version__ = "0.1.0"

# TensorFlow prints CUDA and CPU-feature notices at import, some of them while its libraries
# load, before any setting is read; in Jupyter they fill the first cell's output. Importing the
# package hides them as the command lines do (TensorFlow is not imported here: cli only arranges
# for its first import to be quiet). Set TF_CPP_MIN_LOG_LEVEL yourself to see them again.
if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
    from keras_diffusion import cli as _cli

    _cli.tensorflow_logs(verbose=False)

# The names below are imported on first use (PEP 562), not here: they bring in TensorFlow,
# which takes seconds, and `python -m keras_diffusion.train --help` should answer at once.
# ``sample`` stays in keras_diffusion.reverse: the name keras_diffusion.sample is the
# command-line module (python -m keras_diffusion.sample), and importing it would
# silently replace a function of the same name here.
_LAZY = {
    "NoiseSchedule": "schedule",
    "q_sample": "forward",
    "q_step": "forward",
    "forward_snapshots": "forward",
    "ddpm_step": "reverse",
    "ddim_step": "reverse",
    "build_model": "models",
    "DiffusionModel": "diffusion",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_diffusion' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_diffusion.{_LAZY[name]}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
