"""The pretrained U-Net on each Keras backend: sampling speed, time to the first batch, and FID.

    python benchmarks/backends.py --json assets/backends.json            # every installed backend
    python benchmarks/backends.py --only jax torch --n 500 --json out.json

Each backend runs in its own process (Keras picks its backend once per process),
one after the other, never side by side: run it on an otherwise idle machine.
For each: DDIM-50 and the default sampler (DPM-Solver++(2M) SDE, 20 Karras
steps) on a batch of 64, the first call (tracing and compiling included) and
the mean of the next two; then ``python -m keras_diffusion.evaluate
--pretrained unet-fashion-mnist --n N`` with the default sampler. The backends'
random streams differ, so their FIDs differ by sampling noise alone; compare
them with the spread of one backend over seeds. Nothing here is imported by
the package.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
SAMPLERS = {"ddim_50": dict(sampler="ddim", steps=50), "dpmpp_2m_sde_20": dict(sampler="dpmpp_2m_sde", steps=20, spacing="karras")}


def child(batch):
    """Time the samplers on this process's backend; print one JSON line."""
    import keras

    from keras_diffusion import pretrained
    from keras_diffusion.reverse import sample

    denoiser, schedule, config = pretrained.load("unet-fashion-mnist")
    row = {"backend": keras.backend.backend(), "batch": batch}
    for name, kwargs in SAMPLERS.items():
        began = time.perf_counter()
        sample(denoiser, schedule, batch, seed=0, batch_size=batch, clip=(-1, 1), **kwargs)
        row[f"{name}_first_call_s"] = round(time.perf_counter() - began, 2)
        seconds = []
        for seed in (1, 2):
            began = time.perf_counter()
            sample(denoiser, schedule, batch, seed=seed, batch_size=batch, clip=(-1, 1), **kwargs)
            seconds.append(time.perf_counter() - began)
        row[f"{name}_images_per_s"] = round(batch / (sum(seconds) / len(seconds)), 2)
    print(json.dumps(row), flush=True)


def run(backend, *command):
    """The last stdout line of ``python COMMAND`` on ``backend``, as JSON."""
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{backend}: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends to measure (default: every installed one)")
    parser.add_argument("--n", type=int, default=500, help="images for the FID (default: 500)")
    parser.add_argument("--batch", type=int, default=64, help="images a sampling call (default: 64)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.batch)
    sys.path.insert(0, str(ROOT))
    from keras_diffusion.cpu import cpu_info

    rows = []
    for backend in args.only:
        if backend != "tensorflow" and importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed, skipped", file=sys.stderr)
            continue
        row = run(backend, "benchmarks/backends.py", "--child", "--batch", str(args.batch))
        scores = run(backend, "-m", "keras_diffusion.evaluate", "--pretrained", "unet-fashion-mnist", "--n", str(args.n))
        row.update(version=_version(backend), fid=scores["fid"], floor=scores["floor"], class_entropy=scores["class_entropy"], fid_n=args.n)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = dict(command="python benchmarks/backends.py", date=time.strftime("%Y-%m-%d"), cpu=cpu_info(), rows=rows)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def _version(backend):
    from importlib.metadata import version

    return version(backend)


if __name__ == "__main__":
    raise SystemExit(main())
