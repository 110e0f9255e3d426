"""A mini-CLIP: a Transformer text encoder and a CNN image encoder trained to agree.

CLIP (Radford et al. 2021) embeds an image and a caption into one space and
trains both encoders with a symmetric InfoNCE loss: in a batch of B pairs,
each image must pick its own caption out of the B, and each caption its own
image, with a learned temperature. A class is then recognised "zero-shot" by
the prompt "a photo of a {class}" whose embedding lies closest.

Reference: https://arxiv.org/abs/2103.00020
"""

import math

import keras
from keras import ops

from keras_diffusion.text.tokenizer import PAD

# CLIP starts the temperature at 0.07 and never lets the logit scale 1/τ exceed 100
INITIAL_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)


def info_nce(image_embeddings, text_embeddings, log_scale):
    """Symmetric InfoNCE: the mean of the image→text and text→image cross-entropies (CLIP, fig. 3).

    logits_ij = exp(s) · <u_i, v_j> with u, v the L2-normalised embeddings;
    the i-th image's target is the i-th text and vice versa.

    Args:
        image_embeddings: float (B, D).
        text_embeddings: float (B, D), row i describing image i.
        log_scale: scalar s, the log of the inverse temperature 1/τ.

    Returns:
        scalar float32 loss.
    """
    logits = pair_logits(image_embeddings, text_embeddings, log_scale)  # (B, B)
    return contrastive_loss(logits)


def pair_logits(image_embeddings, text_embeddings, log_scale):
    """exp(s) · cosine similarity of every image with every text: float32 (B_images, B_texts)."""
    u = normalize(ops.cast(image_embeddings, "float32"))
    v = normalize(ops.cast(text_embeddings, "float32"))
    return ops.exp(ops.cast(log_scale, "float32")) * ops.matmul(u, ops.transpose(v))


def contrastive_loss(logits):
    """The symmetric cross-entropy of a (B, B) logit matrix whose diagonal holds the true pairs."""
    targets = ops.arange(ops.shape(logits)[0])
    image_to_text = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    text_to_image = keras.losses.sparse_categorical_crossentropy(targets, ops.transpose(logits), from_logits=True)
    return (ops.mean(image_to_text) + ops.mean(text_to_image)) / 2


def normalize(x):
    """x / ||x|| along the last axis (a zero vector stays zero)."""
    return x / ops.sqrt(ops.sum(x * x, axis=-1, keepdims=True) + 1e-12)


@keras.saving.register_keras_serializable(package="keras_diffusion")
class ClipLogitScale(keras.constraints.Constraint):
    """Keeps the log-scale in [0, log 100] after each step, as CLIP clamps it (sec. 2.5)."""

    def __call__(self, w):
        return ops.clip(w, 0.0, MAX_LOGIT_SCALE)


