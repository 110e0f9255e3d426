"""Measure image-to-image translation (DDIB) against SDEdit: test tops turned into another class.

    python benchmarks/translation.py --pretrained unet-fashion-mnist-conditional --n 200 --json assets/translation.json \
        --figure assets/translation.png
    python benchmarks/translation.py ... --replot   # the figure again from the JSON, editing only the images it shows

The first n test images of the tops that are not the target (t-shirt/top, coat, shirt when the
target is pullover) are turned into the target class two ways, both with DDIM and the target's
classifier-free guidance w:

- translate (``editing.translate``, Su et al. 2023): DDIM inversion under the image's own label
  up to timestep ``start``, then DDIM down under the target; one row a (start, w);
- SDEdit (``editing.img2img``, Meng et al. 2022): the image noised to t_0 = strength·T, then
  DDIM down under the target; one row a (strength, w).

Each row gives the package classifier's agreement with the target, the silhouette IoU with the
source (garment pixels >= 16 of 255) and the SSIM to the source. A method keeps more of the
source than another "at equal target agreement" when its SSIM lies above the other's
SSIM-against-agreement curve (interpolated between SDEdit's strengths). Nothing here is
imported by the package.
"""

import argparse
import json
import pathlib
import time

import numpy as np

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
TOPS = ("T-shirt/top", "Pullover", "Coat", "Shirt")
SHOW = 8  # images in the figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a class-conditional run directory")
    source.add_argument("--pretrained", help="a shipped class-conditional model")
    parser.add_argument("--n", type=int, default=200, help="test tops to translate (default: 200)")
    parser.add_argument("--target", default="pullover", help="the class to turn them into (default: pullover)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps, both ways (default: 50)")
    parser.add_argument("--starts", type=int, nargs="+", default=[199, 190, 180], help="translate's top timesteps (default: 199 190 180)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 3.0], help="w of the decoding (default: 0 3)")
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], help="SDEdit's strengths")
    parser.add_argument("--batch-size", type=int, default=200, help="images per compiled call (default: 200)")
    parser.add_argument("--json", default=str(ASSETS / "translation.json"), help="results (default: assets/translation.json)")
    parser.add_argument("--figure", default=str(ASSETS / "translation.png"), help="examples and curves (default: assets/translation.png)")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from --json's rows, editing only the images it shows")
    args = parser.parse_args(argv)

    from keras_diffusion import editing, pretrained
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.cpu import cpu_info
    from keras_diffusion.data import CLASS_NAMES, label_index, load_images, sampling_clip, scale_images, to_uint8
    from keras_diffusion.metrics import load_classifier, silhouette_iou, ssim
    from keras_diffusion.reverse import sample

    run = pretrained.path(args.pretrained) if args.pretrained else args.run
    denoiser, schedule, config = load_run(run)
    target = label_index(args.target, config.dataset)
    names = CLASS_NAMES[config.dataset]
    sources = [names.index(name) for name in TOPS if names.index(name) != target]
    pixels, labels = load_images("fashion_mnist", "test")
    index = np.flatnonzero(np.isin(labels, sources))[: args.n]
    pixels, labels = pixels[index], labels[index].astype(int)  # (n, 28, 28, 1) uint8, (n,)
    if args.replot:  # every edit is image by image (SDEdit's noise too), so the first SHOW images come out as in the full run
        pixels, labels = pixels[:SHOW], labels[:SHOW]
    x = scale_images(pixels, config.scaling)
    classifier, clip = load_classifier(), sampling_clip(config)

    def score(images, **settings):
        if args.replot:
            return dict(settings)
        predicted = np.argmax(classifier.predict(images.astype(np.float32), batch_size=500, verbose=0), axis=-1)
        row = dict(settings, target_agreement=float(np.mean(predicted == target)))
        row.update(silhouette_iou=float(np.mean(silhouette_iou(images, pixels))), ssim=float(np.mean(ssim(images, pixels))))
        print(json.dumps(row))
        return row

    rows, shown = [], {"original": pixels[:SHOW]}
    common = dict(steps=args.steps, batch_size=args.batch_size)
    for start in args.starts:
        began = time.time()
        latents = editing.invert(denoiser, schedule, x, labels, start=start, **common)
        inverted = time.time() - began
        for w in args.guidance:
            began = time.time()
            images = sample(denoiser, schedule, len(x), sampler="ddim", x_T=latents, start=start, labels=target, guidance=w, clip=clip, seed=0, **common)
            images = to_uint8(images, config.scaling)
            rows.append(score(images, method="translate", start=start, guidance=w, seconds=round(inverted + time.time() - began, 1)))
            shown[f"DDIB t={start}, w={w:g}"] = images[:SHOW]
    for w in args.guidance:
        for strength in args.strengths:
            began = time.time()
            images = editing.img2img(denoiser, schedule, x, strength, seed=0, sampler="ddim", labels=target, guidance=w, clip=clip, **common)
            images = to_uint8(images, config.scaling)
            rows.append(score(images, method="sdedit", strength=strength, guidance=w, seconds=round(time.time() - began, 1)))
            if strength in (0.6, 0.8):
                shown[f"SDEdit s={strength:g}, w={w:g}"] = images[:SHOW]
    if args.replot:
        plot(shown, json.loads(pathlib.Path(args.json).read_text())["rows"], names[target], args.figure)
        print(f"wrote {args.figure}")
        return 0
    for row in rows:
        if row["method"] == "translate":
            row["sdedit_ssim_at_equal_agreement"] = sdedit_ssim_at(rows, row["target_agreement"], row["guidance"])

    result = dict(run=str(args.pretrained or args.run), n=len(x), target=names[target], sources=[names[s] for s in sources], steps=args.steps,
                  sampler="ddim", eta=0.0, clip=clip, cpu=cpu_info(), shared_cpu=True, date=time.strftime("%Y-%m-%d"), rows=rows)
    pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    plot(shown, rows, names[target], args.figure)
    print(f"wrote {args.figure}")
    return 0


