"""Benchmarks: speed against the classic loop and against PyTorch + diffusers, the model ladder, the U-Net ablations.

    python -m keras_diffusion.bench speed --json speed.json
    python -m keras_diffusion.bench peer --python .peer/bin/python --json peer.json
    python -m keras_diffusion.bench ladder --epochs 2 --json ladder.json --figure assets/ladder.png
    python -m keras_diffusion.bench ablations --epochs 1 --fid-n 500 --json ablations.json

Speed goals are measured here, never asserted in tests.
"""

import argparse
import sys
import time
from typing import NamedTuple

from keras_diffusion import cli
from keras_diffusion.cpu import environment, write_results  # noqa: F401 (environment: re-exported)

EXAMPLES = [
    "python -m keras_diffusion.bench speed                   # classic loop vs the package",
    "python -m keras_diffusion.bench ladder                  # every rung, 2 epochs each",
    "python -m keras_diffusion.bench ladder --epochs 1 --limit 6000 --only mlp_seed mlp",
    "python -m keras_diffusion.bench ladder --json ladder.json --figure assets/ladder.png",
    "python -m keras_diffusion.bench ladder --seconds 300 --fid-n 500   # equal wall-clock, with FID",
    "python -m keras_diffusion.bench ablations --epochs 1 --fid-n 500   # the U-Net, one part removed at a time",
    "python -m keras_diffusion.bench peer --python .peer/bin/python --json assets/peer.json   # vs PyTorch + diffusers",
]

class Rung(NamedTuple):
    """One model of the ladder: a short key for --only, its label, the registered model, its kwargs, settings."""

    key: str
    label: str
    model: str
    kwargs: dict
    settings: dict


CLASSIC = dict(scaling="zero_one", schedule="linear", clip=False)
FIXED = dict(scaling="minus_one_one", schedule="cosine", clip=True)
# Each rung fixes one more flaw of the classic demo. Every rung outside the classic settings clips x̂_0
# while sampling: without it the cosine schedule's first reverse steps blow up any error in ε̂ (see README).
RUNGS = [
    # the baseline every rung should beat: the best affine ε̂ for each t, fit in closed form
    # (no gradient steps), once in the classic demo's settings and once in the fixed ones
    Rung("linear_classic", "linear (closed form), classic settings", "linear", {}, CLASSIC),
    Rung("linear", "linear (closed form)", "linear", {}, {}),
    Rung("mlp_seed", "mlp_seed: the classic demo", "mlp_seed", {}, CLASSIC),
    Rung("minus_one_one", "+ data in [-1, 1]", "mlp_seed", {}, dict(FIXED, schedule="linear")),
    Rung("cosine", "+ cosine schedule", "mlp_seed", {}, FIXED),
    Rung("sinusoidal", "+ sinusoidal time", "mlp_seed", {"time_embedding": "sinusoidal"}, FIXED),
    Rung("mlp", "mlp: time in every block", "mlp", {}, {}),
    # 1024 > 784 units: the output layer can reach every direction of ε (no rank-512 floor)
    Rung("mlp_wide", "mlp, 1024 wide: no output bottleneck", "mlp", {"hidden": 1024}, {}),
    # the same networks trained on ‖x_0 − x̂_0‖²: the weight moves to the noisy steps, where the image is
    # invented, and ε̂ = (x_t − √ᾱ_t·x̂_0)/√(1−ᾱ_t) gets x_t itself, so no output layer limits its rank
    Rung("mlp_x0", "mlp, predicts x_0", "mlp", {}, {"objective": "x0"}),
    Rung("mlp_wide_x0", "mlp, 1024 wide, predicts x_0", "mlp", {"hidden": 1024}, {"objective": "x0"}),
    Rung("unet", "unet", "unet", {}, {}),
    Rung("unet_x0", "unet, predicts x_0", "unet", {}, {"objective": "x0"}),
]
# ``bench ablations``: the default U-Net with one thing taken away at a time
ABLATIONS = [
    Rung("unet", "unet (all of it)", "unet", {}, {}),
    Rung("unet_t_over_T", "- sinusoidal time (t/T instead)", "unet", {"time_embedding": "t_over_T"}, {}),
    Rung("unet_no_skips", "- skip connections", "unet", {"skips": False}, {}),
    Rung("unet_no_attention", "- attention at 7x7", "unet", {"attention": False}, {}),
    Rung("unet_zero_one", "- data in [-1, 1] (data in [0, 1])", "unet", {}, dict(scaling="zero_one")),
]
LOSS_T = tuple(range(0, 200, 10)) + (199,)  # the timesteps of the loss-against-t curve (T = 200)


