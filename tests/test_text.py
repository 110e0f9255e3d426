"""Captions, the word tokenizer and the mini-CLIP: hand-made images and a NumPy InfoNCE as references."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_diffusion import train
from keras_diffusion.text import ATTRIBUTES, CLASS_WORDS, Thresholds, WordTokenizer, class_prompt, make_captions, measure, vocabulary
from keras_diffusion.text.captions import GROUPS, NOUNS, WORDS


def square(side, level, contrast=0):
    """A black 28x28 image with a centred side x side garment: a checkerboard of ``level`` and ``level - contrast``."""
    image = np.zeros((28, 28), np.uint8)
    top = (28 - side) // 2
    patch = np.full((side, side), level, np.uint8)
    patch[(np.indices((side, side)).sum(0) % 2) == 1] = level - contrast
    image[top : top + side, top : top + side] = patch
    return image


def test_measure_follows_its_definitions():
    plain, checked, faint = square(10, 200), square(10, 200, contrast=100), square(6, 10)
    values = measure(np.stack([plain, checked, faint])[..., None])
    assert values["size"].tolist() == [100, 100, 0]  # pixels below 16 are background
    np.testing.assert_allclose(values["brightness"][:2], [200, (50 * 200 + 50 * 100) / 100])
    assert values["texture"][0] == 0  # a flat patch: every interior pixel equals its 3x3 mean
    # the 8x8 interior (the square spans rows and columns 9-18) against its 3x3 means, over brightness²
    x = checked.astype(float)
    residuals = [x[i, j] - x[i - 1 : i + 2, j - 1 : j + 2].mean() for i in range(10, 18) for j in range(10, 18)]
    np.testing.assert_allclose(values["texture"][1], np.mean(np.square(residuals)) / 150**2, rtol=1e-6)


def test_thresholds_cut_each_class_in_thirds():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 15)
    # within a class, 15 distinct sizes, brightnesses (steps of 13 against contrasts < 15) and textures: no ties at the cuts
    sides, levels, contrasts = (np.concatenate([rng.permutation(15) * step + start for _ in range(10)]) for step, start in ((1, 6), (13, 60), (1, 0)))
    images = np.stack([square(int(side), int(level), int(contrast)) for side, level, contrast in zip(sides, levels, contrasts)])
    thresholds = Thresholds.fit(images, labels)
    levels = thresholds.levels(images, labels)
    for attribute in ATTRIBUTES:
        for c in range(10):
            counts = np.bincount(levels[attribute][labels == c], minlength=3)
            assert counts[0] == 5 and counts[2] == 5, (attribute, c, counts)
    values = measure(images)
    dark = levels["brightness"] == 0
    assert np.all(values["brightness"][dark] <= thresholds.cuts["brightness"][labels[dark], 0])
    assert Thresholds.from_dict(json.loads(json.dumps(thresholds.to_dict()))).cuts["size"].tolist() == thresholds.cuts["size"].tolist()


def test_thresholds_need_every_class():
    with pytest.raises(ValueError, match=r"classes \[9\] have none"):
        Thresholds.fit(np.zeros((9, 28, 28), np.uint8), np.arange(9))


def _levels(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 10, n), {a: rng.integers(0, 3, n) for a in ATTRIBUTES}


def test_captions_are_deterministic_and_cover_every_class_and_word():
    labels, levels = _levels(3000)
    captions = make_captions(labels, levels, seed=7)
    assert captions == make_captions(labels, levels, seed=7)
    assert captions != make_captions(labels, levels, seed=8)
    text = " | ".join(captions)
    for words in WORDS.values():
        for word in words[0] + words[2]:
            assert f" {word} " in f" {text} ", word
    for c, nouns in enumerate(NOUNS):
        mine = " | ".join(caption for caption, y in zip(captions, labels) if y == c)
        assert any(one in mine or many in mine for one, many in nouns), CLASS_WORDS[c]
    for group in GROUPS:
        assert group in text
    assert "something" in text and "to wear on your feet" in text


def test_a_caption_names_only_the_image_s_own_attributes():
    labels, levels = _levels(2000, seed=1)
    for caption, y, i in zip(make_captions(labels, levels, seed=0), labels, range(2000)):
        words = set(caption.split())
        for attribute in ATTRIBUTES:
            level = levels[attribute][i]
            for other in {0, 2} - {level}:
                assert not words & set(WORDS[attribute][other]), (caption, attribute, level)
        if "something" in words:
            assert y in GROUPS["footwear"] + GROUPS["tops"], caption


def test_held_out_pairs_are_never_named_and_everything_else_is_unchanged():
    from keras_diffusion.text import HELD_OUT

    labels, levels = _levels(4000, seed=2)
    held = make_captions(labels, levels, seed=0, held_out=HELD_OUT)
    full = make_captions(labels, levels, seed=0)
    hidden = np.zeros(len(labels), bool)
    for c, attribute, level in HELD_OUT:
        pair = (labels == c) & (levels[attribute] == level)
        hidden |= pair
        words = set(WORDS[attribute][level])
        assert pair.sum() > 50 and not any(words & set(text.split()) for text in np.asarray(held)[pair])
        assert any(words & set(text.split()) for text in np.asarray(full)[pair])  # without held_out they are named
    # the other images name their attributes as often as before: only the held-out pairs lose words
    def named(captions):
        return sum(bool(set(text.split()) & {w for words in WORDS.values() for w in words[0] + words[2]}) for text in np.asarray(captions)[~hidden])

    assert abs(named(held) - named(full)) < 0.03 * (~hidden).sum()
    assert {w for text in held for w in text.split()} >= {"dark", "sandal", "patterned", "bag"}  # each word still appears


def test_tokenizer_round_trips_and_pads_with_zero():
    tokenizer = WordTokenizer(vocabulary(), max_length=12)
    labels, levels = _levels(500)
    captions = make_captions(labels, levels, seed=0) + [class_prompt(c) for c in range(10)]
    tokens = tokenizer.encode(captions)
    assert tokens.dtype == np.int32 and tokens.shape == (510, 12)
    assert tokenizer.decode(tokens) == captions
    assert tokenizer.decode(tokenizer.encode("A photo of an Ankle boot!")) == ["a photo of an ankle boot"]
    row = tokenizer.encode("white t-shirts")[0]
    assert row[2:].tolist() == [0] * 10 and 0 not in row[:2]  # padding at the end, real ids from 1
    assert tokenizer.vocab_size == len(vocabulary()) + 1


def test_tokenizer_names_unknown_words_and_refuses_long_texts():
    tokenizer = WordTokenizer(vocabulary(), max_length=6)
    with pytest.raises(ValueError, match=r"unknown words \['sneakr', 'blue'\]"):
        tokenizer.encode(["a dark sneakr", "a blue bag", "a blue dress"])
    with pytest.raises(ValueError, match="has 7 words; the tokenizer takes at most 6"):
        tokenizer.encode("a photo of a small dark bag")
    with pytest.raises(ValueError, match="repeats words"):
        WordTokenizer(["bag", "bag"])


def test_info_nce_matches_a_numpy_hand_computation():
    from keras_diffusion.text.clip import info_nce

    rng = np.random.default_rng(0)
    u, v, s = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), 1.7
    un, vn = u / np.linalg.norm(u, axis=1, keepdims=True), v / np.linalg.norm(v, axis=1, keepdims=True)
    logits = np.exp(s) * un @ vn.T

    def cross_entropy(z):  # rows: -log softmax at the diagonal
        return np.mean(np.log(np.exp(z).sum(axis=1)) - np.diag(z))

    expected = (cross_entropy(logits) + cross_entropy(logits.T)) / 2
    np.testing.assert_allclose(float(info_nce(u.astype("float32"), v.astype("float32"), s)), expected, rtol=1e-5)


@pytest.fixture(scope="module")
def tiny_clip():
    from keras_diffusion.text.clip import MiniClip

    model = MiniClip(vocab_size=len(vocabulary()) + 1, max_length=12, embed_dim=8, width=16, depth=1, heads=2, image_widths=(4, 8, 8))
    model({"images": np.zeros((2, 28, 28, 1), np.uint8), "tokens": np.ones((2, 12), np.int32)})
    return model


def test_encoders_shapes_dtypes_and_unit_norm(tiny_clip):
    tokens = WordTokenizer(vocabulary()).encode(["a dark bag", "sneakers", "a photo of a small plain dress"])
    texts = np.asarray(tiny_clip.encode_texts(tokens))
    images = np.asarray(tiny_clip.encode_images(np.zeros((4, 28, 28, 1), np.uint8) + 100))
    assert texts.shape == (3, 8) and images.shape == (4, 8) and texts.dtype == images.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, rtol=1e-5)
    logits = tiny_clip({"images": np.zeros((3, 28, 28, 1), np.uint8), "tokens": tokens})
    assert tuple(logits.shape) == (3, 3)
    sequence, mask = tiny_clip.text_encoder.sequence(tokens)
    assert tuple(sequence.shape) == (3, 12, 16) and np.asarray(mask).sum(axis=1).tolist() == [3, 1, 7]


def test_padding_changes_no_embedding(tiny_clip):
    short = WordTokenizer(vocabulary(), max_length=5).encode(["a dark bag", "a photo of tops"])
    padded = WordTokenizer(vocabulary(), max_length=12).encode(["a dark bag", "a photo of tops"])
    np.testing.assert_allclose(np.asarray(tiny_clip.encode_texts(short)), np.asarray(tiny_clip.encode_texts(padded)), atol=1e-6)


def test_logit_scale_is_clipped_as_clip_does():
    from keras_diffusion.text.clip import MAX_LOGIT_SCALE, ClipLogitScale

    clipped = np.asarray(ClipLogitScale()(np.array([-1.0, 2.0, 9.0], np.float32)))
    np.testing.assert_allclose(clipped, [0.0, 2.0, MAX_LOGIT_SCALE], rtol=1e-6)


TINY = ["--text-encoder", "--epochs", "1", "--limit", "128", "--batch-size", "32"]
TINY += ["--model-kwargs", '{"embed_dim": 8, "width": 16, "depth": 1, "heads": 2, "image_width": 4}']


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "clip"
    assert train.main(TINY + ["--data-dir", str(fake_data_dir), "--out", str(out)]) == 0
    return out


def test_train_text_encoder_writes_a_run_and_reports(clip_run, capsys):
    for name in ("config.json", "weights.weights.h5", "history.csv", "state.weights.h5", "state.json", "evaluation.json"):
        assert (clip_run / name).is_file(), name
    config = json.loads((clip_run / "config.json").read_text())
    assert config["text_encoder"]["limit"] == 128 and config["text_encoder"]["image_width"] == 4
    assert config["tokenizer"]["words"] == vocabulary()
    evaluation = json.loads((clip_run / "evaluation.json").read_text())
    assert 0 <= evaluation["zero_shot"] <= 1 and 0 <= evaluation["attributes"] <= 1 and evaluation["test_images"] == 200
    assert (clip_run / "history.csv").read_text().splitlines()[0] == "epoch,loss,seconds,logit_scale"


def test_text_encoder_run_loads_and_resumes(clip_run):
    from keras_diffusion.text import load_clip

    model, tokenizer, _ = load_clip(clip_run)
    assert np.asarray(model.encode_texts(tokenizer.encode(["a dark bag"]))).shape == (1, 8)
    assert train.main(["--text-encoder", "--resume", str(clip_run), "--epochs", "2"]) == 0
    assert len((clip_run / "history.csv").read_text().splitlines()) == 3
    assert json.loads((clip_run / "state.json").read_text())["epoch"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--schedule", "cosine"], "--text-encoder trains the mini-CLIP on captioned Fashion-MNIST and takes no --schedule: drop it"),
        (["--classifier", "--model", "mlp"], "takes no --classifier, --model: drop them"),
        (["--model-kwargs", '{"hidden": 3}'], "model_kwargs: the text encoder has no 'hidden'; it takes embed_dim, width"),
        (["--epochs", "0"], "epochs must be >= 1, got 0"),
        (["--model-kwargs", '{"width": 30, "heads": 4}'], "width must be a multiple of heads, got width 30 and heads 4"),
        (["--resume", "runs/x", "--lr", "0.1"], "--resume takes its settings from the run; drop --lr"),
    ],
)
def test_bad_text_encoder_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        train.parse_args(["--text-encoder", *argv])
    assert exit.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_bad_text_encoder_flag_from_the_shell():
    result = subprocess.run([sys.executable, "-m", "keras_diffusion.train", "--text-encoder", "--dataset", "mnist"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("takes no --dataset: drop it (see --help)")
