"""The training run behind ``python -m keras_diffusion.train``, usable from notebooks too.

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.training import train
    run_dir, history = train(TrainConfig(model="mlp_seed", epochs=5), out="runs/classic")
"""

import dataclasses
import math
import pathlib
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_diffusion import backends, checkpoint, plotting
from keras_diffusion.config import apply_determinism
from keras_diffusion.data import NUM_CLASSES, clip_range, load_images, make_dataset, sampling_clip, scale_images, validation_dataset  # noqa: F401 (clip_range, sampling_clip: re-exported)
from keras_diffusion.devices import is_chief, make_strategy, precision, training_precision
from keras_diffusion.diffusion import DiffusionModel, NoisyClassifierModel
from keras_diffusion.ema import WarmupEMAAdam
from keras_diffusion.models import CLASSIFIERS
from keras_diffusion.reverse import sample
from keras_diffusion.samplers import SamplingConfig

FIGURES = ("classic.png", "forward_grid.png", "reverse_grid.png", "samples.png", "loss.png")


class Interrupted(Exception):
    """Ctrl-C during training: the last completed epoch is saved."""

    exit_code = 130  # the shell's code for "ended by SIGINT"


class Diverged(Exception):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


def is_classifier(config):
    """Whether a run trains the noise-aware classifier rather than a denoiser."""
    return config.model in CLASSIFIERS


def uses_labels(config):
    """Whether a run trains on (image, label) batches: a conditional denoiser or a classifier (a text run: on captions)."""
    return config.conditional or config.text or is_classifier(config)


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch with a finite loss, save the training state or the sampling weights.

    Two instances share one guard: ``stage="state"`` runs before
    ``SwapEMAWeights`` and saves what resuming needs (raw weights, optimizer
    with its EMA, epoch count); ``stage="weights"`` runs after it and saves
    the (EMA) weights that sampling uses. The first non-finite loss stops
    training and nothing of that epoch is written, so the files on disk are
    always the last good ones.
    """

    def __init__(self, run_dir, stage, guard):
        super().__init__()
        self.run_dir, self.stage, self.guard = pathlib.Path(run_dir), stage, guard

    def on_train_batch_end(self, batch, logs=None):
        # with steps_per_execution > 1 this comes once per compiled call, but the loss it sees is
        # the epoch's running mean, so a non-finite loss in any step of the call still shows here
        if self.stage == "state" and logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.guard["diverged"] = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.guard["diverged"]:
            return
        if self.stage == "state":
            checkpoint.save_state(self.run_dir, self.model, epoch + 1)
        else:
            checkpoint.save_weights(self.run_dir, self.model.denoiser)


class EpochSeconds(keras.callbacks.Callback):
    """Log each epoch's wall time as ``seconds``, so that history.csv says what a run cost."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = round(time.perf_counter() - self.start, 1)


def _history_logger(run_dir, initial_epoch):
    """CSVLogger that appends on resume, after dropping rows of epochs that will run again."""
    path = run_dir / checkpoint.HISTORY
    if initial_epoch and path.exists():
        lines = path.read_text().splitlines()
        kept = lines[:1] + [line for line in lines[1:] if int(line.split(",")[0]) < initial_epoch]
        checkpoint.atomic_write(path, lambda tmp: pathlib.Path(tmp).write_text("\n".join(kept) + "\n"))
    return keras.callbacks.CSVLogger(str(path), append=bool(initial_epoch))


def learning_rate(config, steps_per_epoch=None):
    """``config.lr``, or a Keras schedule of it: ``lr_warmup`` steps rising linearly from 0, then constant
    or (``lr_schedule="cosine"``) a cosine decay to 0 at the last step of ``config.epochs`` epochs
    (Loshchilov & Hutter 2017, https://arxiv.org/abs/1608.03983, without restarts)."""
    if config.lr_schedule == "constant" and not config.lr_warmup:
        return config.lr
    if config.lr_schedule == "cosine" and not steps_per_epoch:
        raise ValueError("a cosine learning-rate schedule needs the number of steps an epoch takes")
    total = config.epochs * (steps_per_epoch or 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(1, total - config.lr_warmup),
        alpha=1.0 if config.lr_schedule == "constant" else 0.0,  # alpha 1: no decay after the warm-up
        warmup_target=config.lr,
        warmup_steps=config.lr_warmup,
    )


