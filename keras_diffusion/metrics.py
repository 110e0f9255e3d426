"""Numbers for sample quality: FID with our own Fashion-MNIST classifier, class coverage, bits/dim.

Inception weights cannot be downloaded everywhere and were never meant for 28x28
greyscale, so FID here uses the penultimate layer (128 features) of a small CNN
trained on Fashion-MNIST, whose weights ship with the package:

    from keras_diffusion.metrics import Evaluator
    ev = Evaluator()                        # loads the classifier and the test images
    ev.score(samples_uint8)                 # {"fid": ..., "floor": ..., "class_entropy": ..., ...}

FID values from this network are not comparable with Inception FIDs in papers;
compare them with each other and with the real-data ``floor`` at the same n.
"""

import importlib.resources
import math
import pathlib
import warnings

import keras
import numpy as np
from keras import ops
import scipy.linalg

from keras_diffusion import backends
from keras_diffusion.data import clip_range, load_images, scale_images
from keras_diffusion.forward import extract, q_sample
from keras_diffusion.reverse import posterior_mean, predict_x0

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FEATURES = 128  # size of the penultimate layer: the space FID is measured in
WEIGHTS = "fashion_mnist_classifier.weights.h5"  # in keras_diffusion/weights/


# --- the feature network -------------------------------------------------------------


def build_classifier():
    """A small CNN for 28x28x1 uint8 images: features (128) -> 10 logits.

    Two conv stages and a global average pool keep it small (158k parameters,
    a 0.7 MB weights file) while reaching 91.8 % test accuracy.
    """
    inputs = keras.Input((28, 28, 1), name="images")  # uint8 values 0..255, any dtype
    x = keras.layers.Rescaling(1 / 255)(inputs)
    for width in (32, 64):
        for _ in range(2):
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(128, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    features = keras.layers.Dense(FEATURES, activation="relu", name="features")(x)
    x = keras.layers.Dropout(0.3)(features)
    logits = keras.layers.Dense(len(CLASSES), name="logits")(x)
    return keras.Model(inputs, logits, name="fashion_mnist_classifier")


def weights_path():
    """The classifier weights shipped in the package (a path that may not exist before training)."""
    return pathlib.Path(str(importlib.resources.files("keras_diffusion") / "weights" / WEIGHTS))


def load_classifier(path=None):
    """The classifier with its trained weights (default: the ones shipped with the package)."""
    path = pathlib.Path(path) if path is not None else weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"classifier weights {path} not found: re-create them with "
            "python -m keras_diffusion.evaluate --train-classifier"
        )
    model = build_classifier()
    model.load_weights(str(path))
    return model


def train_classifier(epochs=6, batch_size=128, seed=0, out=None, data_dir=None, verbose=2):
    """Train the classifier on the Fashion-MNIST training set, reproducibly; write its weights.

    Returns:
        (model, test accuracy)
    """
    import tensorflow as tf  # TensorFlow's for now: tf.data (backends.py)

    keras.utils.set_random_seed(seed)
    images, labels = load_images("fashion_mnist", "train", data_dir)
    test_images, test_labels = load_images("fashion_mnist", "test", data_dir)
    model = build_classifier()
    steps = epochs * math.ceil(len(images) / batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-3, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # random shifts of up to 2 pixels: cheap augmentation that adds about a point of accuracy
    augment = keras.layers.RandomTranslation(2 / 28, 2 / 28, fill_mode="constant", seed=seed)
    ds = tf.data.Dataset.from_tensor_slices((images.astype(np.float32), labels.astype(np.int32)))
    ds = ds.shuffle(len(images), seed=seed).batch(batch_size)
    ds = ds.map(lambda x, y: (augment(x, training=True), y)).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=epochs, verbose=verbose)
    _, accuracy = model.evaluate(test_images.astype(np.float32), test_labels.astype(np.int32), batch_size=512, verbose=0)
    out = pathlib.Path(out) if out is not None else weights_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    save_classifier(model, out)
    return model, float(accuracy)


