"""Pretrained run directories shipped inside the package, reached by name, never downloaded.

    from keras_diffusion import pretrained
    denoiser, schedule, config = pretrained.load("unet-fashion-mnist-conditional")

Each model is an ordinary run directory (``config.json``, weights, history)
under this folder, listed in ``manifest.json`` with how it was trained and
measured and the sha256 of every file, checked at every load: a changed or
truncated file is a one-line error, never a silently different model.
``python -m keras_diffusion.pretrained list`` shows them all.
"""

import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
MANIFEST = "manifest.json"


class PretrainedError(ValueError):
    """An unknown name or a damaged file; the message says what to do."""


def manifest(root=ROOT):
    """{name: entry} of every shipped model (plain JSON: reading it needs no TensorFlow)."""
    path = pathlib.Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())["models"]
    except (OSError, ValueError, KeyError) as error:
        raise PretrainedError(f"{path} cannot be read ({error}); reinstall keras_diffusion") from None


def names(root=ROOT):
    return tuple(manifest(root))


def entry(name, root=ROOT):
    """The manifest entry of one model; an unknown name lists the known ones."""
    models = manifest(root)
    if name not in models:
        raise PretrainedError(f"unknown pretrained model {name!r}; the package has: {', '.join(models) or 'none'}")
    return models[name]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def path(name, root=ROOT):
    """The verified run directory of a pretrained model: every file's sha256 matches the manifest."""
    files = entry(name, root)["files"]
    folder = pathlib.Path(root) / name
    for filename, expected in files.items():
        file = folder / filename
        if not file.is_file():
            raise PretrainedError(f"pretrained model {name!r}: {filename} is missing; reinstall keras_diffusion")
        if sha256(file) != expected:
            raise PretrainedError(
                f"pretrained model {name!r}: {filename} is damaged (its sha256 does not match the manifest); reinstall keras_diffusion"
            )
    return folder


def load(name, root=ROOT):
    """(model, schedule, config) of a pretrained model, as ``checkpoint.load_run`` gives for a run directory.

    A text encoder (kind "text_encoder") gives (MiniClip, WordTokenizer, Thresholds), as ``text.load_clip`` does.
    """
    folder = path(name, root)
    if entry(name, root)["kind"] == "text_encoder":
        from keras_diffusion.text.training import load_clip

        return load_clip(folder)
    from keras_diffusion.checkpoint import load_run

    return load_run(folder)


def run_or_pretrained(run, name, root=ROOT):
    """``run`` as a path when given (a run directory with its weights), else pretrained model ``name``'s verified folder.

    The tutorials read their model this way: the shipped one by default, the
    reader's own run when they name it.
    """
    if not run:
        return path(name, root)
    from keras_diffusion.checkpoint import WEIGHTS

    folder = pathlib.Path(run)
    if not (folder / WEIGHTS).is_file():
        raise PretrainedError(f"{folder} holds no trained run ({WEIGHTS} is missing): train one, or leave it unset to use the pretrained {name!r}")
    return folder


def add_run_arguments(parser, many=False, group=None):
    """``--run RUN`` or ``--pretrained NAME``, one of them required: for every command that reads a run.

    ``group``: an existing mutually exclusive group to add them to (evaluate has more choices).
    """
    group = group or parser.add_mutually_exclusive_group(required=True)
    help_run = "run directories written by keras_diffusion.train" if many else "run directory written by keras_diffusion.train"
    group.add_argument("--run", nargs="+" if many else None, help=help_run)
    group.add_argument("--pretrained", metavar="NAME", help="a model shipped with the package (python -m keras_diffusion.pretrained list)")


def resolve_run(args, many=False):
    """Replace ``args.pretrained`` by its verified folder in ``args.run``, so the command reads it as any run."""
    if getattr(args, "pretrained", None):
        folder = str(path(args.pretrained))
        args.run = [folder] if many else folder
    return args
