"""A U-Net for 28x28 images: residual blocks with GroupNorm and swish, time in every block.

28x28 → 14x14 → 7x7 and back, with skip connections at every level and
optional self-attention at 7x7, after DDPM's U-Net (Ho et al. 2020, app. B)
scaled down for Fashion-MNIST.
"""

import keras
from keras import layers

from keras_diffusion.models.embeddings import label_embedding
from keras_diffusion.models.embeddings import time_embedding as embed_time
from keras_diffusion.models.mlp import TIME_EMBEDDINGS, TimeScale
from keras_diffusion.models.prompt import prompt_encoder


def _groups(width, groups):
    """GroupNormalization needs groups to divide the channels: use the largest divisor ≤ groups."""
    return max(g for g in range(1, min(groups, width) + 1) if width % g == 0)


def res_block(x, emb, width, groups):
    """h = conv(swish(norm(x))) + Dense(emb); out = skip(x) + conv(swish(norm(h)))."""
    h = layers.Conv2D(width, 3, padding="same")(layers.Activation("swish")(layers.GroupNormalization(_groups(x.shape[-1], groups))(x)))
    h = h + layers.Reshape((1, 1, width))(layers.Dense(width)(emb))  # time, broadcast over H, W
    h = layers.Activation("swish")(layers.GroupNormalization(_groups(width, groups))(h))
    h = layers.Conv2D(width, 3, padding="same")(h)
    skip = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    return skip + h


