"""``python -m keras_diffusion.bench peer``: the package against PyTorch + diffusers, side by side.

    python -m keras_diffusion.bench peer --python .peer/bin/python --json assets/peer.json

Every row runs twice, back to back, each time in a fresh process: ours
(``python -m keras_diffusion.peer ROW``: the package as ``train`` and
``sample`` run it, with their defaults) and the peer's (a script of
``benchmarks/peer/`` under the peer's Python, a venv with torch and
diffusers; see ``benchmarks/peer/README.md``). A process a row gives each
row its own peak memory and keeps one row's threads and caches out of the
next; running the two back to back makes their ratio fair even when the
machine's load drifts. The ratio is > 1 where ours is faster.

The peer runs float32 eager unless ``--peer-config FILE`` names, row by
row, the configuration of PyTorch's levers (bf16 autocast, channels_last,
torch.compile) that ``benchmarks/peer_levers.py`` found fastest; the table
names each row's configuration beside the peer's figure.
"""

import datetime
import json
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time

from keras_diffusion import cli
from keras_diffusion.cpu import cpu_info

PEER_WIDTHS, OUR_WIDTHS = (32, 64, 128), (16, 32, 64)  # diffusers' small UNet2DModel; our default unet
_PEER = ["--widths", *map(str, PEER_WIDTHS)]
_OURS = ["--widths", *map(str, OUR_WIDTHS)]

# key -> (what is measured, unit, the peer's script and arguments)
ROWS = {
    "mlp_train": ("mlp_seed training (batch 128)", "images/s", ["mlp.py", "train"]),
    "mlp_sample": ("mlp_seed sampling, DDPM (batch 64, T = 200)", "images/s", ["mlp.py", "sample"]),
    "unet_train_peer_config": ("U-Net training, the peer's config (32/64/128, batch 128)", "images/s", ["unet.py", "train", *_PEER, "--batch", "128"]),
    "unet_train_default": ("U-Net training, our default config (16/32/64, batch 64)", "images/s", ["unet.py", "train", *_OURS, "--batch", "64"]),
    "unet_call_peer_config": ("U-Net call, the peer's config (batch 64)", "ms", ["unet.py", "call", *_PEER]),
    "unet_call_default": ("U-Net call, our default config (batch 64)", "ms", ["unet.py", "call", *_OURS]),
    "unet_ddim_peer_config": ("U-Net sampling, DDIM-50, the peer's config (batch 64)", "images/s", ["unet.py", "ddim", *_PEER]),
    "unet_ddim_default": ("U-Net sampling, DDIM-50, our default config (batch 64)", "images/s", ["unet.py", "ddim", *_OURS]),
    "unet_dpmpp_peer_config": ("U-Net sampling, DPM-Solver++(2M) 20 steps, the peer's config (batch 64)", "images/s", ["unet.py", "dpmpp", *_PEER]),
    "unet_dpmpp_default": ("U-Net sampling, DPM-Solver++(2M) 20 steps, our default config (batch 64)", "images/s", ["unet.py", "dpmpp", *_OURS]),
    "unet_ddpm_peer_config": ("U-Net sampling, DDPM, the peer's config (batch 64, T = 200)", "images/s", ["unet.py", "ddpm", *_PEER]),
    "unet_ddpm_default": ("U-Net sampling, DDPM, our default config (batch 64, T = 200)", "images/s", ["unet.py", "ddpm", *_OURS]),
}
# timed work per row, the same on both sides: training steps a window of the MLP and of the U-Net, training
# windows (the best is kept), forward calls (the median), sampling runs of the MLP and chains of the U-Net (the
# best of each), and the steps of each U-Net chain timed (None: all). Best-of, because other work on a shared
# machine (or its host) only ever slows a window down. --quick, for a loaded machine or a smoke test, times the
# first 10 steps of every chain and scales to the chain's length, as the peer's own DDPM figure does.
TIMED = {
    "full": dict(mlp_steps=300, unet_steps=10, windows=3, calls=15, mlp_runs=3, chain_runs=2, chain=None),
    "quick": dict(mlp_steps=70, unet_steps=2, windows=1, calls=3, mlp_runs=1, chain_runs=1, chain=10),
}