def build_training(config, image_shape, strategy=None, steps_per_epoch=None):
    """The schedule, denoiser and compiled DiffusionModel a config describes, weights built.

    Everything that owns variables is made inside ``strategy.scope()`` (the
    current strategy when None), so that each replica gets a copy, and in
    the dtype policy of ``training_precision(config)`` (the global policy is
    restored on return). ``steps_per_epoch`` sizes a cosine learning-rate schedule.
    """
    strategy = strategy or tf.distribute.get_strategy()
    schedule = config.noise_schedule()
    policy = training_precision(config)  # mixed_bfloat16 where it pays (see devices.auto_precision)
    with precision(policy), strategy.scope():
        denoiser = checkpoint.build_denoiser(config, image_shape)
        if is_classifier(config):
            model = NoisyClassifierModel(denoiser, schedule, seed=config.seed)
        else:
            cond_drop = config.cond_drop if config.conditional or config.text else 0.0
            model = DiffusionModel(denoiser, schedule, seed=config.seed, cond_drop=cond_drop, loss_weight=config.loss_weight, min_snr_gamma=config.min_snr_gamma)
        lr = learning_rate(config, steps_per_epoch)
        optimizer = WarmupEMAAdam(lr, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99, ema_warmup=config.ema_warmup)
        if policy == "mixed_float16":
            # float16 gradients underflow to 0 without a loss scale; it also skips steps with inf gradients
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(
            optimizer=optimizer,
            # as Keras' own jit_compile="auto" does: no XLA under a tf.distribute strategy
            jit_compile=config.xla and not tf.distribute.has_strategy(),
            steps_per_execution=config.steps_per_execution,
        )
        # create the optimizer's slots now, so that a saved state can be loaded into them
        model.optimizer.build(denoiser.trainable_variables)
    return schedule, denoiser, model


def _resolve(config, resume):
    """(config, first epoch to run): a fresh run starts at 0; a resumed one after its last saved epoch."""
    if resume is None:
        return config.resolved(), 0
    stored, _, _ = checkpoint.read_config(resume)
    epochs = stored.epochs if config is None or config.epochs is None else config.epochs
    return dataclasses.replace(stored, epochs=epochs).resolved(), checkpoint.read_state_epoch(resume)


def train(config=None, out=None, overwrite=False, resume=None, verbose=None):
    """Train ``config.model`` and write a complete run directory, or resume one.

    Args:
        config: a ``TrainConfig``; unset fields take the model's defaults.
        out: run directory to create (default ``runs/<model>``, numbered when taken).
        overwrite: allow replacing a run already in ``out``.
        resume: a run directory to continue after its last completed epoch;
            ``config.epochs``, when set, may extend it.
        verbose: Keras' fit verbosity (default: a progress bar on a terminal).

    Returns:
        (run_dir, history dict of the epochs run by this call); run_dir is
        None on the workers of a cluster other than the chief, which writes it.
    """
    backends.require_tensorflow("training (python -m keras_diffusion.train)")
    config, initial_epoch = _resolve(config, resume)
    if config.text and resume is None:  # the text encoder's vocabulary and sizes go into config.json
        from keras_diffusion.text.conditioning import with_prompt

        config = with_prompt(config)
    strategy = make_strategy(config.strategy)  # first: a multi-worker strategy must start before any op runs
    apply_determinism(config)  # before any op runs
    chief = is_chief(strategy)
    if not chief:  # on a cluster only the chief writes the run; the others write to a folder deleted after
        run_dir = pathlib.Path(tempfile.mkdtemp(prefix="keras_diffusion-worker-"))
    else:
        run_dir = checkpoint.new_run_dir(out, config.model, overwrite) if resume is None else pathlib.Path(resume)
    try:
        history = _train(config, run_dir, resume, initial_epoch, strategy, chief, verbose)
    finally:
        if not chief:
            shutil.rmtree(run_dir, ignore_errors=True)
    return (run_dir if chief else None), history


