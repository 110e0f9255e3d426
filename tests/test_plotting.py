"""Figures: the reverse-chain GIF is written, animated, and refuses arrays it cannot draw."""

import numpy as np
import pytest
from PIL import Image

from keras_diffusion.plotting import save_gif


def test_save_gif_writes_one_tiled_frame_per_snapshot(tmp_path):
    rng = np.random.default_rng(0)
    snapshots = rng.uniform(-1, 1, (5, 3, 28, 28, 1)).astype(np.float32)  # 5 images, 3 frames
    snapshots[:, -1] = 1.0  # the last frame: every image white
    path = save_gif(snapshots, tmp_path / "reverse.gif", ncols=4, scale=2)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        # 2 rows x 4 columns of 28-pixel images with 2-pixel gaps, drawn twice as large
        assert gif.size == (2 * (4 * 30 + 2), 2 * (2 * 30 + 2))
        gif.seek(2)
        last = np.asarray(gif.convert("L"))
    assert last[2 * 2 : 2 * 30, 2 * 2 : 2 * 30].min() == 255  # the first image, all white
    assert last[-2 * 30 :, -2 * 30 :].max() == 0  # the empty 8th cell stays black


def test_save_gif_refuses_a_batch_without_frames(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, K, H, W, 1\).*\(4, 28, 28, 1\)"):
        save_gif(np.zeros((4, 28, 28, 1)), tmp_path / "x.gif")