def save_classifier(model, path):
    """Write only the layers' weights (a compiled model would also store its optimizer: 3x the size)."""
    from keras_diffusion.checkpoint import atomic_write

    clean = build_classifier()
    clean.set_weights(model.get_weights())
    atomic_write(path, lambda tmp: clean.save_weights(str(tmp)))


# --- Fréchet distance ----------------------------------------------------------------


def gaussian_fit(features):
    """Mean (D,) and covariance (D, D) of features (N, D), in float64."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    if len(features) < 2:
        raise ValueError(f"a Gaussian fit needs at least 2 samples, got {len(features)}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, cov1, mu2, cov2, eps=1e-6):
    """Fréchet distance of N(mu1, cov1) and N(mu2, cov2).

        d² = |mu1 - mu2|² + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))

    Guarded: covariances are symmetrised; if the product's square root is not
    finite (singular covariances), eps is added to both diagonals (as
    pytorch-fid does); imaginary parts from round-off are dropped, and large
    ones raise.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: means {mu1.shape}, {mu2.shape}; covariances {cov1.shape}, {cov2.shape}")
    cov1, cov2 = (cov1 + cov1.T) / 2, (cov2 + cov2.T) / 2
    with warnings.catch_warnings():
        # singular covariances are common (ReLU features that are 0 on every image):
        # sqrtm warns but is accurate, and a non-finite result takes the eps path below
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(root).all():
            offset = eps * np.eye(len(cov1))
            root = scipy.linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary part ({np.abs(root.imag).max():.3g}): check the features")
        root = root.real
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(root), 0.0))


def fid_from_features(features1, features2):
    """FID of two feature sets (N1, D) and (N2, D)."""
    return frechet_distance(*gaussian_fit(features1), *gaussian_fit(features2))


# --- class coverage ------------------------------------------------------------------


def class_histogram(labels, classes=len(CLASSES)):
    """Counts of each predicted class (classes,)."""
    return np.bincount(np.asarray(labels, np.int64).reshape(-1), minlength=classes)[:classes]


def class_entropy(histogram):
    """Normalised entropy of a class histogram: 0 = one class only, 1 = all classes equally often."""
    counts = np.asarray(histogram, np.float64)
    if counts.ndim != 1 or len(counts) < 2 or counts.sum() <= 0 or (counts < 0).any():
        raise ValueError("class_entropy needs a histogram of >= 2 non-negative counts with a positive sum")
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(counts)))


# --- the evaluator -------------------------------------------------------------------


def _check_images(images):
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[1:] != (28, 28, 1):
        raise ValueError(f"images must be (N, 28, 28, 1) uint8, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 0..255, got {images.dtype}: convert with keras_diffusion.data.to_uint8")
    return images