def _train(config, run_dir, resume, initial_epoch, strategy, chief, verbose):
    """``train`` once the run directory and the strategy are settled; returns the history."""
    keras.utils.set_random_seed(config.seed + initial_epoch)
    images, labels = load_images(config.dataset, "train", config.data_dir, config.data_source, config.limit)
    # a resumed run must not replay the first epoch's order: the shuffle seed moves on with it.
    # batch_size is the global batch: under a strategy Keras splits each batch across the replicas
    labels = labels if uses_labels(config) else None
    captions = None
    if config.latent:  # first the autoencoder (trained, or reused), then the denoiser sees only its latents
        from keras_diffusion.latent import latent_dataset

        dataset, shape = latent_dataset(config, run_dir, images, labels, fresh=resume is None, seed=config.seed + initial_epoch)
    elif config.text:  # (image, caption tokens) batches, the captions drawn afresh every epoch
        from keras_diffusion.models.prompt import PromptEncoder
        from keras_diffusion.text.conditioning import caption_dataset

        tokenizer = PromptEncoder(**config.model_kwargs["prompt"]).tokenizer
        dataset, captions = caption_dataset(images, labels, config.batch_size, config.scaling, tokenizer, seed=config.seed + initial_epoch, caption_seed=config.seed)
        shape = images.shape[1:]
    else:
        dataset, shape = make_dataset(images, config.batch_size, config.scaling, seed=config.seed + initial_epoch, labels=labels), images.shape[1:]
    schedule, denoiser, model = build_training(config, shape, strategy, steps_per_epoch=math.ceil(len(images) / config.batch_size))
    if config.text and not initial_epoch:  # a resumed run loads them with its state
        from keras_diffusion.text.conditioning import copy_text_encoder

        copy_text_encoder(denoiser, config.text_encoder_run)
    checkpoint.save_config(run_dir, config, schedule, shape)
    if initial_epoch:
        with strategy.scope():
            checkpoint.load_state(resume, model)
        print(f"resuming {resume} after epoch {initial_epoch} of {config.epochs}")
    print(f"training {config.model} ({denoiser.count_params():,} parameters{_devices(config, strategy)}) on {len(images):,} images -> {run_dir}")

    guard = {"diverged": False}
    callbacks = ([] if captions is None else [captions]) + _callbacks(run_dir, config, schedule, initial_epoch, guard)
    verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
    if verbose == 2:  # one line an epoch (a log, not a terminal): progress lines fill the minutes between
        from keras_diffusion.progress import TrainingProgress

        callbacks.append(TrainingProgress(config.batch_size))
    history = {}
    try:
        if initial_epoch < config.epochs and config.model == "linear":  # closed form: no gradient steps
            history = fit_closed_form(run_dir, model, images, config)
        elif initial_epoch < config.epochs:
            # shuffle=False: the tf.data pipeline shuffles already
            val = _validation(config, schedule)
            fit = model.fit(dataset, epochs=config.epochs, initial_epoch=initial_epoch, callbacks=callbacks, verbose=verbose, shuffle=False, validation_data=val)
            history = fit.history
    except KeyboardInterrupt:
        done = checkpoint.read_state_epoch(run_dir)
        raise Interrupted(
            f"interrupted: {done} of {config.epochs} epochs are saved in {run_dir}; "
            f"continue with: python -m keras_diffusion.train --resume {run_dir}"
        ) from None
    if guard["diverged"]:
        raise Diverged(
            f"the loss became non-finite in epoch {checkpoint.read_state_epoch(run_dir) + 1}: training stopped and the "
            f"last good checkpoint in {run_dir} is kept. Try a smaller --lr."
        )
    if chief and is_classifier(config):
        classifier_report(run_dir, denoiser, schedule, config)
    elif chief:
        print(f"drawing the run's figures ({config.n_samples} samples, all {schedule.timesteps} steps) into {run_dir}", flush=True)
        make_figures(run_dir, denoiser, schedule, config, images)
    return history