def _time(fn, repeat=1):
    fn()  # warm-up: tracing and compilation are not what we measure
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def bench_rung(rung, args, evaluator=None):
    """Train one rung on the shared budget (epochs, or seconds); measure its speed, loss against t, FID; keep 8 samples."""
    import keras  # here, not at the top: --help must not wait for TensorFlow

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import load_images, make_dataset, to_uint8
    from keras_diffusion.progress import EpochTimer, TimeBudget
    from keras_diffusion.reverse import sample
    from keras_diffusion.training import build_training, sampling_clip

    epochs = 10**6 if args.seconds else args.epochs  # with --seconds, the clock stops training
    config = TrainConfig(model=rung.model, model_kwargs=rung.kwargs, epochs=epochs, seed=args.seed, limit=args.limit, **rung.settings)
    config = config.resolved()
    keras.utils.set_random_seed(config.seed)  # every rung starts from the same seed, whatever ran before
    images, _ = load_images(config.dataset, "train", args.data_dir, limit=config.limit)
    dataset = make_dataset(images, config.batch_size, config.scaling, seed=config.seed)
    schedule, denoiser, diffusion = build_training(config, images.shape[1:])
    timer = EpochTimer()
    start = time.perf_counter()
    if rung.model == "linear":  # its one closed-form fit stands for the epochs
        from keras_diffusion.models.linear import fit_linear

        history = {"loss": [fit_linear(denoiser, images, config.scaling, schedule)]}
        timer.times = [time.perf_counter() - start]
    else:
        callbacks = [timer] + ([TimeBudget(args.seconds)] if args.seconds else [])
        history = diffusion.fit(dataset, epochs=config.epochs, callbacks=callbacks, verbose=0, shuffle=False).history
        if diffusion.optimizer.use_ema:  # sample and score the averaged weights, as a run does
            diffusion.optimizer.finalize_variable_values(denoiser.trainable_variables)
    train_seconds = time.perf_counter() - start
    steps = int(diffusion.optimizer.iterations.numpy()) if rung.model != "linear" else 0
    # the first epoch pays for tracing: use the last one; with a time budget, everything it trained
    epoch_seconds = timer.times[-1] if not (args.seconds and steps) else train_seconds * len(images) / (steps * config.batch_size)
    n = args.sample_batch
    clip = sampling_clip(config)
    if args.speed:  # a warm-up and a timed chain of each sampler
        ddpm = n / _time(lambda: sample(denoiser, schedule, n, seed=0, clip=clip))
        ddim = n / _time(lambda: sample(denoiser, schedule, n, sampler="ddim", steps=min(50, schedule.timesteps), seed=0, clip=clip))
    else:
        ddpm = ddim = None
    grid = sample(denoiser, schedule, 8, seed=args.seed, clip=clip)
    row = {
        "rung": rung.label,
        "key": rung.key,
        "model": rung.model,
        "model_kwargs": rung.kwargs,
        "scaling": config.scaling,
        "schedule": config.schedule,
        "clip": config.clip,
        "parameters": int(denoiser.count_params()),
        "batch_size": config.batch_size,
        "train_seconds": train_seconds,
        "epochs_trained": steps * config.batch_size / len(images) if steps else float(len(history["loss"])),
        "train_images_per_s": (len(images) // config.batch_size) * config.batch_size / epoch_seconds,
        "seconds_per_epoch": epoch_seconds * 60000 / len(images),
        "final_loss": float(history["loss"][-1]),
        "sample_ddpm_images_per_s": ddpm,
        "sample_ddim50_images_per_s": ddim,
    }
    tests, _ = load_images(config.dataset, "test", args.data_dir, limit=args.loss_n)
    row["loss_t"] = dict(zip(map(str, LOSS_T), loss_against_t(diffusion, tests, config.scaling, LOSS_T, args.seed)))
    row["test_loss"] = float(sum(row["loss_t"].values()) / len(LOSS_T))
    if evaluator is not None:  # FID of a stochastic DDIM-50 (eta = 1), the sampler this ladder scores with
        fid_images = sample(denoiser, schedule, args.fid_n, sampler="ddim", steps=50, eta=1.0, seed=args.seed, clip=clip, batch_size=250)
        scores = evaluator.score(to_uint8(fid_images, config.scaling))
        row.update(fid=scores["fid"], floor=scores["floor"], class_entropy=scores["class_entropy"])
    return row, to_uint8(grid, config.scaling)


def loss_against_t(diffusion, images, scaling, timesteps, seed=0, batch=500):
    """The mean ‖ε − ε̂‖² on ``images`` at each of ``timesteps``, with the same ε for every rung.

    Always the ε-loss, also for a rung trained to predict x_0, so that every rung is scored on one task.
    """
    import numpy as np
    import tensorflow as tf

    from keras_diffusion.data import scale_images

    x0 = np.asarray(scale_images(images, scaling), "float32")
    eps = np.random.default_rng(seed).standard_normal(x0.shape).astype("float32")
    loss = tf.function(lambda x, t, e: diffusion.denoising_loss(x, t, e, target="eps"))  # one graph, not op by op
    losses = []
    for t in timesteps:
        total = 0.0
        for i in range(0, len(x0), batch):
            x, e = tf.constant(x0[i : i + batch]), tf.constant(eps[i : i + batch])
            total += float(loss(x, tf.fill([len(x)], t), e)) * len(x)
        losses.append(total / len(x0))
    return losses


def ladder(args, rungs=None):
    """Train every rung with the same data, seed and budget; print a table; save JSON and the figures."""
    rungs = RUNGS if rungs is None else rungs
    keys = {r.key for r in rungs} | {r.model for r in rungs}
    unknown = sorted(set(args.only or ()) - keys)
    if unknown:
        raise cli.UsageError(f"--only: no rung or model {unknown[0]!r}; choose from {', '.join(r.key for r in rungs)}")
    chosen = [r for r in rungs if not args.only or r.key in args.only or r.model in args.only]
    evaluator = None
    if args.fid_n:
        from keras_diffusion.metrics import Evaluator

        evaluator = Evaluator(data_dir=args.data_dir, seed=args.seed)
    rows, grids = [], []
    for rung in chosen:
        print(f"-- {rung.label}", flush=True)
        row, grid = bench_rung(rung, args, evaluator)
        print("   " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k not in ("rung", "model_kwargs", "loss_t")), flush=True)
        rows.append(row)
        grids.append(grid)
    print()
    print(markdown_table(rows))
    budget = {"epochs": None if args.seconds else args.epochs, "seconds": args.seconds, "limit": args.limit, "seed": args.seed}
    if args.json:
        write_results(args.json, {**budget, "fid_n": args.fid_n, "fid_sampler": "ddim-50, eta 1", "rows": rows})
    if args.figure:
        from keras_diffusion.plotting import ladder_figure

        ladder_figure([r["rung"] for r in rows], grids, path=args.figure)
    if args.loss_figure:
        from keras_diffusion.plotting import plot_loss_t

        plot_loss_t(rows, path=args.loss_figure)
    return 0


