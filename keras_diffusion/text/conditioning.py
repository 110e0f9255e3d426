"""What ``train --text`` adds to a run: the text encoder's settings, its weights, and captions every epoch.

The text-conditioned U-Net (``models.unet(prompt=...)``) carries its own copy
of a mini-CLIP's text encoder, frozen: the run's config.json holds the
vocabulary and sizes (``model_kwargs["prompt"]``), its weights file the
encoder's weights, so a text run samples without the CLIP run it came from.
"""

import dataclasses
import pathlib

import keras
import numpy as np
import tensorflow as tf

from keras_diffusion.data import make_dataset
from keras_diffusion.models.prompt import PROMPT_LAYER
from keras_diffusion.text.captions import CLASS_WORDS, HELD_OUT, Thresholds, class_prompt, make_captions, measure

SHIPPED_CLIP = "clip-fashion-mnist"


def clip_folder(text_encoder_run):
    """The mini-CLIP run a text run reads prompts with: the one given, or the shipped clip-fashion-mnist."""
    if text_encoder_run is not None:
        return pathlib.Path(text_encoder_run)
    from keras_diffusion import pretrained

    return pretrained.path(SHIPPED_CLIP)


def with_prompt(config):
    """A text run's config with ``model_kwargs["prompt"]`` filled in from its text encoder's config.json."""
    from keras_diffusion.text.training import read_clip_config

    clip_config, tokenizer, _ = read_clip_config(clip_folder(config.text_encoder_run))
    prompt = dict(words=tokenizer.words, max_length=tokenizer.max_length, **{k: getattr(clip_config, k) for k in ("width", "depth", "heads", "embed_dim")})
    return dataclasses.replace(config, model_kwargs={**config.model_kwargs, "prompt": prompt})


def copy_text_encoder(denoiser, text_encoder_run):
    """Load the mini-CLIP's text-encoder weights into a fresh text U-Net's prompt encoder."""
    from keras_diffusion.text.training import load_clip

    clip = load_clip(clip_folder(text_encoder_run))[0]
    denoiser.get_layer(PROMPT_LAYER).text_encoder.set_weights(clip.text_encoder.get_weights())


class CaptionEpochs(keras.callbacks.Callback):
    """Before each epoch, draw fresh captions (templates, synonyms, attributes) into the variable the pipeline reads."""

    def __init__(self, tokens, draw):
        super().__init__()
        self.tokens, self.draw = tokens, draw

    def on_epoch_begin(self, epoch, logs=None):
        self.tokens.assign(self.draw(epoch))


def caption_dataset(images, labels, batch_size, scaling, tokenizer, seed, caption_seed):
    """(tf.data of (x_0, tokens) batches, the callback that redraws the captions each epoch).

    ``seed`` shuffles the images (a resumed run moves it on); epoch k's captions
    are drawn with (``caption_seed``, k), the same whether or not the run was resumed.

    Captions come from each image's class and measured attributes
    (``text.captions``), with thresholds fit on these images, so the U-Net
    and the mini-CLIP read the same words in the same sense; the pairs in
    ``HELD_OUT`` (dark sandals, patterned bags) are never named, as in the mini-CLIP's training.
    """
    values = measure(images)
    levels = Thresholds.fit(images, labels, values).levels(images, labels, values)
    draw = lambda epoch: tokenizer.encode(make_captions(labels, levels, seed=(caption_seed, epoch), held_out=HELD_OUT))  # noqa: E731
    tokens = tf.Variable(draw(0), trainable=False, name="captions")  # (N, L) int32
    rows = make_dataset(images, batch_size, scaling, seed=seed, labels=np.arange(len(images)))
    return rows.map(lambda x, k: (x, tf.gather(tokens, k))), CaptionEpochs(tokens, draw)


def figure_prompts(per_row):
    """The sample grid of a text run: one row a class prompt "a photo of a {class}", ``per_row`` images each."""
    return [class_prompt(c) for c in range(len(CLASS_WORDS)) for _ in range(per_row)]
