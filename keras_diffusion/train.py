"""Train a denoiser on Fashion-MNIST and write a run directory.

    python -m keras_diffusion.train --model mlp_seed --epochs 5 --out runs/classic
"""

import sys
import time

from keras_diffusion import cli
from keras_diffusion.config import TrainConfig, add_arguments, from_arguments

EXAMPLES = [
    "python -m keras_diffusion.train                       # the default run",
    "python -m keras_diffusion.train --model mlp_seed --epochs 5 --out runs/classic",
    "python -m keras_diffusion.train --limit 512 --epochs 1  # a quick smoke test",
    "python -m keras_diffusion.train --model mlp --schedule cosine --scaling minus_one_one",
    "python -m keras_diffusion.train --model mlp --objective x0    # an MLP that predicts x_0: clothes in minutes",
    "python -m keras_diffusion.train --resume runs/unet --epochs 30   # continue a run",
    "python -m keras_diffusion.train --model mlp --deterministic      # bit-identical reruns",
    "python -m keras_diffusion.train --strategy mirrored --mixed-precision  # every local GPU, float16",
    "python -m keras_diffusion.train --conditional --out runs/cond   # class-conditional, for --guidance",
    "python -m keras_diffusion.train --classifier --out runs/clf     # noisy classifier, for classifier guidance",
    "python -m keras_diffusion.train --text-encoder --out runs/clip  # the mini-CLIP: captions, zero-shot accuracy",
]


def parse_args(argv=None):
    parser = cli.Parser("keras_diffusion.train", __doc__.strip().splitlines()[0], EXAMPLES)
    add_arguments(parser, TrainConfig)
    parser.add_argument("--out", help="run directory to write (default: runs/<model>, numbered when taken)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    parser.add_argument("--resume", metavar="RUN", help="continue RUN after its last completed epoch (--epochs may extend it)")
    parser.add_argument("--classifier", action="store_true", help="train the noise-aware classifier for classifier guidance (--model noisy_classifier)")
    parser.add_argument(
        "--text-encoder",
        action="store_true",
        help="train the mini-CLIP text encoder on captions made from the pixels; it takes --epochs, --batch-size, --lr, --seed, "
        "--limit, --data-source, --data-dir, --resume and --model-kwargs with embed_dim, width, depth, heads, image_width",
    )
    args = parser.parse_args(argv)
    if args.text_encoder:
        return _text_encoder_config(parser, args), args
    if args.classifier:
        if args.model not in (TrainConfig.model, "noisy_classifier"):
            parser.error(f"--classifier trains the noisy_classifier; drop --model {args.model}")
        args.model = "noisy_classifier"
    config = from_arguments(args, TrainConfig)
    if args.resume:
        given = [f"--{k.replace('_', '-')}" for k, v in vars(config).items() if k != "epochs" and v != getattr(TrainConfig(), k)]
        if given or args.out:
            parser.error(f"--resume takes its settings from the run; drop {', '.join(given + ['--out'] * bool(args.out))}")
        return config, args
    try:
        config = config.resolved()
    except ValueError as error:
        parser.error(str(error))
    return config, args


def _text_encoder_config(parser, args):
    from keras_diffusion.text.config import from_train_arguments  # no TensorFlow: errors come at once

    try:
        return from_train_arguments(args, TrainConfig())
    except ValueError as error:
        parser.error(str(error))


def _train_text_encoder(config, args):
    from keras_diffusion.text.training import summary, train_text_encoder

    start = time.time()
    run_dir, evaluation = train_text_encoder(config, out=args.out, overwrite=args.overwrite, resume=args.resume)
    print(f"done in {(time.time() - start) / 60:.1f} min; run directory {run_dir}")
    print(summary(evaluation))
    return 0


def main(argv=None):
    config, args = parse_args(argv)
    if args.text_encoder:
        return _train_text_encoder(config, args)
    from keras_diffusion.training import train

    start = time.time()
    run_dir, history = train(config, out=args.out, overwrite=args.overwrite, resume=args.resume)
    minutes = (time.time() - start) / 60
    loss = f"final loss {history['loss'][-1]:.4f}" if history.get("loss") else "no epochs left to run"
    if run_dir is None:  # a worker of a cluster: the chief writes the run
        print(f"done in {minutes:.1f} min: {loss}; the chief worker wrote the run directory")
        return 0
    print(f"done in {minutes:.1f} min: {loss}; run directory {run_dir}")
    print(f"draw more samples: python -m keras_diffusion.sample --run {run_dir} --n 64 --out samples.png")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
