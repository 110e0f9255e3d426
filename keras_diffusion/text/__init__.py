"""Text for diffusion in miniature: captions from the data, a word tokenizer, and a mini-CLIP.

    from keras_diffusion.text import Thresholds, WordTokenizer, make_captions, vocabulary

    thresholds = Thresholds.fit(images, labels)               # per-class terciles of the attributes
    captions = make_captions(labels, thresholds.levels(images, labels), seed=0)
    tokens = WordTokenizer(vocabulary()).encode(captions)     # int32 (N, 12), 0 = padding

The model names (``MiniClip``, ``TextEncoder``, ``info_nce``, ``load_clip``) are imported on first use:
they bring in TensorFlow, and the captions and the tokenizer need only NumPy.
"""

import importlib

from keras_diffusion.text.captions import ATTRIBUTES, CLASS_WORDS, HELD_OUT, Thresholds, attribute_prompt, class_prompt, make_captions, measure, vocabulary
from keras_diffusion.text.tokenizer import WordTokenizer, split_words

_LAZY = {
    "MiniClip": "clip",
    "TextEncoder": "clip",
    "image_encoder": "clip",
    "info_nce": "clip",
    "ClipConfig": "config",
    "train_text_encoder": "training",
    "load_clip": "training",
    "zero_shot_accuracy": "training",
    "attribute_accuracy": "training",
}
__all__ = ["ATTRIBUTES", "CLASS_WORDS", "HELD_OUT", "Thresholds", "attribute_prompt", "class_prompt", "make_captions", "measure", "vocabulary", "WordTokenizer", "split_words", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_diffusion.text' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_diffusion.text.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
