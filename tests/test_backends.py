"""The package on JAX and PyTorch: the same math as on TensorFlow, seeds that repeat, no TensorFlow imported.

Keras picks its backend once per process, so each backend runs ``tests/backend_probe.py``
in a child process with KERAS_BACKEND set, loading the weights this (TensorFlow) process
saved; its results are compared with the same probe run here. A backend that is not
installed is skipped with the command that installs it.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import backend_probe

ROOT = pathlib.Path(__file__).resolve().parents[1]
INSTALL = {"jax": 'pip install "jax[cpu]"', "torch": "pip install torch (its CPU build)"}
OTHERS = [pytest.param(name, marks=pytest.mark.skipif(importlib.util.find_spec(name) is None, reason=f"{name} is not installed: {INSTALL[name]}")) for name in INSTALL]


def run_on(backend, *command, timeout=600):
    """Run ``python COMMAND`` with Keras on ``backend``; its stdout, or the failure with its stderr."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"on {backend}: {' '.join(command)}\n{done.stderr[-3000:]}"
    return done.stdout


AVAILABLE = [name for name in INSTALL if importlib.util.find_spec(name) is not None]


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """{backend: the probe's results}: JAX and PyTorch in child processes, started first, while TensorFlow runs here."""
    folder = tmp_path_factory.mktemp("backends")
    for i, model in enumerate(backend_probe.tiny_models()):
        model.save_weights(str(folder / f"model{i}.weights.h5"))
    children = {
        name: subprocess.Popen(
            [sys.executable, "tests/backend_probe.py", str(folder / f"{name}.npz"), str(folder)],
            cwd=ROOT, env={**os.environ, "KERAS_BACKEND": name}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for name in AVAILABLE
    }  # fmt: skip
    backend_probe.main(folder / "tensorflow.npz", folder)
    results = {"tensorflow": dict(np.load(folder / "tensorflow.npz"))}
    for name, child in children.items():
        _, stderr = child.communicate(timeout=900)
        assert child.returncode == 0, f"the probe failed on {name}:\n{stderr[-3000:]}"
        results[name] = dict(np.load(folder / f"{name}.npz"))
    return results


@pytest.fixture(scope="module")
def tensorflow_results(probes):
    return probes["tensorflow"]


@pytest.fixture(params=OTHERS)
def other(request, probes):
    """(backend name, its probe results)."""
    return request.param, probes[request.param]


def test_step_rules_agree_with_tensorflow(other, tensorflow_results):
    backend, results = other
    reference = tensorflow_results
    names = [k for k in reference if not k.startswith(("sample_", "seeded_", "tensorflow"))]
    assert len(names) >= 14  # the core's steps and every sampler's rule
    for name in names:
        np.testing.assert_allclose(results[name], reference[name], rtol=1e-5, atol=1e-5, err_msg=f"{name} on {backend}")


def test_deterministic_sampling_agrees_with_tensorflow(other, tensorflow_results):
    """Same weights, same x_T: every ODE sampler, CFG, classifier guidance and DDIM inversion give TensorFlow's images."""
    backend, results = other
    reference = tensorflow_results
    for name in [k for k in reference if k.startswith("sample_")]:
        assert np.all(np.isfinite(results[name])), name
        np.testing.assert_allclose(results[name], reference[name], rtol=1e-3, atol=1e-3, err_msg=f"{name} on {backend}")


def test_guidance_changes_the_images(other):
    """A check on the check: the guided draws are not the unguided ones, so their agreement above means something."""
    _, results = other
    assert np.abs(results["sample_classifier_guidance"] - results["sample_ddim"]).max() > 1e-3


def test_a_seed_repeats_on_each_backend(other):
    backend, results = other
    for name in ("ddpm", "sde"):
        np.testing.assert_array_equal(results[f"seeded_{name}_a"], results[f"seeded_{name}_b"], err_msg=f"{name} on {backend}")
        assert np.abs(results[f"seeded_{name}_a"] - results[f"seeded_{name}_other"]).max() > 0.1, f"another seed, other images ({name})"
        # two batches of 2: each batch draws its own noise
        assert np.abs(results[f"seeded_{name}_a"][0] - results[f"seeded_{name}_a"][2]).max() > 0.1


def test_inpainting_keeps_the_known_pixels(other):
    _, results = other
    known = results["seeded_inpaint_mask"] == 0
    assert known.any() and (~known).any()
    kept = np.broadcast_to(known, results["seeded_inpaint"].shape)
    np.testing.assert_array_equal(results["seeded_inpaint"][kept], results["seeded_inpaint_images"][kept])


def test_tensorflow_is_not_imported(other):
    backend, results = other
    assert not results["tensorflow_imported"], f"the probe imported TensorFlow on {backend}"


@pytest.mark.parametrize("backend", OTHERS)
def test_pretrained_fid_from_the_command_line(backend):
    """evaluate draws from the pretrained U-Net and scores it on the backend, without TensorFlow."""
    out = run_on(backend, "tests/backend_probe.py", "--cli", "keras_diffusion.evaluate", "--pretrained", "unet-fashion-mnist", "--n", "160", "--steps", "8")
    lines = out.strip().splitlines()
    scores = json.loads(lines[-2])
    # 160 images of the shipped model: FID about 5 against a floor near 3 at this n (60 would be static)
    assert scores["n"] == 160 and 0 < scores["fid"] < 30 and scores["class_entropy"] > 0.8, scores
    assert json.loads(lines[-1]) == {"tensorflow": False}
