"""Figures: every grid is one image whatever its size; the reverse-chain GIF is written, animated, and refuses arrays it cannot draw."""

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


def _image_artists(fig):
    return sum(len(ax.images) for ax in fig.axes)


def test_a_grid_of_2000_samples_is_one_image_and_says_how_many_it_shows(tmp_path):
    from keras_diffusion.plotting import plot_samples

    images = np.random.default_rng(0).integers(0, 256, (2000, 28, 28, 1), dtype=np.uint8)
    fig = plot_samples(images, title="unet", path=tmp_path / "samples.png")  # drawn and saved: seconds, not minutes
    assert _image_artists(fig) == 1
    assert fig.axes[0].get_title() == "unet: 256 of 2000"
    shown = fig.axes[0].images[0].get_array()
    assert shown.shape == (16 * 30 - 2, 16 * 30 - 2)  # 16 x 16 images of 28 pixels, 2-pixel gaps
    np.testing.assert_array_equal(shown[30:58, 60:88], images[16 + 2, ..., 0])  # row 1, column 2
    with Image.open(tmp_path / "samples.png") as png:
        assert png.size[0] >= 3 * 478  # every image pixel drawn at least 3 x 3


def test_plot_samples_fills_the_last_row_with_blanks_and_keeps_small_grids_whole():
    from keras_diffusion.plotting import plot_samples

    images = np.zeros((10, 28, 28, 1), np.float32)  # float in [-1, 1]: 0 is mid-grey
    fig = plot_samples(images, ncols=4)
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (3 * 30 - 2, 4 * 30 - 2) and fig.axes[0].get_title() == ""
    assert grid[0, 0] == 128 and grid[60:, 60:].min() == 255  # cells 11 and 12: empty, white


def test_plot_grid_labels_rows_columns_and_cells():
    from keras_diffusion.plotting import plot_grid

    cells = np.zeros((2, 3, 28, 28, 1), np.uint8)
    fig = plot_grid(cells, row_titles=["a", "b"], col_titles=["x", "y", "z"], cell_titles=[["1", "2", "3"], ["4", "5", "6"]], title="T")
    ax = fig.axes[0]
    assert _image_artists(fig) == 1
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "2", "3", "4", "5", "6"] and ax.get_title() == "T"


@pytest.mark.parametrize(
    "images, kwargs, message",
    [
        (np.zeros((4, 28, 28, 1), np.uint8), {}, r"\(rows, cols, H, W, 1 or 3\).*\(4, 28, 28, 1\)"),
        (np.zeros((1, 2, 28, 28, 1), np.float32), {}, "uint8 array.*float32"),
        (np.zeros((1, 2, 28, 28, 1), np.uint8), {"col_titles": ["only one"]}, "col_titles must have 2 entries, one a col, got 1"),
    ],
)
def test_plot_grid_refuses_what_it_cannot_draw(images, kwargs, message):
    from keras_diffusion.plotting import plot_grid

    with pytest.raises(ValueError, match=message):
        plot_grid(images, **kwargs)


def test_tile_images_lays_out_rows_and_columns():
    from keras_diffusion.plotting import tile_images

    cells = np.arange(2 * 3, dtype=np.uint8).reshape(2, 3, 1, 1, 1) + 1  # six 1x1 images valued 1..6
    grid = tile_images(cells, gap=1, fill=0, border=1)[..., 0]
    expected = np.array([[0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 2, 0, 3, 0], [0, 0, 0, 0, 0, 0, 0], [0, 4, 0, 5, 0, 6, 0], [0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(grid, expected)


def test_figures_of_the_run_are_one_image_each():
    from keras_diffusion.models import build_model
    from keras_diffusion.plotting import ladder_figure, plot_classic, plot_forward_grid, plot_reverse_grid
    from keras_diffusion.schedule import NoiseSchedule

    schedule, denoiser = NoiseSchedule.linear(8), build_model("mlp_seed", hidden=8, timesteps=8)
    x0 = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    figures = [
        plot_forward_grid(schedule, x0),
        plot_reverse_grid(denoiser, schedule, n=2),
        plot_classic(denoiser, schedule, x0[0], scaling="minus_one_one"),
        ladder_figure(["a", "b"], [np.zeros((4, 28, 28, 1), np.uint8)] * 2),
    ]
    assert [_image_artists(fig) for fig in figures] == [1, 1, 1, 1]
    assert figures[0].axes[0].images[0].get_array().shape == (3 * 30 - 2, 6 * 30 - 2)  # x0 and 5 timesteps
    assert len(figures[2].axes[0].texts) == 12  # the classic figure's label above each image
