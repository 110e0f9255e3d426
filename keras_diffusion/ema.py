"""An exponential moving average of the weights that warms up, so a short run does not sample its initialisation.

Keras' ``use_ema`` averages with one fixed momentum from the first step. With
0.999, after the 938 steps of 2 epochs at batch 128 a share 0.999^938 ≈ 0.39
of the average is still the weights of the first step, that is nearly the random
initialisation: short runs sample from a model that is partly untrained (other
libraries' users know it as "the EMA model shows noise"). The warm-up of
diffusers' ``EMAModel`` starts with a small momentum that grows towards the
chosen one,

    momentum_n = 0 at the first step, then min(decay, (1 + n)/(10 + n)),

so the first updates follow the weights and only a long run averages over
thousands of steps. ``WarmupEMAAdam`` is Adam with that momentum: its average
lives where Keras keeps it, in the optimizer's variables, so the run's saved
state (``checkpoint.save_state``), resuming (the step count n is saved too) and
``keras.callbacks.SwapEMAWeights`` work unchanged.
"""

import keras
import numpy as np
from keras import ops


def ema_decay(step, decay, warmup=True):
    """The momentum of the EMA update at optimizer step ``step`` (0 = the first): NumPy, for tests and figures.

    Args:
        step: n, the number of steps taken before this one (an int or an array).
        decay: the momentum the average tends to, e.g. 0.999.
        warmup: False gives Keras' own rule, 0 at the first step and ``decay`` after.
    """
    n = np.asarray(step, np.float64)
    target = np.minimum(decay, (1.0 + n) / (10.0 + n)) if warmup else np.full_like(n, decay)
    return np.where(n == 0, 0.0, target)  # the first update copies the weights, as Keras and diffusers do


@keras.saving.register_keras_serializable(package="keras_diffusion")
class WarmupEMAAdam(keras.optimizers.Adam):
    """Adam whose weight EMA uses the momentum ``ema_decay(n, ema_momentum, warmup)`` at step n.

    Args:
        ema_warmup: warm the momentum up as diffusers does (True), or keep
            Keras' fixed ``ema_momentum`` (False, what plain ``Adam`` does).
        **kwargs: ``keras.optimizers.Adam``'s arguments (``use_ema``, ``ema_momentum``, ...).

    Reference:
        diffusers, ``training_utils.EMAModel.get_decay`` (its warm-up without ``use_ema_warmup``)
    """

    def __init__(self, *args, ema_warmup=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.ema_warmup = bool(ema_warmup)

    def _update_model_variables_moving_average(self, trainable_variables):
        # replaces Keras' update (optimizers/base_optimizer.py), which uses ema_momentum from step 1
        if not self.use_ema:
            return
        n = ops.cast(self.iterations, "float32")  # steps before this one: the counter moves after the update
        momentum = ops.minimum(self.ema_momentum, (1.0 + n) / (10.0 + n)) if self.ema_warmup else self.ema_momentum
        momentum = ops.where(ops.equal(n, 0.0), 0.0, momentum)
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                m = ops.cast(momentum, var.dtype)
                average.assign(m * average + (1.0 - m) * var)

    def get_config(self):
        return {**super().get_config(), "ema_warmup": self.ema_warmup}
