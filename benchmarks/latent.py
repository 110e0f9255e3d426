"""Latent against pixel diffusion: the autoencoder's reconstructions, training and sampling speed, FID.

    python benchmarks/latent.py --pixel runs/cond --latent runs/latent_cond --n 2000 \
        --json assets/latent.json --figures assets

Both runs are read as they are; nothing is trained here. It reports:

- the autoencoder's reconstruction PSNR (``tf.image.psnr``) on the first
  ``--psnr-n`` test images, and the FID of those reconstructions (what a
  perfect latent model would score: the autoencoder's own floor);
- what training cost: each run's seconds and images/s from its history.csv
  (and the autoencoder's from autoencoder.json), plus the same three training
  steps timed side by side here, on synthetic batches, so that the machine's
  load is the same for all of them;
- sampling images/s with DDIM-50 and DDPM for both runs, side by side, from
  a warm (traced) loop, decoding included for the latent run;
- FID and class entropy of ``--n`` DDIM-50 samples of each run, computed by
  the evaluate command line itself (``keras_diffusion.evaluate.main``).
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

from keras_diffusion import evaluate, latent
from keras_diffusion.checkpoint import HISTORY, build_denoiser, load_run, read_config, write_json
from keras_diffusion.data import load_images, scale_images, to_uint8
from keras_diffusion.metrics import Evaluator
from keras_diffusion.plotting import plot_grid, read_history
from keras_diffusion.reverse import sample
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.training import sampling_clip


PARTS = ("autoencoder", "training", "train_images_per_second_side_by_side", "sample_images_per_second", "fid_ddim50")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixel", required=True, help="a pixel U-Net run (sampled without labels when conditional)")
    parser.add_argument("--latent", required=True, help="a run trained with --latent")
    parser.add_argument("--n", type=int, default=2000, help="DDIM-50 samples for FID (default: 2000)")
    parser.add_argument("--psnr-n", type=int, default=10000, help="test images for the reconstruction PSNR (default: all 10000)")
    parser.add_argument("--speed-n", type=int, default=128, help="images per timed sampling call (default: 128)")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps per model (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here (with --parts, update the parts in this file)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure (default: all)")
    parser.add_argument("--figures", help="folder for latent_samples.png and latent_autoencoder.png")
    return parser.parse_args(argv)


def autoencoder_quality(run, n, evaluator):
    """PSNR of D(E(x)) on the first n test images, and the FID of 2000 reconstructions against the same test images."""
    autoencoder, scale, info = latent.load_autoencoder(run)
    test, _ = load_images("fashion_mnist", "test")
    scaling = info["scaling"]
    reconstruct = lambda x: to_uint8(latent.decode(autoencoder, scale, latent.encode(autoencoder, scale, scale_images(x, scaling))), scaling)  # noqa: E731
    real = evaluator.real_images("test", 2000)  # the subset evaluate compares samples with
    return {"psnr_db": round(latent.psnr(test[:n], reconstruct(test[:n])), 3), "psnr_n": n,
            "reconstruction_fid": round(evaluator.score(reconstruct(real))["fid"], 3), "reconstruction_fid_n": len(real),
            "scale_factor": round(scale, 5), "parameters": autoencoder.count_params(),
            "train_seconds": info.get("seconds"), "epochs": info.get("epochs")}


def run_cost(run):
    """Training seconds and images/s of a run, from its history.csv; the autoencoder's too for a latent run."""
    config, _, _ = read_config(run)
    history = read_history(pathlib.Path(run) / HISTORY)
    seconds = float(sum(history["seconds"]))
    images = len(history["seconds"]) * (config.limit or 60000)
    cost = {"epochs": len(history["seconds"]), "batch_size": config.batch_size, "seconds": round(seconds, 1),
            "images_per_second": round(images / seconds, 1)}
    if config.latent:
        info = latent.load_autoencoder(run)[2]
        cost["autoencoder_seconds"] = info["seconds"]
        cost["autoencoder_images_per_second"] = round(info["epochs"] * info["train_images"] / info["seconds"], 1)
        cost["total_seconds"] = round(seconds + info["seconds"], 1)
    return cost


def train_speed(pixel, latent_run, steps):
    """Training images/s of the pixel U-Net, the latent U-Net and the autoencoder, timed one after another here."""
    import keras
    import tensorflow as tf

    def timed(model, batch):
        data = tf.data.Dataset.from_tensors(batch).repeat()
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)  # traces (and XLA-compiles) the step
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        return round(steps * len(tf.nest.flatten(batch)[0]) / (time.perf_counter() - start), 1)

    rng = np.random.default_rng(0)
    speeds = {}
    for name, run in (("pixel U-Net", pixel), ("latent U-Net", latent_run)):
        config, schedule, shape = read_config(run)
        # float32 with XLA, as both runs trained: built here, so that no default of a later version changes the dtype
        denoiser = build_denoiser(config, shape)
        model = DiffusionModel(denoiser, schedule, seed=0, cond_drop=config.cond_drop if config.conditional else 0.0)
        model.compile(optimizer=keras.optimizers.Adam(config.lr, use_ema=config.ema > 0, ema_momentum=config.ema or 0.99), jit_compile=config.xla)
        x = rng.standard_normal((config.batch_size, *shape)).astype(np.float32)
        batch = (x, rng.integers(0, 10, config.batch_size).astype(np.int32)) if config.conditional else x
        speeds[name] = timed(model, batch)
    autoencoder = latent.Autoencoder(latent_channels=read_config(latent_run)[2][-1])
    autoencoder.compile(optimizer=keras.optimizers.Adam(latent.LR), jit_compile=True)
    speeds["autoencoder"] = timed(autoencoder, rng.uniform(-1, 1, (latent.BATCH_SIZE, 28, 28, 1)).astype(np.float32))
    return speeds


