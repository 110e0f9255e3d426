"""Captions from the data itself: class words and attributes measured from the pixels.

Fashion-MNIST has labels, not sentences. Each image gets captions such as
"a photo of a dark sneaker", "white trainers" or "something light to wear on
your feet", built from templates, the class's synonyms and groups, and three
attributes measured from the image (``measure``):

- brightness: the garment's mean intensity (``measure`` says which pixels are
  the garment), cut at the terciles of its class: dark (lowest third), light
  (highest third), unnamed in between;
- size: the garment's area (pixel count), cut at its class's terciles: small,
  large, unnamed in between;
- texture: the garment's high-frequency energy, cut at its class's terciles:
  plain (lowest third), patterned (highest third), unnamed in between.

The thresholds are per class, so every class has each word in a third of its
images, and they are computed on the training images (``Thresholds.fit``)
and reused for the test set. Captions depend only on the images, the labels
and the seed.
"""

import dataclasses

import numpy as np

GARMENT_LEVEL = 16  # pixels >= 16 of 255 are the garment; below is the (almost black) background
ATTRIBUTES = ("brightness", "size", "texture")
# level 0 (lowest third) and level 2 (highest third) have words; level 1 is left unsaid
WORDS = {
    "brightness": (("dark", "black"), (), ("light", "white", "pale")),
    "size": (("small", "little"), (), ("large", "big")),
    "texture": (("plain",), (), ("patterned",)),
}
ADJECTIVE_ORDER = ("size", "brightness", "texture")  # "a small dark patterned bag"
# (class, attribute, level) pairs that the training captions never name, so that prompts for them test
# composition: "dark" is learned on other classes, "sandal" on sandals of other brightness (issue 26, part 4)
HELD_OUT = ((5, "brightness", 0), (8, "texture", 2))  # dark sandals, patterned bags

# (singular, plural) for each class, in label order; the first singular is the class's name in prompts
NOUNS = (
    (("t-shirt", "t-shirts"), ("tee", "tees"), ("top", "tops")),
    (("trouser", "trousers"), ("pair of trousers", "trousers"), ("pair of pants", "pants"), ("pair of jeans", "jeans")),
    (("pullover", "pullovers"), ("sweater", "sweaters"), ("jumper", "jumpers")),
    (("dress", "dresses"),),
    (("coat", "coats"), ("jacket", "jackets")),
    (("sandal", "sandals"),),
    (("shirt", "shirts"),),
    (("sneaker", "sneakers"), ("trainer", "trainers"), ("running shoe", "running shoes")),
    (("bag", "bags"), ("handbag", "handbags"), ("purse", "purses")),
    (("ankle boot", "ankle boots"), ("boot", "boots")),
)
CLASS_WORDS = tuple(nouns[0][0] for nouns in NOUNS)  # "t-shirt", "trouser", ..., "ankle boot"
FOOTWEAR, TOPS = (5, 7, 9), (0, 2, 4, 6)
GROUPS = {"footwear": FOOTWEAR, "shoes": FOOTWEAR, "tops": TOPS}
# "something {adjectives} to wear on your feet": how a group is said without naming the garment
SOMETHING = {FOOTWEAR: "to wear on your feet", TOPS: "to wear on top"}

# {a} is "a" or "an", {adj} the adjectives (maybe none), {one} a singular, {many} a plural
TEMPLATES = (
    "a photo of {a} {adj} {one}",
    "{a} {adj} {one}",
    "{adj} {many}",
    "a picture of {adj} {many}",
    "a photo of {adj} {group}",
    "something {adj} {something}",
)


def measure(images):
    """Brightness, area and high-frequency energy of each garment, straight from the pixels.

    Args:
        images: uint8 (N, 28, 28) or (N, 28, 28, 1), the garment light on black.

    Returns:
        dict of float64 (N,) arrays:
        ``brightness``: the mean intensity (0-255) of the garment's pixels, those >= GARMENT_LEVEL;
        ``size``: the garment's area, its number of pixels;
        ``texture``: the mean squared difference between each interior garment pixel (one whose
        3x3 neighbourhood is all garment, so the outline does not count) and the mean of its 3x3
        neighbourhood, divided by the squared brightness (so a dark garment is not "plain" for
        being dark).
    """
    images = np.asarray(images).reshape(len(images), 28, 28)
    out = {a: np.zeros(len(images)) for a in ATTRIBUTES}
    for start in range(0, len(images), 4096):  # in chunks: float copies of 60,000 images would take 1.5 GB
        for a, value in _measure(images[start : start + 4096]).items():
            out[a][start : start + len(value)] = value
    return out


def _measure(images):
    x = images.astype(np.float32)  # (n, 28, 28)
    garment = images >= GARMENT_LEVEL
    area = garment.sum(axis=(1, 2))
    brightness = (x * garment).sum(axis=(1, 2), dtype=np.float64) / np.maximum(area, 1)
    box_mean, interior = _box3(x) / 9, _box3(garment.astype(np.float32)) == 9
    residual = ((x - box_mean) ** 2 * interior).sum(axis=(1, 2), dtype=np.float64) / np.maximum(interior.sum(axis=(1, 2)), 1)
    return {"brightness": brightness, "size": area.astype(np.float64), "texture": residual / np.maximum(brightness, 1.0) ** 2}


