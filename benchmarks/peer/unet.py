"""The peer of our U-Net: diffusers' UNet2DModel in PyTorch (CPU; eager float32 unless a lever is given).

Needs only torch, diffusers and numpy; never imported by keras_diffusion.
``python -m keras_diffusion.bench peer`` runs it, one row a process:

    PEER/bin/python benchmarks/peer/unet.py train --widths 32 64 128 --batch 128
    PEER/bin/python benchmarks/peer/unet.py call  --widths 16 32 64     # ms per call, batch 64
    PEER/bin/python benchmarks/peer/unet.py ddim  --widths 16 32 64     # DDIM-50 images/s, batch 64
    PEER/bin/python benchmarks/peer/unet.py ddpm  --widths 16 32 64     # DDPM images/s, T = 200
    PEER/bin/python benchmarks/peer/unet.py dpmpp --widths 16 32 64 --bf16 --channels-last   # DPM-Solver++(2M), 20 steps

One residual block a level, attention at the lowest level (7x7), GroupNorm
with 8 groups: as our ``unet``. The schedule is ours too: cosine
(``squaredcos_cap_v2``) with T = 200. Training: random images in [-1, 1],
t ~ U{0..T−1}, add_noise, MSE on the noise, AdamW. Sampling: the standard
loop ``eps = unet(x, t).sample; x = scheduler.step(eps, t, x).prev_sample``
over every step, timed in full (``--timed-steps N``: the first N, scaled). Two threads.
DPM-Solver++ is diffusers' ``DPMSolverMultistepScheduler`` (``dpmsolver++``,
second order, 20 steps), without its dynamic thresholding. ``--bf16``,
``--channels-last`` and ``--compile`` are the levers of ``levers.py``.
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
import levers  # benchmarks/peer/levers.py, beside this script
from timing import best_window  # benchmarks/peer/timing.py, beside this script

T = 200
SAMPLE_BATCH = 64
CHAIN = {"ddim": 50, "dpmpp": 20, "ddpm": T}  # the sampling rows' steps a chain


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
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if kind == "dpmpp":
        return DPMSolverMultistepScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", algorithm_type="dpmsolver++", solver_order=2)
    cls = DDIMScheduler if kind == "ddim" else DDPMScheduler
    return cls(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True)


def train(unet, batch, steps, windows, args):
    """Images/s of the training step: the best of ``windows`` runs of ``steps`` steps, after 3 warm-up steps."""
    noise_scheduler = scheduler("ddpm")
    optimizer = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    model = levers.prepare(unet, args)  # the optimizer holds unet's parameters, which a compiled model shares
    generator = torch.Generator().manual_seed(1)
    x0 = torch.rand(batch, 1, 28, 28, generator=generator) * 2 - 1
    unet.train()

    def step():
        noise = torch.randn(x0.shape, generator=generator)
        t = torch.randint(0, T, (batch,), generator=generator)
        x_t = levers.layout(noise_scheduler.add_noise(x0, noise, t), args)
        with levers.autocast(args):  # backward runs outside autocast, as torch's AMP recipe says
            loss = F.mse_loss(model(x_t, t).sample.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    best, loss = best_window(step, steps, windows)
    return {"value": steps * batch / best, "unit": "images/s", "batch": batch, "steps": steps, "windows": windows, "last_loss": float(loss.detach())}


@torch.no_grad()
def call(unet, repeat, args):
    """Median ms of one forward call on a batch of 64."""
    unet.eval()
    model = levers.prepare(unet, args)
    x, t = levers.layout(torch.randn(SAMPLE_BATCH, 1, 28, 28), args), torch.tensor(T // 2)
    with levers.autocast(args):
        for _ in range(2):
            model(x, t)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            model(x, t)
            times.append(time.perf_counter() - start)
    return {"value": 1000 * statistics.median(times), "unit": "ms", "batch": SAMPLE_BATCH, "repeat": repeat}


@torch.no_grad()
def sample(unet, kind, steps, timed, runs, args):
    """Images/s of the standard sampling loop for a batch of 64: the best of ``runs`` chains.

    Every step is timed, or with ``timed`` the first ``timed`` steps, scaled to the whole chain.
    """
    unet.eval()
    model = levers.prepare(unet, args)
    sched = scheduler(kind)
    generator = torch.Generator().manual_seed(3)
    with levers.autocast(args):  # warm-up: the first call allocates (and compiles)
        model(levers.layout(torch.randn(SAMPLE_BATCH, 1, 28, 28), args), torch.tensor(T - 1))
    best = float("inf")
    for _ in range(runs):
        sched.set_timesteps(steps)  # a multistep solver keeps its history: a fresh one every chain
        timesteps = sched.timesteps[:timed] if timed else sched.timesteps
        x = levers.layout(torch.randn(SAMPLE_BATCH, 1, 28, 28, generator=generator), args)
        start = time.perf_counter()
        for t in timesteps:
            with levers.autocast(args):
                eps = model(levers.layout(x, args), t).sample  # (B, 1, 28, 28); bf16 under --bf16
            x = sched.step(eps.float(), t, x, generator=generator).prev_sample
        best = min(best, (time.perf_counter() - start) * steps / len(timesteps))
        assert torch.isfinite(x).all()
    return {"value": SAMPLE_BATCH / best, "unit": "images/s", "batch": SAMPLE_BATCH, "steps": steps, "timed_steps": len(timesteps), "runs": runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=["train", "call", *CHAIN])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--batch", type=int, default=128, help="training batch")
    parser.add_argument("--steps", type=int, default=15, help="timed training steps")
    parser.add_argument("--repeat", type=int, default=15, help="timed forward calls (call), training windows (train) or chains (ddim, ddpm): the best window or chain, the median call")
    parser.add_argument("--timed-steps", type=int, help="sampling: time only the first N steps, scaled to the chain")
    parser.add_argument("--threads", type=int, default=2)
    levers.add_options(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    unet = build(args.widths)
    with levers.compile_errors(args):
        if args.row == "train":
            result = train(unet, args.batch, args.steps, args.repeat, args)
        elif args.row == "call":
            result = call(unet, args.repeat, args)
        else:
            result = sample(unet, args.row, CHAIN[args.row], args.timed_steps, args.repeat, args)
    import diffusers

    result.update(
        config=levers.name(args),
        widths=args.widths,
        parameters=sum(p.numel() for p in unet.parameters()),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=torch.get_num_threads(),
        versions={"torch": torch.__version__, "diffusers": diffusers.__version__},
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
