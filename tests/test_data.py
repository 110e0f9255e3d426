"""Tests for keras_diffusion.data: IDX parsing, data search, sources, scaling, pipelines."""

import gzip
import pathlib
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_diffusion import data
from keras_diffusion.data import DataError

REAL_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
N_TRAIN, N_TEST = 10, 5


def idx_bytes(array, magic=None):
    """Return `array` (uint8) encoded as IDX bytes, optionally with a forced magic."""
    array = np.asarray(array, np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path, array, gz=True, magic=None):
    """Write `array` as an IDX file at path(.gz); return the file's path."""
    payload = idx_bytes(array, magic)
    path = pathlib.Path(str(path) + ".gz") if gz else pathlib.Path(path)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_idx_dir(directory, gz=True, skip=()):
    """Write a tiny 10-train / 5-test IDX dataset into `directory`; return the arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n, prefix in (("train", N_TRAIN, "train"), ("test", N_TEST, "t10k")):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, (n,), dtype=np.uint8)
        arrays[split] = images, labels
        for stem, array in ((f"{prefix}-images-idx3-ubyte", images),
                            (f"{prefix}-labels-idx1-ubyte", labels)):
            if stem not in skip:
                write_idx(directory / stem, array, gz=gz)
    return arrays


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    """Hide every local copy: no env var, empty HOME, Debian root pointing nowhere."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(data, "DEBIAN_ROOT", tmp_path / "no-debian")


def fail_download():
    raise Exception("URL fetch failure: no network in tests")


@pytest.mark.parametrize("gz", [True, False])
def test_load_from_explicit_dir(tmp_path, no_local_data, gz):
    arrays = make_idx_dir(tmp_path / "d", gz=gz)
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        images, labels = data.load_images(split=split, data_dir=tmp_path / "d")
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.uint8
        np.testing.assert_array_equal(images[..., 0], arrays[split][0])
        np.testing.assert_array_equal(labels, arrays[split][1])


def test_load_from_env_var(tmp_path, no_local_data, monkeypatch):
    make_idx_dir(tmp_path / "env")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.find_data_dir() == tmp_path / "env"
    images, _ = data.load_images(split="test", source="idx")
    assert images.shape == (N_TEST, 28, 28, 1)


def test_search_finds_debian_and_keras_cache(tmp_path, no_local_data, monkeypatch):
    assert data.find_data_dir("fashion_mnist") is None
    make_idx_dir(tmp_path / "home" / ".keras" / "datasets" / "mnist")
    assert data.find_data_dir("mnist") == tmp_path / "home" / ".keras" / "datasets" / "mnist"
    make_idx_dir(tmp_path / "no-debian" / "fashion-mnist")
    assert data.find_data_dir() == tmp_path / "no-debian" / "fashion-mnist"


def test_explicit_dir_missing_file(tmp_path, no_local_data):
    make_idx_dir(tmp_path / "d", skip=("t10k-labels-idx1-ubyte",))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as err:
        data.load_images(data_dir=tmp_path / "d")
    assert str(tmp_path / "d") in str(err.value)
    with pytest.raises(DataError, match="not a directory"):
        data.find_data_dir(data_dir=tmp_path / "absent")


def test_explicit_dir_does_not_fall_through(tmp_path, no_local_data):
    make_idx_dir(tmp_path / "no-debian" / "fashion-mnist")  # a valid copy elsewhere
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="missing"):
        data.find_data_dir(data_dir=tmp_path / "empty")


def test_truncated_file(tmp_path):
    payload = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(payload[:1000]))
    with pytest.raises(DataError, match="truncated") as err:
        data.read_idx(path)
    assert path.name in str(err.value) and "2352" in str(err.value)
    (tmp_path / "short").write_bytes(payload[:6])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(tmp_path / "short")


def test_wrong_magic(tmp_path):
    path = write_idx(tmp_path / "bad", np.zeros((2, 28, 28)), magic=0x12340803)
    with pytest.raises(DataError, match="magic") as err:
        data.read_idx(path)
    assert "bad.gz" in str(err.value)


def test_bad_gzip_and_trailing_bytes(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4,), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[:-10])
    with pytest.raises(DataError, match="gzip"):
        data.read_idx(tmp_path / "cut.gz")
    (tmp_path / "long").write_bytes(idx_bytes(np.zeros((4,), np.uint8)) + b"xx")
    with pytest.raises(DataError, match="malformed"):
        data.read_idx(tmp_path / "long")


def test_read_idx_shapes(tmp_path):
    labels = np.arange(7, dtype=np.uint8)
    np.testing.assert_array_equal(data.read_idx(write_idx(tmp_path / "l", labels)), labels)
    images = data.read_idx(write_idx(tmp_path / "i", np.ones((2, 28, 28)), gz=False))
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8


