"""Guidance, measured: label accuracy, FID and speed against the guidance weight, for both kinds.

    python benchmarks/guidance.py --run runs/cond --classifier runs/clf --n 1000 \
        --json assets/guidance.json --figures assets

Draws n images (n/10 of each class) for every classifier-free weight w and every
classifier-guidance scale s, from the same seed, with the package's own
``reverse.sample``; scores them with ``metrics.Evaluator`` (FID on the
package's Fashion-MNIST classifier beside its real-data floor, class entropy,
and the fraction classified as the requested label); times one guided step
against an unguided one; draws the figures the README shows. Classifier
guidance runs the conditional network with its null label, i.e. as the
unconditional model it also is.
"""

import argparse
import json
import pathlib
import platform
import sys
import time

import numpy as np

from keras_diffusion.checkpoint import load_run, write_json
from keras_diffusion.data import CLASS_NAMES, to_uint8
from keras_diffusion.metrics import Evaluator
from keras_diffusion.plotting import plot_curve, plot_grid
from keras_diffusion.reverse import sample
from keras_diffusion.training import sampling_clip


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run trained with --conditional")
    parser.add_argument("--classifier", required=True, help="a run trained with --classifier")
    parser.add_argument("--n", type=int, default=1000, help="images per setting, n/10 of each class (default: 1000)")
    parser.add_argument("--weights", type=float, nargs="+", default=[0, 1, 3, 7], help="CFG weights w (default: 0 1 3 7)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 3, 10], help="classifier scales s (default: 1 3 10)")
    parser.add_argument("--sampler", default="ddim", choices=("ddpm", "ddim"))
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    # η = 1: the deterministic DDIM (η = 0) follows the errors of a briefly trained model (see README)
    parser.add_argument("--eta", type=float, default=1.0, help="DDIM eta (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--figures", help="folder for the figures (guidance_*.png)")
    return parser.parse_args(argv)


def measure(name, value, images, labels, seconds, evaluator):
    scores = evaluator.score(to_uint8(images, "minus_one_one"), requested=labels)
    row = {"kind": name, "value": value, "n": len(images), "fid": round(scores["fid"], 3), "floor": round(scores["floor"], 3),
           "class_entropy": round(scores["class_entropy"], 4), "label_accuracy": scores["label_accuracy"],
           "label_accuracy_per_class": scores["label_accuracy_per_class"], "images_per_second": round(len(images) / seconds, 2)}
    print(json.dumps(row), flush=True)
    return row


def step_costs(denoiser, schedule, classifier, clip, repeat=3):
    """Seconds per image-step at batch 64 (DDIM, 10 steps): unguided, CFG (a batch of 2B), classifier guidance."""
    labels = np.repeat(np.arange(10), 7)[:64]
    settings = {"unguided (null label)": dict(labels=np.full(64, 10)), "cfg w=3": dict(labels=labels, guidance=3.0),
                "classifier s=1": dict(labels=labels, classifier=classifier, classifier_scale=1.0)}
    costs = {}
    for name, kwargs in settings.items():
        run = lambda: sample(denoiser, schedule, 64, sampler="ddim", steps=10, seed=0, clip=clip, batch_size=64, **kwargs)  # noqa: E731
        run()  # tracing is not what we measure
        start = time.perf_counter()
        for _ in range(repeat):
            run()
        costs[name] = (time.perf_counter() - start) / repeat / 10  # seconds per step for 64 images
    base = costs["unguided (null label)"]
    return {name: {"ms_per_step": round(1000 * c, 1), "ratio_to_unguided": round(c / base, 2)} for name, c in costs.items()}


def figures(folder, denoiser, schedule, classifier, clip, results, seed):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [name.lower() for name in CLASS_NAMES["fashion_mnist"]]
    labels = np.repeat(np.arange(10), 8)
    grid = sample(denoiser, schedule, 80, sampler="ddpm", labels=labels, guidance=3.0, clip=clip, seed=seed)
    plot_grid(to_uint8(grid, "minus_one_one").reshape(10, 8, 28, 28, 1), row_titles=names,
              title="one class a row: CFG w = 3, DDPM 200 steps", path=folder / "guidance_class_grid.png")
    # the same starting noise for every row: only the weight changes
    x_T = np.tile(np.random.default_rng(seed).standard_normal((1, 28, 28, 1)).astype(np.float32), (10, 1, 1, 1))
    rows, weights = [], [0, 0.5, 1, 2, 4, 8]
    for w in weights:
        rows.append(sample(denoiser, schedule, 10, sampler="ddpm", labels=np.arange(10), guidance=w, clip=clip, seed=seed, x_T=x_T))
    plot_grid(to_uint8(np.stack(rows), "minus_one_one"), row_titles=[f"w = {w:g}" for w in weights], col_titles=names,
              title="classifier-free guidance: one starting noise, one class a column", path=folder / "guidance_weights.png")
    rows, scales = [], [0, 1, 3, 10]
    for s in scales:
        if s:
            kwargs = dict(labels=np.arange(10), classifier=classifier, classifier_scale=float(s))
        else:
            kwargs = dict(labels=np.full(10, 10))  # the null label: the unconditional model, unguided
        rows.append(sample(denoiser, schedule, 10, sampler="ddpm", clip=clip, seed=seed, x_T=x_T, **kwargs))
    plot_grid(to_uint8(np.stack(rows), "minus_one_one"), row_titles=[f"s = {s:g}" for s in scales], col_titles=names,
              title="classifier guidance of the unconditional model: same noise, one class a column",
              path=folder / "guidance_classifier.png")
    cfg = [r for r in results if r["kind"] == "cfg"]
    clf = [r for r in results if r["kind"] == "classifier"]
    plot_curve([r["value"] for r in cfg], {"label accuracy (CFG)": [r["label_accuracy"] for r in cfg]},
               xlabel="guidance weight w", ylabel="label accuracy", ylim=(0, 1), path=folder / "guidance_accuracy.png",
               title="label accuracy against guidance (classifier: its scale s)")
    fig = plot_curve([r["label_accuracy"] for r in cfg], {"classifier-free (w)": [r["fid"] for r in cfg]},
                     xlabel="label accuracy", ylabel="FID (package classifier)", title="the trade-off: accuracy against FID")
    ax = fig.axes[0]
    ax.plot([r["label_accuracy"] for r in clf], [r["fid"] for r in clf], marker="s", label="classifier guidance (s)")
    for r in cfg + clf:
        ax.annotate(f"{'w' if r['kind'] == 'cfg' else 's'}={r['value']:g}", (r["label_accuracy"], r["fid"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    ax.axhline(cfg[0]["floor"], color="grey", linestyle="--", label=f"real-data floor (n={cfg[0]['n']})")
    ax.legend(fontsize=8)
    from keras_diffusion.plotting import save_figure

    save_figure(fig, folder / "guidance_tradeoff.png")


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    denoiser, schedule, config = load_run(args.run)
    classifier, _, _ = load_run(args.classifier)
    clip = sampling_clip(config)
    evaluator = Evaluator(seed=args.seed)
    labels = np.repeat(np.arange(10), args.n // 10)
    ddim = args.sampler == "ddim"
    kwargs = dict(sampler=args.sampler, steps=args.steps if ddim else None, eta=args.eta if ddim else 0.0, clip=clip, seed=args.seed)
    results = []
    for w in args.weights:
        t0 = time.perf_counter()
        images = sample(denoiser, schedule, len(labels), labels=labels, guidance=float(w), **kwargs)
        results.append(measure("cfg", w, images, labels, time.perf_counter() - t0, evaluator))
    for s in args.scales:
        t0 = time.perf_counter()
        images = sample(denoiser, schedule, len(labels), labels=labels, classifier=classifier, classifier_scale=float(s), **kwargs)
        results.append(measure("classifier", s, images, labels, time.perf_counter() - t0, evaluator))
    costs = step_costs(denoiser, schedule, classifier, clip)
    print(json.dumps(costs))
    if args.figures:
        figures(args.figures, denoiser, schedule, classifier, clip, results, args.seed)
    report = {"command": "python benchmarks/guidance.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "date": time.strftime("%Y-%m-%d"), "cpu": _cpu(), "sampler": args.sampler, "steps": kwargs["steps"], "eta": kwargs["eta"],
              "results": results, "step_costs_batch_64": costs, "seconds": round(time.time() - start, 1)}
    if args.json:
        write_json(args.json, report)
    return 0


def _cpu():
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown"
    return model


if __name__ == "__main__":
    sys.exit(main())