def sample_speed(pixel, latent_run, n, seed):
    """Images/s of DDIM-50 and DDPM for both runs, each loop traced first; the latent run's time includes decoding."""
    results = {}
    for name, run in (("pixel", pixel), ("latent", latent_run)):
        denoiser, schedule, config = load_run(run)
        decode = latent.load_decoder(run) if config.latent else (lambda z: z)
        for sampler, steps in (("ddim", min(50, schedule.timesteps)), ("ddpm", None)):
            kwargs = dict(sampler=sampler, steps=steps, clip=sampling_clip(config), seed=seed, batch_size=n)
            sample(denoiser, schedule, n, **kwargs)  # traced here, not timed
            start = time.perf_counter()
            decode(sample(denoiser, schedule, n, **kwargs))
            results[f"{name} {sampler}{'-50' if steps else ''}"] = round(n / (time.perf_counter() - start), 2)
    return results


def fid(run, n, seed):
    """The evaluate command line's JSON line for n DDIM-50 samples of a run."""
    steps = min(50, read_config(run)[0].timesteps)  # tiny test runs have T < 50
    with tempfile.TemporaryDirectory() as folder:
        out = pathlib.Path(folder) / "fid.jsonl"
        evaluate.main(["--run", str(run), "--n", str(n), "--sampler", "ddim", "--steps", str(steps), "--seed", str(seed), "--out", str(out)])
        row = json.loads(out.read_text().splitlines()[0])
    return {k: row[k] for k in ("n", "fid", "floor", "class_entropy", "histogram", "images_per_second")}


def figures(folder, pixel, latent_run, seed):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in (pixel, latent_run):
        denoiser, schedule, config = load_run(run)
        x = sample(denoiser, schedule, 16, sampler="ddpm", clip=sampling_clip(config), seed=seed)
        rows.append(to_uint8(latent.load_decoder(run)(x) if config.latent else x, config.scaling))
    plot_grid(np.stack(rows), row_titles=["pixel U-Net", "latent U-Net"], title="DDPM samples, same seed", path=folder / "latent_samples.png")
    autoencoder, scale, info = latent.load_autoencoder(latent_run)
    test, _ = load_images("fashion_mnist", "test", limit=10)
    latent.plot_latents(autoencoder, scale, test, info["scaling"], path=folder / "latent_autoencoder.png")


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    evaluator = Evaluator(seed=args.seed)
    command = "python benchmarks/latent.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = {"commands": [], "device": f"CPU ({platform.machine()}, {os.cpu_count()} cores)", "pixel": str(args.pixel), "latent": str(args.latent)}
    if args.json and pathlib.Path(args.json).is_file() and len(args.parts) < len(PARTS):  # measure some parts again
        results = json.loads(pathlib.Path(args.json).read_text())
        if (results["pixel"], results["latent"]) != (str(args.pixel), str(args.latent)):
            raise SystemExit(f"{args.json} compares {results['pixel']} with {results['latent']}; pass those runs, or another --json")
    results["commands"].append(command + (f"   # measured: {', '.join(args.parts)}" if len(args.parts) < len(PARTS) else ""))
    steps = [("autoencoder", lambda: autoencoder_quality(args.latent, args.psnr_n, evaluator)),
             ("training", lambda: {"pixel": run_cost(args.pixel), "latent": run_cost(args.latent)}),
             ("train_images_per_second_side_by_side", lambda: train_speed(args.pixel, args.latent, args.train_steps)),
             ("sample_images_per_second", lambda: sample_speed(args.pixel, args.latent, args.speed_n, args.seed)),
             ("fid_ddim50", lambda: {"pixel": fid(args.pixel, args.n, args.seed), "latent": fid(args.latent, args.n, args.seed)})]
    for key, measure in steps:
        if key not in args.parts:
            continue
        step_start = time.time()
        results[key] = measure()
        print(f"{key} ({time.time() - step_start:.0f} s): {json.dumps(results[key])}", flush=True)
    if "sample_images_per_second" in results:
        speed = results["sample_images_per_second"]
        results["sampling_speedup"] = {s: round(speed[f"latent {s}"] / speed[f"pixel {s}"], 2) for s in ("ddim-50", "ddpm")}
    if "fid_ddim50" in results:
        results["fid_ratio"] = round(results["fid_ddim50"]["latent"]["fid"] / results["fid_ddim50"]["pixel"]["fid"], 3)
    if args.figures:
        figures(args.figures, args.pixel, args.latent, args.seed)
    results.setdefault("seconds", []).append(round(time.time() - start, 1))
    print(json.dumps({k: results.get(k) for k in ("sampling_speedup", "fid_ratio", "seconds")}))
    if args.json:
        write_json(args.json, results)


if __name__ == "__main__":
    main()
