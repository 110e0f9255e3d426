"""Copy a finished run into the package as a pretrained model, with its manifest entry (maintainers only)."""

import csv
import json
import os
import pathlib
import platform
import shlex
import shutil

from keras_diffusion import pretrained

# what a pretrained model needs; a latent run also its autoencoder (train --latent writes it in autoencoder/)
FILES = ("config.json", "weights.weights.h5", "history.csv", "accuracy.json", "evaluation.json", "autoencoder/autoencoder.json", "autoencoder/autoencoder.weights.h5", "autoencoder/history.csv")


def training_command(config):
    """The train command line that reproduces a config: the flags that differ from the defaults."""
    from keras_diffusion.config import TrainConfig

    flags, base = [], TrainConfig(model=config.model).resolved()
    if config.model == "noisy_classifier":
        flags.append("--classifier")
    elif config.model != TrainConfig.model:
        flags.append(f"--model {config.model}")
    for key, value in config.to_dict().items():
        if key == "model_kwargs" and config.text:  # the prompt's vocabulary and sizes come from --text-encoder-run
            value = {k: v for k, v in value.items() if k != "prompt"}
        if key in ("model", "data_dir", "data_source") or value == getattr(base, key):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else f"--no-{key.replace('_', '-')}")
        else:
            flags.append(f"{flag} {shlex.quote(json.dumps(value)) if isinstance(value, dict) else value}")
    return " ".join(["python -m keras_diffusion.train"] + flags)


def hardware():
    """'<CPU model>, N cores' (and the GPU, if TensorFlow sees one)."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"{model}, {os.cpu_count()} cores" + (f", {len(gpus)} GPU(s)" if gpus else ", no GPU")


def pack(run, name, quality=None, note="", root=pretrained.ROOT):
    """Copy ``run``'s files into the package (or ``root``) under ``name`` and record them in the manifest.

    A text-encoder run (``train --text-encoder``) is packed with its evaluation.json as its quality.
    """
    import keras
    import tensorflow as tf

    from keras_diffusion.checkpoint import load_run, read_state_epoch, write_json

    run = pathlib.Path(run)
    clip = is_text_encoder_run(run)
    if clip:
        from keras_diffusion.text.training import EVALUATION, load_clip, read_clip_config

        model = load_clip(run)[0]  # refuses a damaged or unfinished run
        config = read_clip_config(run)[0]
        quality = quality or run / EVALUATION
        described = dict(kind="text_encoder", conditional=False, latent=False, command="python -m keras_diffusion.train --text-encoder", epochs=config.epochs)
    else:
        model, _, config = load_run(run)
        kind = "classifier" if config.model == "noisy_classifier" else "denoiser"
        described = dict(kind=kind, conditional=config.conditional, latent=config.latent, command=training_command(config), epochs=config.epochs)
        if config.text:
            described["text"] = True
    folder = pathlib.Path(root) / name
    folder.mkdir(exist_ok=True)
    files = {}
    for filename in FILES:
        if (run / filename).is_file():
            (folder / filename).parent.mkdir(exist_ok=True)
            shutil.copyfile(run / filename, folder / filename)
            files[filename] = pretrained.sha256(folder / filename)
    with open(run / "history.csv") as f:
        seconds = sum(float(row.get("seconds") or 0) for row in csv.DictReader(f))
    entry = {
        **described,
        "parameters": model.count_params(),
        "epochs": read_state_epoch(run) or described["epochs"],
        "hours": round(seconds / 3600, 3),
        "hardware": hardware(),
        "software": f"keras_diffusion {config_version(run)}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "note": note,
        "quality": json.loads(pathlib.Path(quality).read_text()) if quality else {},
        "megabytes": round(sum((folder / f).stat().st_size for f in files) / 1e6, 2),
        "files": files,
    }
    path = pathlib.Path(root) / pretrained.MANIFEST
    models = json.loads(path.read_text())["models"] if path.is_file() else {}
    models[name] = entry
    write_json(path, {"models": models})
    return folder


def is_text_encoder_run(run):
    """Whether a run directory holds a mini-CLIP (``train --text-encoder``) rather than a diffusion run."""
    try:
        return "text_encoder" in json.loads((pathlib.Path(run) / "config.json").read_text())
    except (OSError, ValueError):
        return False


def config_version(run):
    return json.loads((pathlib.Path(run) / "config.json").read_text())["version"]
