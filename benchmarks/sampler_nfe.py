"""FID against network evaluations (NFE) for every sampler and timestep spacing, and DDPM with all T steps.

    python benchmarks/sampler_nfe.py --pretrained unet-fashion-mnist --n 500 \\
        --json assets/sampler_nfe.json --figure assets/sampler_nfe.png
    python benchmarks/sampler_nfe.py --pretrained unet-fashion-mnist --n 2000 --json assets/sampler_nfe_2000.json \\
        --only "dpmpp_2m karras 20" "heun karras 19" "ddim uniform 50" --ddpm

Every setting draws the same n starting noises (one seed) with the package's
``reverse.sample`` and is scored by ``metrics.Evaluator`` (FID on the
package's Fashion-MNIST classifier, beside the real-data floor at the same n,
and class entropy). A budget of NFE network calls is spent as that many steps,
except by Heun, whose N steps cost 2N − 1 calls: it gets the largest N that
fits. Rows are appended to --json as they finish, and a second call with the
same --json skips the rows it already has, so a long screen can run in parts.
Not part of the package; not run by the tests.
"""

import argparse
import json
import pathlib
import sys
import time

from keras_diffusion import samplers
from keras_diffusion.checkpoint import load_run, write_json
from keras_diffusion.data import sampling_clip, to_uint8
from keras_diffusion.metrics import Evaluator
from keras_diffusion.reverse import sample

# (label, sampler, options): each is drawn at every spacing and budget; ddim_eta1 only with uniform spacing
SETTINGS = [
    ("ddim", "ddim", {}),
    ("ddim_eta1", "ddim", {"eta": 1.0}),
    ("dpmpp_2m", "dpmpp_2m", {}),
    ("dpmpp_2m_sde", "dpmpp_2m_sde", {}),
    ("heun", "heun", {}),
]
SPACINGS = ("uniform", "quadratic", "karras")