def _validation(config, schedule):
    """The first ``config.val`` test images with fixed t and ε (``data.validation_dataset``), or None."""
    if not config.val:
        return None
    images, labels = load_images(config.dataset, "test", config.data_dir, config.data_source, config.val)
    labels = labels if uses_labels(config) else None
    return validation_dataset(images, config.batch_size, config.scaling, schedule.timesteps, seed=config.seed, labels=labels)


def fit_closed_form(run_dir, model, images, config):
    """Fit the ``linear`` denoiser from all the images at once and save it as one epoch of an ordinary run.

    history.csv gets its exact mean loss over t, so the run compares with trained ones.
    """
    from keras_diffusion.models.linear import fit_linear

    start = time.perf_counter()
    loss = fit_linear(model.denoiser, images, config.scaling, model.schedule)
    history = {"loss": [loss], "seconds": [round(time.perf_counter() - start, 1)]}
    print(f"fit in closed form in {history['seconds'][0]} s: mean loss over t {loss:.4f}")
    rows = f"epoch,loss,seconds\n0,{loss!r},{history['seconds'][0]}\n"
    checkpoint.atomic_write(run_dir / checkpoint.HISTORY, lambda tmp: pathlib.Path(tmp).write_text(rows))
    checkpoint.save_state(run_dir, model, config.epochs)
    checkpoint.save_weights(run_dir, model.denoiser)
    return history


