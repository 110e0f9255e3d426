"""A word tokenizer over the caption vocabulary: a word is one token, 0 is padding.

CLIP uses byte-pair encoding over all of the internet's text; the captions
here have a few dozen words, so one id a word is enough, and a word outside
the vocabulary is an error that names it (a prompt must never lose a word
silently: "a dark sneakr" would otherwise mean "a dark").
"""

import re

import numpy as np

PAD = 0
MAX_LENGTH = 12  # the longest caption has 10 words ("a picture of small dark patterned ...")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # "t-shirt" is one word; other punctuation separates


def split_words(text):
    """The lower-case words of ``text``: letters, digits and inner hyphens ("T-shirts!" -> ["t-shirts"])."""
    return _WORD.findall(str(text).lower())


class WordTokenizer:
    """Maps texts to int32 (N, max_length) ids, padded with 0, and back.

    Args:
        words: the vocabulary; ids are 1..len(words) in the order given.
        max_length: tokens a text; shorter texts are padded, longer ones refused.
    """

    def __init__(self, words, max_length=MAX_LENGTH):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError(f"the vocabulary repeats words: {sorted({w for w in words if words.count(w) > 1})}")
        bad = [w for w in words if split_words(w) != [w]]
        if bad:
            raise ValueError(f"vocabulary entries must be single lower-case words, got {bad}")
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.words, self.max_length = words, int(max_length)
        self.ids = {w: i + 1 for i, w in enumerate(words)}

    @property
    def vocab_size(self):
        """Ids in use, padding included (the embedding table's rows)."""
        return len(self.words) + 1

    def encode(self, texts):
        """int32 (N, max_length) ids of ``texts`` (a string or a list), padding 0 at the end.

        Raises:
            ValueError: naming every unknown word, or a text longer than max_length words.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = np.zeros((len(texts), self.max_length), np.int32)
        unknown = []
        for row, text in enumerate(texts):
            words = split_words(text)
            unknown += [w for w in words if w not in self.ids and w not in unknown]
            if len(words) > self.max_length:
                raise ValueError(f"{text!r} has {len(words)} words; the tokenizer takes at most {self.max_length}")
            tokens[row, : len(words)] = [self.ids.get(w, PAD) for w in words]
        if unknown:
            raise ValueError(f"unknown words {unknown}: the vocabulary has {len(self.words)} words, e.g. {', '.join(self.words[:8])}, ...")
        return tokens

    def decode(self, tokens):
        """The texts of int (N, L) ids (padding dropped): the inverse of ``encode`` on normalised text."""
        return [" ".join(self.words[i - 1] for i in row if i != PAD) for row in np.asarray(tokens).reshape(-1, np.shape(tokens)[-1])]

    def get_config(self):
        return {"words": self.words, "max_length": self.max_length}

    @classmethod
    def from_config(cls, config):
        return cls(config["words"], config["max_length"])
