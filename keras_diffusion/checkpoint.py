"""A run directory: config.json + weights + history.csv + figures.

Every file is written to a temporary name and renamed into place, so a kill
during a save leaves the previous file whole. Loading rebuilds the model from
``config.json`` (plain JSON, validated) and then reads weights only: no
pickle, no code from the file.
"""

import json
import os
import pathlib
import tempfile

import numpy as np

from keras_diffusion import __version__
from keras_diffusion.config import TrainConfig
from keras_diffusion.models import build_model
from keras_diffusion.schedule import NoiseSchedule

CONFIG = "config.json"
WEIGHTS = "weights.weights.h5"
HISTORY = "history.csv"


class RunError(ValueError):
    """A run directory is missing, broken or does not match this package."""


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and rename the result to ``path`` (same folder, so the rename is atomic)."""
    path = pathlib.Path(path)
    # keep the real suffix: Keras checks that weights end in .weights.h5
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix="".join(path.suffixes[-2:]))
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, data):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")

    atomic_write(path, write)


def new_run_dir(out=None, model="run", overwrite=False):
    """Create the folder of a new run; never reuse a folder holding an earlier run.

    Without ``out`` it picks ``runs/<model>``, or ``runs/<model>-2``, ... when taken.
    """
    if out is None:
        base = pathlib.Path("runs") / model
        out, k = base, 1
        while (out / CONFIG).exists():
            k += 1
            out = base.with_name(f"{base.name}-{k}")
    out = pathlib.Path(out)
    if (out / CONFIG).exists() and not overwrite:
        raise RunError(f"{out} already holds a run; pick another --out, or pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    return out


def save_config(run_dir, config, schedule, image_shape):
    """Write config.json: training settings, the schedule and the package version."""
    write_json(
        pathlib.Path(run_dir) / CONFIG,
        {
            "package": "keras_diffusion",
            "version": __version__,
            "train": config.to_dict(),
            "schedule": schedule.get_config(),
            "image_shape": list(image_shape),
        },
    )


def save_weights(run_dir, denoiser, name=WEIGHTS):
    atomic_write(pathlib.Path(run_dir) / name, denoiser.save_weights)


def read_config(run_dir):
    """Read and validate config.json; return (TrainConfig, NoiseSchedule, image_shape)."""
    path = pathlib.Path(run_dir) / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: {CONFIG} is missing (train one with python -m keras_diffusion.train)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error}); it may be from a crashed save") from None
    if not isinstance(data, dict) or data.get("package") != "keras_diffusion":
        raise RunError(f"{path} is not a keras_diffusion run config")
    version = str(data.get("version", ""))
    if version.split(".")[:2] != __version__.split(".")[:2]:
        raise RunError(f"{path} was written by keras_diffusion {version or '?'}; this is {__version__}: retrain, or install that version")
    try:
        config = TrainConfig.from_dict(data["train"]).resolved()
        schedule = NoiseSchedule.from_config(data["schedule"])
        image_shape = tuple(int(v) for v in data["image_shape"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{path}: {error}") from None
    if schedule.timesteps != config.timesteps:
        raise RunError(f"{path}: schedule has T={schedule.timesteps} but train.timesteps is {config.timesteps}")
    return config, schedule, image_shape


def build_denoiser(config, image_shape):
    return build_model(config.model, image_shape=image_shape, timesteps=config.timesteps, **config.model_kwargs)


def load_run(run_dir, weights=WEIGHTS):
    """Rebuild a run's denoiser and schedule and load its weights.

    Returns:
        (denoiser, schedule, config)
    """
    config, schedule, image_shape = read_config(run_dir)
    denoiser = build_denoiser(config, image_shape)
    path = pathlib.Path(run_dir) / weights
    if not path.is_file():
        raise RunError(f"{path} is missing: the run did not finish an epoch (resume it with --resume {run_dir})")
    try:
        denoiser.load_weights(path)
    except (ValueError, OSError, KeyError) as error:
        raise RunError(f"{path} does not fit model {config.model!r} ({_first_line(error)}); the file is damaged or from another run") from None
    return denoiser, schedule, config



def write_npz(path, **arrays):
    """np.savez_compressed, atomically (plain arrays only: loadable without pickle)."""
    atomic_write(path, lambda tmp: np.savez_compressed(open(tmp, "wb"), **arrays))


STATE = "state.weights.h5"
STATE_EPOCH = "state.json"


def save_state(run_dir, model, epoch):
    """Save everything resuming needs: model and optimizer variables, then the epoch count.

    The weights are renamed into place before state.json names their epoch,
    so a kill between the two only repeats one epoch, never loses one.
    """
    run_dir = pathlib.Path(run_dir)
    atomic_write(run_dir / STATE, model.save_weights)
    write_json(run_dir / STATE_EPOCH, {"epoch": int(epoch)})


def read_state_epoch(run_dir):
    """How many epochs the saved training state has completed (0 when none is saved)."""
    path = pathlib.Path(run_dir) / STATE_EPOCH
    if not path.exists():
        return 0
    try:
        epoch = json.loads(path.read_text())["epoch"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RunError(f"{path} is damaged; delete it and {STATE} to restart the run from scratch") from None
    if not isinstance(epoch, int) or epoch < 0:
        raise RunError(f"{path}: epoch must be a non-negative integer, got {epoch!r}")
    return epoch


def load_state(run_dir, model):
    """Load a saved training state into a DiffusionModel built from the same config."""
    path = pathlib.Path(run_dir) / STATE
    try:
        model.load_weights(path)
    except (ValueError, OSError, KeyError) as error:
        raise RunError(f"{path} cannot be loaded ({_first_line(error)}); delete it and {STATE_EPOCH} to restart") from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
