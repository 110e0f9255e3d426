"""Figures: the classic demo's 2x6 figure, forward/reverse grids, samples, loss and schedule curves, GIFs.

Every function returns a matplotlib ``Figure`` (shown inline by Jupyter) and,
given ``path``, also saves it as a PNG. Grids are computed as one batched
call and moved to the host once, then only drawn here. Figures are built with
``matplotlib.figure.Figure``, not pyplot, so no global state piles up.

Every grid is ONE image: the images are tiled into one array with NumPy and
drawn with one ``imshow`` (``plot_grid``), which takes a fraction of a second
for any number of images, where one matplotlib axes per image took minutes
for 2,000. Each image pixel is drawn as a zoom x zoom block (nearest
neighbour), so the pixels stay crisp.
"""

import csv
import io
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100  # figures are drawn and saved at this resolution
GAP = 2  # image pixels of white between the images of a grid
LABEL_PX = 16  # screen pixels a line of 8-point text takes, for a label above each image
CAP = 256  # plot_samples draws at most this many images; the .npz has them all


def classic_timesteps(timesteps):
    """The classic demo's columns: 0, T/4, T/2, 3T/4, T−1 (0, 50, 100, 150, 199 for T = 200)."""
    return [0, timesteps // 4, timesteps // 2, 3 * timesteps // 4, timesteps - 1]


def save_figure(fig, path):
    """Save a figure as PNG atomically (written to a temporary name, then renamed)."""
    from keras_diffusion.checkpoint import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write(path, lambda tmp: open(tmp, "wb").write(buffer.getvalue()))


def _pixels(images, scaling):
    """uint8 pixels of images that are uint8 already, or float in ``scaling``."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    from keras_diffusion.data import to_uint8  # data imports TensorFlow: only for float images

    return to_uint8(images, scaling)


def tile_images(cells, gap=GAP, fill=255, border=0, row_gap=None):
    """Lay out a (rows, cols, H, W, C) array of images as ONE (H', W', C) image.

    ``gap`` pixels of ``fill`` separate the columns (``row_gap``, default
    ``gap``, the rows) and ``border`` pixels of it surround the whole.
    """
    cells = np.asarray(cells)
    rows, cols, height, width, channels = cells.shape
    row_gap = gap if row_gap is None else row_gap
    padded = np.full((rows, cols, height + row_gap, width + gap, channels), fill, cells.dtype)
    padded[:, :, :height, :width] = cells
    grid = padded.transpose(0, 2, 1, 3, 4).reshape(rows * (height + row_gap), cols * (width + gap), channels)
    grid = grid[: grid.shape[0] - row_gap, : grid.shape[1] - gap]  # no gap after the last row and column
    return np.pad(grid, ((border, border), (border, border), (0, 0)), constant_values=fill)


def plot_grid(images, row_titles=None, col_titles=None, title=None, path=None, cell_titles=None, zoom=3):
    """A grid of images drawn as one image, with titles: seconds whatever its size.

    Args:
        images: uint8 array (rows, cols, H, W, C), C = 1 (grey) or 3 (RGB).
        row_titles: one label per row, left of it.
        col_titles: one label per column, above the grid.
        title: a title above everything.
        path: also save the figure here as PNG.
        cell_titles: (rows, cols) labels, one above each image.
        zoom: screen pixels per image pixel (at 100 dpi), nearest neighbour.

    Returns:
        The matplotlib ``Figure``.
    """
    images = np.asarray(images)
    if images.ndim != 5 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be a uint8 array (rows, cols, H, W, 1 or 3), got {images.dtype} {images.shape}")
    rows, cols, height, width, channels = images.shape
    for name, titles, count in (("row_titles", row_titles, rows), ("col_titles", col_titles, cols), ("cell_titles", cell_titles, rows)):
        if titles is not None and len(titles) != count:
            raise ValueError(f"{name} must have {count} entries, one a {name[:-7]}, got {len(titles)}")
    # labels above each image need a line of text between the rows
    row_gap = GAP + (math.ceil(LABEL_PX / zoom) if cell_titles is not None else 0)
    grid = tile_images(images, row_gap=row_gap)  # (H', W', C)
    fig = Figure(figsize=(grid.shape[1] * zoom / DPI, grid.shape[0] * zoom / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))  # the image fills the figure; saving with a tight box adds the labels' room
    ax.imshow(grid[..., 0] if channels == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_frame_on(False)
    ax.tick_params(length=0, labelsize=8, top=True, labeltop=True, bottom=False, labelbottom=False)
    tops = np.arange(rows) * (height + row_gap) - 0.5  # pixel edges are at half-integers
    ax.set_xticks(np.arange(cols) * (width + GAP) + (width - 1) / 2, col_titles if col_titles is not None else [""] * cols)
    ax.set_yticks(tops + height / 2, row_titles if row_titles is not None else [""] * rows)
    for r, labels in enumerate(cell_titles if cell_titles is not None else []):
        for c, label in enumerate(labels):
            ax.text(c * (width + GAP) + (width - 1) / 2, tops[r] - 0.5, label, ha="center", va="bottom", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10, pad=6 + (LABEL_PX * 72 / DPI if cell_titles is not None else 0))
    return _finish(fig, path)


def _grid(cells, row_titles=None, col_titles=None, scale=1.0, title=None):
    """``plot_grid`` of a list of rows of uint8 (H, W, C) images, ``scale`` inches an image."""
    cells = np.asarray(cells)
    return plot_grid(cells, row_titles, col_titles, title, zoom=max(1, round(scale * DPI / (cells.shape[2] + GAP))))


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_samples(images, scaling="minus_one_one", ncols=None, title=None, path=None, limit=CAP):
    """A grid of images (N, H, W, C), float in ``scaling`` or uint8: the first ``limit`` of them, in whole rows.

    ``ncols`` defaults to 8, or 16 for more than 64 images. When not all are
    shown the title says so ("256 of 2000").
    """
    pixels = _pixels(images, scaling)
    n = len(pixels)
    if n == 0:
        raise ValueError("plot_samples needs at least one image, got 0")
    ncols = min(ncols or (8 if n <= 64 else 16), n)
    rows = min(-(-n // ncols), max(1, limit // ncols))
    shown = min(n, rows * ncols)
    cells = np.full((rows * ncols,) + pixels.shape[1:], 255, np.uint8)  # (rows·cols, H, W, C); empty cells white
    cells[:shown] = pixels[:shown]
    if shown < n:
        title = f"{title}: {shown} of {n}" if title else f"{shown} of {n} images"
    return plot_grid(cells.reshape((rows, ncols) + pixels.shape[1:]), title=title, path=path)


def plot_forward_grid(schedule, images, timesteps=None, scaling="minus_one_one", seed=0, path=None):
    """Each row one image, each column x_t at one t (from q_sample, one ε per image)."""
    timesteps = np.asarray(classic_timesteps(schedule.timesteps)) if timesteps is None else np.asarray(timesteps)
    from keras_diffusion.forward import forward_snapshots

    x_t = forward_snapshots(schedule, images, timesteps, seed=seed)  # (B, K, H, W, C)
    cells = np.concatenate([_pixels(images, scaling)[:, None], _pixels(x_t, scaling)], axis=1)  # (B, 1 + K, H, W, C)
    titles = ["x0"] + [f"t={t}" for t in timesteps]
    return plot_grid(cells, col_titles=titles, title="forward process q(x_t | x_0)", path=path, zoom=4)


def plot_reverse_grid(denoiser, schedule, n=4, timesteps=None, scaling="minus_one_one", seed=0, path=None, **sample_kwargs):
    """Each row one sample, each column the reverse chain after the step at t (t = 0 is the result)."""
    timesteps = np.asarray(classic_timesteps(schedule.timesteps)[::-1]) if timesteps is None else np.asarray(timesteps)
    x_T = np.random.default_rng(seed).standard_normal((n,) + tuple(denoiser.inputs[0].shape[1:])).astype(np.float32)
    from keras_diffusion.reverse import sample

    _, snaps = sample(denoiser, schedule, n, seed=seed, snapshots=timesteps, x_T=x_T, **sample_kwargs)
    cells = np.concatenate([_pixels(x_T, scaling)[:, None], _pixels(snaps, scaling)], axis=1)  # (n, 1 + K, H, W, C)
    titles = ["x_T (noise)"] + [f"t={t}" for t in timesteps]
    return plot_grid(cells, col_titles=titles, title="reverse process p(x_{t-1} | x_t)", path=path, zoom=4)


def plot_classic(denoiser, schedule, image, scaling="zero_one", seed=0, path=None, **sample_kwargs):
    """The classic demo's figure.

    Row 1: the original, then x_t at t = 0, 50, 100, 150, 199.
    Row 2: the noise x_T, then the reverse chain after the steps at t = 199, 150, 100, 50, 0.
    """
    from keras_diffusion.forward import forward_snapshots
    from keras_diffusion.reverse import sample

    forward_t = classic_timesteps(schedule.timesteps)
    noisy = forward_snapshots(schedule, np.asarray(image)[None], forward_t, seed=seed)  # (1, 5, H, W, C)
    x_T = np.random.default_rng(seed + 1).standard_normal((1,) + np.shape(image)).astype(np.float32)
    reverse_t = forward_t[::-1]
    _, snaps = sample(denoiser, schedule, 1, seed=seed, snapshots=reverse_t, x_T=x_T, **sample_kwargs)  # (1, 5, H, W, C)
    row1 = np.concatenate([np.asarray(image)[None, None], noisy], axis=1)
    row2 = np.concatenate([x_T[:, None], snaps], axis=1)
    cells = _pixels(np.concatenate([row1, row2]), scaling)  # (2, 6, H, W, C)
    labels = [["original"] + [f"t={t}" for t in forward_t], ["noise"] + [f"t={t}" for t in reverse_t]]
    return plot_grid(cells, row_titles=["forward", "reverse"], cell_titles=labels, path=path, zoom=5)


def read_history(path):
    """history.csv (Keras CSVLogger) → {column: list of floats}."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    # CSVLogger writes "NA" for metrics that were not computed (val_loss without validation data)
    columns = [key for key in (rows[0] if rows else {}) if all(row[key] not in ("", "NA") for row in rows)]
    return {key: [float(row[key]) for row in rows] for key in columns}


def plot_loss(history, path=None, title="training loss"):
    """Loss per epoch, from a ``History``, a dict of lists, or a history.csv path."""
    if hasattr(history, "history"):
        history = history.history
    elif not isinstance(history, dict):
        history = read_history(history)
    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    epochs = history.get("epoch", range(len(history["loss"])))
    lines = ax.plot([e + 1 for e in epochs], history["loss"], marker="o", color="tab:blue", label="train loss")
    if "val_loss" in history:  # --val: the test images' loss with the same draws every epoch
        lines += ax.plot([e + 1 for e in epochs], history["val_loss"], marker="o", color="tab:orange", label="test loss (--val)")
    if "fid" in history:  # --fid-every: on its own axis, NaN in the epochs without it
        right = ax.twinx()
        fid = np.asarray(history["fid"], float)
        known = np.isfinite(fid)
        lines += right.plot(np.asarray([e + 1 for e in epochs])[known], fid[known], marker="s", color="tab:green", label="FID (right axis)")
        right.set_ylabel("FID", color="tab:green")
    if len(lines) > 1:  # one legend for both axes
        ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper center")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("MSE on ε")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _finish(fig, path)


def plot_schedules(schedules, path=None):
    """sqrt(ᾱ_t) (signal left) and log SNR(t) for several named schedules."""
    fig = Figure(figsize=(9, 3.2))
    left, right = fig.subplots(1, 2)
    for name, schedule in schedules.items():
        t = np.arange(schedule.timesteps)
        left.plot(t, schedule.sqrt_alpha_bars, label=name)
        right.plot(t, np.log(schedule.snr), label=name)
    left.set(xlabel="t", ylabel="sqrt(ᾱ_t)", title="signal left in x_t")
    right.set(xlabel="t", ylabel="log SNR(t)", title="signal-to-noise ratio")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def ladder_figure(labels, grids, path=None):
    """One row of samples per rung of the ladder, labelled: the whole story in one picture."""
    return plot_grid(np.stack([np.asarray(grid) for grid in grids]), row_titles=labels, path=path)


def plot_loss_t(rows, path=None, floor=272 / 784):
    """Test loss against t, one line per rung, with the rank-512 output floor of the MLPs dashed.

    Args:
        rows: the rows of ``bench ladder``, each with ``rung`` and ``loss_t`` (t as a string -> loss).
        floor: the share of ε's energy a Dense(784) layer fed by 512 units cannot reach (272/784).
    """
    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    ax = fig.subplots()
    for row in rows:
        ts = sorted(row["loss_t"], key=int)
        ax.plot([int(t) for t in ts], [row["loss_t"][t] for t in ts], marker=".", label=row["rung"])
    ax.axhline(floor, color="grey", linestyle="--", label=f"rank-512 output floor ({floor:.3f}, MLP rungs)")
    ax.set(yscale="log", xlabel="t", ylabel="test loss ‖ε − ε̂‖² per pixel", title="loss against t, every rung")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _finish(fig, path)


def save_gif(snapshots, path, scaling="minus_one_one", ncols=4, scale=2, frame_ms=100, hold_ms=1500):
    """Write the reverse chain as an animated GIF: frame k tiles every image's k-th snapshot.

    Args:
        snapshots: (N, K, H, W, 1) states, as ``sample(..., snapshots=...)``
            returns them (float in ``scaling``, or uint8), K frames of N images.
        path: the .gif to write (atomically).
        ncols: images per row of a frame.
        scale: each pixel drawn as scale x scale (nearest neighbour).
        frame_ms: how long each frame is shown; the last one stays ``hold_ms``.

    Returns:
        The path.
    """
    from PIL import Image  # Pillow: a dependency of matplotlib

    from keras_diffusion.checkpoint import atomic_write

    snapshots = np.asarray(snapshots)
    if snapshots.ndim != 5 or snapshots.shape[-1] != 1:
        raise ValueError(f"snapshots must be (N, K, H, W, 1) grayscale images, got shape {snapshots.shape}")
    pixels = _pixels(snapshots, scaling)
    n, frames, height, width, _ = pixels.shape
    ncols = min(ncols, n)
    rows = -(-n // ncols)
    cells = np.zeros((rows * ncols, frames, height, width, 1), np.uint8)  # empty cells black, like the gaps
    cells[:n] = pixels
    cells = cells.reshape(rows, ncols, frames, height, width, 1)
    tile = np.stack([tile_images(cells[:, :, k], fill=0, border=GAP)[..., 0] for k in range(frames)])  # (K, H', W')
    tile = tile.repeat(scale, axis=1).repeat(scale, axis=2)
    # one fixed 256-grey palette for every frame; Pillow's palette optimisation garbles frames that use few greys
    grey = [level for i in range(256) for level in (i, i, i)]
    images = [Image.fromarray(frame, mode="P") for frame in tile]
    for image in images:
        image.putpalette(grey)
    durations = [frame_ms] * (frames - 1) + [hold_ms]
    save = dict(format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0, optimize=False)
    atomic_write(path, lambda tmp: images[0].save(tmp, **save))
    return path


def plot_fid_steps(results, path=None):
    """FID against DDIM steps, one line per run, with the real-data floor dashed.

    Args:
        results: dicts with source, steps, fid and floor, as ``evaluate`` prints them.
    """
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for source in dict.fromkeys(r["source"] for r in results):
        rows = sorted((r for r in results if r["source"] == source and r.get("steps")), key=lambda r: r["steps"])
        ax.plot([r["steps"] for r in rows], [r["fid"] for r in rows], marker="o", label=str(source))
    floor = [r["floor"] for r in results if "floor" in r]
    if floor:
        ax.axhline(floor[0], color="grey", linestyle="--", label=f"real-data floor (n={results[0]['n']})")
    ax.set(xscale="log", yscale="log", xlabel="DDIM steps", ylabel="FID (package classifier)", title="FID against sampling steps")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_curve(x, ys, xlabel, ylabel, title=None, path=None, ylim=None, xscale="linear", markers=True):
    """One or more lines against x: ``ys`` is a list of values, or a dict label -> values (a legend)."""
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for label, values in (ys.items() if isinstance(ys, dict) else [(None, ys)]):
        ax.plot(x, values, marker="o" if markers else None, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xscale=xscale)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if isinstance(ys, dict):
        ax.legend(fontsize=8)
    return _finish(fig, path)
