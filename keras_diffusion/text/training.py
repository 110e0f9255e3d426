"""Train the mini-CLIP on captioned Fashion-MNIST and write a run directory.

The run directory holds what the diffusion runs hold, for the text encoder:
config.json (the ``ClipConfig``, the tokenizer's vocabulary and the attribute
thresholds), weights.weights.h5, history.csv, the training state for
``--resume``, and evaluation.json with the test-set accuracies.
"""

import dataclasses
import json
import math
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from keras_diffusion import __version__, backends, checkpoint
from keras_diffusion.data import load_images
from keras_diffusion.fields import from_dict
from keras_diffusion.text.config import SIZE_KEYS, ClipConfig
from keras_diffusion.text.captions import ATTRIBUTES, CLASS_WORDS, HELD_OUT, Thresholds, attribute_prompt, class_prompt, make_captions, measure, vocabulary
from keras_diffusion.text.tokenizer import MAX_LENGTH, WordTokenizer

EVALUATION = "evaluation.json"
CONFIG_KEYS = ("package", "version", "text_encoder", "tokenizer", "thresholds")


def build_clip(config, tokenizer):
    """The ``MiniClip`` a config describes, its weights built."""
    from keras_diffusion.text.clip import MiniClip

    sizes = {k: getattr(config, k) for k in SIZE_KEYS if k != "image_width"}
    widths = [config.image_width * 2**k for k in range(3)]
    model = MiniClip(tokenizer.vocab_size, tokenizer.max_length, image_widths=widths, **sizes)
    model({"images": np.zeros((1, 28, 28, 1), np.uint8), "tokens": np.ones((1, tokenizer.max_length), np.int32)})
    return model


def train_text_encoder(config, out=None, overwrite=False, resume=None, verbose=2):
    """Train the mini-CLIP and evaluate it on the test set.

    Args:
        config: a ``ClipConfig`` (with ``resume``: None, or one whose ``epochs`` extends the run).
        out: run directory to create (default ``runs/clip``, numbered when taken).
        overwrite: allow replacing a run already in ``out``.
        resume: a text-encoder run directory to continue after its last completed epoch.
        verbose: Keras' fit verbosity.

    Returns:
        (run_dir, evaluation dict: zero_shot, attributes and one entry an attribute).
    """
    if resume is not None:
        stored, tokenizer, thresholds = read_clip_config(resume)
        config = dataclasses.replace(stored, epochs=config.epochs if config is not None else stored.epochs)
        run_dir, initial_epoch = pathlib.Path(resume), checkpoint.read_state_epoch(resume)
    else:
        config.validate()
        run_dir, initial_epoch = checkpoint.new_run_dir(out, "clip", overwrite), 0
    keras.utils.set_random_seed(config.seed + initial_epoch)
    images, labels = load_images("fashion_mnist", "train", config.data_dir, config.data_source, config.limit)
    values = measure(images)
    if resume is None:
        tokenizer, thresholds = WordTokenizer(vocabulary(), MAX_LENGTH), Thresholds.fit(images, labels, values)
    levels = thresholds.levels(images, labels, values)
    model = build_clip(config, tokenizer)
    steps = max(1, len(images) // config.batch_size)
    lr = keras.optimizers.schedules.CosineDecay(config.lr, decay_steps=config.epochs * steps)
    model.compile(optimizer=keras.optimizers.Adam(lr))
    model.optimizer.build(model.trainable_variables)  # slots exist before a saved state is loaded into them
    _save_config(run_dir, config, tokenizer, thresholds)
    if initial_epoch:
        checkpoint.load_state(run_dir, model)
        print(f"resuming {run_dir} after epoch {initial_epoch} of {config.epochs}")
    print(f"training the mini-CLIP ({model.count_params():,} parameters) on {len(images):,} captioned images -> {run_dir}", flush=True)
    tokens = tf.Variable(np.zeros((len(images), tokenizer.max_length), np.int32), trainable=False)  # this epoch's captions
    draw = lambda epoch: tokenizer.encode(make_captions(labels, levels, seed=(config.seed, epoch), held_out=HELD_OUT))  # noqa: E731
    epochs = RunEpochs(run_dir, tokens, draw, build_clip(config, tokenizer))
    order = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=config.seed + initial_epoch, reshuffle_each_iteration=True)
    pixels = tf.constant(images)
    data = order.batch(min(config.batch_size, len(images)), drop_remainder=True).map(lambda k: {"images": tf.gather(pixels, k), "tokens": tf.gather(tokens, k)})
    model.fit(data.prefetch(2), initial_epoch=initial_epoch, epochs=config.epochs, callbacks=[epochs], verbose=verbose, shuffle=False)
    if epochs.diverged:
        raise ValueError(f"the loss became non-finite in epoch {epochs.diverged}; the last good checkpoint in {run_dir} is kept. Try a smaller --lr.")
    evaluation = evaluate_clip(model, tokenizer, thresholds, config)
    checkpoint.write_json(run_dir / EVALUATION, evaluation)
    return run_dir, evaluation


