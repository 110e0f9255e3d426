"""Progress lines for logs: long training and sampling say how far they are, at least every 30 s.

On a terminal Keras draws a live progress bar. Written to a log (``nohup``,
``| tee``, CI, a notebook's subprocess) it prints an epoch's line only when
the epoch ends, minutes apart, and sampling prints nothing until it is done:
a newcomer cannot tell either from a hang. These print one plain line at a
time instead, never more often than ``every`` seconds.

The interval is an argument, else ``$KERAS_DIFFUSION_PROGRESS_SECONDS``, else 30.
"""

import os
import sys
import time

import keras

ENV_VAR = "KERAS_DIFFUSION_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0


def interval(seconds=None):
    """Seconds between progress lines: ``seconds``, else $KERAS_DIFFUSION_PROGRESS_SECONDS, else 30."""
    if seconds is not None:
        return float(seconds)
    text = os.environ.get(ENV_VAR, "").strip()
    try:
        return float(text) if text else DEFAULT_SECONDS
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a number of seconds, got {text!r}") from None


def duration(seconds):
    """A duration for people: 42s, 12m05s, 1h02m."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class SamplingProgress:
    """Called with the number of images done after each batch; prints a line when ``every`` seconds have passed.

    For a sampler that draws batches of up to 256 images in one compiled call:
    a line comes after a batch, so a single batch longer than ``every`` still
    gives one line per batch. The last batch prints nothing: the caller
    reports the total.

    Args:
        total: images to draw.
        what: what the line starts with, e.g. "sampling".
        every: seconds between lines (see ``interval``).
        stream: where to write (default: stderr, so that stdout stays data).
    """

    def __init__(self, total, what="sampling", every=None, stream=None):
        self.total, self.what, self.every, self.stream = total, what, interval(every), stream
        self.start = self.last = time.perf_counter()

    def __call__(self, done):
        now = time.perf_counter()
        if done >= self.total or now - self.last < self.every:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        line = f"{self.what}: {done}/{self.total} images, {rate:,.1f} images/s, ETA {duration((self.total - done) / rate)}"
        print(line, file=self.stream or sys.stderr, flush=True)


class TrainingProgress(keras.callbacks.Callback):
    """Prints epoch, step/steps, images/s, loss and ETA during ``fit``, at most every ``every`` seconds.

    Meant for ``fit(verbose=2)``, which prints each epoch's summary line when
    it ends: these lines fill the minutes in between.

    Args:
        batch_size: images per step (the global batch), for images/s.
        every: seconds between lines (see ``interval``).
        stream: where to write (default: stdout, where Keras writes its lines).
    """

    def __init__(self, batch_size, every=None, stream=None):
        super().__init__()
        self.batch_size, self.every, self.stream = batch_size, interval(every), stream

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.first = epoch, None
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # with steps_per_execution > 1 this comes once per compiled call
        now = time.perf_counter()
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        # a compiled call may run past the epoch's last step: Keras then reports the call's last index
        done = batch + 1 if steps is None else min(batch + 1, steps)
        # speed is measured from the end of the epoch's first call, which pays for tracing and compiling
        first, self.first = self.first, self.first or (now, done)
        if now - self.last < self.every or done == steps:  # at the epoch's end Keras prints its own line
            return
        self.last = now
        per_step = (now - first[0]) / (done - first[1]) if first is not None and done > first[1] else None
        parts = [f"epoch {self.epoch + 1}/{epochs}", f"step {done}/{steps or '?'}"]
        parts += [f"{self.batch_size / per_step:,.0f} images/s"] if per_step else []
        # the epoch's running mean, as Keras' bar shows
        parts += [f"loss {float(logs['loss']):.4f}"] if logs and "loss" in logs else []
        if per_step and steps:
            parts.append(f"ETA {duration((steps - done + (epochs - self.epoch - 1) * steps) * per_step)}")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


class EpochTimer(keras.callbacks.Callback):
    """Keeps the wall time of every epoch in ``times`` (seconds, unrounded: benchmarks divide by them)."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


class TimeBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of wall time have passed since it began: equal wall-clock budgets.

    Checked after every compiled call, so a model that runs many steps a call
    overshoots by at most one call.
    """

    def __init__(self, seconds):
        super().__init__()
        if seconds <= 0:
            raise ValueError(f"a time budget must be > 0 seconds, got {seconds}")
        self.seconds = seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True
