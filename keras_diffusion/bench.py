"""Benchmarks: speed against the classic loop and against PyTorch + diffusers, and the model ladder.

    python -m keras_diffusion.bench speed --json speed.json
    python -m keras_diffusion.bench peer --python .peer/bin/python --json peer.json
    python -m keras_diffusion.bench ladder --epochs 2 --json ladder.json --figure assets/ladder.png

Speed goals are measured here, never asserted in tests.
"""

import json
import os
import pathlib
import platform
import sys
import time

from keras_diffusion import cli

EXAMPLES = [
    "python -m keras_diffusion.bench speed                   # classic loop vs the package",
    "python -m keras_diffusion.bench ladder                  # every rung, 2 epochs each",
    "python -m keras_diffusion.bench ladder --epochs 1 --limit 6000 --only mlp_seed mlp",
    "python -m keras_diffusion.bench ladder --json ladder.json --figure assets/ladder.png",
    "python -m keras_diffusion.bench peer --python .peer/bin/python --json assets/peer.json   # vs PyTorch + diffusers",
]

# (label, model, model kwargs, settings): each rung fixes one more flaw of the classic demo.
# Every rung outside the classic settings clips x̂_0 while sampling: without it the cosine schedule's
# first reverse steps blow up any error in ε̂ (see README), which would hide what the fix does.
RUNGS = [
    # the baseline every rung should beat: the best affine ε̂ for each t, fit in closed form
    # (no gradient steps), once in the classic demo's settings and once in the fixed ones
    ("linear (closed form), classic settings", "linear", {}, dict(scaling="zero_one", schedule="linear", clip=False)),
    ("linear (closed form)", "linear", {}, {}),
    ("mlp_seed: the classic demo", "mlp_seed", {}, dict(scaling="zero_one", schedule="linear", clip=False)),
    ("+ data in [-1, 1]", "mlp_seed", {}, dict(scaling="minus_one_one", schedule="linear", clip=True)),
    ("+ cosine schedule", "mlp_seed", {}, dict(scaling="minus_one_one", schedule="cosine", clip=True)),
    ("+ sinusoidal time", "mlp_seed", {"time_embedding": "sinusoidal"}, dict(scaling="minus_one_one", schedule="cosine", clip=True)),
    ("mlp: time in every block", "mlp", {}, {}),
    ("unet", "unet", {}, {}),
]


def _time(fn, repeat=1):
    fn()  # warm-up: tracing and compilation are not what we measure
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def bench_rung(label, model, model_kwargs, settings, args):
    """Train one rung with the shared budget; measure its speed and keep 8 samples."""
    import keras  # here, not at the top: --help must not wait for TensorFlow

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import load_images, make_dataset, to_uint8
    from keras_diffusion.progress import EpochTimer
    from keras_diffusion.reverse import sample
    from keras_diffusion.training import build_training, sampling_clip

    config = TrainConfig(model=model, model_kwargs=model_kwargs, epochs=args.epochs, seed=args.seed, limit=args.limit, **settings)
    config = config.resolved()
    keras.utils.set_random_seed(config.seed)  # every rung starts from the same seed, whatever ran before
    images, _ = load_images(config.dataset, "train", args.data_dir, limit=config.limit)
    dataset = make_dataset(images, config.batch_size, config.scaling, seed=config.seed)
    schedule, denoiser, diffusion = build_training(config, images.shape[1:])
    timer = EpochTimer()
    if model == "linear":  # its one closed-form fit stands for the epochs
        from keras_diffusion.models.linear import fit_linear

        start = time.perf_counter()
        history = {"loss": [fit_linear(denoiser, images, config.scaling, schedule)]}
        timer.times = [time.perf_counter() - start]
    else:
        history = diffusion.fit(dataset, epochs=config.epochs, callbacks=[timer], verbose=0, shuffle=False).history
    steps_per_epoch = len(images) // config.batch_size
    # the first epoch pays for tracing: use the last one
    epoch_seconds = timer.times[-1]
    n = args.sample_batch
    clip = sampling_clip(config)
    ddpm = _time(lambda: sample(denoiser, schedule, n, seed=0, clip=clip))
    ddim = _time(lambda: sample(denoiser, schedule, n, sampler="ddim", steps=min(50, schedule.timesteps), seed=0, clip=clip))
    grid = sample(denoiser, schedule, 8, seed=args.seed, clip=clip)
    row = {
        "rung": label,
        "model": model,
        "model_kwargs": model_kwargs,
        "scaling": config.scaling,
        "schedule": config.schedule,
        "clip": config.clip,
        "parameters": int(denoiser.count_params()),
        "batch_size": config.batch_size,
        "train_images_per_s": steps_per_epoch * config.batch_size / epoch_seconds,
        "seconds_per_epoch": epoch_seconds * 60000 / len(images),
        "final_loss": float(history["loss"][-1]),
        "sample_ddpm_images_per_s": n / ddpm,
        "sample_ddim50_images_per_s": n / ddim,
    }
    return row, to_uint8(grid, config.scaling)


