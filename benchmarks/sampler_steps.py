"""FID against sampling steps for DDIM with eta 0, 0.5 and 1, with and without re-deriving ε̂, and DDPM.

    python benchmarks/sampler_steps.py --run runs/unet --n 500 --steps 10 25 50 100 \\
        --json assets/sampler_steps.json --figure assets/sampler_steps.png

Every setting draws the same n images' starting noise (one seed) with the
package's ``reverse.sample`` and is scored by ``metrics.Evaluator`` (FID on
the package's Fashion-MNIST classifier, beside the real-data floor at the
same n, and class entropy). The settings: DDIM with eta 0, 0.5 and 1 at each
step count, all with ``recompute_eps`` (ε̂ re-derived from the clipped x̂_0,
the package's default), DDIM with eta 0 without it (the package before
issue 18's fix), and DDPM with all T steps (posterior variance, clipped) as
the reference. Not part of the package; not run by the tests.
"""

import argparse
import json
import sys
import time

from keras_diffusion.checkpoint import load_run, write_json
from keras_diffusion.data import to_uint8
from keras_diffusion.metrics import Evaluator
from keras_diffusion.plotting import plot_curve
from keras_diffusion.reverse import sample
from keras_diffusion.training import sampling_clip

# label -> DDIM settings; every label is drawn at every step count
SETTINGS = {
    "DDIM, eta 0": dict(eta=0.0, recompute_eps=True),
    "DDIM, eta 0, network's ε̂ (before the fix)": dict(eta=0.0, recompute_eps=False),
    "DDIM, eta 0.5": dict(eta=0.5, recompute_eps=True),
    "DDIM, eta 1": dict(eta=1.0, recompute_eps=True),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run directory written by keras_diffusion.train")
    parser.add_argument("--n", type=int, default=500, help="images per setting (default: 500)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100], help="DDIM step counts (default: 10 25 50 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--figure", help="plot FID against steps here")
    args = parser.parse_args(argv)

    denoiser, schedule, config = load_run(args.run)
    clip, evaluator = sampling_clip(config), Evaluator(seed=args.seed)
    rows = []

    def score(label, chain_steps, **kwargs):
        start = time.perf_counter()
        images = sample(denoiser, schedule, args.n, seed=args.seed, clip=clip, **kwargs)
        seconds = time.perf_counter() - start
        scores = evaluator.score(to_uint8(images, config.scaling))
        row = {"setting": label, "steps": chain_steps, "n": args.n, "fid": round(scores["fid"], 3), "floor": round(scores["floor"], 3),
               "class_entropy": round(scores["class_entropy"], 4), "seconds": round(seconds, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)

    for label, settings in SETTINGS.items():
        for steps in args.steps:
            score(label, steps, sampler="ddim", steps=steps, **settings)
    score(f"DDPM, all {schedule.timesteps} steps", schedule.timesteps, sampler="ddpm", variance="posterior")
    if args.json:
        write_json(args.json, {"command": "python benchmarks/sampler_steps.py " + " ".join(sys.argv[1:]), "run": str(args.run), "rows": rows})
    if args.figure:
        ddpm = rows[-1]
        curves = {label: [r["fid"] for r in rows if r["setting"] == label] for label in SETTINGS}
        curves[f"{ddpm['setting']} (one point, drawn flat)"] = [ddpm["fid"]] * len(args.steps)
        plot_curve(args.steps, curves, "DDIM steps", f"FID (n = {args.n}, floor {rows[0]['floor']:.2f})", title="FID against sampling steps", path=args.figure, xscale="log")
    return 0


if __name__ == "__main__":
    sys.exit(main())
