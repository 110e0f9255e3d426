"""Load Fashion-MNIST / MNIST as uint8 arrays and turn them into tf.data pipelines.

Loading is NumPy; TensorFlow is imported only to build a pipeline, so the
other backends can load and scale images without it.
"""

import gzip
import os
import pathlib
import zlib

import keras
import numpy as np

from keras_diffusion.names import DATASETS, SCALINGS, SOURCES  # import-free, for fast --help

SPLITS = ("train", "test")
# the labels' names, in label order (both data sets have ten classes)
CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(digit) for digit in range(10)),
}
NUM_CLASSES = 10

ENV_VAR = "KERAS_DIFFUSION_DATA"
# Debian's dataset-fashion-mnist package installs /usr/share/datasets/fashion-mnist;
# a module constant so tests can point the search elsewhere.
DEBIAN_ROOT = pathlib.Path("/usr/share/datasets")

_DIR_NAMES = {"fashion_mnist": "fashion-mnist", "mnist": "mnist"}
_PRETTY = {"fashion_mnist": "Fashion-MNIST", "mnist": "MNIST"}
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_UINT8 = 0x08
_IMAGE_SHAPE = (28, 28)
_TFDS_CHUNK = 10000  # examples per batch when reading TFDS into memory


class DataError(ValueError):
    """Data could not be found or is malformed; the message says what to do."""


def label_index(label, dataset="fashion_mnist"):
    """A class by number ("7", 7) or by name, any case ("sneaker", "ankle boot", "t-shirt") → its label."""
    names = CLASS_NAMES[dataset]
    text = str(label).strip().lower()
    if text.isdigit() and int(text) < len(names):
        return int(text)
    wanted = text.replace("_", " ")
    # the whole name, then a part of it ("t-shirt", "top"), then a word ("boot"): the first that is unique
    for part_of in (lambda name: [name], lambda name: name.split("/"), lambda name: name.replace("/", " ").split()):
        matches = [k for k, name in enumerate(names) if wanted in part_of(name.lower())]
        if matches:
            break
    if len(matches) != 1:
        raise ValueError(f"unknown label {label!r}; use 0-{len(names) - 1} or one of: {', '.join(n.lower() for n in names)}")
    return matches[0]


def _check_choice(kind, value, allowed):
    """Raise ValueError unless `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"unknown {kind} {value!r}; expected one of: {', '.join(allowed)}")


def _find_file(directory, stem):
    """Return directory/stem(.gz), preferring the gzipped file, or None."""
    return next((directory / n for n in (stem + ".gz", stem) if (directory / n).is_file()), None)


def _missing_files(directory):
    """Return the IDX stems that `directory` lacks (in neither .gz nor raw form)."""
    return [stem for stem in _FILES["train"] + _FILES["test"] if _find_file(directory, stem) is None]


def _check_user_dir(directory, dataset, origin):
    """Return `directory` as a Path, raising DataError if it lacks the IDX files."""
    directory = pathlib.Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"{origin} {directory} is not a directory; it should hold the four "
                        f"{_PRETTY[dataset]} IDX files.")
    missing = ", ".join(stem + "[.gz]" for stem in _missing_files(directory))
    if missing:
        raise DataError(f"{origin} {directory} does not hold the {_PRETTY[dataset]} IDX files: "
                        f"missing {missing}.")
    return directory


def find_data_dir(dataset="fashion_mnist", data_dir=None):
    """Return the first folder holding the four IDX files of `dataset`, or None.

    Search order: `data_dir`, $KERAS_DIFFUSION_DATA, /usr/share/datasets/<name>, the Keras
    cache <keras home>/datasets/<name>. A folder the user named (argument or environment)
    must hold the files: DataError rather than silently falling through to another copy.
    """
    _check_choice("dataset", dataset, DATASETS)
    if data_dir is not None:
        return _check_user_dir(data_dir, dataset, "data_dir")
    if os.environ.get(ENV_VAR):
        return _check_user_dir(os.environ[ENV_VAR], dataset, f"${ENV_VAR}")
    name = _DIR_NAMES[dataset]
    keras_home = pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras"))  # as Keras does
    for candidate in (DEBIAN_ROOT / name, keras_home / "datasets" / name):
        if candidate.is_dir() and not _missing_files(candidate):
            return candidate
    return None


def _read_bytes(path):
    """Return the bytes of `path`, gunzipping when it starts with the gzip magic."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x1f\x8b":  # sniff content: a misnamed file still loads
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a valid gzip file ({err}); delete it and reinstall "
                        "the dataset.") from err