def _callbacks(run_dir, config, schedule, initial_epoch, guard):
    """FID, the loggers, then checkpoints and the NaN guard, in the order they must run.

    The history row of an epoch is written before its state is saved, so a run
    killed in between replays that epoch on resume instead of losing its row.
    With EMA on, sampling uses the averaged weights: they are swapped in before
    they are saved (and the FID callback scores them the same way).
    """
    callbacks = [EpochSeconds()]
    if config.fid_every:
        from keras_diffusion.metrics import FIDCallback

        clip = sampling_clip(config)
        callbacks += [FIDCallback(schedule, config.scaling, config.fid_every, config.fid_n, clip=clip, seed=config.seed, data_dir=config.data_dir)]
    if config.tensorboard:
        try:
            import tensorboard  # noqa: F401  (TensorFlow does not install it)
        except ImportError:
            raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
        callbacks += [keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0)]
    callbacks += [_history_logger(run_dir, initial_epoch), RunCheckpoint(run_dir, "state", guard)]
    callbacks += [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema > 0 else []
    return callbacks + [RunCheckpoint(run_dir, "weights", guard)]


def _devices(config, strategy):
    """", 2 replicas, mixed_float16" for the start-up line; empty on one device in float32."""
    replicas = strategy.num_replicas_in_sync
    policy = training_precision(config)
    return (f", {replicas} replicas" if replicas > 1 else "") + (f", {policy}" if policy != "float32" else "")


def make_figures(run_dir, denoiser, schedule, config, images):
    """Write the run's figures: classic 2x6, forward and reverse grids, samples, loss."""
    if config.latent:  # the same figures, each latent decoded
        from keras_diffusion.latent import make_figures as make_latent_figures

        return make_latent_figures(run_dir, denoiser, schedule, config, images)
    run_dir = pathlib.Path(run_dir)
    x0 = np.asarray(scale_images(images[:4], config.scaling))
    kwargs = dict(scaling=config.scaling, seed=config.seed)
    clip = sampling_clip(config)
    plotting.plot_classic(denoiser, schedule, x0[0], path=run_dir / "classic.png", clip=clip, **kwargs)
    plotting.plot_forward_grid(schedule, x0, path=run_dir / "forward_grid.png", **kwargs)
    plotting.plot_reverse_grid(denoiser, schedule, n=4, path=run_dir / "reverse_grid.png", clip=clip, **kwargs)
    # the sample grid is drawn as `sample` draws by default (SamplingConfig's sampler, steps and spacing)
    drawing = SamplingConfig(seed=config.seed).resolved(schedule.timesteps, config.clip)
    if config.text:  # a prompt grid: each row "a photo of a {class}", guided as sample --prompt draws it
        from keras_diffusion.guidance import DEFAULT_GUIDANCE
        from keras_diffusion.text.conditioning import figure_prompts

        prompts = figure_prompts(max(1, config.n_samples // NUM_CLASSES))
        samples = sample(denoiser, schedule, len(prompts), prompts=prompts, guidance=DEFAULT_GUIDANCE, **drawing.sample_kwargs(config.scaling))
        title = f"{config.model}, a row a prompt 'a photo of a ...', guidance w = {DEFAULT_GUIDANCE:g}, {drawing.describe()}"
    elif config.conditional:  # a class grid: each row one label, guided as sample --label all draws it
        from keras_diffusion.guidance import DEFAULT_GUIDANCE

        labels = np.repeat(np.arange(NUM_CLASSES), max(1, config.n_samples // NUM_CLASSES))
        samples = sample(denoiser, schedule, len(labels), labels=labels, guidance=DEFAULT_GUIDANCE, **drawing.sample_kwargs(config.scaling))
        title = f"{config.model}, one class a row, guidance w = {DEFAULT_GUIDANCE:g}, {drawing.describe()}"
    else:
        samples = sample(denoiser, schedule, config.n_samples, **drawing.sample_kwargs(config.scaling))
        title = f"{config.model}: {len(samples)} samples, {drawing.describe()}"
    ncols = max(1, config.n_samples // NUM_CLASSES) if config.conditional or config.text else 8
    plotting.plot_samples(samples, config.scaling, title=title, path=run_dir / "samples.png", ncols=ncols)
    history = run_dir / checkpoint.HISTORY
    if history.exists() and history.stat().st_size:
        plotting.plot_loss(history, path=run_dir / "loss.png", title=f"{config.model} training loss")


def classifier_report(run_dir, classifier, schedule, config, n=2000):
    """After training a noisy classifier: accuracy against t on n test images (accuracy.json, accuracy.png) and the loss curve."""
    import json

    from keras_diffusion.guidance import accuracy_against_t

    run_dir = pathlib.Path(run_dir)
    images, labels = load_images(config.dataset, "test", config.data_dir, config.data_source, n)
    T = schedule.timesteps
    timesteps = sorted({0, T // 10, T // 4, T // 2, 3 * T // 4, 9 * T // 10, T - 1})
    accuracies = accuracy_against_t(classifier, schedule, scale_images(images, config.scaling), labels.astype(int), timesteps, config.seed)
    report = {"n": len(images), "timesteps": timesteps, "accuracy": [round(a, 4) for a in accuracies]}
    checkpoint.write_json(run_dir / "accuracy.json", report)
    plotting.plot_curve(
        timesteps, accuracies, xlabel="t", ylabel="test accuracy", title=f"noisy classifier on x_t ({len(images)} test images)",
        path=run_dir / "accuracy.png", ylim=(0, 1),
    )
    history = run_dir / checkpoint.HISTORY
    if history.exists() and history.stat().st_size:
        plotting.plot_loss(history, path=run_dir / "loss.png", title=f"{config.model} training loss")
    print("noisy classifier accuracy against t: " + json.dumps(dict(zip(map(str, timesteps), report["accuracy"]))))
    return report