class Evaluator:
    """Scores uint8 images against real Fashion-MNIST with the package's classifier.

    Args:
        classifier: a model from ``build_classifier`` (default: the shipped weights).
        data_dir: where the Fashion-MNIST files are (default: found as training does).
        seed: which random subsets make the reference and the floor.
    """

    def __init__(self, classifier=None, data_dir=None, seed=0):
        self.classifier = classifier if classifier is not None else load_classifier()
        self.features_model = keras.Model(self.classifier.input, [self.classifier.get_layer("features").output, self.classifier.output])
        self.data_dir, self.seed = data_dir, seed
        self._real = {}

    def features(self, images, batch_size=500):
        """(penultimate features (N, 128) float64, predicted classes (N,)) of uint8 images."""
        images = _check_images(images)
        feats, labels = [], []
        for i in range(0, len(images), batch_size):
            f, logits = self.features_model(images[i : i + batch_size].astype(np.float32), training=False)
            feats.append(backends.to_numpy(f).astype(np.float64))
            labels.append(np.argmax(backends.to_numpy(logits), axis=-1))
        return np.concatenate(feats), np.concatenate(labels)

    def real_images(self, split, n):
        """A random subset of n real images of one split (the same for the same seed)."""
        if (split, n) not in self._real:
            images, _ = load_images("fashion_mnist", split, self.data_dir)
            if n > len(images):
                raise ValueError(f"n={n} is more than the {len(images)} {split} images")
            index = np.random.default_rng(self.seed).permutation(len(images))[:n]
            self._real[split, n] = images[np.sort(index)]
        return self._real[split, n]

    def floor(self, n):
        """FID between n random training images and n test images: what a perfect model scores at this n."""
        if ("floor", n) not in self._real:
            train, test = self.real_images("train", n), self.real_images("test", n)
            self._real["floor", n] = fid_from_features(self.features(train)[0], self.features(test)[0])
        return self._real["floor", n]

    def score(self, images, requested=None):
        """FID against n test images, the real-data floor at the same n, and class coverage.

        With ``requested`` (the label each image was drawn for, (N,)), also the
        label accuracy: the fraction the classifier assigns to the requested
        label, overall and per label.
        """
        images = _check_images(images)
        n = len(images)
        if n <= FEATURES:
            # fewer images than features: the covariance estimate is mostly noise
            raise ValueError(f"FID needs more images than features ({FEATURES}), got {n}: use n >= {FEATURES + 1} (2000 is usual here)")
        features, labels = self.features(images)
        reference, _ = self.features(self.real_images("test", n))
        histogram = class_histogram(labels)
        return {
            "n": n,
            "fid": fid_from_features(features, reference),
            "floor": self.floor(n),
            "class_entropy": class_entropy(histogram),
            "histogram": [int(c) for c in histogram],
            **({} if requested is None else label_accuracy(labels, requested)),
        }


def label_accuracy(predicted, requested):
    """{"label_accuracy": overall, "label_accuracy_per_class": one per requested label} of predicted vs requested classes."""
    predicted, requested = np.asarray(predicted).reshape(-1), np.asarray(requested).reshape(-1)
    if predicted.shape != requested.shape:
        raise ValueError(f"got {predicted.size} predictions for {requested.size} requested labels")
    hits = predicted == requested
    per_class = {int(k): round(float(np.mean(hits[requested == k])), 4) for k in np.unique(requested)}
    return {"label_accuracy": round(float(np.mean(hits)), 4), "label_accuracy_per_class": per_class}



# --- how much of an image an edit kept ------------------------------------------------


def _check_pairs(images, others, what):
    a, b = _check_images(images), _check_images(others)
    if a.shape != b.shape:
        raise ValueError(f"{what} compares images one to one, got shapes {a.shape} and {b.shape}")
    return a, b


def silhouette_iou(images, others, level=None):
    """|A ∩ B| / |A ∪ B| of two images' garments, pixels >= ``level`` (the captions' GARMENT_LEVEL): float64 (N,).

    Of uint8 images paired one to one: 1 when the two garments cover the same
    pixels, 0 when they do not overlap (and 1 when both are empty).
    """
    from keras_diffusion.text.captions import GARMENT_LEVEL

    a, b = _check_pairs(images, others, "silhouette_iou")
    level = GARMENT_LEVEL if level is None else level
    a, b = a >= level, b >= level
    union = (a | b).sum(axis=(1, 2, 3))
    return np.where(union > 0, (a & b).sum(axis=(1, 2, 3)) / np.maximum(union, 1), 1.0)


def ssim(images, others):
    """The structural similarity (Wang et al. 2004; 11x11 Gaussian window) of uint8 images paired one to one: float64 (N,)."""
    import tensorflow as tf  # its SSIM, on NumPy images (editing is TensorFlow's for now)

    a, b = _check_pairs(images, others, "ssim")
    return tf.image.ssim(tf.constant(a, tf.float32), tf.constant(b, tf.float32), max_val=255.0).numpy().astype(np.float64)

# --- bits per dimension --------------------------------------------------------------


