"""What each speed lever gives the training step, one variant a fresh process, on this machine.

    python benchmarks/levers.py --json assets/levers.json

Times the training step of ``mlp_seed`` (batch 128), the default ``unet``
(batch 64) and the U-Net at the peer's widths (32/64/128, batch 128) in
float32 and mixed_bfloat16, with and without XLA, and ``mlp_seed`` with one
inter-op thread, each built by ``build_training`` as ``train`` builds it
(``speed.package_train``: the best of three windows after a warm-up, because
on a shared machine other work only ever slows a window down). Every variant
runs in its own process, so no variant inherits another's threads or
compiled code. Records the CPU model and its vector extensions: the ranking
differs between CPUs with and without native bf16. Not part of the package;
not run by the tests.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

PEER_WIDTHS = {"widths": [32, 64, 128]}
# (row, model, config fields, steps a window)
VARIANTS = [
    ("mlp_seed, float32 (no XLA): the MLPs' old default", "mlp_seed", dict(precision="float32", xla=False), 300),
    ("mlp_seed, float32, one inter-op thread", "mlp_seed", dict(precision="float32", xla=False, inter_op=1), 300),
    ("mlp_seed, float32, XLA", "mlp_seed", dict(precision="float32", xla=True), 300),
    ("mlp_seed, mixed_bfloat16, XLA", "mlp_seed", dict(precision="mixed_bfloat16", xla=True), 300),
    ("mlp_seed, mixed_bfloat16 (no XLA)", "mlp_seed", dict(precision="mixed_bfloat16", xla=False), 300),
    ("unet, float32, XLA: the old default", "unet", dict(precision="float32", xla=True), 10),
    ("unet, mixed_bfloat16, XLA: the last session's default", "unet", dict(precision="mixed_bfloat16", xla=True), 10),
    ("unet, float32 (no XLA)", "unet", dict(precision="float32", xla=False), 10),
    ("unet, mixed_bfloat16 (no XLA)", "unet", dict(precision="mixed_bfloat16", xla=False), 10),
    ("unet 32/64/128 (batch 128), mixed_bfloat16, XLA", "unet", dict(precision="mixed_bfloat16", xla=True, model_kwargs=PEER_WIDTHS, batch_size=128), 6),
    ("unet 32/64/128 (batch 128), float32 (no XLA)", "unet", dict(precision="float32", xla=False, model_kwargs=PEER_WIDTHS, batch_size=128), 6),
    ("unet 32/64/128 (batch 128), mixed_bfloat16 (no XLA)", "unet", dict(precision="mixed_bfloat16", xla=False, model_kwargs=PEER_WIDTHS, batch_size=128), 6),
]


def child(spec):
    """One variant, in this process: prints one JSON line with its images/s."""
    fields = dict(spec["fields"])
    inter_op = fields.pop("inter_op", None)
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    import keras

    from keras_diffusion import speed
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import load_images

    keras.utils.set_random_seed(0)
    config = TrainConfig(model=spec["model"], **fields).resolved()
    images, _ = load_images("fashion_mnist", "train", spec.get("data_dir"), limit=20000)
    rate, denoiser = speed.package_train(config, images, spec["steps"], windows=3)
    print(json.dumps({"images_per_s": rate, "precision": denoiser.dtype_policy.name, "xla": config.xla, "batch": config.batch_size}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(json.loads(args.child))
    from keras_diffusion.cpu import cpu_info

    rows, start = [], time.perf_counter()
    for label, model, fields, steps in VARIANTS:
        spec = {"model": model, "fields": fields, "steps": steps, "data_dir": args.data_dir}
        done = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            raise SystemExit(f"error: {label} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
        rows.append({"variant": label, **json.loads(lines[-1])})
        print(f"{label:58s} {rows[-1]['images_per_s']:9,.0f} images/s", flush=True)
    if args.json:
        result = {"command": "python benchmarks/levers.py " + " ".join(sys.argv[1:]), "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "seconds": round(time.perf_counter() - start), "rows": rows}
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
