"""keras_diffusion: denoising diffusion models on Fashion-MNIST, from the classic MLP demo to a U-Net."""

import os

__version__ = "0.1.0"

# TensorFlow prints CUDA and CPU-feature notices at import; they bury our output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_diffusion.schedule import NoiseSchedule  # noqa: E402
from keras_diffusion.forward import q_sample, q_step, forward_snapshots  # noqa: E402
# ``sample`` stays in keras_diffusion.reverse: the name keras_diffusion.sample is the
# command-line module (python -m keras_diffusion.sample), and importing it would
# silently replace a function of the same name here.
from keras_diffusion.reverse import ddpm_step, ddim_step  # noqa: E402
from keras_diffusion.models import build_model  # noqa: E402
from keras_diffusion.diffusion import DiffusionModel  # noqa: E402