class RunEpochs(keras.callbacks.Callback):
    """Before each epoch, draw its captions (new templates, synonyms and words); after it, save the run.

    Args:
        run_dir: where history.csv, the training state and the weights go.
        tokens: the int32 (N, L) variable that the input pipeline reads the captions from.
        draw: epoch -> int32 (N, L) token ids of that epoch's captions.
        plain: an uncompiled ``MiniClip`` of the same sizes: the weights file is saved from it,
            so it holds the model's weights alone (the training state keeps the optimizer's).
    """

    def __init__(self, run_dir, tokens, draw, plain):
        super().__init__()
        self.run_dir, self.tokens, self.draw, self.plain, self.diverged = pathlib.Path(run_dir), tokens, draw, plain, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.tokens.assign(self.draw(epoch))
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(logs["loss"]):  # keep the last good files
            self.diverged, self.model.stop_training = epoch + 1, True
            return
        _append_history(self.run_dir, epoch, logs["loss"], time.perf_counter() - self.start, float(self.model.log_scale.numpy()))
        checkpoint.save_state(self.run_dir, self.model, epoch + 1)
        self.plain.set_weights(self.model.get_weights())
        checkpoint.save_weights(self.run_dir, self.plain)


def _append_history(run_dir, epoch, loss, seconds, log_scale):
    path = pathlib.Path(run_dir) / checkpoint.HISTORY
    lines = path.read_text().splitlines() if path.exists() else ["epoch,loss,seconds,logit_scale"]
    lines = lines[:1] + [line for line in lines[1:] if int(line.split(",")[0]) < epoch]  # a resumed epoch replaces its row
    lines.append(f"{epoch},{loss:.6f},{seconds:.1f},{math.exp(log_scale):.3f}")
    checkpoint.atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text("\n".join(lines) + "\n"))


def _save_config(run_dir, config, tokenizer, thresholds):
    data = {"package": "keras_diffusion", "version": __version__, "text_encoder": dataclasses.asdict(config)}
    held_out = [list(pair) for pair in HELD_OUT]  # (class, attribute, level) that no training caption names
    checkpoint.write_json(pathlib.Path(run_dir) / checkpoint.CONFIG, {**data, "tokenizer": tokenizer.get_config(), "thresholds": thresholds.to_dict(), "held_out": held_out})