def _normal_kl(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (logvar2 - logvar1 + ops.exp(logvar1 - logvar2) + ops.square(mean1 - mean2) * ops.exp(-logvar2) - 1.0)


def _std_normal_cdf(x):
    return 0.5 * (1.0 + ops.erf(x / math.sqrt(2.0)))


def discretized_gaussian_log_likelihood(x, mean, log_scale, low=-1.0, high=1.0, levels=256):
    """log p(x) per pixel of a Gaussian discretised into ``levels`` bins on [low, high] (DDPM sec. 3.3).

    Each pixel value x (a bin centre) gets the Gaussian mass of its bin; the
    first and last bins reach out to -inf and +inf.
    """
    half = (high - low) / (levels - 1) / 2  # half a bin: 1/255 on [-1, 1]
    inv_std = ops.exp(-log_scale)
    cdf_plus = _std_normal_cdf(inv_std * (x - mean + half))
    cdf_min = _std_normal_cdf(inv_std * (x - mean - half))
    tiny = 1e-12
    log_cdf_plus = ops.log(ops.maximum(cdf_plus, tiny))
    log_one_minus_cdf_min = ops.log(ops.maximum(1.0 - cdf_min, tiny))
    log_delta = ops.log(ops.maximum(cdf_plus - cdf_min, tiny))
    return ops.where(x < low + half, log_cdf_plus, ops.where(x > high - half, log_one_minus_cdf_min, log_delta))


def vb_terms(denoiser, schedule, x0, noise_seed=0, clip=None, data_range=(-1.0, 1.0)):
    """The terms of DDPM's variational bound (eq. 5) for a batch x0, in nats per image.

    L = L_T + sum_{t>1} L_{t-1} + L_0 with (paper's 1-based t; ours is t-1)
      L_T      = KL(q(x_T | x_0) || N(0, I)),
      L_{t-1}  = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),  one x_t drawn per t,
      L_0      = -log p(x_0 | x_1), the discretised Gaussian decoder.
    The model's reverse variance is the posterior variance (DDPM's "fixed small" σ²),
    so each KL of two Gaussians of equal variance is |μ̃ - μ_θ|² / (2σ²).

    Returns:
        (prior (B,), kl (T-1, B), decoder (B,)) as float64 NumPy arrays.
    """
    backends.require_tensorflow("bits/dim (evaluate --bpd)")
    import tensorflow as tf  # a tf.function for now (backends.py)

    x0 = tf.convert_to_tensor(x0, tf.float32)
    batch, ndim = x0.shape[0], len(x0.shape)
    axes = list(range(1, ndim))
    T = schedule.timesteps
    generator = tf.random.Generator.from_seed(noise_seed)

    # L_T in float64: with ᾱ_T near 0 (cosine) float32 round-off would swamp it
    abar = schedule.alpha_bars[-1]
    x0_64 = np.asarray(x0, np.float64)
    prior = 0.5 * (abar * x0_64**2 - abar - np.log1p(-abar)).sum(axis=tuple(axes))

    @tf.function
    def term(t_scalar):
        t = tf.fill([batch], t_scalar)
        x_t = q_sample(schedule, x0, t, generator.normal(x0.shape))
        x0_hat = predict_x0(schedule, x_t, t, tf.cast(denoiser([x_t, t], training=False), tf.float32))
        if clip is not None:
            x0_hat = tf.clip_by_value(x0_hat, clip[0], clip[1])
        mean_model = posterior_mean(schedule, x0_hat, x_t, t)
        logvar = extract(schedule, "posterior_log_variance_clipped", t, ndim)
        # L_0, the decoder: the model's mean with the clipped variance (posterior_variance[1])
        nll = -discretized_gaussian_log_likelihood(x0, mean_model, 0.5 * logvar, *data_range)
        kl = _normal_kl(posterior_mean(schedule, x0, x_t, t), logvar, mean_model, logvar)
        return tf.reduce_sum(tf.where(t_scalar == 0, nll, kl), axes)

    kl = [term(tf.constant(t)) for t in range(1, T)]
    decoder = term(tf.constant(0))
    return prior, np.asarray(kl, np.float64), np.asarray(decoder, np.float64)


def bits_per_dim(denoiser, schedule, images, scaling="minus_one_one", batch_size=250, seed=0, clip=None, progress=None):
    """DDPM's negative log-likelihood bound on uint8 images, in bits per dimension.

    Args:
        images: uint8 (N, 28, 28, 1) real images (the test set, usually).
        scaling: the data range the model was trained on ("minus_one_one" or "zero_one").
        clip: clip x̂_0 into the data range when forming the model's mean (as sampling does).
        progress: called with the number of images done, after each batch.
    Returns:
        dict with bpd (the total) and its parts: prior, kl (the sum over t > 1), decoder.
    """
    images = _check_images(images)
    data_range = clip_range(scaling)
    dims = int(np.prod(images.shape[1:]))
    prior, kl, decoder = [], [], []
    for i, start in enumerate(range(0, len(images), batch_size)):
        x0 = scale_images(images[start : start + batch_size], scaling)
        p, k, d = vb_terms(denoiser, schedule, x0, noise_seed=seed + i, clip=clip, data_range=data_range)
        prior.append(p)
        kl.append(k.sum(axis=0))
        decoder.append(d)
        if progress is not None:
            progress(min(start + batch_size, len(images)))
    to_bits = 1 / (dims * math.log(2))
    parts = {name: float(np.concatenate(v).mean() * to_bits) for name, v in (("prior", prior), ("kl", kl), ("decoder", decoder))}
    if not all(math.isfinite(v) for v in parts.values()):
        warnings.warn("bits/dim is not finite: the model's ε̂ diverges on some images", RuntimeWarning, stacklevel=2)
    return {"bpd": parts["prior"] + parts["kl"] + parts["decoder"], **parts}


# --- during training -----------------------------------------------------------------


class FIDCallback(keras.callbacks.Callback):
    """FID of ``n`` samples every ``every`` epochs, logged as ``fid`` (NaN in the other epochs).

    Put it before ``CSVLogger`` / ``TensorBoard`` so that they write the value.
    When the optimizer keeps an EMA of the weights, the EMA weights (those that
    sampling uses) are swapped in for the scoring and back after it. Sampling
    uses DDIM with ``steps`` steps to keep it cheap; compare its values with
    each other, not with a full DDPM evaluation.
    """

    def __init__(self, schedule, scaling, every=1, n=256, steps=50, clip=None, seed=0, data_dir=None):
        super().__init__()
        if every < 1 or n <= FEATURES:
            raise ValueError(f"FID during training needs every >= 1 and n > {FEATURES}, got every={every}, n={n}")
        self.schedule, self.scaling, self.every, self.n, self.clip, self.seed = schedule, scaling, every, n, clip, seed
        self.steps = min(steps, schedule.timesteps)
        self.data_dir = data_dir
        self.evaluator = None

    def on_epoch_end(self, epoch, logs=None):
        from keras_diffusion.data import to_uint8
        from keras_diffusion.reverse import sample

        if logs is None:
            return
        logs["fid"] = float("nan")
        if (epoch + 1) % self.every and epoch + 1 != self.params.get("epochs"):
            return
        if self.evaluator is None:
            self.evaluator = Evaluator(data_dir=self.data_dir, seed=self.seed)
        # Keras' own swap (the one SwapEMAWeights uses), in place and strategy-aware
        swapper = keras.callbacks.SwapEMAWeights() if getattr(self.model.optimizer, "use_ema", False) else None
        if swapper is not None:
            swapper.set_model(self.model)
            swapper._swap_variables()
        try:
            x = sample(self.model.denoiser, self.schedule, self.n, sampler="ddim", steps=self.steps, seed=self.seed, clip=self.clip)
        finally:
            if swapper is not None:
                swapper._swap_variables()
        logs["fid"] = self.evaluator.score(to_uint8(x, self.scaling))["fid"]
