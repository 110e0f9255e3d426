"""Text to image, measured: class and attribute agreement with the prompt, FID with its floor.

    python benchmarks/text_to_image.py --run runs/text --n 500 --json assets/text_to_image.json

Class agreement: the package's FID classifier (``metrics.Evaluator``) reads each image drawn for
"a photo of a {class}" (n/10 a class). Attribute agreement: for "a photo of a {word} {class}",
the image's attribute is measured as the captions measure it (``text.measure``, per-class terciles
fit on the training images) and counts when it falls in the third the word names (chance 1/3);
seen pairs and the held-out pairs (``text.HELD_OUT``, never named in training) are reported apart.
All with the package's default sampler (dpmpp_2m_sde, 20 Karras steps).
"""

import argparse
import json
import platform
import time

import numpy as np

from keras_diffusion.checkpoint import load_run, write_json
from keras_diffusion.data import load_images, to_uint8
from keras_diffusion.metrics import Evaluator
from keras_diffusion.reverse import sample
from keras_diffusion.samplers import SamplingConfig
from keras_diffusion.text import ATTRIBUTES, HELD_OUT, Thresholds, attribute_prompt, class_prompt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--n", type=int, default=500, help="images for class agreement and FID (n/10 a class)")
    parser.add_argument("--per-pair", type=int, default=20, help="images per (class, attribute word) prompt")
    parser.add_argument("--guidance", type=float, nargs="+", default=[3.0])
    parser.add_argument("--json")
    args = parser.parse_args()
    denoiser, schedule, config = load_run(args.run)
    kwargs = SamplingConfig().resolved(schedule.timesteps, config.clip).sample_kwargs(config.scaling)
    evaluator = Evaluator()
    images, labels = load_images("fashion_mnist", "train")
    thresholds = Thresholds.fit(images, labels)
    held = {(c, a, level) for c, a, level in HELD_OUT}
    report = {"run": str(config.model), "cpu": platform.processor() or "", "n": args.n, "per_pair": args.per_pair, "sampler": "dpmpp_2m_sde, 20 steps, karras", "by_guidance": {}}
    for w in args.guidance:
        start = time.perf_counter()
        requested = np.repeat(np.arange(10), args.n // 10)
        drawn = to_uint8(sample(denoiser, schedule, len(requested), prompts=[class_prompt(c) for c in requested], guidance=w, **kwargs), config.scaling)
        score = evaluator.score(drawn, requested)
        seen, unseen = [], []
        for c in range(10):
            for attribute in ATTRIBUTES:
                for level in (0, 2):
                    prompt = attribute_prompt(c, attribute, level)
                    x = to_uint8(sample(denoiser, schedule, args.per_pair, prompts=prompt, guidance=w, **{**kwargs, "seed": 1 + c}), config.scaling)
                    got = thresholds.levels(x, np.full(len(x), c))[attribute]
                    (unseen if (c, attribute, level) in held else seen).append(float(np.mean(got == level)))
        report["by_guidance"][str(w)] = {
            "fid": round(score["fid"], 3), "floor": round(score["floor"], 3), "class_entropy": round(score["class_entropy"], 4),
            "class_agreement": score["label_accuracy"], "attribute_agreement_seen": round(float(np.mean(seen)), 4),
            "attribute_agreement_held_out": round(float(np.mean(unseen)), 4), "held_out_pairs": [list(p) for p in HELD_OUT],
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(w, report["by_guidance"][str(w)], flush=True)
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
