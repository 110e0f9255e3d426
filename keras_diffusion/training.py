"""The training run behind ``python -m keras_diffusion.train``, usable from notebooks too.

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.training import train
    run_dir, history = train(TrainConfig(model="mlp_seed", epochs=5), out="runs/classic")
"""

import math
import pathlib
import sys

import keras
import numpy as np

from keras_diffusion import checkpoint, plotting
from keras_diffusion.data import load_images, make_dataset
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.schedule import NoiseSchedule

FIGURES = ("classic.png", "forward_grid.png", "reverse_grid.png", "samples.png", "loss.png")


def make_schedule(config):
    """The run's NoiseSchedule from its config."""
    if config.schedule == "cosine":
        return NoiseSchedule.cosine(config.timesteps)
    return NoiseSchedule.from_name(config.schedule, config.timesteps, beta_start=config.beta_start, beta_end=config.beta_end)


def clip_range(scaling):
    """The data range, to clip x̂_0 into while sampling."""
    return (0.0, 1.0) if scaling == "zero_one" else (-1.0, 1.0)


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the weights after every epoch whose loss is finite; stop at the first non-finite loss.

    A diverged epoch is never written, so the file on disk is always the last good one.
    """

    def __init__(self, run_dir, denoiser):
        super().__init__()
        self.run_dir, self.denoiser = run_dir, denoiser
        self.diverged = False

    def on_train_batch_end(self, batch, logs=None):
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.diverged = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged:
            print(
                f"\nloss became {logs.get('loss')} in epoch {epoch + 1}: training stopped, the last good "
                "weights are kept. Try a smaller --lr.",
                file=sys.stderr,
            )
            return
        checkpoint.save_weights(self.run_dir, self.denoiser)


def train(config, out=None, overwrite=False, verbose=None):
    """Train ``config.model`` and write a complete run directory.

    Returns:
        (run_dir, history dict)
    """
    config = config.resolved()
    keras.utils.set_random_seed(config.seed)
    images, _ = load_images(config.dataset, "train", config.data_dir, config.data_source, config.limit)
    dataset = make_dataset(images, config.batch_size, config.scaling, seed=config.seed)
    schedule = make_schedule(config)
    denoiser = checkpoint.build_denoiser(config, images.shape[1:])
    model = DiffusionModel(denoiser, schedule, seed=config.seed)
    model.compile(optimizer=keras.optimizers.Adam(config.lr, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99))

    run_dir = checkpoint.new_run_dir(out, config.model, overwrite)
    checkpoint.save_config(run_dir, config, schedule, images.shape[1:])
    print(f"training {config.model} ({denoiser.count_params():,} parameters) on {len(images):,} images -> {run_dir}")
    saver = EpochCheckpoint(run_dir, denoiser)
    callbacks = [keras.callbacks.CSVLogger(str(run_dir / checkpoint.HISTORY))]
    # with EMA on, save the averaged weights: swap them in before the checkpoint runs
    callbacks += [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []
    callbacks += [saver]
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    # the tf.data pipeline shuffles already
    history = model.fit(dataset, epochs=config.epochs, callbacks=callbacks, verbose=verbose, shuffle=False).history
    if saver.diverged:
        denoiser, _, _ = checkpoint.load_run(run_dir)
    make_figures(run_dir, denoiser, schedule, config, images)
    return run_dir, history


def make_figures(run_dir, denoiser, schedule, config, images):
    """Write the run's figures: classic 2x6, forward and reverse grids, samples, loss."""
    run_dir = pathlib.Path(run_dir)
    from keras_diffusion.data import scale_images

    x0 = np.asarray(scale_images(images[:4], config.scaling))
    kwargs = dict(scaling=config.scaling, seed=config.seed)
    plotting.plot_classic(denoiser, schedule, x0[0], path=run_dir / "classic.png", **kwargs)
    plotting.plot_forward_grid(schedule, x0, path=run_dir / "forward_grid.png", **kwargs)
    plotting.plot_reverse_grid(denoiser, schedule, n=4, path=run_dir / "reverse_grid.png", **kwargs)
    samples = model_samples(denoiser, schedule, config)
    plotting.plot_samples(samples, config.scaling, title=f"{config.model}: {len(samples)} samples", path=run_dir / "samples.png")
    history = run_dir / checkpoint.HISTORY
    if history.exists() and history.stat().st_size:
        plotting.plot_loss(history, path=run_dir / "loss.png", title=f"{config.model} training loss")


def model_samples(denoiser, schedule, config, n=None, seed=None, **kwargs):
    """Samples from a trained denoiser with the run's settings (DDPM, all T steps)."""
    from keras_diffusion.reverse import sample

    n = config.n_samples if n is None else n
    return sample(denoiser, schedule, n, seed=config.seed if seed is None else seed, **kwargs)
