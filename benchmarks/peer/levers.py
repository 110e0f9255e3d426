"""The levers a PyTorch user reaches for on a CPU, as the peer scripts' options: bf16 autocast, channels_last, torch.compile.

    --bf16           torch.autocast("cpu", dtype=torch.bfloat16) around the forward passes (training and sampling)
    --channels-last  the model and its inputs in torch.channels_last (the U-Net only: an MLP has no image layout)
    --compile        torch.compile(model) (inductor; it needs a C++ compiler)

None given: float32 eager, what the peer's rows always measured. The
configuration's name ("fp32", "bf16+channels_last", ...) is in every result.
torch.compile compiles lazily, at the first call: a failure there (no C++
compiler, an inductor error) ends the script with one line on stderr and
exit code ``COMPILE_UNAVAILABLE``, so that a sweep can tell "does not work
here" from a broken row.
"""

import contextlib
import shutil
import sys

import torch

COMPILE_UNAVAILABLE = 3  # exit code: torch.compile does not work on this machine


def add_options(parser, channels_last=True):
    """The lever flags; ``channels_last=False`` for a model without an image layout."""
    parser.add_argument("--bf16", action="store_true", help='torch.autocast("cpu", dtype=torch.bfloat16) around the forward passes')
    if channels_last:
        parser.add_argument("--channels-last", action="store_true", help="model and inputs in torch.channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (needs a C++ compiler)")


def name(args):
    """The configuration's name: the levers joined by '+', or 'fp32' (eager) for none."""
    levers = [lever for lever in ("bf16", "channels_last", "compile") if getattr(args, lever, False)]
    return "+".join(levers) or "fp32"


def autocast(args):
    """The context of every forward pass: bf16 autocast, or nothing."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()


def layout(x, args):
    """An input batch (B, C, H, W) in the model's memory format."""
    return x.contiguous(memory_format=torch.channels_last) if getattr(args, "channels_last", False) else x


def prepare(model, args):
    """The model with its levers applied: channels_last weights, then torch.compile (the same parameters)."""
    if getattr(args, "channels_last", False):
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        if not any(shutil.which(cxx) for cxx in ("g++", "c++", "clang++")):
            unavailable("no C++ compiler (g++, c++ or clang++) on PATH")
        model = torch.compile(model)
    return model


def unavailable(reason):
    """End the script: torch.compile does not work here, in one line."""
    print(f"error: torch.compile unavailable here: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(COMPILE_UNAVAILABLE)


@contextlib.contextmanager
def compile_errors(args):
    """Around a row with --compile: an error raised by dynamo or inductor becomes ``unavailable``, not a traceback."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only torch.compile's own errors are turned into one line
        origin = type(error).__module__
        if not (args.compile and origin.startswith(("torch._dynamo", "torch._inductor"))):
            raise
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        unavailable(f"{type(error).__name__}: {first[:300]}")
