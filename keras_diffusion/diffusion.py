"""DiffusionModel: a denoiser and its schedule, trained with ``fit`` on DDPM's loss."""

import keras
import tensorflow as tf
from keras import ops

from keras_diffusion.devices import workers
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

    def noise_draws(self, x0):
        """t ~ U{0..T−1} and ε ~ N(0, I) for a batch of x_0, as ``keras.random`` draws them.

        Under a tf.distribute strategy every replica folds its id into the seed:
        the seed generator is one mirrored variable, so without that all
        replicas would draw the same t and ε for their slices of the batch.
        """
        t = tf.random.stateless_uniform(tf.shape(x0)[:1], self._replica_seed(), 0, self.schedule.timesteps, dtype="int32")  # (B,)
        eps = tf.random.stateless_normal(tf.shape(x0), self._replica_seed(), dtype=x0.dtype)  # (B, 28, 28, 1)
        return t, eps

    def _replica_seed(self):
        seed = self.seed_generator.next()  # (2,) int64, what keras.random.normal(seed=generator) would use
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(seed, replica.replica_id_in_sync_group)
        return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), "int32")  # as keras.random casts it

    def denoising_loss(self, x0, t, eps, training=False):
        """The simple DDPM loss for given t and ε: mean ‖ε − ε_θ(√ᾱ_t·x_0 + √(1−ᾱ_t)·ε, t)‖²  (DDPM eq. 14)."""
        x_t = q_sample(self.schedule, x0, t, eps)  # (B, 28, 28, 1)
        eps_pred = self.denoiser([x_t, t], training=training)  # (B, 28, 28, 1)
        # the loss stays float32 even when the denoiser computes in float16
        return ops.mean(ops.square(eps - ops.cast(eps_pred, "float32")))

    def diffusion_loss(self, x0, training=False):
        """DDPM Algorithm 1: t ~ U{0..T−1}, ε ~ N(0, I), loss = ‖ε − ε_θ(x_t, t)‖²  (DDPM eq. 14)."""
        t, eps = self.noise_draws(x0)
        return self.denoising_loss(x0, t, eps, training=training)

    def descent_step(self, x0, t, eps):
        """One optimizer step on this replica's batch with the given t and ε; returns its mean loss.

        Keras' optimizer sums the gradients of all replicas, so each replica
        divides its mean loss by their number: the sum is then the gradient
        of the mean over the global batch, the same as on one device.
        """
        weights = self.denoiser.trainable_weights
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self.denoising_loss(x0, t, eps, training=True)
            # loss scaling under mixed precision (LossScaleOptimizer); unchanged otherwise
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        self.optimizer.apply(tape.gradient(scaled_loss, weights), weights)
        return loss

    def train_step(self, data):
        x0 = data[0] if isinstance(data, tuple) else data
        t, eps = self.noise_draws(x0)
        loss = self.descent_step(x0, t, eps)
        # weighted by the batch: summed over replicas at the end of an epoch, this is the global mean
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(x0)[0])
        return self._logs()

    def _logs(self):
        logs = {"loss": self.loss_tracker.result()}
        if workers(self.distribute_strategy) > 1:
            # Keras 3 averages logs across machines along axis 0, which a scalar lacks (tensorflow/tensorflow#72388)
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def test_step(self, data):
        x0 = data[0] if isinstance(data, tuple) else data
        self.loss_tracker.update_state(self.diffusion_loss(x0, training=False), sample_weight=tf.shape(x0)[0])
        return self._logs()

    def generate(self, n, **kwargs):
        """Draw n images with ``reverse.sample``; kwargs (sampler, steps, seed, ...) go to it."""
        return sample(self.denoiser, self.schedule, n, **kwargs)
