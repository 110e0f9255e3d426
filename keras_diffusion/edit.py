"""Edit real images with a trained run: inpainting, super-resolution, image-to-image, translation.

    python -m keras_diffusion.edit inpaint --run runs/unet --images test:0-15 --mask right --out inpaint.png

No training: the run's denoiser fills a mask (RePaint), upsamples (ILVR),
redraws a noised image (SDEdit) or re-decodes an image's DDIM latent under
another class or prompt (DDIB), through the same reverse loop that samples.
"""

import pathlib
import re
import sys
import time

import numpy as np

from keras_diffusion import cli, samplers
from keras_diffusion.pretrained import add_run_arguments, resolve_run
from keras_diffusion.names import EDITS, MASKS  # import-free, for fast --help
from keras_diffusion.sample import add_sampler_arguments, check_sampler_arguments, guidance_settings

EXAMPLES = [
    "python -m keras_diffusion.edit inpaint --run runs/unet --images test:0-15 --mask right",
    "python -m keras_diffusion.edit inpaint --run runs/unet --images test:0-7 --mask box --resample 10 --jump 10",
    "python -m keras_diffusion.edit superres --run runs/unet --images test:0-15 --factor 4 --npz sr.npz",
    "python -m keras_diffusion.edit img2img --run runs/unet --images sketch.png --strength 0.6 --sampler ddim --steps 50",
    "python -m keras_diffusion.edit inpaint --run runs/unet --images test:0-7 --mask box --sampler dpmpp_2m --steps 25",
    'python -m keras_diffusion.edit inpaint --pretrained unet-fashion-mnist-text --images test:0-7 --mask top --prompt "a patterned bag"',
    "python -m keras_diffusion.edit translate --pretrained unet-fashion-mnist-conditional --images test:0-7 --to-label pullover",
    'python -m keras_diffusion.edit translate --pretrained unet-fashion-mnist-text --images test:0-7 --to-prompt "a photo of a dark coat"',
    "python -m keras_diffusion.edit translate --pretrained unet-fashion-mnist-conditional --images shirt.png --from-label shirt --to-label dress",
]
IMAGE_RANGE = re.compile(r"^(train|test):(\d+)(?:-(\d+))?$")  # test:0-15, inclusive; test:7 is one image
ONLY = {"mask": "inpaint", "resample": "inpaint", "jump": "inpaint", "factor": "superres", "strength": "img2img"}
ONLY.update({name: "translate" for name in ("to_label", "from_label", "to_prompt", "from_prompt", "start")})
DEFAULTS = {"mask": "right", "resample": 1, "jump": 10, "strength": 0.5}
TRANSLATE_STEPS = 50  # DDIM steps of translate, both ways, unless --steps says otherwise


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.edit", __doc__.strip().splitlines()[0], EXAMPLES)
    parser.add_argument("method", choices=EDITS, help="inpaint (RePaint), superres (ILVR), img2img (SDEdit) or translate (DDIB)")
    add_run_arguments(parser)
    parser.add_argument(
        "--images", nargs="+", default=["test:0-7"],
        help="test:0-15 (an inclusive index range of a split), or .npz files (uint8 under 'images') and 28x28 .png files (default: test:0-7)",
    )
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST files (default: found as training does)")
    parser.add_argument("--seeds", type=int, help="results per image, from seeds --seed, --seed+1, ... (default: 3; translate is deterministic: 1)")
    parser.add_argument("--out", help="PNG figure: originals | input | results (default: METHOD.png unless --npz is given)")
    parser.add_argument("--npz", help="also write the results of --seed as uint8 (N, 28, 28, 1) under key 'images', in input order")
    group = parser.add_argument_group("inpaint")
    group.add_argument("--mask", help=f"region to fill: {', '.join(MASKS)}, or a .png/.npz/.npy of 0/1 (1 = fill) (default: right)")
    group.add_argument("--resample", type=int, help="RePaint's r: resamplings per jump, 1 = plain replacement (default: 1)")
    group.add_argument("--jump", type=int, help="RePaint's jump length j in steps (default: 10)")
    group = parser.add_argument_group("superres")
    group.add_argument("--factor", type=int, help="upsampling factor, divides 28 (default: 4, or 28 over the size of smaller input images)")
    group = parser.add_argument_group("img2img")
    group.add_argument("--strength", type=float, help="in (0, 1]: t_0 = strength·T; 1 ignores the input (default: 0.5)")
    group = parser.add_argument_group(
        "translate", "DDIM inversion under the source condition, DDIM decoding under the target (always DDIM, eta 0; --steps, --spacing and --guidance apply)"
    )
    group.add_argument("--to-label", metavar="NAME", help="with a class-conditional run: the class to turn the images into (pullover, 2, ...)")
    group.add_argument("--from-label", metavar="NAME", help="the images' class (default: the test/train label of a range, else the package classifier's)")
    group.add_argument("--to-prompt", metavar="TEXT", help="with a text run: what the images should become, e.g. \"a photo of a pullover\"")
    group.add_argument("--from-prompt", metavar="TEXT", help="what the images are (default: \"a photo of a {class}\" of their class, found as --from-label)")
    group.add_argument("--start", type=int, help="timestep the inversion stops at and the decoding starts from (default: the last with noise level sigma <= 15)")
    add_sampler_arguments(parser)
    args = resolve_run(parser.parse_args(argv))
    _check(parser, args)
    return args