def _rate(value):
    return "-" if value is None else f"{value:,.1f}"


def _fmt(value):
    return f"{value:,.3g}" if isinstance(value, float) else str(value)


def markdown_table(rows):
    """The README's ladder table; FID and class entropy when they were measured."""
    fid = any("fid" in r for r in rows)
    head = "| rung | parameters | epochs | train s | train images/s | test loss | DDPM images/s | DDIM-50 images/s |"
    head += " FID | class entropy |" if fid else ""
    lines = [head, "|" + "---|" * (10 if fid else 8)]
    for r in rows:
        line = (
            f"| {r['rung']} | {r['parameters']:,} | {r['epochs_trained']:.2g} | {r['train_seconds']:,.0f} | {r['train_images_per_s']:,.0f} "
            f"| {r['test_loss']:.4f} | {_rate(r['sample_ddpm_images_per_s'])} | {_rate(r['sample_ddim50_images_per_s'])} |"
        )
        line += f" {r['fid']:.1f} | {r['class_entropy']:.2f} |" if fid else ""
        lines.append(line)
    return "\n".join(lines)


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.bench", __doc__.strip().splitlines()[0], EXAMPLES)
    parser.add_argument("what", choices=["speed", "ladder", "ablations", "peer"], help="which benchmark")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs for every rung (default: 2)")
    parser.add_argument("--seconds", type=float, help="ladder, ablations: train every rung for this many seconds instead (equal wall-clock)")
    parser.add_argument("--fid-n", type=int, default=0, help="ladder, ablations: also score FID and class entropy on this many samples (DDIM-50, eta 1; 0: off)")
    parser.add_argument("--speed", action=argparse.BooleanOptionalAction, default=True, help="ladder, ablations: time DDPM and DDIM-50 sampling of each rung (default: on; --no-speed when the cores are shared)")
    parser.add_argument("--loss-n", type=int, default=1000, help="ladder, ablations: test images of the loss-against-t curve (default: 1000)")
    parser.add_argument("--loss-figure", help="ladder, ablations: plot every rung's test loss against t here")
    parser.add_argument("--limit", type=int, help="train on the first N images only")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything (default: 0)")
    parser.add_argument("--data-dir", help="folder with the four IDX files")
    parser.add_argument("--sample-batch", type=int, default=64, help="images per timed sampling call (default: 64)")
    parser.add_argument("--only", nargs="+", help="ladder, ablations: only these rungs (keys or model names); peer: only these rows")
    parser.add_argument("--quick", action="store_true", help="speed, peer: fewer timed steps")
    parser.add_argument("--python", help="peer: the Python of a venv with torch and diffusers (see benchmarks/peer/README.md)")
    parser.add_argument("--peer-dir", metavar="DIR", help="peer: the folder of the peer's scripts (default: benchmarks/peer of this checkout)")
    parser.add_argument("--peer-config", metavar="JSON", help="peer: run each peer row in the configuration benchmarks/peer_levers.py found fastest (default: float32 eager)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--figure", help="write the samples of every rung, one row each, here")
    args = parser.parse_args(argv)
    for name in ("epochs", "sample_batch", "loss_n"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seconds is not None and args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if args.fid_n and args.fid_n <= 128:
        parser.error(f"--fid-n must be 0 (off) or more than 128 (the classifier's features), got {args.fid_n}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.what == "speed":
        from keras_diffusion.speed import speed

        return speed(args)
    if args.what == "peer":
        from keras_diffusion.peer import peer

        return peer(args)
    return ladder(args, ABLATIONS if args.what == "ablations" else RUNGS)


if __name__ == "__main__":
    sys.exit(cli.run(main))