def read_clip_config(run_dir):
    """(ClipConfig, WordTokenizer, Thresholds) of a text-encoder run; a ``RunError`` names what is wrong."""
    path = pathlib.Path(run_dir) / checkpoint.CONFIG
    if not path.is_file():
        raise checkpoint.RunError(f"{run_dir} is not a run directory: {checkpoint.CONFIG} is missing (train one with python -m keras_diffusion.train --text-encoder)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise checkpoint.RunError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("package") != "keras_diffusion" or "text_encoder" not in data:
        raise checkpoint.RunError(f"{path} is not a text-encoder run (train one with python -m keras_diffusion.train --text-encoder)")
    try:
        config = from_dict(ClipConfig, data["text_encoder"]).validate()
        return config, WordTokenizer.from_config(data["tokenizer"]), Thresholds.from_dict(data["thresholds"])
    except (KeyError, TypeError, ValueError) as error:
        raise checkpoint.RunError(f"{path}: {error}") from None


def load_clip(run_dir):
    """Rebuild a text-encoder run's model and load its weights: (MiniClip, WordTokenizer, Thresholds)."""
    config, tokenizer, thresholds = read_clip_config(run_dir)
    model = build_clip(config, tokenizer)
    path = pathlib.Path(run_dir) / checkpoint.WEIGHTS
    if not path.is_file():
        raise checkpoint.RunError(f"{path} is missing: the run did not finish an epoch (resume it with --text-encoder --resume {run_dir})")
    model.load_weights(path)
    return model, tokenizer, thresholds


def zero_shot_accuracy(model, tokenizer, images, labels, batch_size=1000):
    """The fraction of images whose closest prompt "a photo of a {class}" names their class."""
    prompts = model.encode_texts(tokenizer.encode([class_prompt(c) for c in range(len(CLASS_WORDS))]))  # (10, D)
    scores = _embed_images(model, images, batch_size) @ np.asarray(prompts).T  # (N, 10)
    return float(np.mean(scores.argmax(axis=1) == np.asarray(labels)))


def attribute_accuracy(model, tokenizer, thresholds, images, labels, batch_size=1000, pairs=None):
    """Per attribute, how often an image is closer to the prompt naming its level than the opposite level's.

    Only the images whose attribute is named in captions (the lowest and highest third of their
    class) count; each is compared with "a photo of a {low word} {class}" and "a photo of a {high
    word} {class}" for its true class: chance is 0.5.

    ``pairs``: only the images of these (class, attribute, level) pairs count, each against the opposite level.

    Returns:
        {attribute: accuracy} (attributes without such images are left out).
    """
    labels = np.asarray(labels)
    embedded, levels = _embed_images(model, images, batch_size), thresholds.levels(images, labels)  # (N, D)
    result = {}
    for attribute in ATTRIBUTES:
        texts = [attribute_prompt(c, attribute, level) for c in range(len(CLASS_WORDS)) for level in (0, 2)]
        prompts = backends.to_numpy(model.encode_texts(tokenizer.encode(texts))).reshape(len(CLASS_WORDS), 2, -1)  # (10, 2, D)
        named = levels[attribute] != 1
        if pairs is not None:
            chosen = [(c, level) for c, a, level in pairs if a == attribute]
            named &= np.isin(labels * 3 + levels[attribute], [c * 3 + level for c, level in chosen])
            if not named.any():
                continue
        scores = np.einsum("nd,nkd->nk", embedded[named], prompts[labels[named]])  # (n, 2): low, high
        result[attribute] = float(np.mean((scores.argmax(axis=1) * 2) == levels[attribute][named]))
    return result


def _embed_images(model, images, batch_size):
    return np.concatenate([backends.to_numpy(model.encode_images(images[i : i + batch_size])) for i in range(0, len(images), batch_size)])


def evaluate_clip(model, tokenizer, thresholds, config):
    """Zero-shot and attribute accuracy on the whole test split."""
    images, labels = load_images("fashion_mnist", "test", config.data_dir, config.data_source)
    per_attribute = attribute_accuracy(model, tokenizer, thresholds, images, labels)
    held_out = attribute_accuracy(model, tokenizer, thresholds, images, labels, pairs=HELD_OUT)
    return {
        "zero_shot": zero_shot_accuracy(model, tokenizer, images, labels), "attributes": float(np.mean(list(per_attribute.values()))), **per_attribute,
        "held_out_attributes": float(np.mean(list(held_out.values()))) if held_out else None, "held_out": [list(pair) for pair in HELD_OUT], "test_images": len(images),
    }


def summary(evaluation):
    """The test-set accuracies in one line, for the end of ``train --text-encoder``."""
    parts = ", ".join(f"{a} {evaluation[a]:.3f}" for a in ATTRIBUTES)
    return (
        f"zero-shot accuracy {evaluation['zero_shot']:.3f} (\"a photo of a {{class}}\", {evaluation['test_images']:,} test images); "
        f"attribute accuracy {evaluation['attributes']:.3f} ({parts}; chance 0.5); "
        + ("" if evaluation.get("held_out_attributes") is None else f"on the pairs no caption named (dark sandals, patterned bags) {evaluation['held_out_attributes']:.3f}")
    )