def _box3(x):
    """Sum over each pixel's 3x3 neighbourhood (zeros outside the image); (n, 28, 28)."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    rows = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]  # (n, 28, 30)
    return rows[:, :, :-2] + rows[:, :, 1:-1] + rows[:, :, 2:]


@dataclasses.dataclass
class Thresholds:
    """The per-class terciles of each attribute: ``cuts[name]`` is float (10, 2), (lower, upper)."""

    cuts: dict

    @classmethod
    def fit(cls, images, labels, values=None):
        """Terciles of ``measure(images)`` (or of the given ``values``) within each class, from training images."""
        values, labels = measure(images) if values is None else values, np.asarray(labels)
        missing = sorted(set(range(len(NOUNS))) - set(labels.tolist()))
        if missing:
            raise ValueError(f"thresholds need images of every class; classes {missing} have none")
        cuts = {a: np.array([np.percentile(values[a][labels == c], [100 / 3, 200 / 3]) for c in range(len(NOUNS))]) for a in ATTRIBUTES}
        return cls(cuts)

    def levels(self, images, labels, values=None):
        """Each image's level of each attribute: dict of int (N,) arrays, 0 low, 1 middle, 2 high.

        A value equal to a cut counts as below it. ``values``: ``measure(images)``, when already known.
        """
        values, labels = measure(images) if values is None else values, np.asarray(labels)
        return {a: (values[a] > self.cuts[a][labels, 0]).astype(int) + (values[a] > self.cuts[a][labels, 1]) for a in ATTRIBUTES}

    def to_dict(self):
        return {a: self.cuts[a].tolist() for a in ATTRIBUTES}

    @classmethod
    def from_dict(cls, values):
        return cls({a: np.asarray(values[a], dtype=np.float64).reshape(len(NOUNS), 2) for a in ATTRIBUTES})


def caption(label, levels, rng):
    """One caption for an image of class ``label`` with attribute ``levels`` ({name: 0|1|2}).

    Each named attribute (level 0 or 2) is said with probability 1/2, in one of its words.
    """
    named = [WORDS[a][levels[a]] for a in ADJECTIVE_ORDER if levels[a] != 1 and rng.random() < 0.5]
    words = [choices[rng.integers(len(choices))] for choices in named]
    groups = [name for name, members in GROUPS.items() if label in members]
    templates = [t for t in TEMPLATES if groups or ("{group}" not in t and "{something}" not in t)]
    template = templates[rng.integers(len(templates))]
    if "{something}" in template and not words:
        template = TEMPLATES[0]  # "something to wear on top" names no garment and no attribute: says nothing
    one, many = NOUNS[label][rng.integers(len(NOUNS[label]))]
    group = groups[rng.integers(len(groups))] if groups else ""
    members = next((m for m in SOMETHING if label in m), ())
    adj = " ".join(words)
    text = template.format(a=_article(adj or one), adj=adj, one=one, many=many, group=group, something=SOMETHING.get(members, ""))
    return " ".join(text.split())  # no double spaces where there are no adjectives


def _article(word):
    return "an" if word[0] in "aeiou" else "a"


def make_captions(labels, levels, seed, held_out=()):
    """One caption an image, the same for the same labels, levels and seed.

    Args:
        labels: int (N,) class labels.
        levels: dict of int (N,) arrays, as ``Thresholds.levels`` returns.
        seed: an int or a tuple of ints (training draws with (seed, epoch)); another seed gives other
            templates, synonyms and words.
        held_out: (class, attribute, level) pairs that no caption names: such an image's caption
            leaves that attribute unsaid (``HELD_OUT``: what training holds out, to test composition).

    Returns:
        list of N strings.
    """
    rng = np.random.default_rng(seed)
    hidden = {(int(c), a, int(level)) for c, a, level in held_out}
    captions = []
    for i, y in enumerate(np.asarray(labels)):
        said = {a: int(levels[a][i]) for a in ATTRIBUTES}
        said = {a: 1 if (int(y), a, level) in hidden else level for a, level in said.items()}  # level 1 is never said
        captions.append(caption(int(y), said, rng))
    return captions


def class_prompt(label):
    """The zero-shot prompt of a class: "a photo of a {class}" (CLIP's template)."""
    return f"a photo of {_article(CLASS_WORDS[label])} {CLASS_WORDS[label]}"


def attribute_prompt(label, attribute, level):
    """The prompt naming one attribute of a class: "a photo of a dark sneaker"."""
    adj = WORDS[attribute][level][0]
    return f"a photo of {_article(adj)} {adj} {CLASS_WORDS[label]}"


def vocabulary():
    """Every word a caption or prompt can contain, sorted (the tokenizer's vocabulary)."""
    texts = [t for t in TEMPLATES] + [one + " " + many for nouns in NOUNS for one, many in nouns]
    texts += [w for words in WORDS.values() for level in words for w in level] + list(GROUPS) + list(SOMETHING.values())
    words = {w for text in texts for w in text.replace("{", " {").replace("}", "} ").split() if not w.startswith("{")}
    return sorted(words | {"a", "an"})
