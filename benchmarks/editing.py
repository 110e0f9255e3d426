"""Measure the three edits of keras_diffusion.editing on real test images; write JSON and figures.

    python benchmarks/editing.py --run runs/cond --n 500                  # all three parts
    python benchmarks/editing.py --run runs/cond --n 500 --only superres  # one part (the others' results are kept)

Inpainting (right half masked): the package classifier's agreement with the ORIGINAL label
and FID, for replacement and RePaint (r = 5, 10), and whether the known pixels came back
exactly. Super-resolution x2 and x4: PSNR and SSIM against the originals and label
agreement, ILVR beside bicubic upsampling. SDEdit: distance to the input, label agreement
and FID against strength. Results go to assets/editing.json (one key a part), figures to
assets/editing_*.png. Nothing here is imported by the package.
"""

import argparse
import json
import pathlib
import platform
import time

import numpy as np

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
PARTS = ("inpaint", "superres", "sdedit")
STRENGTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SHOW = 8  # images in each figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory (an unconditional or class-conditional denoiser)")
    parser.add_argument("--n", type=int, default=500, help="test images 0..n-1 (default: 500; FID needs > 128)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to measure (default: all)")
    parser.add_argument("--resample", type=int, nargs="+", default=[1, 5, 10], help="RePaint's r values; 1 is replacement (default: 1 5 10)")
    parser.add_argument("--jump", type=int, default=10, help="RePaint's jump length (default: 10)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps for SDEdit (default: 50)")
    parser.add_argument("--batch-size", type=int, default=250, help="images per compiled call (default: 250)")
    parser.add_argument("--out", default=str(ASSETS), help="folder for editing.json and the figures (default: assets/)")
    args = parser.parse_args(argv)

    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.data import load_images
    from keras_diffusion.metrics import Evaluator
    from keras_diffusion.training import sampling_clip

    denoiser, schedule, config = load_run(args.run)
    pixels, labels = load_images("fashion_mnist", "test", limit=args.n)  # (n, 28, 28, 1) uint8, (n,)
    out = pathlib.Path(args.out)
    path = out / "editing.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update(run=str(args.run), n=args.n, images=f"test:0-{args.n - 1}", machine=_machine(), schedule=str(schedule))

    def save(part, value):
        """Write what is measured so far: a long run that is stopped keeps its finished rows."""
        results[part] = value
        path.write_text(json.dumps(results, indent=1) + "\n")

    bench = Bench(denoiser, schedule, config, pixels, labels, Evaluator(), sampling_clip(config), args, save)
    for part in args.only:
        start = time.time()
        save(part, getattr(bench, part)(out))
        print(f"{part}: {time.time() - start:.0f} s")
    print(f"wrote {path}")
    return 0