def test_limit(tmp_path, no_local_data):
    arrays = make_idx_dir(tmp_path / "d")
    images, labels = data.load_images(data_dir=tmp_path / "d", limit=3)
    assert images.shape == (3, 28, 28, 1) and labels.shape == (3,)
    np.testing.assert_array_equal(labels, arrays["train"][1][:3])
    images, _ = data.load_images(data_dir=tmp_path / "d", limit=1000)
    assert len(images) == N_TRAIN
    with pytest.raises(ValueError, match="limit must be >= 1, got 0"):
        data.load_images(data_dir=tmp_path / "d", limit=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="'cifar'.*fashion_mnist, mnist"):
        data.load_images("cifar")
    with pytest.raises(ValueError, match="'valid'.*train, test"):
        data.load_images(split="valid")
    with pytest.raises(ValueError, match="'web'.*auto, idx, tfds, keras"):
        data.load_images(source="web")
    with pytest.raises(ValueError, match="'0_255'.*zero_one, minus_one_one"):
        data.scale_images(np.zeros((1, 28, 28, 1), np.uint8), "0_255")


def test_all_sources_fail(no_local_data, monkeypatch):
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fail_download)
    with pytest.raises(DataError) as err:
        data.load_images()
    message = str(err.value)
    assert "dataset-fashion-mnist" in message and "--data-dir" in message
    assert data.ENV_VAR in message
    with pytest.raises(DataError, match="--data-dir"):
        data.load_images(source="idx")
    with pytest.raises(DataError, match="no network"):
        data.load_images(source="keras")


def test_mnist_message_has_no_apt_package(no_local_data, monkeypatch):
    monkeypatch.setattr(keras.datasets.mnist, "load_data", fail_download)
    with pytest.raises(DataError) as err:
        data.load_images("mnist")
    assert "--data-dir" in str(err.value) and "apt-get" not in str(err.value)


def test_keras_source_uses_load_data(monkeypatch):
    fake = lambda: ((np.ones((4, 28, 28), np.uint8), np.arange(4)),
                    (np.zeros((2, 28, 28), np.uint8), np.arange(2)))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fake)
    images, labels = data.load_images(split="test", source="keras")
    assert images.shape == (2, 28, 28, 1) and labels.dtype == np.uint8


@pytest.mark.parametrize("scaling,lo,hi", [("zero_one", 0.0, 1.0), ("minus_one_one", -1.0, 1.0)])
def test_scaling_round_trip(scaling, lo, hi):
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    scaled = data.scale_images(x, scaling)
    assert scaled.dtype == np.float32
    assert scaled.min() == lo and scaled.max() == hi
    np.testing.assert_array_equal(data.to_uint8(scaled, scaling), x)
    tensor = data.scale_images(tf.constant(x), scaling)
    assert tf.is_tensor(tensor) and tensor.dtype == tf.float32
    np.testing.assert_array_equal(data.to_uint8(tensor, scaling), x)
    out_of_range = data.to_uint8(np.array([lo - 5, hi + 5, np.nan]), scaling)
    np.testing.assert_array_equal(out_of_range, [0, 255, 0])


def test_make_dataset():
    images = np.random.default_rng(0).integers(0, 256, (10, 28, 28, 1), dtype=np.uint8)
    ds = data.make_dataset(images, 4, "minus_one_one", seed=1)
    assert ds.element_spec == tf.TensorSpec((4, 28, 28, 1), tf.float32)
    batches = list(ds)
    assert len(batches) == 2
    assert all(-1.0 <= float(tf.reduce_min(b)) and float(tf.reduce_max(b)) <= 1.0
               for b in batches)
    kept = data.make_dataset(images, 4, "zero_one", shuffle=False, drop_remainder=False)
    assert kept.element_spec.shape.as_list() == [None, 28, 28, 1]
    first = next(iter(kept))
    np.testing.assert_array_equal(data.to_uint8(first, "zero_one"), images[:4])
    assert [len(b) for b in kept] == [4, 4, 2]


def test_make_dataset_labels_and_tiny_subset():
    images = np.zeros((3, 28, 28, 1), np.uint8)
    labels = np.array([1, 2, 3], np.uint8)
    ds = data.make_dataset(images, 8, "zero_one", labels=labels, shuffle=False)
    batches = list(ds)  # fewer images than one batch: still one (partial) batch
    assert len(batches) == 1
    x, y = batches[0]
    assert x.shape == (3, 28, 28, 1) and x.dtype == tf.float32
    assert y.dtype == tf.int32 and y.numpy().tolist() == [1, 2, 3]


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, True])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be"):
        data.make_dataset(np.zeros((4, 28, 28, 1), np.uint8), batch_size, "zero_one")


def test_tfds_source_with_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        images, labels = data.load_images(source="tfds")
        assert images.shape == (8, 28, 28, 1) and images.dtype == np.uint8
        assert labels.shape == (8,) and labels.dtype == np.uint8
        images, _ = data.load_images(split="test", source="tfds", limit=3)
        assert images.shape == (3, 28, 28, 1)


def test_tfds_source_not_prepared(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="tfds build fashion_mnist"):
        data.load_images(source="tfds", data_dir=tmp_path)


@pytest.mark.skipif(not REAL_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    for split, n in (("train", 60000), ("test", 10000)):
        images, labels = data.load_images(split=split, data_dir=REAL_DIR, source="idx")
        assert images.shape == (n, 28, 28, 1) and images.dtype == np.uint8
        assert labels.shape == (n,) and labels.dtype == np.uint8
        assert labels.min() == 0 and labels.max() == 9
        assert images.max() == 255