def sdedit_ssim_at(rows, agreement, guidance):
    """SDEdit's SSIM at a target agreement, interpolated along its strengths at the same w (None outside its range)."""
    curve = sorted((r["target_agreement"], r["ssim"]) for r in rows if r["method"] == "sdedit" and r["guidance"] == guidance)
    if not curve or not curve[0][0] <= agreement <= curve[-1][0]:
        return None
    agreements, ssims = zip(*curve)
    return float(np.interp(agreement, agreements, ssims))


def plot(shown, rows, target, path):
    """Examples (one column a setting) above SSIM against target agreement for both methods."""
    from matplotlib.figure import Figure

    from keras_diffusion.plotting import save_figure

    columns = list(shown)
    fig = Figure(figsize=(max(8, 1.0 * len(columns)), 12), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.2, 1])
    axes = top.subplots(SHOW, len(columns), squeeze=False)
    for j, name in enumerate(columns):
        for i in range(SHOW):
            axes[i, j].imshow(shown[name][i, ..., 0], cmap="gray", vmin=0, vmax=255)
            axes[i, j].axis("off")
        axes[0, j].set_title(name.replace(", ", "\n"), fontsize=7)
    ax = bottom.subplots()
    for w in sorted({r["guidance"] for r in rows}):
        sd = sorted((r["target_agreement"], r["ssim"], r["strength"]) for r in rows if r["method"] == "sdedit" and r["guidance"] == w)
        ax.plot([a for a, _, _ in sd], [s for _, s, _ in sd], marker="o", label=f"SDEdit, w = {w:g} (strength {min(r[2] for r in sd):g} to {max(r[2] for r in sd):g})")
        tr = [r for r in rows if r["method"] == "translate" and r["guidance"] == w]
        ax.scatter([r["target_agreement"] for r in tr], [r["ssim"] for r in tr], marker="*", s=120, zorder=3, label=f"translate (DDIB), w = {w:g}")
        for r in tr:
            ax.annotate(f"t={r['start']}", (r["target_agreement"], r["ssim"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set(xlabel=f"fraction the package classifier calls {target}", ylabel="SSIM to the source", title="keeping the source against reaching the target")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    raise SystemExit(main())
