"""DiffusionModel: a denoiser and its schedule, trained with ``fit`` on DDPM's loss."""

import keras
import tensorflow as tf
from keras import ops

from keras_diffusion.forward import q_sample
from keras_diffusion.reverse import sample


class DiffusionModel(keras.Model):
    """Wraps a denoiser ε_θ([x_t, t]) and a ``NoiseSchedule`` for training and sampling.

    ``fit`` on batches of clean images x_0 (optionally ``(x_0, labels)``)
    minimises the simple DDPM loss; ``generate`` runs the reverse chain.

    Args:
        denoiser: a Keras model called as ``denoiser([x_t, t])``.
        schedule: the ``NoiseSchedule`` used to noise and to sample.
        seed: seed of the t and ε draws during training.

    Reference:
        Ho et al. 2020, https://arxiv.org/abs/2006.11239
    """

    def __init__(self, denoiser, schedule, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.denoiser = denoiser
        self.schedule = schedule
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # all weights live in the (already built) denoiser; mark the wrapper built so it can be saved
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        """ε̂ = denoiser([x_t, t])."""
        return self.denoiser(inputs, training=training)

    def diffusion_loss(self, x0, training=False):
        """DDPM Algorithm 1: t ~ U{0..T−1}, ε ~ N(0, I), loss = ‖ε − ε_θ(x_t, t)‖²  (DDPM eq. 14)."""
        batch = ops.shape(x0)[0]
        t = keras.random.randint((batch,), 0, self.schedule.timesteps, seed=self.seed_generator)  # (B,)
        eps = keras.random.normal(ops.shape(x0), seed=self.seed_generator)  # (B, 28, 28, 1)
        x_t = q_sample(self.schedule, x0, t, eps)  # (B, 28, 28, 1)
        eps_pred = self.denoiser([x_t, t], training=training)  # (B, 28, 28, 1)
        # the loss stays float32 even when the denoiser computes in float16
        return ops.mean(ops.square(eps - ops.cast(eps_pred, "float32")))

    def train_step(self, data):
        x0 = data[0] if isinstance(data, tuple) else data
        weights = self.denoiser.trainable_weights
        with tf.GradientTape() as tape:
            loss = self.diffusion_loss(x0, training=True)
            scaled_loss = self.optimizer.scale_loss(loss)  # loss scaling under mixed precision
        self.optimizer.apply(tape.gradient(scaled_loss, weights), weights)
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        x0 = data[0] if isinstance(data, tuple) else data
        self.loss_tracker.update_state(self.diffusion_loss(x0, training=False))
        return {"loss": self.loss_tracker.result()}

    def generate(self, n, **kwargs):
        """Draw n images with ``reverse.sample``; kwargs (sampler, steps, seed, ...) go to it."""
        return sample(self.denoiser, self.schedule, n, **kwargs)
