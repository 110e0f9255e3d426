"""The training-recipe screen: the default U-Net for one epoch per objective and loss weight, one seed per call.

    python benchmarks/recipe.py --seed 1 --json assets/recipe_seed1.json          # every recipe, resumable
    python benchmarks/recipe.py --seed 1 --only x0 eps --json assets/recipe_seed1.json
    python benchmarks/recipe.py --seed 0 --epochs 3 --only x0 x0_minsnr --json assets/recipe_3epochs.json   # the finalists
    python benchmarks/recipe.py --seed 0 --epochs 3 --ddpm --json assets/recipe_3epochs.json   # + DDPM-200 on every run in it

Each recipe is ``python -m keras_diffusion.train --epochs EPOCHS --seed SEED --n-samples 16 FLAGS`` and then
``python -m keras_diffusion.evaluate --n 500`` with the default sampler (DPM-Solver++(2M) SDE, 20 Karras
steps): equal optimizer steps, equal data, only the flags differ. A recipe already in the JSON file is
skipped, so a stopped screen goes on where it stopped. ``--ddpm`` then scores every run of the file that has
no DDPM-200 FID yet with ancestral DDPM over all 200 steps (same n, same seed), the 200-call baseline of the
fast default. Nothing here is imported by the package.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
RECIPES = {  # the most promising first: a screen cut short still answers the main question
    "x0": "--objective x0",
    "eps": "--objective eps",
    "x0_minsnr": "--objective x0 --loss-weight min_snr",
    "v_minsnr": "--objective v --loss-weight min_snr",
    "v": "--objective v",
    "eps_minsnr": "--objective eps --loss-weight min_snr",
    "v_minsnr_cosine": "--objective v --loss-weight min_snr --lr-schedule cosine --lr-warmup 100",
}
SAMPLER = ["--sampler", "dpmpp_2m_sde", "--steps", "20", "--spacing", "karras"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True, help="the seed of every run (initialisation, data order, noise)")
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), default=list(RECIPES), help="recipes to run (default: all)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of each run (default: 1, the screen; 3 is train's default)")
    parser.add_argument("--n", type=int, default=500, help="images for the FID (default: 500)")
    parser.add_argument("--runs", default=str(ROOT / "runs" / "recipe"), help="where the run directories go (default: runs/recipe)")
    parser.add_argument("--json", required=True, help="results file; recipes already in it are skipped")
    parser.add_argument("--ddpm", action="store_true", help="also score each run in the file with DDPM-200 (fid_ddpm200)")
    args = parser.parse_args(argv)

    path = pathlib.Path(args.json)
    result = json.loads(path.read_text()) if path.is_file() else {}
    from keras_diffusion.cpu import cpu_info

    result.update(command=f"python benchmarks/recipe.py --seed SEED --epochs {args.epochs}", date=time.strftime("%Y-%m-%d"), cpu=cpu_info(), shared_cpu=True)
    rows = result.setdefault("rows", [])
    done = {row["recipe"] for row in rows}
    for name in args.only:
        if name in done:
            continue
        run = run_dir(args, name)
        began = time.time()
        train = [sys.executable, "-m", "keras_diffusion.train", "--epochs", str(args.epochs), "--seed", str(args.seed), "--n-samples", "16"]
        subprocess.run(train + RECIPES[name].split() + ["--out", str(run), "--overwrite"], check=True)
        seconds = time.time() - began
        scores = _evaluate(run, args.n, SAMPLER)
        history = (run / "history.csv").read_text().strip().splitlines()
        header, last = history[0].split(","), history[-1].split(",")
        rows.append(dict(
            recipe=name, flags=RECIPES[name], seed=args.seed, epochs=args.epochs, final_loss=round(float(last[header.index("loss")]), 4),
            fid=round(scores["fid"], 3), floor=round(scores["floor"], 3), class_entropy=round(scores["class_entropy"], 4), n=args.n,
            sampler="dpmpp_2m_sde, 20 steps, karras", train_seconds_shared_cpu=round(seconds, 1),
        ))
        print(json.dumps(rows[-1]), flush=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
    for row in rows if args.ddpm else []:
        if "fid_ddpm200" in row or row["seed"] != args.seed or row["epochs"] != args.epochs:
            continue
        scores = _evaluate(run_dir(args, row["recipe"]), args.n, ["--sampler", "ddpm"])
        row["fid_ddpm200"] = round(scores["fid"], 3)
        print(json.dumps(row), flush=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
    return 0


def run_dir(args, name):
    """Where the run of recipe ``name`` at this seed and length lives."""
    suffix = "" if args.epochs == 1 else f"_e{args.epochs}"
    return pathlib.Path(args.runs) / f"{name}_seed{args.seed}{suffix}"


def _evaluate(run, n, sampler):
    """The JSON line that ``keras_diffusion.evaluate`` prints for ``run`` with these sampler flags."""
    command = [sys.executable, "-m", "keras_diffusion.evaluate", "--run", str(run), "--n", str(n), *sampler]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    raise SystemExit(main())