def _check(parser, args):
    """One-line errors for flags that cannot work, before TensorFlow loads."""
    for name, method in ONLY.items():
        if getattr(args, name) is not None and args.method != method:
            parser.error(f"--{name.replace('_', '-')} is for {method}, not {args.method}")
        if getattr(args, name) is None and name in DEFAULTS:
            setattr(args, name, DEFAULTS[name])
    if args.method == "translate":
        _check_translate(parser, args)
    if args.seeds is None:
        args.seeds = 1 if args.method == "translate" else 3
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    args.n = args.seeds  # what check_sampler_arguments checks
    check_sampler_arguments(parser, args)
    for name in ("resample", "jump"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.resample > 1 and not samplers.REGISTRY[args.sampling.sampler].every_step:
        every = " or ".join(name for name, entry in samplers.REGISTRY.items() if entry.every_step)
        parser.error(f"--resample > 1 goes back up the chain one step at a time: it needs --sampler {every}")
    if not 0 < args.strength <= 1:
        parser.error(f"--strength must be in (0, 1] (1 ignores the input image), got {args.strength}")
    if args.factor is not None and (args.factor < 2 or 28 % args.factor):
        parser.error(f"--factor must divide 28 (2, 4, 7, 14 or 28), got {args.factor}")
    if args.method == "inpaint" and args.mask not in MASKS and not pathlib.Path(args.mask).is_file():
        parser.error(f"--mask {args.mask}: not one of {', '.join(MASKS)} and not a file")
    for spec in args.images:
        if not IMAGE_RANGE.match(spec) and not pathlib.Path(spec).is_file():
            parser.error(f"--images {spec}: neither a range like test:0-15 nor a file")
        match = IMAGE_RANGE.match(spec)
        if match and match.group(3) is not None and int(match.group(3)) < int(match.group(2)):
            parser.error(f"--images {spec}: the range ends before it starts")
    if not (pathlib.Path(args.run) / "config.json").is_file():
        parser.error(f"--run {args.run}: {args.run} is not a run directory (no config.json); train one with python -m keras_diffusion.train")
    if args.out is None and args.npz is None:
        args.out = f"{args.method}.png"
    for flag, path in (("--out", args.out), ("--npz", args.npz)):
        if path is not None and not pathlib.Path(path).resolve().parent.is_dir():
            parser.error(f"{flag} {path}: folder {pathlib.Path(path).parent} does not exist")


def _check_translate(parser, args):
    """translate's own flags: one target, the DDIM sampler, one result an image."""
    from keras_diffusion.samplers import DEFAULT_SAMPLER

    if (args.to_label is None) == (args.to_prompt is None):
        parser.error("translate needs a target: --to-label NAME (a class-conditional run) or --to-prompt TEXT (a text run)")
    if args.to_label is not None and args.from_prompt is not None or args.to_prompt is not None and args.from_label is not None:
        parser.error("--from-label goes with --to-label, and --from-prompt with --to-prompt")
    if args.label is not None or args.prompt or args.classifier:
        parser.error("translate takes its conditions from --to-label/--from-label or --to-prompt/--from-prompt, not --label, --prompt or --classifier")
    if args.sampler not in (DEFAULT_SAMPLER, "ddim") or args.eta:
        parser.error("translate is DDIM with eta 0 both ways (the inversion must be deterministic): drop --sampler/--eta")
    if args.seeds not in (None, 1):
        parser.error("translate is deterministic (DDIM, eta 0): one result an image, so --seeds does not apply")
    if args.start is not None and args.start < 1:
        parser.error(f"--start must be a timestep >= 1, got {args.start}")
    args.sampler = "ddim"
    if args.steps is None:
        args.steps = TRANSLATE_STEPS


# --- inputs ---------------------------------------------------------------------------------


def read_images(specs, data_dir=None):
    """(uint8 (N, H, W, 1), int64 labels (N,) or None) from ranges like test:0-15 and .npz/.npy/.png files, in the order given.

    The labels are the dataset's, known only when every spec is a range; a file has none.
    """
    from keras_diffusion.data import load_images

    parts, labels = [], []
    for spec in specs:
        match = IMAGE_RANGE.match(spec)
        if match:
            split, first = match.group(1), int(match.group(2))
            last = first if match.group(3) is None else int(match.group(3))
            images, split_labels = load_images("fashion_mnist", split, data_dir)
            if last >= len(images):
                raise cli.UsageError(f"--images {spec}: the {split} split has images 0-{len(images) - 1}")
            parts.append(images[first : last + 1])
            labels.append(split_labels[first : last + 1])
        else:
            parts.append(_pixels(read_array(spec, "images"), f"--images {spec}"))
    if len({part.shape[1:] for part in parts}) > 1:
        raise cli.UsageError(f"--images: all images must have one size, got {sorted({part.shape[1:3] for part in parts})}")
    return np.concatenate(parts), (np.concatenate(labels).astype(np.int64) if len(labels) == len(parts) else None)


def read_array(path, key):
    """The array in a .png (greyscale), .npy, or .npz file (under ``key``, or its only array)."""
    path = pathlib.Path(path)
    if path.suffix.lower() == ".png":
        from PIL import Image  # Pillow: a dependency of matplotlib

        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if key not in data and len(data.files) != 1:
                raise cli.UsageError(f"{path} holds {', '.join(data.files)}: put the array under the key {key!r}")
            return data[key if key in data else data.files[0]]
    raise cli.UsageError(f"{path}: give a .png, .npy or .npz file")


def _pixels(array, what):
    """uint8 (N, H, W, 1) pixels from an array that should hold them: one-line errors otherwise."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1] != array.shape[2] or array.shape[1] not in (7, 14, 28):
        raise cli.UsageError(f"{what}: images must be (N, 28, 28) or (N, 28, 28, 1) (or 14x14, 7x7 for superres), got shape {array.shape}")
    if array.dtype.kind not in "iu" or array.size == 0 or array.min() < 0 or array.max() > 255:
        shown = f"{array.min()}..{array.max()}" if array.size and array.dtype.kind in "biuf" else "none"
        raise cli.UsageError(f"{what}: images must be uint8 pixels 0..255 (as sample --npz writes them), got {array.dtype} values {shown}")
    return array.astype(np.uint8)[..., None]


def read_mask(spec, n):
    """A mask name, or 0/1 (.npz/.npy) or black/white (.png, white = fill) pixels from a file."""
    if spec in MASKS:
        return spec
    mask = read_array(spec, "mask")
    return (mask > 127).astype(np.float32) if pathlib.Path(spec).suffix.lower() == ".png" else mask


def hole_view(pixels, mask):
    """The input as inpainting sees it: the pixels to fill shown as grey stripes."""
    rows, cols = np.mgrid[: pixels.shape[1], : pixels.shape[2]]
    stripes = np.where((rows + cols) // 2 % 2, 150, 70).astype(np.uint8)[None, ..., None]  # (1, H, W, 1)
    return np.where(mask > 0, stripes, pixels)


# --- figure -----------------------------------------------------------------------------------


def plot_edits(columns, title=None, path=None, zoom=3):
    """A figure of image columns, e.g. {"original": ..., "input": ..., "seed 0": ...}, each uint8 (N, H, W, 1).

    One row an image, one column a stage of the edit, drawn as one tiled image (``plotting.plot_grid``).
    """
    from keras_diffusion.plotting import plot_grid

    grid = np.stack(list(columns.values()), axis=1)  # (N, columns, H, W, 1)
    return plot_grid(grid, col_titles=list(columns), title=title, path=path, zoom=zoom)


# --- the edit ---------------------------------------------------------------------------------


def translate_conditions(args, config, pixels, labels):
    """(source, target, how the source was found) of translate: classes for a class run, prompts for a text run.

    The source is --from-label/--from-prompt when given, else each image's class: its label in the
    dataset for a range like test:0-15, else the package classifier's prediction; a text run
    reads a class as the prompt "a photo of a {class}".
    """
    from keras_diffusion.data import CLASS_NAMES, label_index

    if config.text and args.to_label is not None or not config.text and args.to_prompt is not None:
        wanted = "--to-prompt TEXT (this run is text-conditioned)" if config.text else "--to-label NAME (this run is class-conditional)"
        raise cli.UsageError(f"--run {args.run}: give {wanted}")
    if not config.text and not config.conditional:
        raise cli.UsageError(f"--run {args.run} is unconditional: translate needs a run trained with --conditional or --text")
    if args.from_prompt is not None:
        return args.from_prompt, args.to_prompt, "--from-prompt"
    try:
        target = args.to_prompt if config.text else label_index(args.to_label, config.dataset)
        if args.from_label is not None:
            classes, how = np.full(len(pixels), label_index(args.from_label, config.dataset)), "--from-label"
        elif labels is not None:
            classes, how = labels, "the dataset's labels"
        else:
            from keras_diffusion.metrics import load_classifier

            classes = np.argmax(load_classifier().predict(pixels.astype(np.float32), verbose=0), axis=-1)
            names = CLASS_NAMES[config.dataset]
            how = "the package classifier: " + ", ".join(names[c] for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
    except ValueError as error:
        raise cli.UsageError(f"--to-label/--from-label: {error}") from None
    if config.text:
        from keras_diffusion.text import class_prompt

        return [class_prompt(int(c)) for c in classes], target, how
    return classes.astype(np.int32), target, how


def edit(args, denoiser, schedule, config, pixels, labels=None):
    """Run the chosen edit for every seed: (columns for the figure, results uint8 (S, N, 28, 28, 1), title).

    ``labels`` are the dataset's labels of the images (int (N,)) when they came from a range, for translate.
    """
    from keras_diffusion import editing
    from keras_diffusion.data import CLASS_NAMES, scale_images, to_uint8
    from keras_diffusion.forward import q_sample
    from keras_diffusion.sample import resolve_sampling

    sampling = resolve_sampling(args.sampling, config)
    kwargs = sampling.sample_kwargs(config.scaling)
    del kwargs["seed"]  # one result per seed below
    if args.label == "all":
        raise cli.UsageError("--label all is for sample; an edit takes one --label for all its images")
    if args.prompt and len(args.prompt) > 1:
        raise cli.UsageError("an edit takes one --prompt for all its images (several --prompt are for sample)")
    if args.method != "translate":
        guided, _ = guidance_settings(args, config, len(pixels))  # labels and guidance, when --label is given
        kwargs.update(guided)
    x = scale_images(pixels, config.scaling)  # (N, h, w, 1)
    seeds = [args.seed + k for k in range(args.seeds)]
    columns = {}
    if args.method == "inpaint":
        mask = editing.make_mask(read_mask(args.mask, len(x)), len(x), x.shape[1:], seed=args.seed)
        columns = {"original": pixels, "input": hole_view(pixels, mask)}
        results = [editing.inpaint(denoiser, schedule, x, mask, args.resample, args.jump, seed=s, **kwargs) for s in seeds]
        title = f"inpainting, {'replacement' if args.resample == 1 else f'RePaint r={args.resample}, j={args.jump}'}"
    elif args.method == "superres":
        factor = args.factor or (4 if x.shape[1] == 28 else 28 // x.shape[1])
        editing.check_factor(factor)
        if x.shape[1] == 28:
            columns["original"], x = pixels, editing.downsample(x, factor).numpy()
        elif x.shape[1] * factor != 28:
            raise cli.UsageError(f"--factor {factor} takes {28 // factor}x{28 // factor} images to 28x28, got {x.shape[1]}x{x.shape[1]} images")
        columns["input"] = to_uint8(editing.upsample(x, factor).numpy(), config.scaling)
        results = [editing.super_resolve(denoiser, schedule, x, factor, seed=s, **kwargs) for s in seeds]
        title = f"super-resolution x{factor} (ILVR)"
    elif args.method == "translate":
        from keras_diffusion.guidance import DEFAULT_GUIDANCE

        source, target, how = translate_conditions(args, config, pixels, labels)
        print(f"source: {how}")
        start = editing.translate_start(schedule) if args.start is None else args.start
        if start >= schedule.timesteps:
            raise cli.UsageError(f"--start must be a timestep < T={schedule.timesteps} of this run, got {start}")
        guidance = DEFAULT_GUIDANCE if sampling.guidance is None else sampling.guidance
        columns = {"original": pixels}
        results = [editing.translate(
            denoiser, schedule, x, source, target, steps=sampling.steps, spacing=sampling.spacing, guidance=guidance,
            clip=kwargs["clip"], start=start, batch_size=sampling.batch_size,
        )]
        seeds = seeds[:1]
        name = target if config.text else CLASS_NAMES[config.dataset][target]
        title = f"translation (DDIB) to {name!r}, DDIM inversion to t={start}, w={guidance:g}"
    else:
        noises = [np.random.default_rng(s).standard_normal(x.shape).astype(np.float32) for s in seeds]
        t0, _ = editing.sdedit_start(schedule, args.strength, None if samplers.REGISTRY[sampling.sampler].every_step else sampling.steps, sampling.spacing)
        noised = x if t0 is None else q_sample(schedule, x, t0, noises[0]).numpy()
        columns = {"original": pixels, f"input, t0={t0}": to_uint8(noised, config.scaling)}
        results = [editing.img2img(denoiser, schedule, x, args.strength, seed=s, noise=e, **kwargs) for s, e in zip(seeds, noises)]
        title = f"image-to-image (SDEdit), strength {args.strength}"
    results = np.stack([to_uint8(r, config.scaling) for r in results])  # (S, N, 28, 28, 1)
    columns.update({"result" if args.method == "translate" else f"seed {s}": r for s, r in zip(seeds, results)})
    if args.prompt:
        title += f", {args.prompt[0]!r}"
    return columns, results, f"{title}, {sampling.describe()}"


def _same_size(x, method):
    if x.shape[1:3] != (28, 28):
        raise cli.UsageError(f"{method} needs 28x28 images, got {x.shape[1]}x{x.shape[2]}")


def main(argv=None):
    args = parse_args(argv)
    from keras_diffusion.checkpoint import load_run, write_npz

    denoiser, schedule, config = load_run(args.run)
    if config.model == "noisy_classifier":
        raise cli.UsageError(f"--run {args.run} is a noisy classifier, not a denoiser: pass it as --classifier {args.run}")
    shape = tuple(denoiser.inputs[0].shape[1:])
    if shape != (28, 28, 1):
        raise cli.UsageError(f"--run {args.run}: its denoiser works on {shape} arrays; editing needs a pixel-space run on 28x28x1 images")
    pixels, labels = read_images(args.images, args.data_dir)  # (N, h, w, 1) uint8, (N,) or None
    if args.method != "superres":
        _same_size(pixels, args.method)
    start = time.time()
    columns, results, title = edit(args, denoiser, schedule, config, pixels, labels)
    seconds = time.time() - start
    if args.npz:
        arrays = dict(images=results[0])
        if len(results) > 1:  # every seed, image by image: (N, S, 28, 28, 1)
            arrays.update(all_seeds=np.moveaxis(results, 0, 1), seeds=np.arange(args.seed, args.seed + args.seeds))
        write_npz(args.npz, **arrays)
        print(f"wrote {args.npz} (images: {results[0].shape} uint8)")
    if args.out:
        plot_edits(columns, title=title, path=pathlib.Path(args.out))
        print(f"wrote {args.out}")
    print(f"{len(pixels)} images x {args.seeds} seeds in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
