"""The peer of ``mlp_seed``: the classic MLP demo in PyTorch with diffusers' DDPMScheduler.

Needs only torch, diffusers and numpy; never imported by keras_diffusion.
``python -m keras_diffusion.bench peer`` runs it, one row a process:

    PEER/bin/python benchmarks/peer/mlp.py train     # training images/s, batch 128
    PEER/bin/python benchmarks/peer/mlp.py sample    # sampling images/s, batch 64, T = 200
    PEER/bin/python benchmarks/peer/mlp.py train --bf16 --compile   # with the levers of levers.py

MLP (784 + 1) → 512 → 512 → 784, ReLU, Adam 1e-3, MSE on the noise, linear
betas 1e-4..0.02 with T = 200, Fashion-MNIST in [0, 1]: the classic demo,
as ``mlp_seed`` is. Two threads, as TensorFlow uses on two cores. The last
line of stdout is one JSON object: the figure, its unit, peak RSS in MiB.
``--bf16`` and ``--compile`` are the levers of ``levers.py`` (an MLP has no
image layout, so no ``--channels-last``); none given: float32 eager.
"""

import argparse
import gzip
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import levers  # benchmarks/peer/levers.py, beside this script
from timing import best_window  # benchmarks/peer/timing.py, beside this script

T = 200
TRAIN_BATCH = 128
SAMPLE_BATCH = 64


def load_images(data_dir):
    """Fashion-MNIST's training images as (N, 784) float32 in [0, 1]."""
    path = os.path.join(data_dir, "train-images-idx3-ubyte.gz")
    if not os.path.exists(path):
        raise SystemExit(f"error: no {path}; pass --data-dir, the folder with the Fashion-MNIST IDX files")
    with gzip.open(path) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28 * 28)
    return torch.from_numpy(images.astype("float32") / 255.0)


def build():
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    scheduler = DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=False)
    model = nn.Sequential(nn.Linear(785, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 784))
    return scheduler, model


def train(steps, data_dir, windows, args):
    """Images/s of the classic training step (random batch, add_noise, MSE, Adam): the best of ``windows`` runs of ``steps``."""
    x_train = load_images(data_dir)
    scheduler, mlp = build()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-3)
    model = levers.prepare(mlp, args)  # a compiled model shares the optimizer's parameters

    def step():
        x0 = x_train[torch.randint(0, len(x_train), (TRAIN_BATCH,))]
        t = torch.randint(0, T, (TRAIN_BATCH,))
        noise = torch.randn_like(x0)
        x_t = scheduler.add_noise(x0, noise, t)
        with levers.autocast(args):  # backward runs outside autocast, as torch's AMP recipe says
            loss = F.mse_loss(model(torch.cat([x_t, (t.float() / T)[:, None]], dim=1)).float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):  # warm-up, as ours skips its tracing
        step()
    best, loss = best_window(step, steps, windows)
    return {"value": steps * TRAIN_BATCH / best, "unit": "images/s", "steps": steps, "windows": windows, "last_loss": float(loss.detach())}


@torch.no_grad()
def sample(repeat, args):
    """Images/s of the standard diffusers loop over all T steps for a batch of 64 (best of ``repeat``)."""
    scheduler, mlp = build()
    model = levers.prepare(mlp, args)
    scheduler.set_timesteps(T)

    def run():
        x = torch.randn(SAMPLE_BATCH, 784)
        start = time.perf_counter()
        for t in scheduler.timesteps:
            with levers.autocast(args):
                eps = model(torch.cat([x, torch.full((SAMPLE_BATCH, 1), float(t) / T)], dim=1))  # (B, 784)
            x = scheduler.step(eps.float(), t, x).prev_sample
        assert torch.isfinite(x).all()
        return time.perf_counter() - start

    run()  # warm-up
    return {"value": SAMPLE_BATCH / min(run() for _ in range(repeat)), "unit": "images/s", "repeat": repeat}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=["train", "sample"])
    parser.add_argument("--steps", type=int, default=300, help="timed training steps")
    parser.add_argument("--repeat", type=int, default=3, help="timed sampling runs or training windows (the best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    levers.add_options(parser, channels_last=False)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with levers.compile_errors(args):
        result = train(args.steps, args.data_dir, args.repeat, args) if args.row == "train" else sample(args.repeat, args)
    import diffusers

    result.update(
        config=levers.name(args),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=torch.get_num_threads(),
        versions={"torch": torch.__version__, "diffusers": diffusers.__version__},
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
