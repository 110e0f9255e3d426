"""Score samples with numbers: FID (with its real-data floor), class coverage, bits/dim.

    python -m keras_diffusion.evaluate --run runs/unet --n 2000 --sampler ddim --steps 50

Prints one JSON line on stdout per run and step count (progress goes to stderr). FID uses the
package's own Fashion-MNIST classifier (keras_diffusion.metrics), so its values
compare with each other and with "floor", never with Inception FIDs in papers.
"""

import argparse
import json
import pathlib
import sys
import time

from keras_diffusion import cli, samplers
from keras_diffusion.pretrained import add_run_arguments, resolve_run
from keras_diffusion.sample import add_sampler_arguments, check_sampler_arguments

EXAMPLES = [
    "python -m keras_diffusion.evaluate --run runs/unet --n 2000                 # the default sampler: DPM-Solver++ SDE, 20 steps",
    "python -m keras_diffusion.evaluate --run runs/unet --n 2000 --sampler ddpm  # DDPM, all T steps",
    "python -m keras_diffusion.evaluate --run runs/unet --n 2000 --sampler ddim --steps 50",
    "python -m keras_diffusion.evaluate --run runs/unet --bpd --no-fid --n 1000  # bits/dim on test images",
    "python -m keras_diffusion.evaluate --run runs/unet --n 500 --sampler ddim --steps 10 20 50 200 --figure fid.png",
    "python -m keras_diffusion.evaluate --run runs/unet --n 500 --sampler dpmpp_2m --spacing karras --steps 5 10 20   # FID against NFE",
    "python -m keras_diffusion.evaluate --run runs/mlp runs/unet --n 2000 --bpd --markdown   # a table of runs",
    "python -m keras_diffusion.evaluate --npz samples.npz                        # images from anywhere",
    "python -m keras_diffusion.evaluate --real --n 2000                          # the floor only",
    "python -m keras_diffusion.evaluate --train-classifier                       # re-create the weights",
    "python -m keras_diffusion.evaluate --run runs/cond --n 1000 --label-accuracy --guidance 3 --sampler ddim --steps 50",
]


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.evaluate", __doc__.strip().splitlines()[0], EXAMPLES)
    what = parser.add_mutually_exclusive_group(required=True)
    add_run_arguments(parser, many=True, group=what)
    what.add_argument("--npz", help="score the uint8 images under key 'images' of this .npz")
    what.add_argument("--real", action="store_true", help="score real training images: FID is then the floor")
    what.add_argument("--train-classifier", action="store_true", help="train the FID classifier and write its weights")
    parser.add_argument("--n", type=int, default=2000, help="images to score (default: 2000; for --bpd, test images)")
    parser.add_argument("--fid", action=argparse.BooleanOptionalAction, default=True, help="compute FID and class coverage (default: on)")
    parser.add_argument("--bpd", action="store_true", help="also compute bits/dim on test images (needs --run)")
    parser.add_argument("--bpd-n", type=int, help="test images for --bpd (default: --n)")
    parser.add_argument("--fid-classifier", help="FID classifier weights to use or, with --train-classifier, to write (default: the packaged ones)")
    parser.add_argument(
        "--label-accuracy", action="store_true",
        help="draw n/10 images of each class (guided: --guidance, or --classifier RUN) and report the fraction classified as asked",
    )
    parser.add_argument("--epochs", type=int, default=6, help="with --train-classifier: epochs (default: 6)")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (default: found as training does)")
    parser.add_argument("--out", help="also write the JSON lines to this file")
    parser.add_argument("--markdown", action="store_true", help="also print the results as a Markdown table")
    parser.add_argument("--figure", help="with several --steps: plot FID against DDIM steps into this PNG")
    add_sampler_arguments(parser, many_steps=True)
    args = resolve_run(parser.parse_args(argv), many=True)
    if args.label_accuracy:
        if not args.run or args.label not in (None, "all"):
            parser.error("--label-accuracy draws every class from --run: drop --label")
        args.label = "all"
    elif args.label is not None:
        parser.error("evaluate draws labels only with --label-accuracy")
    check_sampler_arguments(parser, args)
    if args.bpd_n is not None and args.bpd_n < 1:
        parser.error(f"--bpd-n must be >= 1, got {args.bpd_n}")
    if args.bpd and not args.run:
        parser.error("--bpd needs --run (the bound is computed with the run's denoiser)")
    if not (args.fid or args.bpd or args.train_classifier):
        parser.error("nothing to compute: --no-fid needs --bpd")
    for run in args.run or []:  # fail now, not after loading the classifier and the data
        if not (pathlib.Path(run) / "config.json").is_file():
            parser.error(f"--run {run}: {run} is not a run directory (no config.json); train one with python -m keras_diffusion.train")
    if args.npz and not pathlib.Path(args.npz).is_file():
        parser.error(f"--npz {args.npz}: no such file")
    if args.figure and not (args.run and args.steps):
        parser.error("--figure plots FID against --steps: give --run and --steps ...")
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    return args


def _resolved(run, sampling):
    """The sampling settings with the run's defaults (T, clipping), read from its config.json without loading the model."""
    from keras_diffusion.checkpoint import read_config
    from keras_diffusion.sample import resolve_sampling

    return resolve_sampling(sampling, read_config(run)[0])


def _log(message):
    print(message, file=sys.stderr, flush=True)