class Bench:
    def __init__(self, denoiser, schedule, config, pixels, labels, evaluator, clip, args, save):
        from keras_diffusion.data import scale_images

        self.denoiser, self.schedule, self.config, self.evaluator, self.save = denoiser, schedule, config, evaluator, save
        self.pixels, self.labels, self.clip, self.args = pixels, labels.astype(int), clip, args
        self.x = scale_images(pixels, config.scaling)  # (n, 28, 28, 1) in the run's range

    def score(self, images, **extra):
        """Label agreement with the originals' labels, FID and class entropy of uint8 images."""
        _, predicted = self.evaluator.features(images)
        scores = self.evaluator.score(images)
        row = dict(label_agreement=float(np.mean(predicted == self.labels)), fid=scores["fid"], floor=scores["floor"])
        return {**row, "class_entropy": scores["class_entropy"], **extra}

    def timed(self, fn):
        start = time.time()
        result = fn()
        return result, time.time() - start

    def inpaint(self, out):
        from keras_diffusion import editing
        from keras_diffusion.data import to_uint8
        from keras_diffusion.edit import hole_view, plot_edits

        mask = editing.make_mask("right", len(self.x))
        known = np.broadcast_to(mask == 0, self.pixels.shape)
        rows = [self.score(self.pixels, method="originals"), self.score(np.where(known, self.pixels, 0), method="right half black")]
        columns = {}
        columns["original"], columns["input"] = self.pixels[:SHOW], hole_view(self.pixels[:SHOW], mask[:SHOW])
        for r in self.args.resample:
            kwargs = dict(resample=r, jump=self.args.jump, seed=0, clip=self.clip, batch_size=self.args.batch_size)
            images, seconds = self.timed(lambda: editing.inpaint(self.denoiser, self.schedule, self.x, mask, **kwargs))
            images = to_uint8(images, self.config.scaling)
            name = "replacement" if r == 1 else f"RePaint r={r}"
            rows.append(self.score(images, method=name, resample=r, jump=self.args.jump, sampler="ddpm",
                                   known_exact=bool(np.array_equal(images[known], self.pixels[known])), seconds=seconds))
            columns[name] = images[:SHOW]
            print(rows[-1])
            self.save("inpaint", dict(mask="right", rows=rows))
            plot_edits(columns, title=f"inpainting the right half (DDPM, {self.schedule.timesteps} steps)", path=out / "editing_inpaint.png")
        return dict(mask="right", rows=rows)

    def superres(self, out):
        import tensorflow as tf

        from keras_diffusion import editing
        from keras_diffusion.data import to_uint8
        from keras_diffusion.edit import plot_edits

        rows, columns = [self.score(self.pixels, method="originals")], {"original": self.pixels[:SHOW]}
        for factor in (4, 2):
            low = editing.downsample(self.x, factor).numpy()  # (n, 28/f, 28/f, 1)
            bicubic = to_uint8(tf.image.resize(low, (28, 28), method="bicubic").numpy(), self.config.scaling)
            kwargs = dict(seed=0, clip=self.clip, batch_size=self.args.batch_size)
            ilvr, seconds = self.timed(lambda: editing.super_resolve(self.denoiser, self.schedule, low, factor, **kwargs))
            ilvr = to_uint8(ilvr, self.config.scaling)
            for name, images, extra in ((f"bicubic x{factor}", bicubic, {}), (f"ILVR x{factor}", ilvr, dict(sampler="ddpm", seconds=seconds))):
                rows.append(self.score(images, method=name, factor=factor, **self.fidelity(images), **extra))
                print(rows[-1])
            columns.update({f"x{factor} input": to_uint8(editing.upsample(low[:SHOW], factor).numpy(), self.config.scaling),
                            f"bicubic x{factor}": bicubic[:SHOW], f"ILVR x{factor}": ilvr[:SHOW]})
        plot_edits(columns, title=f"super-resolution from 7x7 and 14x14 (ILVR, DDPM {self.schedule.timesteps} steps)", path=out / "editing_superres.png")
        return dict(rows=rows)

    def fidelity(self, images):
        """PSNR and SSIM against the originals (pixels in [0, 1]), means over the images."""
        import tensorflow as tf

        a, b = self.pixels.astype(np.float32) / 255, images.astype(np.float32) / 255
        return dict(psnr=float(tf.reduce_mean(tf.image.psnr(a, b, 1.0))), ssim=float(tf.reduce_mean(tf.image.ssim(a, b, 1.0))))

    def sdedit(self, out):
        from keras_diffusion import editing
        from keras_diffusion.data import to_uint8
        from keras_diffusion.edit import plot_edits

        rows, columns = [], {"original": self.pixels[:SHOW]}
        for strength in STRENGTHS:
            t0, steps = editing.sdedit_start(self.schedule, strength, self.args.steps)
            kwargs = dict(seed=0, sampler="ddim", steps=self.args.steps, clip=self.clip, batch_size=self.args.batch_size)
            images, seconds = self.timed(lambda: editing.img2img(self.denoiser, self.schedule, self.x, strength, **kwargs))
            images = to_uint8(images, self.config.scaling)
            rms = np.sqrt(np.mean((images.astype(np.float32) - self.pixels) ** 2, axis=(1, 2, 3))) / 255
            rows.append(self.score(images, strength=strength, t0=t0, steps=steps, distance=float(rms.mean()), seconds=seconds, **self.fidelity(images)))
            columns[f"s={strength:g}"] = images[:SHOW]
            print(rows[-1])
        plot_edits(columns, title=f"SDEdit of test images against strength (DDIM-{self.args.steps})", path=out / "editing_sdedit_grid.png")
        plot_sdedit(rows, out / "editing_sdedit.png", self.args.steps)
        return dict(sampler="ddim", steps=self.args.steps, eta=0.0, rows=rows)


def plot_sdedit(rows, path, steps):
    """Distance to the input and FID against strength: the faithfulness-realism trade-off, one figure."""
    from matplotlib.figure import Figure

    from keras_diffusion.plotting import save_figure

    strength = [r["strength"] for r in rows]
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.plot(strength, [r["distance"] for r in rows], marker="o", label="RMS distance to the input")
    left.plot(strength, [1 - r["label_agreement"] for r in rows], marker="s", label="class changed (fraction)")
    left.set(xlabel="strength", ylabel="pixels in [0, 1] / fraction", title="how far from the input")
    right.plot(strength, [r["fid"] for r in rows], marker="o", color="C2", label="FID")
    right.axhline(rows[0]["floor"], color="grey", linestyle="--", label="real-data floor")
    right.set(xlabel="strength", ylabel="FID (package classifier)", title="how realistic")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"SDEdit against strength (DDIM-{steps})", fontsize=10)
    save_figure(fig, path)


def _machine():
    """The CPU's model name and core count, for the timings."""
    import os

    cpuinfo = pathlib.Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"


if __name__ == "__main__":
    raise SystemExit(main())
