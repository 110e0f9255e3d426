"""Each peer row of ``bench peer`` once in every configuration of PyTorch's levers, and the fastest kept.

    python benchmarks/peer_levers.py --python .peer/bin/python --json assets/peer_levers.json
    python -m keras_diffusion.bench peer --python .peer/bin/python --peer-config assets/peer_levers.json

A configuration is float32 eager ("fp32"), bf16 autocast, channels_last,
both, torch.compile, or bf16 with torch.compile (``peer.PEER_CONFIGS``;
channels_last only on the U-Net rows): the levers a PyTorch user reaches for
on a CPU (``benchmarks/peer/levers.py``). Every row runs in every
configuration once, each in a fresh process with the same timed work as
``bench peer`` gives it (``--quick``: its quick mode), and the JSON names
the fastest configuration of each row, which ``bench peer --peer-config``
then runs. Where torch.compile does not work here (no C++ compiler, an
inductor error), the configuration is recorded as unavailable, with the
reason (without a C++ compiler, not tried again on any row). Not part of the package; not run by the tests.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

from keras_diffusion import peer

COMPILE_UNAVAILABLE = 3  # the peer scripts' exit code when torch.compile does not work (benchmarks/peer/levers.py)


def run_config(python, command):
    """(the row's figure, None) or (None, why not): one configuration of one row, in a fresh process."""
    done = subprocess.run([python, *command], capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == COMPILE_UNAVAILABLE:
        return None, (done.stderr.strip().splitlines() or ["torch.compile unavailable here"])[-1].removeprefix("error: ")
    if done.returncode or not lines:
        return None, f"failed (exit {done.returncode}): " + " | ".join((done.stderr.strip().splitlines() or ["no output"])[-2:])[:300]
    return json.loads(lines[-1])["value"], None


def sweep(args):
    """{row: {"config": the fastest, "unit", "value", "configs": {configuration: figure or why not}}}."""
    folder = peer.peer_scripts(args.peer_dir)
    mode = "quick" if args.quick else "full"
    rows, compile_broken = {}, None
    for key in args.only or peer.ROWS:
        unit, figures = peer.ROWS[key][1], {}
        for config in peer.peer_configs(key):
            if compile_broken and "compile" in config:
                figures[config] = compile_broken  # no C++ compiler for one row: none for any
                print(f"{key:24s} {config:20s} {compile_broken}", flush=True)
                continue
            value, why = run_config(args.python, peer.peer_command(folder, key, mode, args.data_dir, config))
            figures[config] = value if why is None else why
            compile_broken = why if why and "no C++ compiler" in why else compile_broken
            print(f"{key:24s} {config:20s} " + (f"{value:9,.1f} {unit}" if why is None else why), flush=True)
        measured = {config: value for config, value in figures.items() if not isinstance(value, str)}
        if not measured:
            raise SystemExit(f"error: row {key}: no configuration ran; fp32 says: {figures['fp32']}")
        best = (min if unit == "ms" else max)(measured, key=measured.get)
        rows[key] = {"config": best, "unit": unit, "value": measured[best], "configs": figures}
        print(f"{key:24s} fastest: {best}", flush=True)
    return rows, mode


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--python", required=True, help="the peer's Python, a venv with torch and diffusers (benchmarks/peer/README.md)")
    parser.add_argument("--peer-dir", help="the folder of the peer's scripts (default: benchmarks/peer of this checkout)")
    parser.add_argument("--only", nargs="+", choices=list(peer.ROWS), metavar="ROW", help="only these rows")
    parser.add_argument("--quick", action="store_true", help="bench peer's quick timing: a few steps, the first 10 of each chain")
    parser.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (the MLP's training row)")
    parser.add_argument("--json", help="write the fastest configuration of each row here (bench peer --peer-config reads it)")
    args = parser.parse_args()
    from keras_diffusion import cli
    from keras_diffusion.cpu import cpu_info

    try:
        peer.check_python(args.python)
        start = time.perf_counter()
        rows, mode = sweep(args)
    except cli.UsageError as error:
        raise SystemExit(f"error: {error}") from None
    if args.json:
        result = {
            "command": "python benchmarks/peer_levers.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"), "cpu": cpu_info(), "mode": mode, "seconds": round(time.perf_counter() - start),
            "note": "each row once in every configuration, a fresh process each; config = the fastest (most images/s, fewest ms)",
            "rows": rows,
        }
        pathlib.Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
