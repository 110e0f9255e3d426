"""A small convolutional autoencoder 28x28x1 → 7x7xC → 28x28x1, the first stage of latent diffusion.

Latent diffusion (Rombach et al. 2022) trains the diffusion model not on
pixels but on the latents z = E(x) of an autoencoder, and decodes its samples
with D. Two downsamplings by 2 (f = 4) turn 28x28x1 = 784 numbers into 7x7xC
(196 for C = 4): every step of the reverse chain then works on 16 times fewer
positions.

The encoder predicts a Gaussian q(z | x) = N(μ, σ²) and training adds a small
KL(q(z | x) ‖ N(0, I)) to the reconstruction loss (the paper's "KL-reg"
first stage): without it nothing ties the latents to a scale, and nearby
latents need not decode to similar images, which a denoiser that is always a
little wrong would pay for.
"""

import keras
from keras import layers, ops

from keras_diffusion.models.unet import _groups


def conv_block(x, width, groups):
    """out = skip(x) + conv(swish(norm(conv(swish(norm(x)))))): the U-Net's residual block without time."""
    h = layers.Conv2D(width, 3, padding="same")(layers.Activation("swish")(layers.GroupNormalization(_groups(x.shape[-1], groups))(x)))
    h = layers.Conv2D(width, 3, padding="same")(layers.Activation("swish")(layers.GroupNormalization(_groups(width, groups))(h)))
    skip = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    return skip + h


def encoder(image_shape=(28, 28, 1), latent_channels=4, widths=(16, 32, 64), groups=8):
    """E: images (B, 28, 28, 1) → [μ, log σ²], each (B, 7, 7, C); a downsampling by 2 before each width after the first."""
    x = keras.Input(image_shape, name="x")
    # plain convolutions at the high resolutions, where a residual block would cost 16 times more than at 7x7
    h = layers.Conv2D(widths[0], 3, padding="same", activation="swish")(x)  # (B, 28, 28, w0)
    for width in widths[1:]:
        h = layers.Conv2D(width, 3, strides=2, padding="same", activation="swish")(h)  # 28→14→7
        h = layers.Conv2D(width, 3, padding="same", activation="swish")(h)
    h = conv_block(h, widths[-1], groups)  # (B, 7, 7, w_last)
    h = layers.Activation("swish")(layers.GroupNormalization(_groups(widths[-1], groups))(h))
    mean = layers.Conv2D(latent_channels, 3, padding="same", name="mean")(h)  # (B, 7, 7, C)
    # σ starts at e^−3 ≈ 0.05, not 1: noise as large as the untrained μ would hide the signal and slow the start
    log_var = layers.Conv2D(latent_channels, 3, padding="same", bias_initializer=keras.initializers.Constant(-6.0), name="log_var")(h)  # (B, 7, 7, C)
    return keras.Model(x, [mean, log_var], name="encoder")


def decoder(latent_shape=(7, 7, 4), channels=1, widths=(16, 32, 64), groups=8):
    """D: latents (B, 7, 7, C) → images (B, 28, 28, 1), the encoder's mirror; the output is linear (clipped later)."""
    z = keras.Input(latent_shape, name="z")
    h = layers.Conv2D(widths[-1], 3, padding="same")(z)  # (B, 7, 7, w_last)
    h = conv_block(h, widths[-1], groups)
    h = layers.Activation("swish")(layers.GroupNormalization(_groups(widths[-1], groups))(h))
    for width in reversed(widths[:-1]):
        h = layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="swish")(h)  # 7→14→28
        h = layers.Conv2D(width, 3, padding="same", activation="swish")(h)
    return keras.Model(z, layers.Conv2D(channels, 3, padding="same")(h), name="decoder")  # (B, 28, 28, 1)