def read_idx(path):
    """Parse one IDX file (gzipped or raw) into a uint8 array shaped by its header, e.g. (60000, 28, 28)."""
    path = pathlib.Path(path)
    data = _read_bytes(path)
    fix = "delete it and reinstall the dataset"
    if len(data) < 4:
        raise DataError(f"{path} is truncated: no IDX header; {fix}.")
    if data[0] != 0 or data[1] != 0 or data[3] < 1:
        raise DataError(f"{path} has a bad IDX magic number 0x{data[:4].hex()} "
                        f"(expected 0x00000803 for images, 0x00000801 for labels); {fix}.")
    if data[2] != _UINT8:
        raise DataError(f"{path} holds IDX data type 0x{data[2]:02x}; only unsigned bytes (0x08) "
                        "are supported.")
    ndim, header = data[3], 4 + 4 * data[3]
    if len(data) < header:
        raise DataError(f"{path} is truncated: the header needs {header} bytes, found {len(data)}; {fix}.")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected, found = int(np.prod(dims)), len(data) - header
    what = {3: "pixels", 1: "labels"}.get(ndim, "data")
    if found != expected:
        problem = "truncated" if found < expected else "malformed"
        raise DataError(f"{path} is {problem}: expected {expected} bytes of {what}, found {found}; {fix}.")
    # A copy: np.frombuffer over bytes would hand callers a read-only array.
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims).copy()


def _load_idx(directory, split):
    """Read the images and labels of `split` from an IDX folder."""
    images, labels = (read_idx(_find_file(directory, stem)) for stem in _FILES[split])
    if images.shape[1:] != _IMAGE_SHAPE or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{directory} holds mismatched {split} files: images {images.shape}, "
                        f"labels {labels.shape}; expected (N, 28, 28) and (N,).")
    return images, labels


def _not_found_message(dataset):
    """Return the one message telling the user how to provide `dataset`."""
    hint = "pass --data-dir DIR (a folder with the four IDX files), or set " + ENV_VAR + "."
    if dataset == "fashion_mnist":
        return "Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist`, or " + hint
    return f"{_PRETTY[dataset]} not found. Please " + hint


def _load_keras(dataset, split):
    """Load `split` with keras.datasets (downloads into the Keras cache if needed)."""
    train, test = getattr(keras.datasets, dataset).load_data()
    return train if split == "train" else test


def _load_tfds(dataset, split, data_dir, limit):
    """Load an already prepared TFDS copy of `dataset`; never downloads."""
    try:
        import tensorflow_datasets as tfds  # slow to import: only when asked for
    except ImportError as err:
        raise DataError("source='tfds' needs tensorflow-datasets: install it, or use source='idx'.") from err
    # Slicing in TFDS reads only what is kept, instead of all 60000 examples.
    tfds_split = split if limit is None else f"{split}[:{int(limit)}]"
    tfds_dir = None if data_dir is None else os.fspath(data_dir)
    try:
        ds = tfds.load(dataset, split=tfds_split, data_dir=tfds_dir, download=False, as_supervised=True)
        # Not batch_size=-1: when split sizes are unknown (e.g. tfds.testing.mock_data)
        # TFDS batches by sys.maxsize and TensorFlow aborts the whole process.
        chunks = list(tfds.as_numpy(ds.batch(_TFDS_CHUNK)))
    except Exception as err:  # TFDS raises assorted types for "not prepared"
        where = data_dir or "the default TFDS data dir (~/tensorflow_datasets)"
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        raise DataError(f"TFDS could not load {dataset!r} from {where}: {reason}. "
                        f"Prepare it first (`tfds build {dataset}` on a machine with "
                        "internet) and pass its data dir, or use source='idx'.") from err
    if not chunks:
        raise DataError(f"TFDS returned no {split} examples for {dataset!r}.")
    images = np.concatenate([c[0] for c in chunks]).astype(np.uint8)
    labels = np.concatenate([c[1] for c in chunks]).astype(np.uint8)
    return images.reshape(-1, *_IMAGE_SHAPE), labels


def load_images(dataset="fashion_mnist", split="train", data_dir=None, source="auto", limit=None):
    """Load one split as arrays.

    Args:
        dataset: one of DATASETS.
        split: "train" or "test".
        data_dir: folder with the IDX files (for source "tfds": the TFDS data dir).
        source: "auto" (local IDX files, then a Keras download), "idx", "tfds", "keras".
        limit: keep only the first `limit` examples.
    Returns:
        (images uint8 (N, 28, 28, 1), labels uint8 (N,)).
    """
    _check_choice("dataset", dataset, DATASETS)
    _check_choice("split", split, SPLITS)
    _check_choice("source", source, SOURCES)
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ValueError(f"limit must be >= 1, got {limit!r}")
    if source == "tfds":
        images, labels = _load_tfds(dataset, split, data_dir, limit)
    elif source == "keras":
        try:
            images, labels = _load_keras(dataset, split)
        except Exception as err:  # keras raises a bare Exception on fetch failure
            raise DataError(f"keras.datasets could not load {dataset}: {str(err).rstrip('.')}. "
                            + _not_found_message(dataset)) from err
    else:
        directory = find_data_dir(dataset, data_dir)
        if directory is not None:
            images, labels = _load_idx(directory, split)
        elif source == "idx":
            raise DataError(_not_found_message(dataset))
        else:
            try:  # last resort: needs internet, which many machines lack
                images, labels = _load_keras(dataset, split)
            except Exception as err:
                raise DataError(_not_found_message(dataset)) from err
    if limit is not None:
        images, labels = images[: int(limit)], labels[: int(limit)]
    images = np.asarray(images, np.uint8).reshape(-1, *_IMAGE_SHAPE, 1)
    return images, np.asarray(labels, np.uint8).reshape(-1)


