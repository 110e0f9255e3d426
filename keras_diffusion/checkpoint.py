"""A run directory: config.json + weights + history.csv + figures.

Every file is written to a temporary name and renamed into place, so a kill
during a save leaves the previous file whole (and at worst a ``.<name>.tmp-*``
leftover, which loading ignores). Loading rebuilds the model from
``config.json`` (plain JSON, validated) and then reads weights only: no
pickle, no code from the file.
"""

import json
import os
import pathlib
import tempfile
import warnings
import zipfile

import keras
import numpy as np

from keras_diffusion import __version__
from keras_diffusion.config import TrainConfig
from keras_diffusion.data import NUM_CLASSES
from keras_diffusion.models import build_model
from keras_diffusion.models.objective import parameterized
from keras_diffusion.schedule import NoiseSchedule

CONFIG = "config.json"
WEIGHTS = "weights.weights.h5"
HISTORY = "history.csv"
CONFIG_KEYS = ("package", "version", "train", "schedule", "image_shape")
LEFTOVERS = ".*.tmp-*"  # what atomic_write leaves behind when killed mid-save


class RunError(ValueError):
    """A run directory is missing, broken or does not match this package."""


class RunWarning(UserWarning):
    """Something in a run directory is odd but harmless, e.g. a half-written file from a kill."""


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
        # on disk before the rename: after a power cut the name points at whole data, never at a hole
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fsync(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # folders cannot be opened on Windows; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder; pick another --out")
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
    """Read and validate config.json; return (TrainConfig, NoiseSchedule, image_shape).

    Every error is a ``RunError`` naming the file and the field. Leftovers of
    an interrupted save are ignored with a ``RunWarning``.
    """
    run_dir = pathlib.Path(run_dir)
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: {CONFIG} is missing (train one with python -m keras_diffusion.train)")
    _warn_leftovers(run_dir)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunError(f"{path} is not valid JSON ({error}); it may be from a crashed save") from None
    if not isinstance(data, dict) or data.get("package") != "keras_diffusion":
        raise RunError(f"{path} is not a keras_diffusion run config")
    version = str(data.get("version", ""))
    if version.split(".")[:2] != __version__.split(".")[:2]:
        raise RunError(f"{path} was written by keras_diffusion {version or '?'}; this is {__version__}: retrain, or install that version")
    unknown, missing = sorted(set(data) - set(CONFIG_KEYS)), [k for k in CONFIG_KEYS if k not in data]
    if unknown or missing:
        problem = f"unknown keys {unknown}" if unknown else f"missing keys {missing}"
        raise RunError(f"{path}: {problem}; a run config has exactly {', '.join(CONFIG_KEYS)}")
    config = _read_field(path, "train", data, lambda v: TrainConfig.from_dict(_object(v)).resolved())
    schedule = _read_field(path, "schedule", data, lambda v: NoiseSchedule.from_config(_object(v)))
    image_shape = _read_field(path, "image_shape", data, _image_shape)
    if schedule.timesteps != config.timesteps:
        raise RunError(f"{path}: schedule has T={schedule.timesteps} but train.timesteps is {config.timesteps}")
    return config, schedule, image_shape


def _read_field(path, key, data, parse):
    try:
        return parse(data[key])
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{path}: {key}: {_first_line(error)}") from None


def _object(value):
    if not isinstance(value, dict):
        raise ValueError(f"must be a JSON object, got {value!r}")
    return value


def _image_shape(value):
    ok = isinstance(value, list) and len(value) == 3
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ValueError(f"must be 3 positive integers [height, width, channels], got {value!r}")
    return tuple(value)


def _warn_leftovers(run_dir):
    leftovers = sorted(p.name for p in run_dir.glob(LEFTOVERS))
    if leftovers:
        warnings.warn(
            f"{run_dir} holds {len(leftovers)} half-written file(s) from an interrupted save, ignored: "
            f"{', '.join(leftovers)} (delete them when no training is writing to this run)",
            RunWarning,
            stacklevel=2,
        )


def build_denoiser(config, image_shape):
    """The model a config describes (a denoiser, conditional with --conditional, or a noisy classifier).

    With ``objective="x0"`` or ``"v"`` the network's output is read as x̂_0 or
    v̂ and converted to ε̂ (``models.objective``), so the run samples like any other.
    """
    kwargs = dict(config.model_kwargs)
    if config.conditional:
        kwargs["num_classes"] = NUM_CLASSES
    network = build_model(config.model, image_shape=image_shape, timesteps=config.timesteps, **kwargs)
    return parameterized(network, config.noise_schedule(), config.objective)  # "eps": the network itself


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
    except OSError as error:  # h5py: cut short, or not HDF5 at all
        raise RunError(f"{path} is damaged ({_first_line(error)}); copy it again, or train again") from None
    except (ValueError, KeyError) as error:
        raise RunError(f"{path} does not fit model {config.model!r} ({_first_line(error)}); the file is damaged or from another run") from None
    return denoiser, schedule, config


def load_keras_model(path):
    """Load a whole model from a ``.keras`` file, never running code stored in it.

    ``safe_mode=True`` always: a file with a ``Lambda`` layer (pickled Python
    bytecode) is refused with a ``RunError`` instead of executed. Our own
    layers are registered, so denoisers saved with ``model.save`` load.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise RunError(f"{path} does not exist")
    if path.suffix != ".keras" or not zipfile.is_zipfile(path):
        raise RunError(f"{path} is not a .keras file (the zip archive that model.save writes)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except (ValueError, TypeError, KeyError, OSError) as error:
        reason = _first_line(error)
        if "safe_mode" in reason:
            raise RunError(
                f"{path} holds Python code (a Lambda layer) and keras_diffusion never runs code from a file: "
                "rebuild the model in Python and load only its weights"
            ) from None
        raise RunError(f"{path} cannot be loaded ({reason})") from None


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
        raise RunError(
            f"{path} cannot be loaded ({_first_line(error)}); the run cannot be resumed: "
            f"delete it and {STATE_EPOCH} to restart from scratch"
        ) from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