# the sampler of each sampling row (by the key's prefix; on the peer's side diffusers' own), and the steps of
# a chain of the stepped ones (DDPM takes all T)
SAMPLERS = {"mlp_sample": "ddpm", "unet_ddim": "ddim", "unet_dpmpp": "dpmpp_2m", "unet_ddpm": "ddpm"}
CHAIN_STEPS = {"ddim": 50, "dpmpp_2m": 20}
# the peer's levers (benchmarks/peer/levers.py): a configuration is their names joined by "+", or "fp32"
LEVERS = {"bf16": "--bf16", "channels_last": "--channels-last", "compile": "--compile"}
PEER_CONFIGS = ("fp32", "bf16", "channels_last", "bf16+channels_last", "compile", "bf16+compile")


def sampler_of(key):
    """The sampler a row times, or None for a training or call row."""
    return next((name for prefix, name in SAMPLERS.items() if key.startswith(prefix)), None)


def peer_flags(key, config):
    """The peer script's flags for a configuration name; a ValueError names what is wrong with it."""
    levers = [] if config == "fp32" else config.split("+") if isinstance(config, str) else [None]
    if any(lever not in LEVERS for lever in levers) or len(set(levers)) < len(levers):
        raise ValueError(f"row {key!r} has configuration {config!r}; it is 'fp32' or levers joined by '+', from {', '.join(LEVERS)}")
    if "channels_last" in levers and not key.startswith("unet"):
        raise ValueError(f"row {key!r} has configuration {config!r}; channels_last is for the U-Net rows (an MLP has no image layout)")
    return [LEVERS[lever] for lever in levers]


def peer_configs(key):
    """The configurations the sweep tries on a row: all but channels_last on the MLP's."""
    return [config for config in PEER_CONFIGS if key.startswith("unet") or "channels_last" not in config]


def load_peer_config(path):
    """{row: configuration} from ``benchmarks/peer_levers.py``'s JSON; a bad file is a one-line UsageError."""
    where = f"--peer-config {path}"
    try:
        found = json.loads(pathlib.Path(path).read_text())
    except OSError as error:
        raise cli.UsageError(f"{where}: cannot read it ({error.strerror})") from None
    except ValueError as error:
        raise cli.UsageError(f"{where}: not JSON ({error})") from None
    rows = found.get("rows") if isinstance(found, dict) else None
    if not isinstance(rows, dict):
        raise cli.UsageError(f'{where}: no "rows" object of row -> {{"config": ...}}; benchmarks/peer_levers.py writes one')
    chosen = {}
    for key, entry in rows.items():
        if key not in ROWS:
            raise cli.UsageError(f"{where}: no row {key!r}; the rows are {', '.join(ROWS)}")
        config = entry.get("config") if isinstance(entry, dict) else None
        try:
            peer_flags(key, config)
        except ValueError as error:
            raise cli.UsageError(f"{where}: {error}") from None
        chosen[key] = config
    return chosen


def peer_command(folder, key, mode, data_dir=None, config="fp32"):
    """The peer's side of a row: its script and arguments, to run under the peer's Python."""
    timed, script = TIMED[mode], ROWS[key][2]
    steps = timed["mlp_steps"] if key == "mlp_train" else timed["unet_steps"]
    command = [str(pathlib.Path(folder) / script[0]), *script[1:], "--steps", str(steps), "--repeat", str(repeats(key, timed))]
    command += ["--data-dir", data_dir] if data_dir and key == "mlp_train" else []
    command += ["--timed-steps", str(timed["chain"])] if timed["chain"] and key.startswith("unet") and sampler_of(key) else []
    return command + peer_flags(key, config)


def repeats(key, timed):
    """How many windows, calls or chains a row times (the best of them is kept; the median of calls)."""
    if "train" in key:
        return timed["windows"]
    if "call" in key:
        return timed["calls"]
    return timed["mlp_runs"] if key == "mlp_sample" else timed["chain_runs"]


def peer_scripts(folder=None):
    """The folder of the peer's scripts: ``folder`` (--peer-dir), else ``benchmarks/peer`` of a source checkout.

    The scripts stay out of the installed package (they import torch), so an
    installed keras_diffusion is pointed at a checkout's copy with --peer-dir.
    """
    given = folder is not None
    folder = pathlib.Path(folder) if given else pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "peer"
    if not (folder / "unet.py").is_file():
        where = f"--peer-dir {folder}: no unet.py there" if given else f"bench peer needs the peer's scripts in {folder}"
        raise cli.UsageError(f"{where}; give --peer-dir with the benchmarks/peer folder of a source checkout of keras_diffusion")
    return folder


