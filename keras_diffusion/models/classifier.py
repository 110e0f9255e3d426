"""A noise-aware classifier p_φ(y | x_t, t): what classifier guidance differentiates.

A clean-image classifier is useless on x_t: at t near T it sees almost pure
noise. Classifier guidance (Dhariwal & Nichol 2021, sec. 4) needs one that
was trained on noisy images and told the noise level, so it is the U-Net's
down half, with the same residual blocks and time embedding, ending in a
pooled linear layer over the classes.
"""

import keras
from keras import layers

from keras_diffusion.models.embeddings import time_embedding
from keras_diffusion.models.unet import _groups, res_block


def noisy_classifier(image_shape=(28, 28, 1), timesteps=200, widths=(16, 32, 64), groups=8, num_classes=10):
    """Build the classifier, called as ``classifier([x_t, t])`` → logits (B, num_classes).

    Args:
        image_shape: (H, W, C); H and W divisible by 2^(len(widths)−1).
        timesteps: accepted for a uniform interface (the embedding does not need T).
        widths: channels at each resolution (28x28, 14x14, 7x7).
        groups: GroupNormalization groups (reduced to a divisor of each width).
        num_classes: number of classes the logits cover.

    Reference:
        Dhariwal & Nichol 2021, https://arxiv.org/abs/2105.05233 (sec. 4, app. "classifier")
    """
    del timesteps
    widths = tuple(int(w) for w in widths)
    if image_shape[0] % 2 ** (len(widths) - 1) or image_shape[1] % 2 ** (len(widths) - 1):
        raise ValueError(f"image_shape {image_shape} must be divisible by 2^{len(widths) - 1} for widths {widths}")
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    emb = time_embedding(t, widths[0])  # (B, 4·widths[0])
    x = layers.Conv2D(widths[0], 3, padding="same")(x_t)  # (B, 28, 28, w0)
    for level, width in enumerate(widths):
        x = res_block(x, emb, width, groups)
        if level < len(widths) - 1:
            x = layers.Conv2D(width, 3, strides=2, padding="same")(x)  # 28→14→7
    x = layers.Activation("swish")(layers.GroupNormalization(_groups(widths[-1], groups))(x))
    x = layers.GlobalAveragePooling2D()(x)  # (B, w_last)
    # logits in float32 even under mixed precision: the softmax and its gradient need the range
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(x)  # (B, classes)
    return keras.Model([x_t, t], logits, name="noisy_classifier")
