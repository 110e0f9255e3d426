"""The peer of our U-Net: diffusers' UNet2DModel in PyTorch (eager, CPU).

Needs only torch, diffusers and numpy; never imported by keras_diffusion.
``python -m keras_diffusion.bench peer`` runs it, one row a process:

    PEER/bin/python benchmarks/peer/unet.py train --widths 32 64 128 --batch 128
    PEER/bin/python benchmarks/peer/unet.py call  --widths 16 32 64     # ms per call, batch 64
    PEER/bin/python benchmarks/peer/unet.py ddim  --widths 16 32 64     # DDIM-50 images/s, batch 64
    PEER/bin/python benchmarks/peer/unet.py ddpm  --widths 16 32 64     # DDPM images/s, T = 200

One residual block a level, attention at the lowest level (7x7), GroupNorm
with 8 groups: as our ``unet``. The schedule is ours too: cosine
(``squaredcos_cap_v2``) with T = 200. Training: random images in [-1, 1],
t ~ U{0..T−1}, add_noise, MSE on the noise, AdamW. Sampling: the standard
loop ``eps = unet(x, t).sample; x = scheduler.step(eps, t, x).prev_sample``
over every step, timed in full (``--timed-steps N``: the first N, scaled). Two threads.
Training windows and chains keep the best of ``--repeat`` (a shared machine
only ever slows a run down), forward calls the median. The last line of stdout is one
JSON object: the figure, its unit, the parameter count, peak RSS in MiB.
"""

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from timing import best_window  # benchmarks/peer/timing.py, beside this script

T = 200
SAMPLE_BATCH = 64


def build(widths):
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    down = ["DownBlock2D"] * (len(widths) - 1) + ["AttnDownBlock2D"]
    up = ["AttnUpBlock2D"] + ["UpBlock2D"] * (len(widths) - 1)
    return UNet2DModel(
        sample_size=28, in_channels=1, out_channels=1, block_out_channels=tuple(widths), layers_per_block=1,
        norm_num_groups=8, down_block_types=tuple(down), up_block_types=tuple(up),
    )


def scheduler(kind):
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return cls(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True)


def train(unet, batch, steps, windows=1):
    """Images/s of the training step: the best of ``windows`` runs of ``steps`` steps, after 3 warm-up steps."""
    noise_scheduler = scheduler("ddpm")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand(batch, 1, 28, 28, generator=generator) * 2 - 1
    unet.train()

    def step():
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, T, (batch,), generator=generator)
        loss = F.mse_loss(unet(noise_scheduler.add_noise(x0, noise, t), t).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    best, loss = best_window(step, steps, windows)
    return {"value": steps * batch / best, "unit": "images/s", "batch": batch, "steps": steps, "windows": windows, "last_loss": float(loss.detach())}


@torch.no_grad()
def call(unet, repeat):
    """Median ms of one forward call on a batch of 64."""
    unet.eval()
    x, t = torch.randn(SAMPLE_BATCH, 1, 28, 28), torch.tensor(T // 2)
    for _ in range(2):
        unet(x, t)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        unet(x, t)
        times.append(time.perf_counter() - start)
    return {"value": 1000 * statistics.median(times), "unit": "ms", "batch": SAMPLE_BATCH, "repeat": repeat}


@torch.no_grad()
def sample(unet, kind, steps, timed=None, runs=1):
    """Images/s of the standard sampling loop for a batch of 64: the best of ``runs`` chains.

    Every step is timed, or with ``timed`` the first ``timed`` steps, scaled to the whole chain.
    """
    unet.eval()
    sched = scheduler(kind)
    sched.set_timesteps(steps)
    timesteps = sched.timesteps[:timed] if timed else sched.timesteps
    generator = torch.Generator().manual_seed(3)
    unet(torch.randn(SAMPLE_BATCH, 1, 28, 28), torch.tensor(T - 1))  # warm-up: the first call allocates
    best = float("inf")
    for _ in range(runs):
        x = torch.randn(SAMPLE_BATCH, 1, 28, 28, generator=generator)
        start = time.perf_counter()
        for t in timesteps:
            x = sched.step(unet(x, t).sample, t, x, generator=generator).prev_sample
        best = min(best, (time.perf_counter() - start) * steps / len(timesteps))
        assert torch.isfinite(x).all()
    return {"value": SAMPLE_BATCH / best, "unit": "images/s", "batch": SAMPLE_BATCH, "steps": steps, "timed_steps": len(timesteps), "runs": runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=["train", "call", "ddim", "ddpm"])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=128, help="training batch")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps")
    parser.add_argument("--repeat", type=int, default=15, help="timed forward calls (call), training windows (train) or chains (ddim, ddpm): the best window or chain, the median call")
    parser.add_argument("--timed-steps", type=int, help="sampling: time only the first N steps, scaled to the chain")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    unet = build(args.widths)
    if args.row == "train":
        result = train(unet, args.batch, args.steps, args.repeat)
    elif args.row == "call":
        result = call(unet, args.repeat)
    else:
        result = sample(unet, args.row, 50 if args.row == "ddim" else T, args.timed_steps, args.repeat)
    import diffusers

    result.update(
        widths=args.widths,
        parameters=sum(p.numel() for p in unet.parameters()),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=torch.get_num_threads(),
        versions={"torch": torch.__version__, "diffusers": diffusers.__version__},
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
