"""MLP denoisers: the classic demo (``mlp_seed``) and its fixed version."""

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="keras_diffusion")
class TimeScale(layers.Layer):
    """t/T as a (B, 1) float: the classic demo's whole time signal.

    Args:
        timesteps: T, the number of diffusion steps.
    """

    def __init__(self, timesteps, **kwargs):
        super().__init__(**kwargs)
        self.timesteps = timesteps

    def call(self, t):
        return ops.reshape(ops.cast(t, "float32") / self.timesteps, (-1, 1))  # (B, 1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "timesteps": self.timesteps}


def mlp_seed(image_shape=(28, 28, 1), timesteps=200, hidden=512):
    """The classic demo, exactly: flatten ⊕ t/T → Dense 512 relu → Dense 512 relu → Dense 784.

    It ignores image structure and sees time only as one number in [0, 1):
    the tutorials fix both.
    """
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    h = layers.Concatenate()([layers.Flatten()(x_t), TimeScale(timesteps)(t)])  # (B, 785)
    h = layers.Dense(hidden, activation="relu")(h)
    h = layers.Dense(hidden, activation="relu")(h)
    h = layers.Dense(math.prod(image_shape))(h)  # (B, 784)
    eps_pred = layers.Reshape(image_shape)(h)  # (B, 28, 28, 1)
    return keras.Model([x_t, t], eps_pred, name="mlp_seed")
