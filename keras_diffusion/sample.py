"""Draw images from a trained run.

    python -m keras_diffusion.sample --run runs/mlp_seed --n 64 --out samples.png --npz samples.npz
"""

import argparse
import pathlib
import sys
import time

from keras_diffusion import cli
from keras_diffusion.names import SAMPLERS, VARIANCES

EXAMPLES = [
    "python -m keras_diffusion.sample --run runs/unet --n 64 --out samples.png",
    "python -m keras_diffusion.sample --run runs/unet --n 1000 --npz samples.npz --seed 1",
    "python -m keras_diffusion.sample --run runs/unet --sampler ddim --steps 50",
]


def add_sampler_arguments(parser, many_steps=False):
    """The sampler flags that sample and evaluate share (evaluate takes several --steps)."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default: 0)")
    parser.add_argument("--sampler", default="ddpm", choices=SAMPLERS, help="ddpm (T steps) or ddim (default: ddpm)")
    if many_steps:
        parser.add_argument("--steps", type=int, nargs="+", help="DDIM steps, at most T; several values score each (default: T)")
    else:
        parser.add_argument("--steps", type=int, help="DDIM steps, at most T (default: T)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic, 1 like DDPM (default: 0)")
    parser.add_argument("--variance", default="beta", choices=VARIANCES, help="DDPM sigma_t^2 (default: beta)")
    parser.add_argument(
        "--clip", action=argparse.BooleanOptionalAction, help="clip the predicted x0 to the data range at each step (default: as the run)"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per compiled call (default: 256)")


def check_sampler_arguments(parser, args):
    """One-line errors for sampler flags that cannot work together."""
    for name in ("n", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps is not None and args.sampler == "ddpm":
        parser.error("--steps needs --sampler ddim (DDPM always takes all T steps)")
    for steps in args.steps if isinstance(args.steps, list) else [args.steps]:
        if steps is not None and steps < 1:
            parser.error(f"--steps must be >= 1, got {steps}")
    if not args.eta >= 0:
        parser.error(f"--eta must be >= 0, got {args.eta}")


def draw(args, run_dir, n, steps=None):
    """Load a run and draw n images with the sampler flags: (uint8 (n, 28, 28, 1), config, seconds).

    ``steps`` replaces ``args.steps`` (evaluate passes one of its several values).
    """
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import to_uint8
    from keras_diffusion.reverse import sample
    from keras_diffusion.training import clip_range, sampling_clip

    steps = args.steps if steps is None else steps
    denoiser, schedule, config = load_run(run_dir)
    if steps is not None and steps > schedule.timesteps:
        raise cli.UsageError(f"--steps must be <= T={schedule.timesteps} of this run, got {steps}")
    start = time.time()
    images = sample(
        denoiser,
        schedule,
        n,
        sampler=args.sampler,
        steps=steps,
        eta=args.eta,
        seed=args.seed,
        variance=args.variance,
        clip=sampling_clip(config) if args.clip is None else (clip_range(config.scaling) if args.clip else None),
        batch_size=args.batch_size,
    )
    return to_uint8(images, config.scaling), config, time.time() - start


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.sample", __doc__.strip().splitlines()[0], EXAMPLES)
    parser.add_argument("--run", required=True, help="run directory written by keras_diffusion.train")
    parser.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    parser.add_argument("--out", help="PNG grid to write (default: samples.png unless --npz is given)")
    parser.add_argument("--npz", help="also write the images as uint8 (N, 28, 28, 1) under key 'images'")
    add_sampler_arguments(parser)
    args = parser.parse_args(argv)
    check_sampler_arguments(parser, args)
    if not (pathlib.Path(args.run) / "config.json").is_file():  # fail before TensorFlow loads
        parser.error(f"--run {args.run}: {args.run} is not a run directory (no config.json); train one with python -m keras_diffusion.train")
    if args.out is None and args.npz is None:
        args.out = "samples.png"
    for flag, path in (("--out", args.out), ("--npz", args.npz)):
        # fail now, not after minutes of sampling
        if path is not None and not pathlib.Path(path).resolve().parent.is_dir():
            parser.error(f"{flag} {path}: folder {pathlib.Path(path).parent} does not exist")
    return args


def main(argv=None):
    args = parse_args(argv)
    from keras_diffusion.checkpoint import write_npz
    from keras_diffusion.plotting import plot_samples

    pixels, config, seconds = draw(args, args.run, args.n)  # (N, 28, 28, 1) uint8
    if args.npz:
        write_npz(args.npz, images=pixels)
        print(f"wrote {args.npz} (images: {pixels.shape} uint8)")
    if args.out:
        title = f"{config.model}, {args.sampler}" + (f" {args.steps} steps" if args.steps else "")
        plot_samples(pixels, title=title, path=pathlib.Path(args.out))
        print(f"wrote {args.out}")
    print(f"{args.n} images in {seconds:.1f} s ({args.n / seconds:.1f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