def steps_for(sampler, budget):
    """The most steps whose NFE fits the budget."""
    steps = budget
    while steps > 1 and samplers.nfe(sampler, steps) > budget:
        steps -= 1
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", help="a run directory written by keras_diffusion.train")
    source.add_argument("--pretrained", help="a shipped model's name")
    parser.add_argument("--n", type=int, default=500, help="images per setting (default: 500)")
    parser.add_argument("--nfe", type=int, nargs="+", default=[5, 10, 15, 20, 25, 50], help="budgets (default: 5 10 15 20 25 50)")
    parser.add_argument("--only", nargs="+", help='just these settings, each "LABEL SPACING NFE" (e.g. "dpmpp_2m karras 20")')
    parser.add_argument("--ddpm", action="store_true", help="with --only: also DDPM with all T steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", required=True, help="append the rows here (and skip those already there)")
    parser.add_argument("--figure", help="plot FID against NFE here, one panel per spacing")
    parser.add_argument("--table", action="store_true", help="print the rows of --json as a Markdown table and stop")
    args = parser.parse_args(argv)
    path = pathlib.Path(args.json)
    if args.table:
        print(table(json.loads(path.read_text())["rows"]))
        return 0
    if not (args.run or args.pretrained):
        parser.error("one of the arguments --run --pretrained is required (or --table)")

    if args.pretrained:
        from keras_diffusion import pretrained

        run = pretrained.path(args.pretrained)
    else:
        run = args.run
    denoiser, schedule, config = load_run(run)
    clip, evaluator = sampling_clip(config), Evaluator(seed=args.seed)
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {(r["setting"], r["spacing"], r["nfe"]) for r in rows}
    options = {label: (sampler, opts) for label, sampler, opts in SETTINGS}

    plan = []
    if args.only:
        for item in args.only:
            label, spacing, budget = item.split()
            plan.append((label, spacing, int(budget)))
        if args.ddpm:
            plan.append(("ddpm", "uniform", schedule.timesteps))
    else:
        # karras spacing first, then uniform, then quadratic, DDPM after the first spacing: a screen cut short has the most
        plan = [(label, spacing, budget) for spacing in ("karras", "uniform", "quadratic") for label, _, _ in SETTINGS for budget in args.nfe
                if not (label == "ddim_eta1" and spacing != "uniform")]
        plan.insert(len(plan) // 3, ("ddpm", "uniform", schedule.timesteps))

    def save():
        command = "python benchmarks/sampler_nfe.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_json(path, {"command": command, "run": args.pretrained or str(run), "n": args.n, "seed": args.seed, "rows": rows})

    for label, spacing, budget in plan:
        sampler, opts = ("ddpm", {"variance": "beta"}) if label == "ddpm" else options[label]
        steps = schedule.timesteps if label == "ddpm" else steps_for(sampler, budget)
        nfe = samplers.nfe(sampler, steps)
        if (label, spacing, nfe) in done:
            continue
        start = time.perf_counter()
        images = sample(denoiser, schedule, args.n, sampler=sampler, steps=None if label == "ddpm" else steps, spacing=spacing,
                        seed=args.seed, clip=clip, **opts)
        seconds = time.perf_counter() - start
        scores = evaluator.score(to_uint8(images, config.scaling))
        row = {"setting": label, "sampler": sampler, **opts, "spacing": spacing, "steps": steps, "nfe": nfe, "n": args.n,
               "fid": round(scores["fid"], 3), "floor": round(scores["floor"], 3), "class_entropy": round(scores["class_entropy"], 4),
               "seconds": round(seconds, 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        save()
    save()
    if args.figure:
        plot(rows, args.figure)
    return 0


def table(rows):
    """FID, one row per sampler and spacing, one column per NFE budget (Heun's cells give its 2N − 1 in brackets)."""
    budgets = sorted({r["nfe"] for r in rows if r["sampler"] != "heun" and r["setting"] != "ddpm"})
    lines = ["| sampler | spacing | " + " | ".join(f"NFE {b}" for b in budgets) + " |", "|---|---|" + "---|" * len(budgets)]
    keys = sorted({(r["setting"], r["spacing"]) for r in rows if r["setting"] != "ddpm"}, key=lambda k: (SPACINGS.index(k[1]), k[0]))
    for setting, spacing in keys:
        cells = {}
        for r in rows:
            if (r["setting"], r["spacing"]) == (setting, spacing):
                budget = min((b for b in budgets if b >= r["nfe"]), default=r["nfe"])
                cells[budget] = f"{r['fid']:.2f}" + (f" ({r['nfe']})" if r["nfe"] != budget else "")
        lines.append(f"| {setting} | {spacing} | " + " | ".join(cells.get(b, "") for b in budgets) + " |")
    for r in rows:
        if r["setting"] == "ddpm":
            lines.append(f"| ddpm, all {r['steps']} steps (NFE {r['nfe']}) | uniform | {r['fid']:.2f} |" + " |" * (len(budgets) - 1))
    return "\n".join(lines)


def plot(rows, out):
    """FID against NFE, log-log, one panel per spacing; DDPM with all T steps as a dashed line.

    Each sampler keeps its colour in every panel, and one legend below the panels names them all.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from keras_diffusion.plotting import _finish

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, len(SPACINGS), sharey=True)
    colours = {label: f"C{i}" for i, (label, _, _) in enumerate(SETTINGS)}
    ddpm = [r for r in rows if r["setting"] == "ddpm"]
    budgets = sorted({r["nfe"] for r in rows if r["setting"] not in ("ddpm", "heun")})  # Heun lands on 2N − 1
    for ax, spacing in zip(axes, SPACINGS):
        for label, _, _ in SETTINGS:
            points = sorted((r["nfe"], r["fid"]) for r in rows if r["setting"] == label and r["spacing"] == spacing)
            if points:
                ax.plot(*zip(*points), marker="o", color=colours[label], label=label)
        if ddpm:
            ax.axhline(ddpm[0]["fid"], color="k", ls="--", lw=1, label=f"ddpm, all {ddpm[0]['nfe']} steps")
        ax.axhline(rows[0]["floor"], color="gray", ls=":", lw=1, label="real-data floor")
        ax.set(xscale="log", yscale="log", xlabel="network evaluations per image (NFE)", title=f"{spacing} spacing")
        ax.set_xticks(budgets)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"FID (n = {rows[0]['n']}, package classifier)")
    handles, labels = {}, {}
    for ax in axes:  # every sampler and line once, in the order first drawn
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=8)
    _finish(fig, out)


if __name__ == "__main__":
    sys.exit(main())
