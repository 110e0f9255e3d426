"""What a denoiser's last layer predicts: the noise ε (DDPM), the clean image x_0, or the velocity v.

Every sampler, guidance rule and metric in the package consumes ε̂. A network
trained to predict x̂_0 or v̂ instead keeps that interface by ending in a
layer that solves the forward process x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε for ε:

    x_0:  ε̂ = (x_t − √ᾱ_t·x̂_0) / √(1−ᾱ_t)                       (``EpsFromX0``)
    v:    v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0   ⇒   ε̂ = √(1−ᾱ_t)·x_t + √ᾱ_t·v̂   (``EpsFromV``)

and ``DiffusionModel`` trains it on ‖x_0 − x̂_0‖² or ‖v − v̂‖² instead of
‖ε − ε̂‖². The three losses are one quantity weighted differently over t;
with SNR_t = ᾱ_t/(1−ᾱ_t):

    ‖ε − ε̂‖² = SNR_t · ‖x_0 − x̂_0‖²,   ‖v − v̂‖² = (1 + SNR_t) · ‖x_0 − x̂_0‖²

so the x_0 objective puts its weight on the noisiest steps, where predicting
ε is nearly trivial (ε̂ ≈ x_t) but the image has to be invented, ε on the
cleanest, and v in between (it never weighs a step less than x_0 does).
Min-SNR-γ weighting (``loss_weights``) caps the effective x_0 weight at γ
instead: min(SNR_t, γ)·‖x_0 − x̂_0‖², expressed in each objective's own loss.

Reference:
    Ho et al. 2020, https://arxiv.org/abs/2006.11239 (sec. 3.2, the choice of
    parameterisation); Salimans & Ho 2022, https://arxiv.org/abs/2202.00512
    (sec. 4 and appendix D, v); Hang et al. 2023, https://arxiv.org/abs/2303.09556
    (min-SNR-γ, eq. 9 and sec. 3.4)
"""

import keras
import numpy as np
from keras import ops

X0_LAYER = "eps_from_x0"
V_LAYER = "eps_from_v"


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


@keras.saving.register_keras_serializable(package="keras_diffusion")
class EpsFromV(EpsFromX0):
    """[x_t, t, v̂] → ε̂ = √(1−ᾱ_t)·x_t + √ᾱ_t·v̂, computed in float32 (Salimans & Ho 2022, appendix D).

    No division: the conversion is exact at every t, the last included.
    """

    def call(self, inputs):
        x_t, t, v_pred = inputs
        alpha_bar = ops.take(ops.convert_to_tensor(self._table), ops.cast(t, "int32"))
        alpha_bar = ops.reshape(alpha_bar, (-1,) + (1,) * (len(x_t.shape) - 1))  # (B, 1, 1, 1)
        return ops.sqrt(1.0 - alpha_bar) * x_t + ops.sqrt(alpha_bar) * v_pred


_LAYERS = {"x0": (EpsFromX0, X0_LAYER), "v": (EpsFromV, V_LAYER)}


def parameterized(network, schedule, objective):
    """Read ``network``'s output as ``objective`` ("eps", "x0" or "v") and return a denoiser with the same
    inputs that outputs ε̂; "eps" returns the network itself. The weights are ``network``'s own."""
    if objective == "eps":
        return network
    if objective not in _LAYERS:
        raise ValueError(f"unknown objective {objective!r}; choose one of eps, {', '.join(_LAYERS)}")
    layer, name = _LAYERS[objective]
    x_t, t = network.inputs[0], network.inputs[1]
    eps_pred = layer(schedule.alpha_bars, name=name)([x_t, t, network.outputs[0]])
    return keras.Model(network.inputs, eps_pred, name=f"{network.name}_{objective}")


def x0_parameterized(network, schedule):
    """Read ``network``'s output as x̂_0 and return a denoiser with the same inputs that outputs ε̂.

    The weights are ``network``'s own: nothing is copied or added.
    """
    return parameterized(network, schedule, "x0")


def objective_of(denoiser):
    """"x0" or "v" for a denoiser made by ``parameterized``, else "eps"."""
    names = {layer.name for layer in denoiser.layers}
    return next((objective for objective, (_, name) in _LAYERS.items() if name in names), "eps")


def loss_weights(alpha_bar, objective, weighting="uniform", gamma=5.0):
    """The per-image weight of ``objective``'s squared error at noise level ᾱ_t (an array or tensor of ᾱ_t).

    ``uniform``: 1 (DDPM's simple loss, and its x_0 and v analogues).
    ``min_snr``: min(SNR_t, γ) / SNR_t for ε, min(SNR_t, γ) for x_0, min(SNR_t, γ) / (SNR_t + 1) for v:
    in every objective the same effective weight min(SNR_t, γ) on ‖x_0 − x̂_0‖²  (Hang et al. 2023, sec. 3.4).
    """
    if weighting == "uniform":
        return ops.ones_like(alpha_bar)
    if weighting != "min_snr":
        raise ValueError(f"unknown loss weighting {weighting!r}; choose one of uniform, min_snr")
    snr = alpha_bar / (1.0 - alpha_bar)
    capped = ops.minimum(snr, gamma)
    return {"eps": capped / snr, "x0": capped, "v": capped / (snr + 1.0)}[objective]
