import gzip
import struct

import numpy as np
import pytest


def write_idx(path, array):
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def make_idx_dir(folder, n_train=600, n_test=100, seed=0):
    """A folder with the four Fashion-MNIST IDX files holding blurry random blobs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory):
    """Synthetic IDX files: the command lines are tested without the real data set."""
    return make_idx_dir(tmp_path_factory.mktemp("fake-fashion-mnist"), n_test=200)  # FID needs n > 128
