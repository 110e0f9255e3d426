"""What the CPU can do, read from /proc/cpuinfo: no TensorFlow needed.

Whether bfloat16 pays depends on the CPU: with AVX-512 BF16 or AMX, oneDNN
and XLA run bf16 matrix products and convolutions natively; on a CPU with
AVX2 only, bf16 is emulated and slower than float32. Benchmarks record the
model and the vector extensions beside their figures, because the same code
ranks differently on the two.
"""

import json
import os
import pathlib
import platform
import sys

CPUINFO = "/proc/cpuinfo"
# the flags that decide how fast matrix products run, in the kernel's spelling
VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8")
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")


def _cpuinfo(path=CPUINFO):
    """{key: value} of the first processor in /proc/cpuinfo; empty where there is none (macOS, Windows)."""
    try:
        with open(path) as file:
            text = file.read()
    except OSError:
        return {}
    info = {}
    for line in text.split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cpu_flags(path=CPUINFO):
    """The CPU's feature flags as a set (empty when unknown)."""
    return set(_cpuinfo(path).get("flags", "").split())


def native_bf16(path=CPUINFO):
    """True when the CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX), so bf16 can beat float32."""
    return bool(cpu_flags(path) & set(NATIVE_BF16))


def cpu_info(path=CPUINFO):
    """Model, cores and vector extensions, for the record beside a benchmark's figures."""
    info = _cpuinfo(path)
    flags = set(info.get("flags", "").split())
    return {
        "model": info.get("model name", platform.processor() or platform.machine()),
        "cores": os.cpu_count(),
        "vector_extensions": [flag for flag in VECTOR_FLAGS if flag in flags],
        "native_bf16": bool(flags & set(NATIVE_BF16)),
    }


def environment():
    """The device, versions and command, stored with every benchmark result (imports TensorFlow)."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "command": "python -m keras_diffusion.bench " + " ".join(sys.argv[1:]),
        "device": f"{len(gpus)} GPU(s)" if gpus else f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()},
    }


def write_results(path, results):
    """Write a benchmark's results as JSON, with ``environment()`` beside them."""
    pathlib.Path(path).write_text(json.dumps({**environment(), **results}, indent=2) + "\n")