@keras.saving.register_keras_serializable(package="keras_diffusion")
class TextEncoder(keras.layers.Layer):
    """Token ids (B, L) → token features (B, L, width) and a pooled embedding (B, embed_dim).

    Pre-norm Transformer blocks (Vaswani et al. 2017) over learned word and
    position embeddings. Padding (id 0) is masked out of the attention keys and
    of the mean over tokens, so adding padding changes nothing.

    Args:
        vocab_size: ids in use, padding included.
        max_length: the longest token sequence (rows of the position table).
        width: features a token.
        depth: Transformer blocks.
        heads: attention heads (width must divide by it).
        embed_dim: size of the joint image-text embedding.
    """

    def __init__(self, vocab_size, max_length, width=64, depth=2, heads=4, embed_dim=64, **kwargs):
        super().__init__(**kwargs)
        if width % heads:
            raise ValueError(f"width must be a multiple of heads, got width {width} and heads {heads}")
        self.vocab_size, self.max_length, self.width, self.depth, self.heads, self.embed_dim = vocab_size, max_length, width, depth, heads, embed_dim
        self.words = keras.layers.Embedding(vocab_size, width, name="words")
        self.positions = keras.layers.Embedding(max_length, width, name="positions")
        self.blocks = [_Block(width, heads, name=f"block{k}") for k in range(depth)]
        self.final_norm = keras.layers.LayerNormalization(name="final_norm")
        self.project = keras.layers.Dense(embed_dim, use_bias=False, name="project")

    def build(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        self.words.build(input_shape)
        self.positions.build((length,))
        for block in self.blocks:
            block.build((batch, length, self.width))
        self.final_norm.build((batch, length, self.width))
        self.project.build((batch, self.width))
        self.built = True

    def sequence(self, tokens):
        """Token features (B, L, width) and the mask of real tokens (B, L), for cross-attention."""
        tokens = ops.cast(tokens, "int32")
        mask = ops.not_equal(tokens, PAD)  # (B, L)
        length = ops.shape(tokens)[1]
        h = self.words(tokens) + self.positions(ops.arange(length))[None]  # (B, L, width)
        attention_mask = ops.broadcast_to(mask[:, None, :], (ops.shape(tokens)[0], length, length))  # (B, L, L): no query sees padding
        for block in self.blocks:
            h = block(h, attention_mask)
        return self.final_norm(h), mask

    def pool(self, h, mask):
        """The embedding (B, embed_dim) of token features h (B, L, width): their mean over real tokens, projected."""
        weights = ops.cast(mask, h.dtype)[..., None]
        pooled = ops.sum(h * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)  # (B, width)
        return self.project(pooled)  # (B, embed_dim)

    def call(self, tokens):
        return self.pool(*self.sequence(tokens))  # (B, embed_dim)

    def get_config(self):
        config = dict(vocab_size=self.vocab_size, max_length=self.max_length, width=self.width, depth=self.depth, heads=self.heads, embed_dim=self.embed_dim)
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="keras_diffusion")
class _Block(keras.layers.Layer):
    """x + attention(norm(x)), then x + MLP(norm(x)) (the pre-norm block of GPT-2 and CLIP)."""

    def __init__(self, width, heads, **kwargs):
        super().__init__(**kwargs)
        self.width, self.heads = width, heads
        self.norm1 = keras.layers.LayerNormalization(name="norm1")
        self.attention = keras.layers.MultiHeadAttention(heads, width // heads, name="attention")
        self.norm2 = keras.layers.LayerNormalization(name="norm2")
        self.mlp_in = keras.layers.Dense(4 * width, activation="gelu", name="mlp_in")
        self.mlp_out = keras.layers.Dense(width, name="mlp_out")

    def build(self, input_shape):
        self.norm1.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.norm2.build(input_shape)
        self.mlp_in.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (4 * self.width,))
        self.built = True

    def call(self, x, attention_mask):
        h = self.norm1(x)
        x = x + self.attention(h, h, attention_mask=attention_mask)  # (B, L, width)
        return x + self.mlp_out(self.mlp_in(self.norm2(x)))

    def get_config(self):
        return {**super().get_config(), "width": self.width, "heads": self.heads}


def image_encoder(embed_dim=64, widths=(32, 64, 128), image_shape=(28, 28, 1)):
    """A small CNN: uint8-range images scaled to [0, 1] → (B, embed_dim).

    One 3x3 convolution a width, halving the resolution between widths
    (28 → 14 → 7), then the mean over positions: brightness, area and texture,
    the attributes the captions name, survive the averaging.
    """
    layers = [keras.Input(image_shape), keras.layers.Rescaling(1 / 255)]
    for k, width in enumerate(widths):
        if k:
            layers.append(keras.layers.MaxPooling2D())
        layers.append(keras.layers.Conv2D(width, 3, padding="same", activation="relu"))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(embed_dim, use_bias=False)]
    return keras.Sequential(layers, name="image_encoder")


@keras.saving.register_keras_serializable(package="keras_diffusion")
class MiniClip(keras.Model):
    """Both encoders and the learned temperature; called on {"images", "tokens"} it returns (B, B) logits.

    Args:
        vocab_size, max_length: the tokenizer's.
        embed_dim: size of the joint embedding.
        width, depth, heads: the text Transformer's.
        image_widths: the CNN's convolution widths.
    """

    def __init__(self, vocab_size, max_length, embed_dim=64, width=64, depth=2, heads=4, image_widths=(32, 64, 128), **kwargs):
        super().__init__(**kwargs)
        self.settings = dict(vocab_size=vocab_size, max_length=max_length, embed_dim=embed_dim, width=width, depth=depth, heads=heads, image_widths=list(image_widths))
        self.text_encoder = TextEncoder(vocab_size, max_length, width, depth, heads, embed_dim, name="text_encoder")
        self.image_encoder = image_encoder(embed_dim, tuple(image_widths))
        self.log_scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(INITIAL_LOGIT_SCALE), constraint=ClipLogitScale(), name="log_scale")

    def encode_images(self, images):
        """L2-normalised image embeddings (B, embed_dim), images uint8-range (B, 28, 28, 1)."""
        return normalize(ops.cast(self.image_encoder(ops.cast(images, "float32")), "float32"))

    def encode_texts(self, tokens):
        """L2-normalised text embeddings (B, embed_dim) of token ids (B, L)."""
        return normalize(ops.cast(self.text_encoder(tokens), "float32"))

    def call(self, inputs):
        return pair_logits(self.image_encoder(ops.cast(inputs["images"], "float32")), self.text_encoder(inputs["tokens"]), self.log_scale)  # (B, B)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return contrastive_loss(y_pred)

    def get_config(self):
        return {**super().get_config(), **self.settings}