def check_python(python):
    """Refuse a peer Python that is missing or lacks torch and diffusers, in one line."""
    setup = "make it as benchmarks/peer/README.md says (a venv with torch and diffusers)"
    if not python:
        raise cli.UsageError(f"bench peer needs --python PATH: the peer's Python; {setup}")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        raise cli.UsageError(f"--python {python}: no such executable; {setup}")
    probe = subprocess.run([python, "-c", "import torch, diffusers"], capture_output=True, text=True)
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise cli.UsageError(f"--python {python} cannot import torch and diffusers ({last}); {setup}")


class PeerError(RuntimeError):
    """A row's process failed: reported in one line with the end of its stderr."""

    exit_code = 1


def run_json(command):
    """Run one row's process; its last stdout line is a JSON object. A failure is a one-line error."""
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = " | ".join((done.stderr.strip().splitlines() or ["no output"])[-3:])
        raise PeerError(f"{' '.join(command[-4:])} failed (exit {done.returncode}): {tail[:500]}")
    return json.loads(lines[-1])


def ratio(unit, ours, theirs):
    """> 1 where ours is faster: more images/s, or fewer ms."""
    return theirs / ours if unit == "ms" else ours / theirs


def peer(args):
    """Measure every row, ours then the peer's; print the table; write the JSON when asked."""
    check_python(args.python)
    folder = peer_scripts(getattr(args, "peer_dir", None))
    rows = [key for key in ROWS if not args.only or key in args.only]
    unknown = sorted(set(args.only or ()) - set(ROWS))
    if unknown:
        raise cli.UsageError(f"--only: no row {unknown[0]!r}; the rows are {', '.join(ROWS)}")
    configs = load_peer_config(args.peer_config) if getattr(args, "peer_config", None) else {}
    mode = "quick" if args.quick else "full"
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    start, results = time.perf_counter(), []
    for key in rows:
        label, unit, _ = ROWS[key]
        config = configs.get(key, "fp32")  # a row the file does not name runs as it always did
        ours = run_json([sys.executable, "-m", "keras_diffusion.peer", key, "--mode", mode, *data])
        theirs = run_json([args.python, *peer_command(folder, key, mode, args.data_dir, config)])
        row = {"row": key, "measure": label, "unit": unit, "ours": ours.pop("value"), "peer": theirs.pop("value"), "peer_config": config}
        row["load_average"] = round(os.getloadavg()[0], 1)  # other jobs on the cores: > cores means shared
        row["ratio"] = ratio(unit, row["ours"], row["peer"])
        row["ours_peak_rss_mib"], row["peer_peak_rss_mib"] = ours.pop("peak_rss_mib"), theirs.pop("peak_rss_mib")
        row["ours_detail"], row["peer_detail"] = ours, theirs
        results.append(row)
        print(f"{label:72s} {unit:9s} ours {row['ours']:9,.1f}  peer {row['peer']:9,.1f} ({config})  ratio {row['ratio']:5.2f}x", flush=True)
    print()
    print(markdown_table(results))
    if args.json:
        summary = {
            "command": "python -m keras_diffusion.bench " + " ".join(sys.argv[1:]),
            "date": datetime.date.today().isoformat(),
            "cpu": cpu_info(),
            "mode": mode,
            "peer_config": getattr(args, "peer_config", None),  # None: every peer row float32 eager
            "seconds": round(time.perf_counter() - start),
            "ratio_min": min(r["ratio"] for r in results),
            "note": "each row: ours, then the peer's, back to back in fresh processes; ratio > 1 = ours faster; "
            "peak memory = peak RSS of that row's process; load_average = the 1-minute load after the row "
            "(above the core count, other jobs shared the cores and the figures are not a quiet machine's)",
            "rows": results,
        }
        pathlib.Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def markdown_table(rows):
    """The README's side-by-side table; the peer's column names its configuration ("fp32": float32 eager)."""
    lines = ["| measure | unit | keras_diffusion | PyTorch + diffusers (configuration) | ratio | peak memory, ours / peer (MiB) |", "|" + "---|" * 6]
    for r in rows:
        lines.append(
            f"| {r['measure']} | {r['unit']} | {r['ours']:,.1f} | {r['peer']:,.1f} ({r.get('peer_config', 'fp32')}) | **{r['ratio']:.2f}x** "
            f"| {r['ours_peak_rss_mib']:,.0f} / {r['peer_peak_rss_mib']:,.0f} |"
        )
    return "\n".join(lines)


