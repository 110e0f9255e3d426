"""Draw images from a trained run.

    python -m keras_diffusion.sample --run runs/mlp_seed --n 64 --out samples.png --npz samples.npz
"""

import argparse
import pathlib
import sys
import time

from keras_diffusion import cli, samplers
from keras_diffusion.pretrained import add_run_arguments, resolve_run
from keras_diffusion.names import VARIANCES

EXAMPLES = [
    "python -m keras_diffusion.sample --run runs/unet --n 64 --out samples.png",
    "python -m keras_diffusion.sample --pretrained unet-fashion-mnist --n 64 --out samples.png   # no training",
    "python -m keras_diffusion.sample --run runs/unet --n 1000 --npz samples.npz --seed 1",
    "python -m keras_diffusion.sample --run runs/unet --sampler ddim --steps 50",
    "python -m keras_diffusion.sample --run runs/unet --sampler dpmpp_2m --steps 20   # 20 network calls an image",
    "python -m keras_diffusion.sample --run runs/unet --sampler heun --steps 10 --spacing karras   # 19 calls",
    "python -m keras_diffusion.sample --run runs/unet --sampler dpmpp_2m_sde --steps 25 --spacing karras",
    "python -m keras_diffusion.sample --run runs/cond --label sneaker --guidance 3",
    "python -m keras_diffusion.sample --run runs/cond --label all --n 80   # one row a class",
    "python -m keras_diffusion.sample --run runs/unet --label bag --classifier runs/clf --classifier-scale 2",
]


