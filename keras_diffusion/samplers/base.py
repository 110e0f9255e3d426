"""What every step rule shares: the move it is asked to make, its settings, and the tables it reads.

The loop (``reverse._compiled_loop``) calls ``step(eps, x, move, z, history)``
once per down move of its plan; ``eps(x, t)`` is the network's ε̂ there,
guided as the caller asked. Samplers receive ε̂ and convert it: x̂_0 for the
data-prediction solvers, d = (x̃ − x̂_0)/σ for Heun.
"""

import numpy as np
from keras import ops

from keras_diffusion.reverse import predict_x0
from keras_diffusion.samplers.registry import Move  # noqa: F401  (the rules' argument, defined where the loop can import it)


class StepRule:
    """A sampler's step, built once per compiled loop with the settings that decide its graph."""

    def __init__(self, schedule, steps, clip=None, eta=0.0, variance="beta", recompute_eps=True, churn=0.0):
        self.schedule, self.steps, self.clip = schedule, int(steps), clip
        self.eta, self.variance, self.recompute_eps, self.churn = float(eta), variance, bool(recompute_eps), float(churn)

    @property
    def key(self):
        """The settings that decide the graph (the schedule and the plan are in the loop's key)."""
        return (type(self).__name__, self.steps, self.clip, self.eta, self.variance, self.recompute_eps, self.churn)

    @property
    def noisy(self):
        """Whether ``step`` reads its fresh noise z; when no rule and no move does, the loop draws none."""
        return True

    def start(self, x):
        """The history the step carries from one move to the next: a tuple of tensors shaped like x."""
        return ()

    def step(self, eps, x, move, z, history):
        """(the state at move.t_prev, the new history); z ~ N(0, I) shaped like x, fresh each move."""
        raise NotImplementedError

    def denoised(self, x, t, eps_pred):
        """x̂_0 = (x_t − sqrt(1−ᾱ_t)·ε̂)/sqrt(ᾱ_t), clipped to ``clip`` as thresholding (Lu et al. 2022, sec. 3.3)."""
        x0 = predict_x0(self.schedule, x, t, eps_pred)
        return x0 if self.clip is None else ops.clip(x0, self.clip[0], self.clip[1])


def at_data_too(schedule, values, at_data):
    """A schedule array extended with its value at the data (t = −1): index it with t + 1."""
    return ops.convert_to_tensor(np.append(at_data, values).astype("float32"))


def lookup(table, t):
    """table[t + 1] for a scalar t in [−1, T−1], as a scalar that broadcasts over the batch."""
    return ops.take(table, ops.cast(t, "int32") + 1)