def load_npz_images(path):
    """The uint8 images under key 'images' of an .npz, with a clear error when they are not there."""
    import numpy as np

    with np.load(path) as data:
        if "images" not in data:
            raise cli.UsageError(f"{path} has no 'images' array (it has: {', '.join(data.files) or 'nothing'})")
        return data["images"]


def main(argv=None):
    args = parse_args(argv)
    from keras_diffusion import metrics

    if args.train_classifier:
        start = time.time()
        _log("training the FID classifier on the Fashion-MNIST training set")
        _, accuracy = metrics.train_classifier(epochs=args.epochs, out=args.fid_classifier, data_dir=args.data_dir)
        out = str(args.fid_classifier or metrics.weights_path())
        results = [{"classifier": out, "test_accuracy": round(accuracy, 4), "epochs": args.epochs, "seconds": round(time.time() - start, 1)}]
        _emit(args, results)
        return 0
    evaluator = metrics.Evaluator(
        metrics.load_classifier(args.fid_classifier) if args.fid_classifier else None, data_dir=args.data_dir, seed=args.seed
    )
    results = []
    for run in args.run or [None]:
        for first, sampling in zip([True] + [False] * len(args.samplings), args.samplings):
            start = time.time()
            result = {"source": run or args.npz or "real train images", "n": args.n}
            if run:
                sampling = _resolved(run, sampling)
                options = samplers.REGISTRY[sampling.sampler].options
                result.update(sampler=sampling.sampler, steps=sampling.steps, eta=sampling.eta if "eta" in options else None)
                result.update(spacing=sampling.spacing, nfe=sampling.nfe(sampling.guidance or 0.0))
                if sampling.churn:
                    result["churn"] = sampling.churn
                result.update({k: getattr(sampling, k) for k in ("guidance", "classifier_scale") if getattr(sampling, k) is not None})
            if args.fid:
                result.update(_fid(args, evaluator, run, sampling))
            if args.bpd and first:  # the bound does not depend on the sampler
                result.update(_bpd(args, evaluator, run))
            result["seconds"] = round(time.time() - start, 1)
            print(json.dumps(result), flush=True)
            results.append(result)
    _emit(args, results, printed=True)
    if args.figure:
        from keras_diffusion.plotting import plot_fid_steps

        plot_fid_steps(results, path=args.figure)
        _log(f"wrote {args.figure}")
    return 0


def _emit(args, results, printed=False):
    """Print (unless done already) and write the JSON lines; print the Markdown table when asked."""
    lines = [json.dumps(result) for result in results]
    if not printed:
        print("\n".join(lines))
    if args.out:
        from keras_diffusion.checkpoint import atomic_write

        atomic_write(args.out, lambda tmp: pathlib.Path(tmp).write_text("\n".join(lines) + "\n"))
    if args.markdown:
        print(markdown_table(results))


def markdown_table(results):
    """The results as a Markdown table, one row per run and step count."""
    columns = [("source", "run"), ("sampler", "sampler"), ("steps", "steps"), ("nfe", "NFE"), ("guidance", "w"), ("classifier_scale", "classifier scale"),
               ("n", "n"), ("fid", "FID"), ("floor", "floor"), ("class_entropy", "class entropy"),
               ("label_accuracy", "label accuracy"), ("bpd", "bits/dim"), ("seconds", "seconds")]
    columns = [(key, title) for key, title in columns if any(key in r for r in results)]
    rows = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    for result in results:
        cells = ["" if result.get(key) is None else str(result[key]) for key, _ in columns]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _fid(args, evaluator, run, sampling):
    requested, extra = None, {}
    if run:
        import numpy as np

        from keras_diffusion.sample import draw

        _log(f"sampling {args.n} images from {run} ({sampling.describe()})")
        images, _, seconds = draw(args, run, args.n, sampling)
        _log(f"sampled in {seconds:.0f} s; scoring")
        extra["images_per_second"] = round(len(images) / seconds, 2)
        if args.label_accuracy:  # drawn class after class, len(images) // 10 of each
            requested = np.repeat(np.arange(10), len(images) // 10)
    elif args.npz:
        images = load_npz_images(args.npz)  # its own n: score() reports it
    else:
        images = evaluator.real_images("train", args.n)
    scores = evaluator.score(images, requested)
    rounded = {"fid": round(scores["fid"], 3), "floor": round(scores["floor"], 3), "class_entropy": round(scores["class_entropy"], 4)}
    return {**scores, **rounded, **extra}


def _bpd(args, evaluator, run):
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.metrics import bits_per_dim
    from keras_diffusion.data import sampling_clip

    denoiser, schedule, config = load_run(run)
    if config.latent:  # DDPM's bound of a latent run is over latents, not pixels: not comparable, so not given
        raise cli.UsageError(f"--bpd: {run} is a latent run, whose bound is over latents, not pixels; drop --bpd")
    n = args.bpd_n or args.n
    images = evaluator.real_images("test", n)
    _log(f"bits/dim on {n} test images: {schedule.timesteps} denoiser calls per batch")
    result = bits_per_dim(
        denoiser, schedule, images, config.scaling, seed=args.seed, clip=sampling_clip(config),
        progress=lambda done: _log(f"  {done}/{n} images"),
    )
    parts = {k: round(v, 4) for k, v in result.items() if k != "bpd"}
    return {"bpd": round(result["bpd"], 4), "bpd_n": n, "bpd_parts": parts}


if __name__ == "__main__":
    sys.exit(cli.run(main))
