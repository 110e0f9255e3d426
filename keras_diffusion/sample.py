"""Draw images from a trained run.

    python -m keras_diffusion.sample --run runs/mlp_seed --n 64 --out samples.png --npz samples.npz
"""

import pathlib
import sys
import time

from keras_diffusion import cli, samplers
from keras_diffusion.fields import add_arguments, from_arguments
from keras_diffusion.pretrained import add_run_arguments, resolve_run

EXAMPLES = [
    "python -m keras_diffusion.sample --run runs/unet --n 64 --out samples.png   # DPM-Solver++ SDE, 20 steps (karras)",
    "python -m keras_diffusion.sample --run runs/unet --sampler ddpm   # DDPM, all T steps",
    "python -m keras_diffusion.sample --pretrained unet-fashion-mnist --n 64 --out samples.png   # no training",
    "python -m keras_diffusion.sample --run runs/unet --n 1000 --npz samples.npz --seed 1",
    "python -m keras_diffusion.sample --run runs/unet --sampler ddim --steps 50",
    "python -m keras_diffusion.sample --run runs/unet --sampler dpmpp_2m --steps 20   # 20 network calls an image",
    "python -m keras_diffusion.sample --run runs/unet --sampler heun --steps 10 --spacing karras   # 19 calls",
    "python -m keras_diffusion.sample --run runs/unet --sampler dpmpp_2m_sde --steps 25 --spacing uniform",
    "python -m keras_diffusion.sample --run runs/cond --label sneaker --guidance 3",
    "python -m keras_diffusion.sample --run runs/cond --label all --n 80   # one row a class",
    "python -m keras_diffusion.sample --run runs/unet --label bag --classifier runs/clf --classifier-scale 2",
    'python -m keras_diffusion.sample --pretrained unet-fashion-mnist-text --prompt "a dark ankle boot" --guidance 3',
    'python -m keras_diffusion.sample --run runs/text --prompt "white trainers" --prompt "a patterned bag" --n 16   # a row a prompt',
    'python -m keras_diffusion.sample --run runs/text --prompt "a shoe" --negative-prompt "a sandal"',
]


def add_sampler_arguments(parser, many_steps=False):
    """The sampler flags of sample, edit and evaluate: one per ``SamplingConfig`` field, plus --label and --classifier.

    With ``many_steps`` (evaluate), --steps takes several values, each scored.
    """
    add_arguments(parser, samplers.SamplingConfig, skip=("steps",) if many_steps else ())
    if many_steps:
        parser.add_argument("--steps", type=int, nargs="+", help="sampler steps, at most T; several values score each (default: the sampler's)")
    guidance = parser.add_argument_group("guidance (class-conditional or text runs, or a noisy classifier)")
    guidance.add_argument("--label", help="class to draw, by number or name (sneaker, bag, ...); 'all' draws one row a class")
    guidance.add_argument(
        "--prompt", action="append", metavar="TEXT", help="with a text run (train --text): what to draw, e.g. \"a dark ankle boot\"; several --prompt draw a row each"
    )
    guidance.add_argument("--negative-prompt", metavar="TEXT", help="with --prompt: a text that guidance steers away from (it takes the null prompt's place)")
    guidance.add_argument(
        "--classifier", metavar="RUN", help="noisy classifier run (train --classifier), or a pretrained one's name, for classifier guidance"
    )


def check_sampler_arguments(parser, args):
    """Build ``args.sampling`` (a ``SamplingConfig``, or one per --steps value in ``args.samplings``); one-line errors."""
    for name in ("n",):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    several = args.steps if isinstance(args.steps, list) else [args.steps]
    try:
        args.samplings = [from_arguments(args, samplers.SamplingConfig, steps=steps).validate() for steps in several]
    except ValueError as error:
        parser.error(_as_flags(str(error)))
    args.sampling = args.samplings[0]
    if args.classifier_scale and args.classifier is None:
        parser.error("--classifier-scale needs --classifier RUN (a noisy classifier: train --classifier)")
    prompt = getattr(args, "prompt", None)
    if prompt is not None and (args.label is not None or args.classifier):
        parser.error("--prompt is for text runs and --label/--classifier for class guidance: give one of them")
    if getattr(args, "negative_prompt", None) is not None and prompt is None:
        parser.error("--negative-prompt needs --prompt TEXT")
    if (args.guidance or args.classifier) and args.label is None and prompt is None:
        parser.error("guidance needs --label: a class by number or name, or 'all' (or --prompt TEXT with a text run)")


