"""Latent diffusion: the same schedule, forward and reverse core, run on an autoencoder's latents.

    python -m keras_diffusion.train --latent --out runs/latent
    python -m keras_diffusion.train --latent --autoencoder runs/latent --epochs 10 --out runs/latent-10
    python -m keras_diffusion.sample --run runs/latent --n 64 --out samples.png

Rombach et al. 2022 split the work in two: an autoencoder learns to throw
away the pixel detail nobody can see, and the diffusion model learns the
distribution of what is left, z = s·E(x) (7x7xC here instead of 28x28x1).
A sample is D(z_0 / s) of a latent z_0 drawn by the ordinary reverse chain.

A latent run directory is an ordinary run: config.json (``latent: true``,
``image_shape`` the latents' [7, 7, C]), the U-Net's weights, history.csv,
the figures, plus ``autoencoder/`` holding the first stage (its config with
the scale factor s, weights, history and reconstructions). ``load_run``
therefore gives the latent U-Net; ``sample.draw`` decodes with ``load_decoder``.

Reference:
    Rombach et al. 2022, *High-Resolution Image Synthesis with Latent Diffusion
    Models*, https://arxiv.org/abs/2112.10752 (sec. 3, app. D.1 for the scale factor)
"""

import pathlib
import shutil
import time

import keras
import numpy as np

from keras_diffusion import __version__, checkpoint
from keras_diffusion.data import load_images, make_dataset, scale_images, to_uint8
from keras_diffusion.models.autoencoder import Autoencoder

FOLDER = "autoencoder"  # inside a latent run
CONFIG = "autoencoder.json"
WEIGHTS = "autoencoder.weights.h5"
FILES = (WEIGHTS, "history.csv", "reconstructions.png", CONFIG)  # copied in this order: the config last marks it whole
KL_WEIGHT = 1e-4  # enough to fix the latents' scale and smooth them, too little to blur the reconstructions
BATCH_SIZE, LR = 128, 2e-3
SCALE_N = 10_000  # training images whose latents set the scale factor
TEST_N = 1_000  # test images the reconstruction PSNR is measured on


def scale_factor(autoencoder, x):
    """s = 1 / std(E(x)) over the images x, so that the latents the diffusion model sees have unit variance.

    The schedule assumes data of about unit scale: with latents of std 3,
    x_T ~ N(0, I) would hold a third of their spread (Rombach et al. 2022, app. D.1).
    """
    mean = encode(autoencoder, 1.0, x)  # (N, 7, 7, C)
    return float(1.0 / np.std(mean))


def encode(autoencoder, scale, x, batch_size=500):
    """z = s·μ(x): the scaled latents (N, 7, 7, C) of images x in the data range, as NumPy."""
    parts = [autoencoder.encode(x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)]
    return scale * np.concatenate([np.asarray(p) for p in parts]).astype(np.float32)


def decode(autoencoder, scale, z, batch_size=500):
    """x̂ = D(z / s): images (N, 28, 28, 1) in the data range (not clipped) from scaled latents, as NumPy."""
    z = np.asarray(z, np.float32)
    parts = [autoencoder.decode(z[i : i + batch_size] / scale) for i in range(0, len(z), batch_size)]
    return np.concatenate([np.asarray(p) for p in parts])


def psnr(images, reconstructions):
    """Mean PSNR in dB of uint8 reconstructions against uint8 originals: 10·log10(255²/MSE) per image (as ``tf.image.psnr``)."""
    a, b = (np.asarray(v, np.float64) for v in (images, reconstructions))
    mse = np.mean(np.square(a - b), axis=tuple(range(1, a.ndim)))  # (N,)
    with np.errstate(divide="ignore"):  # an exact copy scores +inf, as tf.image.psnr does
        return float(np.mean(10.0 * np.log10(255.0**2 / mse)))


