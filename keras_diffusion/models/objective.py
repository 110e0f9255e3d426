"""What a denoiser's last layer predicts: the noise ε (DDPM) or the clean image x_0.

Every sampler, guidance rule and metric in the package consumes ε̂. A network
trained to predict x̂_0 instead keeps that interface by ending in
``EpsFromX0``, the forward process solved for ε:

    x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε   ⇒   ε̂ = (x_t − √ᾱ_t·x̂_0) / √(1−ᾱ_t)

and ``DiffusionModel`` trains it on ‖x_0 − x̂_0‖² instead of ‖ε − ε̂‖².
The two losses are the same quantity weighted differently over t:
‖x_0 − x̂_0‖² = (1−ᾱ_t)/ᾱ_t · ‖ε − ε̂‖², so the x_0 objective puts its weight
on the noisiest steps, where predicting ε is nearly trivial (ε̂ ≈ x_t) but
the image has to be invented.

Reference:
    Ho et al. 2020, https://arxiv.org/abs/2006.11239 (sec. 3.2, the choice of
    parameterisation); Salimans & Ho 2022, https://arxiv.org/abs/2202.00512 (sec. 4)
"""

import keras
import numpy as np
from keras import ops

X0_LAYER = "eps_from_x0"


@keras.saving.register_keras_serializable(package="keras_diffusion")
class EpsFromX0(keras.layers.Layer):
    """[x_t, t, x̂_0] → ε̂ = (x_t − √ᾱ_t·x̂_0) / √(1−ᾱ_t), computed in float32.

    Float32 even under a mixed policy: at t = 0, √(1−ᾱ_t) is about 0.02, and
    the subtraction would lose the difference in bfloat16's 8 bits.

    Args:
        alpha_bars: ᾱ_t for t = 0..T−1 (the schedule's ``alpha_bars``).
    """

    def __init__(self, alpha_bars, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.alpha_bars = [float(a) for a in alpha_bars]  # a list: what get_config saves
        self._table = np.asarray(self.alpha_bars, "float32")  # (T,)

    def call(self, inputs):
        x_t, t, x0_pred = inputs
        alpha_bar = ops.take(ops.convert_to_tensor(self._table), ops.cast(t, "int32"))
        alpha_bar = ops.reshape(alpha_bar, (-1,) + (1,) * (len(x_t.shape) - 1))  # (B, 1, 1, 1)
        return (x_t - ops.sqrt(alpha_bar) * x0_pred) / ops.sqrt(1.0 - alpha_bar)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)  # always float32
        return {**config, "alpha_bars": self.alpha_bars}


def x0_parameterized(network, schedule):
    """Read ``network``'s output as x̂_0 and return a denoiser with the same inputs that outputs ε̂.

    The weights are ``network``'s own: nothing is copied or added.
    """
    x_t, t = network.inputs[0], network.inputs[1]
    eps_pred = EpsFromX0(schedule.alpha_bars, name=X0_LAYER)([x_t, t, network.outputs[0]])
    return keras.Model(network.inputs, eps_pred, name=f"{network.name}_x0")


def objective_of(denoiser):
    """"x0" for a denoiser made by ``x0_parameterized``, else "eps"."""
    names = {layer.name for layer in denoiser.layers}
    return "x0" if X0_LAYER in names else "eps"