def _as_flags(message):
    """A SamplingConfig error in the words of the command line: "steps must ..." -> "--steps must ..."."""
    import re

    first, _, rest = message.partition(" ")
    if first in samplers.SamplingConfig.__dataclass_fields__:
        message = "--" + first.replace("_", "-") + " " + rest
    return re.sub(r"sampler='(\w+)'", r"--sampler \1", message)


def guidance_settings(args, config, n):
    """(sample kwargs for labels and guidance, the number of images) from --label/--guidance/--classifier.

    ``--label all`` draws max(1, n // 10) images of each class, class after class.
    """
    import numpy as np

    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import CLASS_NAMES, label_index
    from keras_diffusion.guidance import DEFAULT_GUIDANCE

    if getattr(args, "prompt", None) is not None or config.text:
        return _prompt_settings(args, config, n)
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


def _prompt_settings(args, config, n):
    """(sample kwargs, the number of images) of --prompt: n // P images of each of the P prompts, prompt after prompt."""
    prompts = getattr(args, "prompt", None)
    if not config.text:
        raise cli.UsageError("--prompt needs a run trained with --text (or --pretrained unet-fashion-mnist-text)")
    if args.label is not None or args.classifier:
        raise cli.UsageError("this run is conditioned on text: give --prompt TEXT instead of --label/--classifier")
    if prompts is None:  # the null prompt: an unconditional draw
        if args.guidance:
            raise cli.UsageError("--guidance needs --prompt TEXT: the text to steer toward")
        return {}, n
    per_prompt = max(1, n // len(prompts))
    kwargs = {"prompts": [p for p in prompts for _ in range(per_prompt)], "guidance": prompt_guidance(args)}
    if args.negative_prompt is not None:
        kwargs["negative_prompt"] = args.negative_prompt
    return kwargs, per_prompt * len(prompts)


def prompt_guidance(args):
    """The w of --prompt: --guidance, or the default 3."""
    from keras_diffusion.guidance import DEFAULT_GUIDANCE

    return DEFAULT_GUIDANCE if args.guidance is None else args.guidance


def draw(args, run_dir, n, sampling=None):
    """Load a run and draw n images with the sampler flags: (uint8 (n, 28, 28, 1), config, seconds).

    ``sampling`` replaces ``args.sampling`` (evaluate passes one per --steps value).
    """
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import to_uint8
    from keras_diffusion.progress import SamplingProgress
    from keras_diffusion.reverse import sample

    denoiser, schedule, config = load_run(run_dir)
    if config.model == "noisy_classifier":
        raise cli.UsageError(f"{run_dir} is a noisy classifier, not a denoiser: pass it as --classifier {run_dir}")
    sampling = resolve_sampling(args.sampling if sampling is None else sampling, config)
    decode = _latent_decoder(args, run_dir, config)
    guided, n = guidance_settings(args, config, n)
    start = time.time()
    images = sample(denoiser, schedule, n, progress=SamplingProgress(n), **sampling.sample_kwargs(config.scaling), **guided)
    if decode is not None:  # a latent run draws latents z_0: the image is D(z_0 / s), and decoding is part of the time
        images = decode(images)
    return to_uint8(images, config.scaling), config, time.time() - start


def resolve_sampling(sampling, config):
    """The ``SamplingConfig`` with the run's defaults filled in (T, clipping), or a one-line UsageError."""
    try:
        return sampling.resolved(config.timesteps, config.clip)
    except ValueError as error:
        raise cli.UsageError(_as_flags(str(error))) from None


def _latent_decoder(args, run_dir, config):
    """None for a pixel run; for a latent run (train --latent), its autoencoder's decoder, after checking the flags."""
    if not config.latent:
        return None
    if args.sampling.clip:
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
        title = f"{config.model}, {resolve_sampling(args.sampling, config).describe()}" + _guidance_title(args, config)
        shown, ncols = pixels, None
        if args.prompt:  # a row a prompt
            ncols = n // len(args.prompt)
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

    guidance = 0.0
    if getattr(args, "prompt", None) is not None and config.text:
        guidance = prompt_guidance(args)
    if args.label is not None and config.conditional:
        guidance = (0.0 if args.classifier else DEFAULT_GUIDANCE) if args.guidance is None else args.guidance
    return resolve_sampling(args.sampling, config).nfe(guidance)


def _guidance_title(args, config):
    if args.prompt:
        title = f", {' / '.join(repr(p) for p in args.prompt)}, guidance w = {prompt_guidance(args):g}"
        return title + (f", negative {args.negative_prompt!r}" if args.negative_prompt else "")
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