def train_autoencoder(images, folder, scaling="minus_one_one", latent_channels=4, epochs=3, seed=0, data_dir=None, xla=True, verbose=2):
    """Train the autoencoder on uint8 images, measure s and the test PSNR, write ``folder``; return (autoencoder, s)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    autoencoder = Autoencoder(images.shape[1:], latent_channels, kl_weight=KL_WEIGHT, seed=seed)
    autoencoder.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=xla)
    print(f"training the autoencoder ({autoencoder.count_params():,} parameters, latents {autoencoder.latent_shape}) on {len(images):,} images")
    start = time.perf_counter()
    history = autoencoder.fit(
        make_dataset(images, BATCH_SIZE, scaling, seed=seed), epochs=epochs, verbose=verbose, shuffle=False,
        callbacks=[keras.callbacks.CSVLogger(str(folder / "history.csv"))],
    )
    seconds = time.perf_counter() - start
    scale = scale_factor(autoencoder, scale_images(images[:SCALE_N], scaling))
    test, _ = load_images("fashion_mnist", "test", data_dir, limit=TEST_N)
    reconstructed = to_uint8(decode(autoencoder, 1.0, encode(autoencoder, 1.0, scale_images(test, scaling))), scaling)
    info = {"epochs": epochs, "train_images": len(images), "seconds": round(seconds, 1),
            "final_mse": round(history.history["mse"][-1], 6), "test_psnr": round(psnr(test, reconstructed), 3)}
    save_autoencoder(folder, autoencoder, scale, scaling, info)
    from keras_diffusion.plotting import plot_grid

    cells = np.stack([test[:8], reconstructed[:8]])  # (2, 8, 28, 28, 1)
    plot_grid(cells, row_titles=["original", "decoded"], title=f"autoencoder: PSNR {info['test_psnr']:.1f} dB on {len(test)} test images",
              path=folder / "reconstructions.png", zoom=3)
    print(f"autoencoder trained in {seconds:.0f} s: test PSNR {info['test_psnr']:.2f} dB, scale factor {scale:.4f}")
    return autoencoder, scale


def save_autoencoder(folder, autoencoder, scale, scaling, info=None):
    """Write the weights, then ``autoencoder.json`` (its settings, s, the pixel scaling, and ``info``)."""
    folder = pathlib.Path(folder)
    checkpoint.save_weights(folder, autoencoder, WEIGHTS)
    settings = {k: v for k, v in autoencoder.get_config().items() if k in ("image_shape", "latent_channels", "widths", "kl_weight", "groups")}
    data = {"package": "keras_diffusion", "version": __version__, "autoencoder": settings, "scale_factor": scale, "scaling": scaling}
    checkpoint.write_json(folder / CONFIG, {**data, **(info or {})})


def find_folder(path):
    """The autoencoder folder of ``path``: a latent run, or an autoencoder folder itself; RunError otherwise."""
    path = pathlib.Path(path)
    for folder in (path / FOLDER, path):
        if (folder / CONFIG).is_file():
            return folder
    if not path.exists():
        raise checkpoint.RunError(f"--autoencoder {path} does not exist; pass a run trained with --latent")
    if (path / checkpoint.CONFIG).is_file():
        model = checkpoint.read_config(path)[0].model
        raise checkpoint.RunError(f"--autoencoder {path} is a {model} run without an autoencoder; pass a run trained with --latent")
    raise checkpoint.RunError(f"--autoencoder {path} holds no autoencoder (no {FOLDER}/{CONFIG}); pass a run trained with --latent")


def load_autoencoder(path):
    """(autoencoder, s, its autoencoder.json as a dict) from a latent run or an autoencoder folder."""
    folder = find_folder(path)
    data = _read_json(folder / CONFIG)
    try:
        autoencoder = Autoencoder(**data["autoencoder"])
        scale = float(data["scale_factor"])
    except (KeyError, TypeError, ValueError) as error:
        raise checkpoint.RunError(f"{folder / CONFIG} is not an autoencoder config ({checkpoint._first_line(error)})") from None
    try:
        autoencoder.load_weights(folder / WEIGHTS)
    except (OSError, ValueError, KeyError) as error:
        raise checkpoint.RunError(f"{folder / WEIGHTS} is missing or damaged ({checkpoint._first_line(error)}); train the autoencoder again") from None
    return autoencoder, scale, data


def _read_json(path):
    import json

    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise checkpoint.RunError(f"{path} is not valid JSON ({error}); it may be from a crashed save") from None
    if not isinstance(data, dict) or data.get("package") != "keras_diffusion":
        raise checkpoint.RunError(f"{path} is not a keras_diffusion autoencoder config")
    return data


def reuse_autoencoder(source, folder, config):
    """Copy the autoencoder of ``source`` into ``folder`` after checking that it fits ``config``; return (autoencoder, s)."""
    autoencoder, scale, data = load_autoencoder(source)
    if data.get("scaling") != config.scaling:
        raise checkpoint.RunError(f"--autoencoder {source} was trained on {data.get('scaling')} pixels; this run uses {config.scaling}: pass --scaling {data.get('scaling')}")
    if autoencoder.latent_channels != config.latent_channels:
        raise checkpoint.RunError(f"--autoencoder {source} has {autoencoder.latent_channels} latent channels; pass --latent-channels {autoencoder.latent_channels}")
    source_folder = find_folder(source)
    if source_folder.resolve() != pathlib.Path(folder).resolve():
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if (source_folder / name).is_file():
                checkpoint.atomic_write(pathlib.Path(folder) / name, lambda tmp, name=name: shutil.copyfile(source_folder / name, tmp))
    print(f"reusing the autoencoder of {source} (test PSNR {data.get('test_psnr', '?')} dB, scale factor {scale:.4f})")
    return autoencoder, scale


def latent_dataset(config, run_dir, images, labels=None, fresh=True, seed=0):
    """The first stage, then the data of the second: (tf.data of scaled latents [and labels], latent shape).

    A fresh run trains its autoencoder, or copies the one of ``config.autoencoder``;
    a resumed run keeps the one in its own folder, so its latents do not change.
    """
    import tensorflow as tf  # a tf.data pipeline: training is TensorFlow's for now (backends.py)

    folder = pathlib.Path(run_dir) / FOLDER
    if not fresh and (folder / CONFIG).is_file():
        autoencoder, scale = reuse_autoencoder(run_dir, folder, config)
    elif config.autoencoder is not None:
        autoencoder, scale = reuse_autoencoder(config.autoencoder, folder, config)
    else:
        autoencoder, scale = train_autoencoder(
            images, folder, config.scaling, config.latent_channels, config.autoencoder_epochs, config.seed, config.data_dir, config.xla
        )
    start = time.perf_counter()
    latents = encode(autoencoder, scale, scale_images(images, config.scaling))  # (N, 7, 7, C)
    print(f"encoded {len(latents):,} images to {latents.shape[1:]} latents in {time.perf_counter() - start:.0f} s (std {latents.std():.3f})")
    keras.utils.set_random_seed(seed)  # the U-Net starts the same whether the autoencoder was trained or reused
    elements = latents if labels is None else (latents, np.asarray(labels, np.int32))
    drop = len(latents) >= config.batch_size  # a subset smaller than one batch would yield no batch at all
    dataset = tf.data.Dataset.from_tensor_slices(elements).shuffle(len(latents), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(config.batch_size, drop_remainder=drop).prefetch(tf.data.AUTOTUNE), latents.shape[1:]


def load_decoder(run_dir):
    """A function from the scaled latents z_0 a latent run samples to images D(z_0 / s) in its pixel range."""
    folder = pathlib.Path(run_dir) / FOLDER
    if not (folder / CONFIG).is_file():
        raise checkpoint.RunError(f"{run_dir} is a latent run without its {FOLDER}/{CONFIG}: copy the whole run directory, or train it again")
    autoencoder, scale, _ = load_autoencoder(folder)
    return lambda z: decode(autoencoder, scale, z)


def make_figures(run_dir, denoiser, schedule, config, images):
    """The figures ``training.make_figures`` writes, for a latent run: every latent shown decoded, D(z / s)."""
    from keras_diffusion import plotting
    from keras_diffusion.data import NUM_CLASSES
    from keras_diffusion.forward import forward_snapshots
    from keras_diffusion.reverse import sample

    run_dir = pathlib.Path(run_dir)
    autoencoder, scale, _ = load_autoencoder(run_dir / FOLDER)

    def pixels(z):  # uint8 images (..., 28, 28, 1) of latents (..., 7, 7, C)
        z = np.asarray(z)
        x = decode(autoencoder, scale, z.reshape((-1,) + z.shape[-3:]))
        return to_uint8(x, config.scaling).reshape(z.shape[:-3] + x.shape[1:])

    x0 = scale_images(images[:4], config.scaling)  # (4, 28, 28, 1)
    z0 = encode(autoencoder, scale, x0)  # (4, 7, 7, C)
    steps = plotting.classic_timesteps(schedule.timesteps)
    forward = np.concatenate([to_uint8(x0, config.scaling)[:, None], pixels(forward_snapshots(schedule, z0, steps, seed=config.seed))], axis=1)
    z_T = np.random.default_rng(config.seed).standard_normal(z0.shape).astype(np.float32)
    _, snaps = sample(denoiser, schedule, 4, seed=config.seed, snapshots=steps[::-1], x_T=z_T)  # (4, 5, 7, 7, C)
    reverse = np.concatenate([pixels(z_T)[:, None], pixels(snaps)], axis=1)  # (4, 6, 28, 28, 1)
    forward_titles, reverse_titles = ["x0"] + [f"t={t}" for t in steps], ["D(z_T)"] + [f"t={t}" for t in steps[::-1]]
    plotting.plot_grid(forward, col_titles=forward_titles, title="forward process q(z_t | z_0), decoded", path=run_dir / "forward_grid.png", zoom=4)
    plotting.plot_grid(reverse, col_titles=reverse_titles, title="reverse process p(z_{t-1} | z_t), decoded", path=run_dir / "reverse_grid.png", zoom=4)
    plotting.plot_grid(np.stack([forward[0], reverse[0]]), row_titles=["forward", "reverse"], cell_titles=[forward_titles, reverse_titles],
                       path=run_dir / "classic.png", zoom=5)
    if config.conditional:  # a class grid, as training.make_figures draws it
        from keras_diffusion.guidance import DEFAULT_GUIDANCE

        labels = np.repeat(np.arange(NUM_CLASSES), max(1, config.n_samples // NUM_CLASSES))
        z = sample(denoiser, schedule, len(labels), seed=config.seed, labels=labels, guidance=DEFAULT_GUIDANCE)
        title, ncols = f"latent {config.model}, one class a row, guidance w = {DEFAULT_GUIDANCE:g}", len(labels) // NUM_CLASSES
    else:
        z = sample(denoiser, schedule, config.n_samples, seed=config.seed)
        title, ncols = f"latent {config.model}: {len(z)} samples", 8
    plotting.plot_samples(pixels(z), title=title, path=run_dir / "samples.png", ncols=ncols)
    history = run_dir / checkpoint.HISTORY
    if history.exists() and history.stat().st_size:
        plotting.plot_loss(history, path=run_dir / "loss.png", title=f"latent {config.model} training loss")


def plot_latents(autoencoder, scale, images, scaling="minus_one_one", path=None):
    """Each column one image: the original, the C channels of its scaled latent z (7x7, drawn 4x), and D(z / s).

    The channels are drawn on one grey scale, −3 (black) to 3 (white), which holds
    nearly all of a unit-variance latent, so the channels compare with each other.
    """
    from keras_diffusion.plotting import plot_grid

    x = scale_images(images, scaling)
    z = encode(autoencoder, scale, x)  # (N, 7, 7, C)
    factor = images.shape[1] // z.shape[1]
    channels = np.clip((z + 3) / 6 * 255, 0, 255).round().astype(np.uint8)  # (N, 7, 7, C)
    channels = channels.repeat(factor, axis=1).repeat(factor, axis=2)  # (N, 28, 28, C), nearest neighbour
    rows = [images] + [channels[..., c : c + 1] for c in range(z.shape[-1])] + [to_uint8(decode(autoencoder, scale, z), scaling)]
    titles = ["x"] + [f"z channel {c + 1}" for c in range(z.shape[-1])] + ["D(z / s)"]
    return plot_grid(np.stack(rows), row_titles=titles, title=f"latents z = s·E(x), s = {scale:.3f}", path=path, zoom=3)