def measure(key, mode, data_dir=None):
    """Our side of one row, in this process: {"value": ..., "peak_rss_mib": ..., details}."""
    import keras
    import tensorflow as tf

    from keras_diffusion import speed
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import load_images

    keras.utils.set_random_seed(0)
    timed = TIMED[mode]
    widths = PEER_WIDTHS if key.endswith("peer_config") else OUR_WIDTHS
    if key.startswith("mlp"):
        config = TrainConfig(model="mlp_seed").resolved()
    else:
        config = TrainConfig(model="unet", model_kwargs={"widths": list(widths)}, batch_size=128 if key == "unet_train_peer_config" else None).resolved()
    out = {"model": config.model, "widths": list(widths) if config.model == "unet" else None}
    if "train" in key:
        images, _ = load_images("fashion_mnist", "train", data_dir, limit=20000)
        steps = timed["mlp_steps"] if key == "mlp_train" else timed["unet_steps"]
        out["value"], denoiser = speed.package_train(config, images, steps, repeats(key, timed))
        out.update(batch=config.batch_size, xla=config.xla, precision=denoiser.dtype_policy.name, steps_per_execution=config.steps_per_execution)
    else:
        from keras_diffusion.checkpoint import build_denoiser
        from keras_diffusion.data import sampling_clip

        # as sample and evaluate load a run: float32 (bf16 measured no faster for sampling), the loop without XLA
        denoiser = build_denoiser(config, (28, 28, 1))
        schedule, clip = config.noise_schedule(), sampling_clip(config)
        out["precision"] = denoiser.dtype_policy.name
        if "call" in key:
            out["value"] = _ms_per_call(denoiser, repeats(key, timed))
        else:
            sampler = sampler_of(key)
            chain = None if key == "mlp_sample" else timed["chain"]
            out["value"], out["timed_steps"] = _sampling_rate(denoiser, schedule, clip, sampler, chain, repeats(key, timed))
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["versions"] = {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}
    return out


def _sampling_rate(denoiser, schedule, clip, sampler, chain, runs):
    """(images/s of one chain for a batch of 64, steps timed): the best of ``runs`` after a warm-up run.

    With ``chain`` only that many steps are run and the time is scaled to the
    chain's length (``CHAIN_STEPS``, T for DDPM): DDIM or DPM-Solver++ with fewer steps, DDPM
    started ``chain`` steps from the end; each step costs what it costs in
    the full chain (one denoiser call and one update).
    """
    import numpy as np

    from keras_diffusion import samplers
    from keras_diffusion.reverse import sample

    every_step = samplers.entry(sampler).every_step
    length = schedule.timesteps if every_step else CHAIN_STEPS[sampler]
    steps = length if chain is None else min(chain, length)
    x_T = np.random.default_rng(0).standard_normal((64, 28, 28, 1)).astype("float32")
    if not every_step:
        draw = lambda: sample(denoiser, schedule, 64, sampler=sampler, steps=steps, seed=0, clip=clip)  # noqa: E731
    elif steps == length:
        draw = lambda: sample(denoiser, schedule, 64, sampler=sampler, seed=0, clip=clip)  # noqa: E731
    else:
        draw = lambda: sample(denoiser, schedule, 64, sampler=sampler, seed=0, clip=clip, start=steps - 1, x_T=x_T)  # noqa: E731
    draw()  # warm-up: tracing is paid once per settings, not per call
    seconds = []
    for _ in range(runs):
        begin = time.perf_counter()
        draw()
        seconds.append(time.perf_counter() - begin)
    return 64 / (min(seconds) * length / steps), steps


def _ms_per_call(denoiser, calls):
    """Median ms of one compiled denoiser call on a batch of 64, as the sampling loop makes it."""
    import numpy as np
    import tensorflow as tf

    call = tf.function(lambda x, t: denoiser([x, t]))
    x, t = tf.random.normal((64, 28, 28, 1)), tf.fill([64], 100)
    for _ in range(2):
        call(x, t).numpy()
    times = []
    for _ in range(calls):
        begin = time.perf_counter()
        call(x, t).numpy()
        times.append(time.perf_counter() - begin)
    return 1000 * float(np.median(times))


def main(argv=None):
    """The child: ``python -m keras_diffusion.peer ROW --mode full|quick`` prints one JSON line."""
    parser = cli.Parser("keras_diffusion.peer", "one row of bench peer, our side (run by bench peer)", ["python -m keras_diffusion.peer mlp_train --mode quick"])
    parser.add_argument("row", choices=list(ROWS))
    parser.add_argument("--mode", choices=list(TIMED), default="full")
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.row, args.mode, args.data_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