def ladder(args):
    """Train every rung with the same data, seed and epochs; print a table; save JSON and the figure."""
    rows, grids = [], []
    for label, model, kwargs, settings in RUNGS:
        if args.only and model not in args.only:
            continue
        print(f"-- {label}", flush=True)
        row, grid = bench_rung(label, model, kwargs, settings, args)
        print("   " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("rung", "model_kwargs")), flush=True)
        rows.append(row)
        grids.append(grid)
    print()
    print(markdown_table(rows))
    if args.json:
        write_results(args.json, {"epochs": args.epochs, "limit": args.limit, "seed": args.seed, "rows": rows})
    if args.figure:
        from keras_diffusion.plotting import ladder_figure

        ladder_figure([r["rung"] for r in rows], grids, path=args.figure)
    return 0


def environment():
    """The device, versions and command, stored with every result."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "command": "python -m keras_diffusion.bench " + " ".join(sys.argv[1:]),
        "device": f"{len(gpus)} GPU(s)" if gpus else f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
    }


def write_results(path, results):
    pathlib.Path(path).write_text(json.dumps({**environment(), **results}, indent=2) + "\n")


def _fmt(value):
    return f"{value:,.3g}" if isinstance(value, float) else str(value)


def markdown_table(rows):
    """The README's ladder table."""
    head = "| rung | parameters | train images/s | s/epoch (60k) | final loss | DDPM images/s | DDIM-50 images/s |"
    lines = [head, "|" + "---|" * 7]
    for r in rows:
        lines.append(
            f"| {r['rung']} | {r['parameters']:,} | {r['train_images_per_s']:,.0f} | {r['seconds_per_epoch']:,.0f} "
            f"| {r['final_loss']:.4f} | {r['sample_ddpm_images_per_s']:,.1f} | {r['sample_ddim50_images_per_s']:,.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.bench", __doc__.strip().splitlines()[0], EXAMPLES)
    parser.add_argument("what", choices=["speed", "ladder", "peer"], help="which benchmark")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs for every rung (default: 2)")
    parser.add_argument("--limit", type=int, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    parser.add_argument("--data-dir", help="folder with the four IDX files")
    parser.add_argument("--sample-batch", type=int, default=64, help="images per timed sampling call (default: 64)")
    parser.add_argument("--only", nargs="+", help="ladder: benchmark only these model names; peer: only these rows")
    parser.add_argument("--quick", action="store_true", help="speed, peer: fewer timed steps")
    parser.add_argument("--python", help="peer: the Python of a venv with torch and diffusers (see benchmarks/peer/README.md)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--figure", help="write the samples of every rung, one row each, here")
    args = parser.parse_args(argv)
    for name in ("epochs", "sample_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.what == "speed":
        from keras_diffusion.speed import speed

        return speed(args)
    if args.what == "peer":
        from keras_diffusion.peer import peer

        return peer(args)
    return ladder(args)


if __name__ == "__main__":
    sys.exit(cli.run(main))
