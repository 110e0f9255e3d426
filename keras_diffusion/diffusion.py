"""DiffusionModel: a denoiser and its schedule, trained with ``fit`` on DDPM's loss."""

import keras
import tensorflow as tf
from keras import ops

from keras_diffusion.devices import workers
from keras_diffusion.forward import extract, q_sample
from keras_diffusion.models.embeddings import num_classes_of
from keras_diffusion.models.objective import loss_weights, objective_of
from keras_diffusion.models.prompt import prompt_tokenizer_of
from keras_diffusion.names import LOSS_WEIGHTS
from keras_diffusion.reverse import predict_x0, sample


class DiffusionModel(keras.Model):
    """Wraps a denoiser ε_θ([x_t, t]) and a ``NoiseSchedule`` for training and sampling.

    ``fit`` on batches of clean images x_0 minimises the simple DDPM loss; a
    class-conditional denoiser ε_θ([x_t, t, y]) trains on ``(x_0, labels)``
    batches instead, each label replaced by the null label with probability
    ``cond_drop`` so that the same network also learns ε_θ(x_t, ∅), which
    classifier-free guidance needs. ``generate`` runs the reverse chain.

    A denoiser built with ``objective="x0"`` or ``"v"`` (``models.objective``)
    is trained on ‖x_0 − x̂_0‖² or ‖v − v̂‖² instead: the same network, the same
    ε̂ for every sampler, another weighting of the noise levels; ``loss_weight``
    ("min_snr") reweighs them once more, per image.

    Args:
        denoiser: a Keras model called as ``denoiser([x_t, t])`` or ``denoiser([x_t, t, y])``.
        schedule: the ``NoiseSchedule`` used to noise and to sample.
        seed: seed of the t, ε and label-dropout draws during training.
        cond_drop: probability of the null label in training (conditional only).
        loss_weight: "uniform" (DDPM's simple loss) or "min_snr" (Hang et al. 2023).
        min_snr_gamma: γ of the min-SNR weighting.

    Reference:
        Ho et al. 2020, https://arxiv.org/abs/2006.11239;
        Ho & Salimans 2022, https://arxiv.org/abs/2207.12598 (Algorithm 1)
    """

    def __init__(self, denoiser, schedule, seed=None, cond_drop=0.1, loss_weight="uniform", min_snr_gamma=5.0, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= cond_drop < 1:
            raise ValueError(f"cond_drop must be in [0, 1), got {cond_drop}")
        if loss_weight not in LOSS_WEIGHTS:
            raise ValueError(f"unknown loss_weight {loss_weight!r}; choose one of {', '.join(LOSS_WEIGHTS)}")
        self.loss_weight, self.min_snr_gamma = loss_weight, float(min_snr_gamma)
        self.denoiser = denoiser
        self.num_classes = num_classes_of(denoiser)
        self.tokenizer = prompt_tokenizer_of(denoiser)  # a text-conditioned denoiser's, else None
        self.cond_drop = float(cond_drop)
        self.schedule = schedule
        self.objective = objective_of(denoiser)  # "x0" or "v" when the denoiser ends in EpsFromX0 or EpsFromV
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # all weights live in the (already built) denoiser; mark the wrapper built so it can be saved
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, inputs, training=False):
        """ε̂ = denoiser([x_t, t]) or denoiser([x_t, t, y])."""
        return self.denoiser(inputs, training=training)

    def unpack(self, data):
        """(x_0, labels or None) from a batch; a missing or unexpected label is a one-line error.

        Keras' ``fit`` would otherwise hand labels to an unconditional model,
        which would silently ignore them, and a conditional one without them
        cannot run at all.
        """
        if isinstance(data, tuple):
            x0, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            x0, labels = data, None
        conditional = self.num_classes is not None or self.tokenizer is not None
        if not conditional and labels is not None:
            raise ValueError("this denoiser is unconditional but the batches carry labels: build it with num_classes (train --conditional) or drop the labels")
        if self.tokenizer is not None and labels is None:
            raise ValueError("this denoiser is text-conditioned: train it on (images, tokens) batches (text.caption_dataset)")
        if self.num_classes is not None and labels is None:
            raise ValueError("this denoiser is class-conditional: train it on (images, labels) batches (make_dataset(..., labels=labels))")
        return x0, labels

    def drop_labels(self, labels):
        """Replace each label by the null label with probability cond_drop (Ho & Salimans 2022, Algorithm 1).

        For a text-conditioned denoiser the labels are prompt tokens (B, L), and
        a dropped prompt becomes the null prompt: all padding.
        """
        labels = tf.cast(labels, "int32")
        drop = tf.random.stateless_uniform(tf.shape(labels)[:1], self._replica_seed()) < self.cond_drop  # (B,)
        if self.tokenizer is not None:
            return tf.where(drop[:, None], tf.zeros_like(labels), labels)  # (B, L)
        return tf.where(drop, tf.fill(tf.shape(labels), self.num_classes), labels)

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

    def denoising_loss(self, x0, t, eps, training=False, labels=None, target=None):
        """The simple DDPM loss for given t and ε: mean ‖ε − ε_θ(√ᾱ_t·x_0 + √(1−ᾱ_t)·ε, t[, y])‖²  (DDPM eq. 14).

        For an x_0-predicting denoiser, mean ‖x_0 − x̂_0‖² with x̂_0 recovered
        from its ε̂ (``reverse.predict_x0`` undoes ``EpsFromX0`` exactly; at
        the last t, where √ᾱ_t = 2.5e-4 for the cosine schedule, float32
        rounding moves x̂_0 by about 1e-3, far below the loss there); for a
        v-predicting one mean ‖v − v̂‖², v = √ᾱ_t·ε − √(1−ᾱ_t)·x_0 and
        v̂ = √ᾱ_t·ε̂ − √(1−ᾱ_t)·x̂_0 (which undoes ``EpsFromV``). Each image's
        error is weighted by ``models.objective.loss_weights``. ``target``
        ("eps", "x0" or "v") asks for one of the three whatever the denoiser
        was trained on, uniformly weighted: comparisons across objectives use "eps".
        """
        x_t = q_sample(self.schedule, x0, t, eps)  # (B, 28, 28, 1)
        inputs = [x_t, t] if labels is None else [x_t, t, tf.cast(labels, "int32")]
        # the loss stays float32 even when the denoiser computes in float16
        eps_pred = ops.cast(self.denoiser(inputs, training=training), "float32")  # (B, 28, 28, 1)
        objective = target or self.objective
        if objective == "eps":
            error = eps - eps_pred
        else:
            x0_pred = predict_x0(self.schedule, x_t, t, eps_pred)
            if objective == "x0":
                error = x0 - x0_pred
            else:
                root_a, root_1ma = (extract(self.schedule, name, t, 4) for name in ("sqrt_alpha_bars", "sqrt_one_minus_alpha_bars"))
                error = (root_a * eps - root_1ma * x0) - (root_a * eps_pred - root_1ma * x0_pred)
        per_image = ops.mean(ops.square(error), axis=tuple(range(1, len(error.shape))))  # (B,)
        if target is not None or self.loss_weight == "uniform":
            return ops.mean(per_image)
        alpha_bar = extract(self.schedule, "alpha_bars", t, 1)  # (B,)
        return ops.mean(per_image * loss_weights(alpha_bar, objective, self.loss_weight, self.min_snr_gamma))

    def diffusion_loss(self, x0, training=False, labels=None):
        """DDPM Algorithm 1: t ~ U{0..T−1}, ε ~ N(0, I), loss = ‖ε − ε_θ(x_t, t)‖²  (DDPM eq. 14)."""
        t, eps = self.noise_draws(x0)
        return self.denoising_loss(x0, t, eps, training=training, labels=labels)

    def descent_step(self, x0, t, eps, labels=None):
        """One optimizer step on this replica's batch with the given t and ε; returns its mean loss.

        Keras' optimizer sums the gradients of all replicas, so each replica
        divides its mean loss by their number: the sum is then the gradient
        of the mean over the global batch, the same as on one device.
        """
        weights = self.denoiser.trainable_weights
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = self.denoising_loss(x0, t, eps, training=True, labels=labels)
            # loss scaling under mixed precision (LossScaleOptimizer); unchanged otherwise
            scaled_loss = self.optimizer.scale_loss(loss / replicas)
        self.optimizer.apply(tape.gradient(scaled_loss, weights), weights)
        return loss

    def train_step(self, data):
        x0, labels = self.unpack(data)
        t, eps = self.noise_draws(x0)
        if labels is not None and self.cond_drop:
            labels = self.drop_labels(labels)
        loss = self.descent_step(x0, t, eps, labels)
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
        """The loss on held-out images: with fresh t and ε, or with the fixed ones of a ``validation_dataset``."""
        if isinstance(data, dict):  # {"x0", "t", "eps"[, "labels"]}: the same draws every epoch
            x0, labels = self.unpack((data["x0"], data["labels"]) if "labels" in data else data["x0"])
            loss = self.denoising_loss(x0, data["t"], data["eps"], training=False, labels=labels)
        else:
            x0, labels = self.unpack(data)
            loss = self.diffusion_loss(x0, training=False, labels=labels)
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(x0)[0])
        return self._logs()

    def generate(self, n=None, prompts=None, **kwargs):
        """Draw n images with ``reverse.sample``; kwargs (sampler, steps, seed, labels, guidance, ...) go to it.

        A text-conditioned model draws one image a prompt: ``generate(prompts=["a dark ankle boot"],
        steps=20, guidance=3, seed=0)``; with ``n`` and one prompt, n images of it.
        """
        if n is None:
            if prompts is None:
                raise ValueError("generate needs n, the number of images (or prompts=, one image each)")
            n = 1 if isinstance(prompts, str) else len(prompts)
        return sample(self.denoiser, self.schedule, n, prompts=prompts, **kwargs)


