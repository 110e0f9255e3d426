"""The best FID a latent model can reach: the autoencoder's own reconstructions of real images.

    python benchmarks/autoencoder_fid.py --pretrained latent-fashion-mnist --n 2000 --json assets/autoencoder_fid.json

A latent diffusion model draws z_0 and decodes it, so its samples can be no
closer to the data than D(E(x)) of real images x. This takes the n training
images the real-data floor is made of (``Evaluator.real_images("train", n)``,
the same seed), reconstructs them, and scores the reconstructions as if they
were samples: FID against n test images, beside the floor (the same images,
not reconstructed) and, for scale, the same images blurred by one pixel
(a 3x3 box filter). A reconstruction FID far above the floor means the first
stage, not the diffusion model, limits the latent model's FID.
Not part of the package; not run by the tests.
"""

import argparse
import json
import pathlib
import time

import numpy as np
from scipy import ndimage

from keras_diffusion import latent
from keras_diffusion.checkpoint import write_json
from keras_diffusion.data import scale_images, to_uint8
from keras_diffusion.metrics import Evaluator


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a latent run directory (or an autoencoder folder)")
    source.add_argument("--pretrained", help="a shipped latent model's name")
    parser.add_argument("--n", type=int, default=2000, help="images (default: 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args(argv)

    if args.pretrained:
        from keras_diffusion import pretrained

        run = pretrained.path(args.pretrained)
    else:
        run = args.run
    autoencoder, scale, info = latent.load_autoencoder(run)
    scaling = info.get("scaling", "minus_one_one")
    evaluator = Evaluator(seed=args.seed)
    real = evaluator.real_images("train", args.n)  # uint8 (n, 28, 28, 1): the floor's training images

    start = time.perf_counter()
    z = latent.encode(autoencoder, scale, scale_images(real, scaling))
    reconstructions = to_uint8(latent.decode(autoencoder, scale, z), scaling)
    seconds = time.perf_counter() - start
    blurred = ndimage.uniform_filter(real.astype(np.float32), size=(1, 3, 3, 1)).round().astype(np.uint8)

    rows = {}
    for label, images in (("real", real), ("blurred", blurred), ("reconstructed", reconstructions)):
        scores = evaluator.score(images)
        rows[label] = {"fid": round(scores["fid"], 3), "floor": round(scores["floor"], 3), "class_entropy": round(scores["class_entropy"], 4)}
        print(f"{label:>13}: FID {scores['fid']:.3f} (floor {scores['floor']:.3f}), class entropy {scores['class_entropy']:.4f}")
    rows["reconstructed"]["psnr_db"] = round(latent.psnr(real, reconstructions), 2)
    print(f"reconstruction PSNR {rows['reconstructed']['psnr_db']:.2f} dB, {seconds:.1f} s for {args.n} images")
    if args.json:
        command = "python benchmarks/autoencoder_fid.py " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
        write_json(pathlib.Path(args.json), {"command": command, "run": args.pretrained or str(run), "n": args.n, "seed": args.seed,
                                             "latent_shape": list(z.shape[1:]), "scores": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
