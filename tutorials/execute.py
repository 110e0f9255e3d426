"""Sync each tutorial's .ipynb with its .py source, run it top to bottom, and save the outputs.

    python tutorials/execute.py                       # every NN_*.py, full run, outputs saved
    python tutorials/execute.py 02_mlp_denoiser       # one notebook
    python tutorials/execute.py --quick               # KERAS_DIFFUSION_QUICK=1, nothing saved
    python tutorials/execute.py --timeout 7200 04_unet  # allow a longer cell (default: 3600 s)

The .py (jupytext percent format) is the source of truth: edit it, never the
.ipynb. Notebooks run with the tutorials folder as working directory, so the
run directories they write land in tutorials/runs/ (ignored by git).
"""

import argparse
import os
import pathlib
import sys
import time

import jupytext.cli
import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent
QUICK_ENV = "KERAS_DIFFUSION_QUICK"


def notebook_sources():
    """The tutorials' .py sources, in order: 01_..., 02_..."""
    return sorted(HERE.glob("[0-9][0-9]_*.py"))


def execute(path, timeout=3600):
    """Run a notebook in place (no save) with the tutorials folder as working directory."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        coalesce_streams=True,  # one stdout block per cell, as Jupyter shows it
        kernel_name="python3",
        resources={"metadata": {"path": str(HERE)}},
        # TensorFlow's C++ start-up notices ("could not find cuda drivers") are
        # written to file descriptor 2; keep them in this terminal, out of the notebook.
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
    )
    client.execute()
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook names, e.g. 01_forward_process (default: all)")
    parser.add_argument("--quick", action="store_true", help=f"set {QUICK_ENV}=1 and do not save outputs")
    # an hour: enough for a cell that trains the default U-Net when its run is missing (about 17 min here)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell (default: 3600)")
    args = parser.parse_args(argv)

    sources = notebook_sources()
    if args.names:
        wanted = {name.removesuffix(".py").removesuffix(".ipynb") for name in args.names}
        unknown = wanted - {p.stem for p in sources}
        if unknown:
            parser.error(f"no such notebook: {', '.join(sorted(unknown))}")
        sources = [p for p in sources if p.stem in wanted]
    if args.quick:
        os.environ[QUICK_ENV] = "1"
    else:
        os.environ.pop(QUICK_ENV, None)

    for source in sources:
        ipynb = source.with_suffix(".ipynb")
        jupytext.cli.jupytext(["--quiet", "--sync", str(source)])
        start = time.perf_counter()
        nb = execute(ipynb, args.timeout)
        minutes = (time.perf_counter() - start) / 60
        if not args.quick:
            nbformat.write(nb, ipynb)
        size = ipynb.stat().st_size / 1e6
        print(f"{source.stem}: {minutes:.2f} min{' (quick, not saved)' if args.quick else ''}; {ipynb.name} {size:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
