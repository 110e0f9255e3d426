"""Prompts for a denoiser: the mini-CLIP's text encoder, frozen, and cross-attention from pixels to words.

Stable Diffusion conditions its U-Net on a prompt in two ways (Rombach et al.
2022, sec. 3.3): every image position attends to the prompt's token features
(cross-attention, Q from the image, K and V from the text), and a pooled text
embedding shifts every residual block as the timestep does. The text encoder
is CLIP's, trained beforehand and frozen. The same pieces, in miniature:

    tokens (B, L) ──PromptEncoder──► context (B, 1+L, width), mask (B, 1+L), pooled (B, embed_dim)
    x (B, H, W, C) ──unet.attention_block(x, context=context, mask=mask)──► x + Attention(norm(x), context)

The context starts with one learned "null" token that every position may
attend to, so the null prompt (all padding, what classifier-free guidance
contrasts with) is a learned embedding rather than an empty attention.

Reference: https://arxiv.org/abs/2112.10752
"""

import keras
from keras import layers, ops

from keras_diffusion.text.clip import TextEncoder
from keras_diffusion.text.tokenizer import PAD, WordTokenizer

PROMPT_LAYER = "prompt_encoder"
PROMPT_KEYS = ("words", "max_length", "width", "depth", "heads", "embed_dim")  # what a text U-Net's ``prompt`` holds


@keras.saving.register_keras_serializable(package="keras_diffusion")
class PromptEncoder(layers.Layer):
    """Token ids (B, L) → (context (B, 1+L, width), mask (B, 1+L) bool, pooled (B, embed_dim)).

    Args:
        words: the tokenizer's vocabulary (ids 1..len(words); 0 is padding).
        max_length: tokens a prompt.
        width, depth, heads, embed_dim: the text encoder's sizes (those of the mini-CLIP it comes from).
        trainable_text: train the text encoder too (default: frozen, as Stable Diffusion freezes CLIP).
    """

    def __init__(self, words, max_length, width=64, depth=2, heads=4, embed_dim=64, trainable_text=False, **kwargs):
        super().__init__(**kwargs)
        self.words, self.max_length = list(words), int(max_length)
        self.sizes = dict(width=width, depth=depth, heads=heads, embed_dim=embed_dim)
        self.trainable_text = bool(trainable_text)
        self.text_encoder = TextEncoder(len(self.words) + 1, self.max_length, name="text_encoder", **self.sizes)
        # the null prompt's pieces: a token every position can attend to, and the pooled embedding of "no prompt"
        self.null_token = self.add_weight(shape=(1, 1, width), initializer=keras.initializers.RandomNormal(stddev=0.02), name="null_token")
        self.null_pooled = self.add_weight(shape=(embed_dim,), initializer=keras.initializers.RandomNormal(stddev=0.02), name="null_pooled")

    def build(self, input_shape):
        self.text_encoder.build(input_shape)
        # after build: Keras marks only the variables that exist when trainable is set
        self.text_encoder.trainable = self.trainable_text
        self.built = True

    @property
    def tokenizer(self):
        return WordTokenizer(self.words, self.max_length)

    def call(self, tokens):
        tokens = ops.cast(tokens, "int32")
        h, mask = self.text_encoder.sequence(tokens)  # (B, L, width), (B, L)
        pooled = self.text_encoder.pool(h, mask)  # (B, embed_dim)
        empty = ops.logical_not(ops.any(mask, axis=1, keepdims=True))  # (B, 1): the null prompt
        pooled = ops.where(empty, ops.cast(self.null_pooled, pooled.dtype)[None], pooled)
        batch = ops.shape(tokens)[0]
        null = ops.broadcast_to(ops.cast(self.null_token, h.dtype), (batch, 1, self.sizes["width"]))
        context = ops.concatenate([null, h], axis=1)  # (B, 1+L, width)
        mask = ops.concatenate([ops.ones((batch, 1), "bool"), mask], axis=1)  # (B, 1+L)
        return context, mask, pooled

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0], input_shape[1]
        return (batch, length + 1, self.sizes["width"]), (batch, length + 1), (batch, self.sizes["embed_dim"])

    def compute_output_spec(self, tokens):
        context, mask, pooled = self.compute_output_shape(tokens.shape)
        return keras.KerasTensor(context, self.compute_dtype), keras.KerasTensor(mask, "bool"), keras.KerasTensor(pooled, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "words": self.words, "max_length": self.max_length, "trainable_text": self.trainable_text, **self.sizes}


def prompt_encoder(tokens, prompt):
    """Apply a ``PromptEncoder`` named ``prompt_encoder`` built from a text U-Net's ``prompt`` dict."""
    missing = [key for key in PROMPT_KEYS if key not in prompt]
    if missing:
        raise ValueError(f"prompt needs {', '.join(PROMPT_KEYS)}; missing {', '.join(missing)}")
    return PromptEncoder(**prompt, name=PROMPT_LAYER)(tokens)


def prompt_tokenizer_of(model):
    """The ``WordTokenizer`` of a text-conditioned denoiser, or None for any other model."""
    try:
        return model.get_layer(PROMPT_LAYER).tokenizer
    except (AttributeError, ValueError):  # not a Keras model, or no prompt input
        return None


def is_text_model(model):
    return prompt_tokenizer_of(model) is not None


def null_tokens(n, max_length):
    """The null prompt: all padding, int32 (n, max_length)."""
    import numpy as np

    return np.full((n, max_length), PAD, np.int32)


def cross_attention_layers(model):
    """The names of a text U-Net's cross-attention layers, in the order the features meet them."""
    return [layer.name for layer in model.layers if layer.name.startswith("cross_attention_")]


def attention_maps(model, x_t, t, tokens, layer):
    """Where each prompt token is looked at: the attention weights of one cross-attention layer.

    Args:
        model: a text-conditioned denoiser.
        x_t: (B, H, W, C) noisy images. t: int (B,). tokens: int (B, L) prompt tokens.
        layer: a name from ``cross_attention_layers(model)``, e.g. "cross_attention_middle".

    Returns:
        float32 NumPy (B, h, w, 1 + L): at each position of that layer's h x w grid, the softmax
        weights over the null token and the L prompt tokens (padding gets 0), averaged over heads.
    """
    import numpy as np

    names = cross_attention_layers(model)
    if layer not in names:
        raise ValueError(f"no cross-attention layer {layer!r}; this model has {', '.join(names) or 'none'}")
    attention = model.get_layer(layer)
    node = attention._inbound_nodes[0]
    query, context = node.arguments.args
    features = keras.Model(model.inputs, [query, context, node.arguments.kwargs["value_mask"]])
    q, c, mask = features([x_t, t, tokens])
    _, scores = attention(q, c, value_mask=mask, return_attention_scores=True)  # (B, heads, HW, 1 + L)
    scores = np.asarray(ops.convert_to_numpy(ops.mean(ops.cast(scores, "float32"), axis=1)))  # (B, HW, 1 + L)
    side = int(round(np.sqrt(scores.shape[1])))
    return scores.reshape(len(scores), side, side, scores.shape[-1])