def add_sampler_arguments(parser, many_steps=False):
    """The sampler flags that sample and evaluate share (evaluate takes several --steps)."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default: 0)")
    summaries = "; ".join(f"{name}: {entry.summary}" for name, entry in samplers.REGISTRY.items())
    parser.add_argument("--sampler", default="ddpm", choices=samplers.SAMPLERS, help=f"{summaries} (default: ddpm)")
    if many_steps:
        parser.add_argument("--steps", type=int, nargs="+", help="sampler steps, at most T; several values score each (default: T)")
    else:
        parser.add_argument("--steps", type=int, help="sampler steps, at most T (default: T)")
    parser.add_argument(
        "--spacing", default="uniform", choices=samplers.SPACINGS,
        help="how the steps spread over t: uniform, quadratic (DDIM), karras (rho = 7, Karras et al. 2022) (default: uniform)",
    )
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic, 1 like DDPM (default: 0)")
    parser.add_argument("--churn", type=float, default=0.0, help="Heun's S_churn: fresh noise before each step, 0 = the ODE (default: 0)")
    parser.add_argument("--variance", default="beta", choices=VARIANCES, help="DDPM sigma_t^2 (default: beta)")
    parser.add_argument(
        "--clip", action=argparse.BooleanOptionalAction, help="clip the predicted x0 to the data range at each step (default: as the run)"
    )
    parser.add_argument(
        "--recompute-eps",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="DDIM with clipping: re-derive eps from the clipped x0 (default: on)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per compiled call (default: 256)")
    guidance = parser.add_argument_group("guidance (class-conditional runs, or a noisy classifier)")
    guidance.add_argument("--label", help="class to draw, by number or name (sneaker, bag, ...); 'all' draws one row a class")
    guidance.add_argument(
        "--guidance", type=float, help="classifier-free guidance w >= 0 (default: 3 with --label on a conditional run, 0 with --classifier)"
    )
    guidance.add_argument(
        "--classifier", metavar="RUN", help="noisy classifier run (train --classifier), or a pretrained one's name, for classifier guidance"
    )
    guidance.add_argument("--classifier-scale", type=float, help="classifier guidance scale s >= 0 (default: 1 with --classifier)")


def check_sampler_arguments(parser, args):
    """One-line errors for sampler flags that cannot work together."""
    for name in ("n", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.steps is not None and samplers.REGISTRY[args.sampler].every_step:
        parser.error(f"--steps needs --sampler {', '.join(samplers.STEPPED)} ({args.sampler} always takes all T steps)")
    for steps in args.steps if isinstance(args.steps, list) else [args.steps]:
        if steps is not None and steps < 1:
            parser.error(f"--steps must be >= 1, got {steps}")
    for flag in ("eta", "churn"):
        if not getattr(args, flag) >= 0:
            parser.error(f"--{flag} must be >= 0, got {getattr(args, flag)}")
    for flag in ("eta", "churn"):  # options a sampler does not read would be silently ignored
        takers = [name for name, entry in samplers.REGISTRY.items() if flag in entry.options]
        if getattr(args, flag) and args.sampler not in takers:
            parser.error(f"--{flag} is for --sampler {' or '.join(takers)}, not {args.sampler}")
    for flag in ("guidance", "classifier_scale"):
        value = getattr(args, flag)
        if value is not None and not value >= 0:
            parser.error(f"--{flag.replace('_', '-')} must be >= 0, got {value}")
    if args.classifier_scale and args.classifier is None:
        parser.error("--classifier-scale needs --classifier RUN (a noisy classifier: train --classifier)")
    if (args.guidance or args.classifier) and args.label is None:
        parser.error("guidance needs --label: a class by number or name, or 'all'")


def guidance_settings(args, config, n):
    """(sample kwargs for labels and guidance, the number of images) from --label/--guidance/--classifier.

    ``--label all`` draws max(1, n // 10) images of each class, class after class.
    """
    import numpy as np

    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import CLASS_NAMES, label_index
    from keras_diffusion.guidance import DEFAULT_GUIDANCE

    if args.label is None:
        return {}, n
    try:
        if args.label == "all":
            labels = np.repeat(np.arange(len(CLASS_NAMES[config.dataset])), max(1, n // len(CLASS_NAMES[config.dataset])))
        else:
            labels = np.full(n, label_index(args.label, config.dataset))
    except ValueError as error:
        raise cli.UsageError(f"--label: {error}") from None
    kwargs = {"labels": labels}
    if config.conditional:  # with --classifier alone, the run's null label: classifier guidance of an unconditional model
        kwargs["guidance"] = (0.0 if args.classifier else DEFAULT_GUIDANCE) if args.guidance is None else args.guidance
    elif args.guidance:
        raise cli.UsageError("--guidance needs a run trained with --conditional; for this one use --classifier RUN")
    elif args.classifier is None:
        raise cli.UsageError("--label needs a run trained with --conditional, or --classifier RUN for classifier guidance")
    if args.classifier is not None:
        from keras_diffusion import pretrained

        # a run directory, or the name of a shipped classifier
        shipped = not pathlib.Path(args.classifier).exists() and args.classifier in pretrained.names()
        classifier, schedule, clf_config = load_run(pretrained.path(args.classifier) if shipped else args.classifier)
        if clf_config.model != "noisy_classifier":
            raise cli.UsageError(f"--classifier {args.classifier} is a {clf_config.model} run; train one with --classifier")
        if clf_config.schedule != config.schedule or clf_config.timesteps != config.timesteps or clf_config.scaling != config.scaling:
            raise cli.UsageError(f"--classifier {args.classifier} was trained with another schedule, T or scaling than this run")
        kwargs.update(classifier=classifier, classifier_scale=1.0 if args.classifier_scale is None else args.classifier_scale)
    return kwargs, len(labels)


def draw(args, run_dir, n, steps=None):
    """Load a run and draw n images with the sampler flags: (uint8 (n, 28, 28, 1), config, seconds).

    ``steps`` replaces ``args.steps`` (evaluate passes one of its several values).
    """
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import to_uint8
    from keras_diffusion.progress import SamplingProgress
    from keras_diffusion.reverse import sample
    from keras_diffusion.training import clip_range, sampling_clip

    steps = args.steps if steps is None else steps
    denoiser, schedule, config = load_run(run_dir)
    if config.model == "noisy_classifier":
        raise cli.UsageError(f"{run_dir} is a noisy classifier, not a denoiser: pass it as --classifier {run_dir}")
    if steps is not None and steps > schedule.timesteps:
        raise cli.UsageError(f"--steps must be <= T={schedule.timesteps} of this run, got {steps}")
    decode = _latent_decoder(args, run_dir, config)
    guided, n = guidance_settings(args, config, n)
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
        progress=SamplingProgress(n),  # a line after a batch when 30 s have passed
        recompute_eps=args.recompute_eps,
        spacing=args.spacing,
        churn=args.churn,
        **guided,
    )
    if decode is not None:  # a latent run draws latents z_0: the image is D(z_0 / s), and decoding is part of the time
        images = decode(images)
    return to_uint8(images, config.scaling), config, time.time() - start


def _latent_decoder(args, run_dir, config):
    """None for a pixel run; for a latent run (train --latent), its autoencoder's decoder, after checking the flags."""
    if not config.latent:
        return None
    if args.clip:
        raise cli.UsageError("--clip clips to the pixel range, and a latent run samples latents: drop --clip")
    if args.classifier:
        raise cli.UsageError("--classifier guides with a classifier of pixels, and a latent run samples latents: use --label with --guidance")
    from keras_diffusion.latent import load_decoder

    return load_decoder(run_dir)


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.sample", __doc__.strip().splitlines()[0], EXAMPLES)
    add_run_arguments(parser)
    parser.add_argument("--n", type=int, default=64, help="number of images (default: 64)")
    parser.add_argument("--out", help="PNG grid to write (default: samples.png unless --npz is given)")
    parser.add_argument("--npz", help="also write the images as uint8 (N, 28, 28, 1) under key 'images'")
    add_sampler_arguments(parser)
    args = resolve_run(parser.parse_args(argv))
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
    n = len(pixels)
    if args.npz:
        write_npz(args.npz, images=pixels)
        print(f"wrote {args.npz} (images: {pixels.shape} uint8)")
    if args.out:
        title = f"{config.model}, {args.sampler}" + (f" {args.steps} steps" if args.steps else "") + _guidance_title(args, config)
        title += "" if args.spacing == "uniform" else f", {args.spacing} spacing"
        shown, ncols = pixels, None
        if args.label == "all":  # one row a class, at most 16 of each, so every class shows
            per_class = n // 10
            ncols = min(per_class, 16)
            shown = pixels.reshape(10, per_class, *pixels.shape[1:])[:, :ncols].reshape(-1, *pixels.shape[1:])
        plot_samples(shown, title=title, path=pathlib.Path(args.out), ncols=ncols)
        print(f"wrote {args.out}")
    print(f"{n} images in {seconds:.1f} s ({n / seconds:.1f} images/s), {network_calls(args, config)} network evaluations an image")
    return 0


def network_calls(args, config):
    """The NFE of one image with these flags: ``samplers.nfe`` (classifier-free guidance counts two)."""
    from keras_diffusion.guidance import DEFAULT_GUIDANCE

    steps = args.steps or config.timesteps
    guidance = 0.0
    if args.label is not None and config.conditional:
        guidance = (0.0 if args.classifier else DEFAULT_GUIDANCE) if args.guidance is None else args.guidance
    return samplers.nfe(args.sampler, steps, guidance)


def _guidance_title(args, config):
    if args.label is None:
        return ""
    what = "one class a row" if args.label == "all" else f"label {args.label}"
    if config.conditional:
        from keras_diffusion.guidance import DEFAULT_GUIDANCE

        w = (0.0 if args.classifier else DEFAULT_GUIDANCE) if args.guidance is None else args.guidance
        what += f", guidance w = {w:g}"
    if args.classifier:
        what += f", classifier scale {1.0 if args.classifier_scale is None else args.classifier_scale:g}"
    return f", {what}"


if __name__ == "__main__":
    sys.exit(cli.run(main))
