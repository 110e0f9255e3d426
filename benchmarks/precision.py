"""Does bfloat16 cost quality? The same training in two precisions, same data, seed and steps.

    python benchmarks/precision.py --limit 20000 --epochs 1 --fid-n 500 \\
        --json assets/precision.json --figure assets/precision_loss.png

Trains the default U-Net (XLA on, its default) once per precision: float32,
the old default, and mixed_bfloat16, the new one on CPUs with AVX-512 BF16;
each built by ``build_training`` as ``train`` builds it and fed
the same ``make_dataset`` pipeline with the same seed. Records the loss of
every step (a curve, smoothed for the figure), the wall time, and the FID of
``--fid-n`` DDIM-50 samples drawn in float32 with the EMA weights. Not part of
the package; not run by the tests.
"""

import argparse
import dataclasses
import json
import pathlib
import time

NOTE = "seconds: wall time of each training; on a shared machine the runs need not have had the cores alike (compare speed with bench peer)"
SETTINGS = {"float32": dict(precision="float32"), "mixed_bfloat16": dict(precision="mixed_bfloat16")}


def run(name, settings, args, images):
    import keras
    import numpy as np

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import make_dataset, to_uint8
    from keras_diffusion.devices import with_precision
    from keras_diffusion.metrics import Evaluator
    from keras_diffusion.reverse import sample
    from keras_diffusion.training import build_training, sampling_clip

    config = dataclasses.replace(TrainConfig(model=args.model, epochs=args.epochs, seed=args.seed), **settings).resolved()
    keras.utils.set_random_seed(config.seed)
    dataset = make_dataset(images, config.batch_size, config.scaling, seed=config.seed)
    schedule, denoiser, model = build_training(config, images.shape[1:])
    losses = []

    class StepLoss(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(logs["loss"])  # the epoch's running mean: turned into per-step losses below

    start = time.perf_counter()
    model.fit(dataset, epochs=config.epochs, callbacks=[StepLoss()], verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    # running mean m_k over the epoch's first k steps -> the loss of step k: k·m_k − (k−1)·m_{k−1}
    steps_per_epoch = len(images) // config.batch_size
    per_step = []
    for epoch in range(config.epochs):
        means = np.asarray(losses[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch], np.float64)
        k = np.arange(1, len(means) + 1)
        per_step += list(k * means - np.concatenate([[0.0], (k - 1)[1:] * means[:-1]]))
    if config.ema > 0:
        model.optimizer.finalize_variable_values(denoiser.trainable_variables)  # the EMA weights, as saved runs use
    sampler = with_precision(denoiser, "float32")  # sampled in float32 both ways: only training differs
    x = sample(sampler, schedule, args.fid_n, sampler="ddim", steps=50, seed=args.seed, clip=sampling_clip(config))
    score = Evaluator(seed=args.seed).score(to_uint8(x, config.scaling))
    print(f"{name}: {seconds:.0f} s, last-epoch loss {np.mean(per_step[-steps_per_epoch:]):.4f}, FID {score['fid']:.1f} (n={args.fid_n})", flush=True)
    return {"setting": name, **settings, "seconds": seconds, "steps": len(per_step), "loss_per_step": [round(v, 5) for v in per_step],
            "mean_loss_last_epoch": float(np.mean(per_step[-steps_per_epoch:])), "fid": score["fid"], "fid_floor": score["floor"], "fid_n": args.fid_n}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fid-n", type=int, default=500)
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS))
    parser.add_argument("--json")
    parser.add_argument("--figure")
    parser.add_argument("--replot", action="store_true", help="only redraw --figure from the rows in --json")
    args = parser.parse_args()
    from keras_diffusion import cli

    cli.tensorflow_logs(False)
    if args.replot:
        return plot(json.loads(pathlib.Path(args.json).read_text())["rows"], args.model, args.figure)
    from keras_diffusion.data import load_images

    images, _ = load_images("fashion_mnist", "train", limit=args.limit)
    rows = [run(name, settings, args, images) for name, settings in SETTINGS.items() if not args.only or name in args.only]
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"model": args.model, "epochs": args.epochs, "limit": args.limit, "note": NOTE, "rows": rows}) + "\n")
    if args.figure:
        plot(rows, args.model, args.figure)


def plot(rows, model, path):
    """The loss curves, smoothed, with each run's FID and last-epoch loss in the legend."""
    import numpy as np

    from keras_diffusion.plotting import plot_curve

    window = 25  # steps: the per-step loss is noisy (one random t per image)
    smooth = {
        f"{r['setting']}: FID {r['fid']:.1f} (n = {r['fid_n']}), loss {r['mean_loss_last_epoch']:.4f}": np.convolve(r["loss_per_step"], np.ones(window) / window, "valid")
        for r in rows
    }
    steps = np.arange(window, window + min(len(v) for v in smooth.values()))
    plot_curve(steps, {k: v[: len(steps)] for k, v in smooth.items()}, "training step", f"loss (mean of {window} steps)",
               title=f"{model}: float32 against bfloat16, same data, seed and steps", path=path, markers=False)


if __name__ == "__main__":
    main()