def attention_block(x, groups, heads=4, context=None, mask=None, name=None):
    """x + Attention(Q = norm(x) at each position, K = V = norm(x), or the prompt's tokens), residual.

    Self-attention over all positions (49 at 7x7) by default. With ``context`` (B, L, D) it is the
    cross-attention of Rombach et al. 2022, sec. 3.3: softmax(QKᵀ/√d)·V with Q = W_Q·φ(x),
    K = W_K·τ(y), V = W_V·τ(y), where φ(x) are the U-Net's features and τ(y) the text encoder's
    tokens, padding masked by ``mask`` (B, L). ``name`` names the attention layer, so its maps can
    be read back (``models.prompt.attention_maps``).
    """
    height, width, channels = x.shape[1:]
    h = layers.GroupNormalization(_groups(channels, groups))(x)
    h = layers.Reshape((height * width, channels))(h)  # (B, HW, C)
    attention = layers.MultiHeadAttention(heads, max(channels // heads, 1), name=name)
    h = attention(h, h) if context is None else attention(h, context, value_mask=mask)
    return x + layers.Reshape((height, width, channels))(h)


def unet(
    image_shape=(28, 28, 1),
    timesteps=200,
    widths=(16, 32, 64),
    blocks=1,
    attention=True,
    groups=8,
    num_classes=None,
    time_embedding="sinusoidal",
    skips=True,
    prompt=None,
):
    """Build the U-Net denoiser: ``denoiser([x_t, t])``, with classes ``denoiser([x_t, t, y])``, with a prompt ``denoiser([x_t, t, tokens])``.

    Args:
        image_shape: (H, W, C); H and W divisible by 2^(len(widths)−1).
        timesteps: T; only ``time_embedding="t_over_T"`` uses it.
        widths: channels at each resolution, one level per entry.
        blocks: residual blocks per level on the way down (one more on the way up).
        attention: self-attention in the middle, at the lowest resolution.
        groups: GroupNormalization groups (reduced to a divisor of each width).
        num_classes: when set, the model is class-conditional: integer labels
            y in [0, num_classes] come in as a third input, where y = num_classes
            is the "null" label (no class) that classifier-free guidance needs.
        time_embedding: "sinusoidal" (DDPM's), or "t_over_T", the classic
            demo's single number t/T fed to the same small MLP: an ablation.
        skips: False drops every skip connection (the up path then sees only
            what came through the 7x7 bottleneck): an ablation.
        prompt: when set, the model is text-conditional (``models.prompt``):
            a dict of the mini-CLIP's vocabulary and text-encoder sizes
            (``PROMPT_KEYS``); int tokens (B, L) come in as a third input, 0 is
            padding and an all-padding prompt is the null prompt. Every block
            below the top resolution (14x14 and 7x7 for 28x28) gets a
            cross-attention to the prompt's tokens, and the pooled prompt
            embedding is added to the time embedding (Rombach et al. 2022, sec. 3.3).
    """
    if time_embedding not in TIME_EMBEDDINGS:
        raise ValueError(f"time_embedding must be one of {', '.join(TIME_EMBEDDINGS)}; got {time_embedding!r}")
    widths = tuple(int(w) for w in widths)
    levels = len(widths)
    if image_shape[0] % 2 ** (levels - 1) or image_shape[1] % 2 ** (levels - 1):
        raise ValueError(f"image_shape {image_shape} must be divisible by 2^{levels - 1} for widths {widths}")
    x_t = keras.Input(image_shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    if time_embedding == "sinusoidal":
        emb = embed_time(t, widths[0])  # (B, 4·widths[0])
    else:  # t/T, then the same Dense swish, Dense as the sinusoidal path
        emb = layers.Dense(4 * widths[0], activation="swish")(TimeScale(timesteps)(t))
        emb = layers.Dense(4 * widths[0])(emb)  # (B, 4·widths[0])
    inputs = [x_t, t]
    if num_classes is not None and prompt is not None:
        raise ValueError("a U-Net is conditioned on classes (num_classes) or on prompts (prompt), not both")
    if num_classes is not None:
        y = keras.Input((), dtype="int32", name="y")
        inputs.append(y)
        emb = emb + label_embedding(y, num_classes, emb.shape[-1])  # (B, 4·widths[0])
    attend = lambda x, where: x  # noqa: E731  (no prompt: nothing to attend to)
    if prompt is not None:
        tokens = keras.Input((int(prompt["max_length"]),), dtype="int32", name="tokens")
        inputs.append(tokens)
        context, mask, pooled = prompt_encoder(tokens, prompt)  # (B, 1+L, width), (B, 1+L), (B, embed_dim)
        emb = emb + layers.Dense(emb.shape[-1], name="prompt_projection")(pooled)  # (B, 4·widths[0])

        def attend(x, where):  # cross-attention below the top resolution (14x14 and 7x7 at 28x28)
            return x if x.shape[1] == image_shape[0] else attention_block(x, groups, context=context, mask=mask, name=f"cross_attention_{where}")

    x = layers.Conv2D(widths[0], 3, padding="same")(x_t)  # (B, 28, 28, w0)
    use_skips, skips = bool(skips), [x]
    for level, width in enumerate(widths):
        for block in range(blocks):
            x = attend(res_block(x, emb, width, groups), f"down{level}_{block}")
            skips.append(x)
        if level < levels - 1:
            x = layers.Conv2D(width, 3, strides=2, padding="same")(x)  # 28→14→7
            skips.append(x)
    x = res_block(x, emb, widths[-1], groups)
    if attention:
        x = attention_block(x, groups)
    x = attend(res_block(x, emb, widths[-1], groups), "middle")
    for level in reversed(range(levels)):
        for block in range(blocks + 1):
            skip = skips.pop()
            x = attend(res_block(layers.Concatenate()([x, skip]) if use_skips else x, emb, widths[level], groups), f"up{level}_{block}")
        if level > 0:
            x = layers.UpSampling2D(2)(x)  # 7→14→28
            x = layers.Conv2D(widths[level - 1], 3, padding="same")(x)
    x = layers.Activation("swish")(layers.GroupNormalization(_groups(widths[0], groups))(x))
    # zero-initialised output: ε̂ starts at 0, so the loss starts at exactly E[ε²] = 1
    eps_pred = layers.Conv2D(image_shape[-1], 3, padding="same", kernel_initializer="zeros")(x)
    name = "text_unet" if prompt is not None else "unet" if num_classes is None else "conditional_unet"
    return keras.Model(inputs, eps_pred, name=name)