@keras.saving.register_keras_serializable(package="keras_diffusion")
class Autoencoder(keras.Model):
    """E and D trained together on ‖x − D(z)‖² + kl_weight·KL(N(μ, σ²) ‖ N(0, I)), z = μ + σ·ε.

    ``fit`` takes batches of images in the data range. ``call`` (and
    ``encode`` for the latents) uses the mean μ: once trained, the latent of
    an image is one point, not a draw.

    Args:
        image_shape: (H, W, C) of the images; H and W divisible by 2^(len(widths)−1).
        latent_channels: C of the latents.
        widths: channels at each resolution (28x28, 14x14, 7x7 for three).
        kl_weight: weight of the KL term, per latent number against the
            mean squared error per pixel.
        groups: GroupNormalization groups (reduced to a divisor of each width).
        seed: seed of the ε draws in training.

    Reference:
        Rombach et al. 2022, https://arxiv.org/abs/2112.10752 (sec. 3.1, app. G "KL-reg");
        Kingma & Welling 2014, https://arxiv.org/abs/1312.6114 (the KL of two Gaussians, app. B)
    """

    def __init__(self, image_shape=(28, 28, 1), latent_channels=4, widths=(16, 32, 64), kl_weight=1e-4, groups=8, seed=None, **kwargs):
        super().__init__(**kwargs)
        image_shape, widths = tuple(int(v) for v in image_shape), tuple(int(w) for w in widths)
        factor = 2 ** (len(widths) - 1)
        if image_shape[0] % factor or image_shape[1] % factor:
            raise ValueError(f"image_shape {image_shape} must be divisible by 2^{len(widths) - 1} for widths {widths}")
        if latent_channels < 1:
            raise ValueError(f"latent_channels must be >= 1, got {latent_channels}")
        if not kl_weight >= 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        self.image_shape, self.latent_channels, self.widths, self.kl_weight, self.groups, self.seed = (
            image_shape, int(latent_channels), widths, float(kl_weight), int(groups), seed
        )
        self.latent_shape = (image_shape[0] // factor, image_shape[1] // factor, self.latent_channels)
        self.encoder = encoder(image_shape, self.latent_channels, widths, groups)
        self.decoder = decoder(self.latent_shape, image_shape[-1], widths, groups)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "mse", "kl")}
        self.built = True  # every weight lives in the two (built) functional parts

    @property
    def metrics(self):
        return list(self.trackers.values())

    def encode(self, x):
        """(μ, log σ²) of q(z | x), each (B, 7, 7, C); log σ² clamped as the paper's code does, so exp stays finite."""
        mean, log_var = self.encoder(x)
        return mean, ops.clip(log_var, -30.0, 20.0)

    def decode(self, z):
        """D(z): images (B, 28, 28, 1) in the data range (not clipped)."""
        return self.decoder(z)

    def call(self, x, training=False):
        mean, _ = self.encode(x)
        return self.decoder(mean, training=training)

    def losses_of(self, x, training=False):
        """(total, mse, kl) of a batch: z = μ + σ·ε (the reparameterisation trick), KL per latent number."""
        mean, log_var = self.encode(x)
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)  # (B, 7, 7, C)
        z = mean + ops.exp(0.5 * log_var) * eps
        mse = ops.mean(ops.square(x - self.decoder(z, training=training)))
        # KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²)   (Kingma & Welling 2014, app. B)
        kl = ops.mean(0.5 * (ops.square(mean) + ops.exp(log_var) - 1.0 - log_var))
        return mse + self.kl_weight * kl, mse, kl

    def train_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)  # images only: the target is the input
        import tensorflow as tf  # training is TensorFlow's for now (backends.py)

        weights = self.trainable_weights
        with tf.GradientTape() as tape:
            loss, mse, kl = self.losses_of(x, training=True)
        self.optimizer.apply(tape.gradient(loss, weights), weights)
        return self._update(x, loss, mse, kl)

    def test_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._update(x, *self.losses_of(x))

    def _update(self, x, loss, mse, kl):
        for name, value in (("loss", loss), ("mse", mse), ("kl", kl)):
            self.trackers[name].update_state(value, sample_weight=ops.shape(x)[0])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        config = {
            "image_shape": list(self.image_shape),
            "latent_channels": self.latent_channels,
            "widths": list(self.widths),
            "kl_weight": self.kl_weight,
            "groups": self.groups,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