class NoisyClassifierModel(DiffusionModel):
    """Trains a noise-aware classifier p_φ(y | x_t, t) on x_t = q_sample(x_0, t, ε), for classifier guidance.

    The same t and ε draws as ``DiffusionModel``, but the loss is the
    cross-entropy of the true label, so the classifier learns to read the
    class through every noise level it will meet while sampling.

    Reference:
        Dhariwal & Nichol 2021, https://arxiv.org/abs/2105.05233 (sec. 4)
    """

    def __init__(self, classifier, schedule, seed=None, **kwargs):
        super().__init__(classifier, schedule, seed=seed, cond_drop=0.0, **kwargs)
        self.num_classes = classifier.outputs[0].shape[-1]
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def denoising_loss(self, x0, t, eps, training=False, labels=None):
        """Cross-entropy −log p_φ(y | x_t, t) averaged over the batch; also tracks the accuracy."""
        x_t = q_sample(self.schedule, x0, t, eps)  # (B, 28, 28, 1)
        logits = ops.cast(self.denoiser([x_t, t], training=training), "float32")  # (B, classes)
        labels = ops.cast(labels, "int32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels), "float32")
        self.accuracy_tracker.update_state(hits, sample_weight=tf.ones_like(hits))
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    def _logs(self):
        logs = super()._logs()
        accuracy = self.accuracy_tracker.result()
        logs["accuracy"] = ops.reshape(accuracy, (1,)) if workers(self.distribute_strategy) > 1 else accuracy
        return logs
