"""Figures: the classic demo's 2x6 figure, forward/reverse grids, samples, loss and schedule curves, GIFs.

Every function returns a matplotlib ``Figure`` (shown inline by Jupyter) and,
given ``path``, also saves it as a PNG. Grids are computed as one batched
call and moved to the host once, then only drawn here. Figures are built with
``matplotlib.figure.Figure``, not pyplot, so no global state piles up.
"""

import csv
import io

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from keras_diffusion.data import to_uint8
from keras_diffusion.forward import forward_snapshots
from keras_diffusion.reverse import sample


def classic_timesteps(timesteps):
    """The classic demo's columns: 0, T/4, T/2, 3T/4, T−1 (0, 50, 100, 150, 199 for T = 200)."""
    return [0, timesteps // 4, timesteps // 2, 3 * timesteps // 4, timesteps - 1]


def save_figure(fig, path):
    """Save a figure as PNG atomically (written to a temporary name, then renamed)."""
    from keras_diffusion.checkpoint import atomic_write

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write(path, lambda tmp: open(tmp, "wb").write(buffer.getvalue()))


def _grid(cells, row_titles=None, col_titles=None, scale=1.0, title=None):
    """Draw a (rows, cols) grid of uint8 (H, W, 1) images without axes."""
    rows, cols = len(cells), len(cells[0])
    fig = Figure(figsize=(cols * scale, rows * scale + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for r in range(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.imshow(cells[r][c][..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if col_titles is not None and r == 0:
                ax.set_title(col_titles[c], fontsize=8)
            if row_titles is not None and c == 0:
                ax.set_ylabel(row_titles[r], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_samples(images, scaling="minus_one_one", ncols=8, title=None, path=None):
    """A grid of images (N, H, W, C), float in ``scaling`` or uint8."""
    images = np.asarray(images)
    pixels = images if images.dtype == np.uint8 else to_uint8(images, scaling)
    ncols = min(ncols, len(pixels))
    rows = -(-len(pixels) // ncols)
    blank = np.zeros_like(pixels[0])
    cells = [[pixels[r * ncols + c] if r * ncols + c < len(pixels) else blank for c in range(ncols)] for r in range(rows)]
    return _finish(_grid(cells, scale=0.9, title=title), path)


def plot_forward_grid(schedule, images, timesteps=None, scaling="minus_one_one", seed=0, path=None):
    """Each row one image, each column x_t at one t (from q_sample, one ε per image)."""
    timesteps = np.asarray(classic_timesteps(schedule.timesteps)) if timesteps is None else np.asarray(timesteps)
    x_t = forward_snapshots(schedule, images, timesteps, seed=seed)  # (B, K, H, W, C)
    cells = [[to_uint8(images[b], scaling)] + list(to_uint8(x_t[b], scaling)) for b in range(len(images))]
    titles = ["x0"] + [f"t={t}" for t in timesteps]
    return _finish(_grid(cells, col_titles=titles, title="forward process q(x_t | x_0)"), path)


def plot_reverse_grid(denoiser, schedule, n=4, timesteps=None, scaling="minus_one_one", seed=0, path=None, **sample_kwargs):
    """Each row one sample, each column the reverse chain after the step at t (t = 0 is the result)."""
    timesteps = np.asarray(classic_timesteps(schedule.timesteps)[::-1]) if timesteps is None else np.asarray(timesteps)
    x_T = np.random.default_rng(seed).standard_normal((n,) + tuple(denoiser.inputs[0].shape[1:])).astype(np.float32)
    _, snaps = sample(denoiser, schedule, n, seed=seed, snapshots=timesteps, x_T=x_T, **sample_kwargs)
    cells = [[to_uint8(x_T[b], scaling)] + list(to_uint8(snaps[b], scaling)) for b in range(n)]
    titles = ["x_T (noise)"] + [f"t={t}" for t in timesteps]
    return _finish(_grid(cells, col_titles=titles, title="reverse process p(x_{t-1} | x_t)"), path)


def plot_classic(denoiser, schedule, image, scaling="zero_one", seed=0, path=None, **sample_kwargs):
    """The classic demo's figure.

    Row 1: the original, then x_t at t = 0, 50, 100, 150, 199.
    Row 2: the noise x_T, then the reverse chain after the steps at t = 199, 150, 100, 50, 0.
    """
    forward_t = classic_timesteps(schedule.timesteps)
    noisy = forward_snapshots(schedule, np.asarray(image)[None], forward_t, seed=seed)[0]  # (5, H, W, C)
    x_T = np.random.default_rng(seed + 1).standard_normal((1,) + np.shape(image)).astype(np.float32)
    reverse_t = forward_t[::-1]
    _, snaps = sample(denoiser, schedule, 1, seed=seed, snapshots=reverse_t, x_T=x_T, **sample_kwargs)
    row1 = [to_uint8(image, scaling)] + list(to_uint8(noisy, scaling))
    row2 = [to_uint8(x_T[0], scaling)] + list(to_uint8(snaps[0], scaling))
    fig = _grid([row1, row2], row_titles=["forward", "reverse"], scale=1.4)
    for ax, label in zip(fig.axes, ["original"] + [f"t={t}" for t in forward_t] + ["noise"] + [f"t={t}" for t in reverse_t]):
        ax.set_title(label, fontsize=8)
    return _finish(fig, path)


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
    ax.plot([e + 1 for e in epochs], history["loss"], marker="o", label="train")
    if "fid" in history:  # --fid-every: on its own axis, NaN in the epochs without it
        right = ax.twinx()
        fid = np.asarray(history["fid"], float)
        known = np.isfinite(fid)
        right.plot(np.asarray([e + 1 for e in epochs])[known], fid[known], marker="s", color="tab:orange", label="FID")
        right.set_ylabel("FID", color="tab:orange")
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
    fig = _grid([list(grid) for grid in grids], scale=0.9)
    for row, label in enumerate(labels):
        ax = fig.axes[row * len(grids[0])]
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
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
    pixels = snapshots if snapshots.dtype == np.uint8 else to_uint8(snapshots, scaling)
    n, frames, height, width, _ = pixels.shape
    ncols = min(ncols, n)
    rows, pad = -(-n // ncols), 2
    tile = np.zeros((frames, rows * (height + pad) + pad, ncols * (width + pad) + pad), np.uint8)  # (K, H', W')
    for i in range(n):
        top, left = pad + (i // ncols) * (height + pad), pad + (i % ncols) * (width + pad)
        tile[:, top : top + height, left : left + width] = pixels[i, ..., 0]
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