def scale_images(images, scaling):
    """Map uint8 pixels 0..255 to float32 in [0, 1] or [-1, 1]; NumPy in, NumPy out; tensor in, tensor out."""
    _check_choice("scaling", scaling, SCALINGS)
    if not isinstance(images, np.ndarray) and keras.ops.is_tensor(images):
        x = keras.ops.cast(images, "float32") / 255.0
    else:
        x = np.asarray(images).astype(np.float32) / np.float32(255.0)
    return x * 2.0 - 1.0 if scaling == "minus_one_one" else x


def to_uint8(x, scaling):
    """Invert scale_images: clip to the range and round to uint8 0..255 (NumPy)."""
    _check_choice("scaling", scaling, SCALINGS)
    x = np.asarray(x, np.float32)
    if scaling == "minus_one_one":
        x = (x + 1.0) / 2.0
    # Diverging samplers can emit NaN/inf; show them as black/white, not garbage.
    x = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.round(x * 255.0).astype(np.uint8)


def make_dataset(images, batch_size, scaling, shuffle=True, seed=None, drop_remainder=True, labels=None):
    """Build a shuffled, batched, scaled, prefetched tf.data pipeline from uint8 images (N, 28, 28, 1).

    Returns:
        tf.data.Dataset of float32 (B, 28, 28, 1) batches, or (images, int32 labels) when labels is given.
    """
    import tensorflow as tf

    _check_choice("scaling", scaling, SCALINGS)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    images = np.asarray(images)
    if images.ndim == 3:  # (N, 28, 28): add the channel axis the models expect
        images = images[..., None]
    if len(images) == 0:
        raise ValueError("make_dataset got no images")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    # A subset smaller than one batch would otherwise yield no batches at all.
    if drop_remainder and len(images) < batch_size:
        drop_remainder = False
    # Keep uint8 in memory (4x smaller than float32) and scale per batch.
    elements = images if labels is None else (images, np.asarray(labels))
    ds = tf.data.Dataset.from_tensor_slices(elements).cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if labels is None:
        ds = ds.map(lambda x: scale_images(x, scaling), num_parallel_calls=tf.data.AUTOTUNE)
    else:  # int32 labels: what embedding lookups and sparse losses expect
        ds = ds.map(lambda x, y: (scale_images(x, scaling), tf.cast(y, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def validation_dataset(images, batch_size, scaling, timesteps, seed=0, labels=None):
    """Held-out images with one fixed draw of t and ε each: a validation loss comparable from epoch to epoch.

    Fresh draws each epoch would add their own noise to the curve; fixed ones
    leave only the change of the model. Returns a tf.data.Dataset of dicts
    {"x0", "t", "eps"[, "labels"]}, which ``DiffusionModel.test_step`` reads.
    """
    import tensorflow as tf

    images = np.asarray(images)
    images = images[..., None] if images.ndim == 3 else images
    rng = np.random.default_rng(seed)
    elements = {
        "x0": scale_images(images, scaling),
        "t": rng.integers(0, timesteps, len(images)).astype(np.int32),
        "eps": rng.standard_normal(images.shape).astype(np.float32),
    }
    if labels is not None:
        elements["labels"] = np.asarray(labels, np.int32)
    return tf.data.Dataset.from_tensor_slices(elements).batch(int(batch_size)).cache().prefetch(tf.data.AUTOTUNE)


def clip_range(scaling):
    """The data range, to clip x̂_0 into while sampling."""
    return (0.0, 1.0) if scaling == "zero_one" else (-1.0, 1.0)


def sampling_clip(config):
    """The clip argument of ``sample`` for a run: its data range when ``config.clip``, else None.

    Clipping x̂_0 is what keeps the first reverse steps of a cosine schedule
    stable: there sqrt(ᾱ_t) is about 2e-4, so an error in ε̂ is blown up
    thousands of times in x̂_0 (DDPM's reference code clips too).
    """
    return clip_range(config.scaling) if config.clip else None
