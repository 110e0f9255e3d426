"""Pretrained models: shipped inside the package, checked against their sha256, usable by name."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_diffusion import evaluate, pretrained, sample as sample_cli, train
from keras_diffusion.pretrained.pack import pack, training_command
from keras_diffusion.reverse import sample

SHIPPED = pretrained.names()


@pytest.fixture(scope="module")
def packed(tmp_path_factory, fake_data_dir):
    """A tiny run packed into a temporary root, as a maintainer packs a real one."""
    root = tmp_path_factory.mktemp("pretrained")
    run = root.parent / "tiny-run"
    argv = ["--model", "mlp_seed", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--timesteps", "20", "--n-samples", "4"]
    assert train.main(argv + ["--data-dir", str(fake_data_dir), "--out", str(run)]) == 0
    quality = root.parent / "quality.json"
    quality.write_text(json.dumps({"fid": 99.0, "floor": 1.0}))
    pack(run, "tiny", quality, note="a test", root=root)
    return root


def test_pack_records_files_training_and_quality(packed):
    entry = pretrained.entry("tiny", root=packed)
    assert set(entry["files"]) >= {"config.json", "weights.weights.h5", "history.csv"}
    assert entry["epochs"] == 1 and entry["quality"]["fid"] == 99.0 and entry["parameters"] > 0
    assert entry["command"].startswith("python -m keras_diffusion.train --model mlp_seed") and "--limit 64" in entry["command"]
    assert "cores" in entry["hardware"] and "TensorFlow" in entry["software"]


def test_load_gives_a_working_model(packed):
    denoiser, schedule, config = pretrained.load("tiny", root=packed)
    images = sample(denoiser, schedule, 2, sampler="ddim", steps=4, seed=0)
    assert images.shape == (2, 28, 28, 1) and np.isfinite(images).all()


def test_a_damaged_or_missing_file_is_refused(packed, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(packed, copy)
    weights = copy / "tiny" / "weights.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match=r"pretrained model 'tiny': weights.weights.h5 is damaged .*reinstall"):
        pretrained.load("tiny", root=copy)
    weights.write_bytes(bytes(data[:100]))  # truncated: the same check
    with pytest.raises(pretrained.PretrainedError, match="is damaged"):
        pretrained.path("tiny", root=copy)
    weights.unlink()
    with pytest.raises(pretrained.PretrainedError, match="weights.weights.h5 is missing"):
        pretrained.path("tiny", root=copy)


def test_run_or_pretrained_prefers_a_given_run(packed, tmp_path):
    assert pretrained.run_or_pretrained(None, "tiny", root=packed) == packed / "tiny"
    assert pretrained.run_or_pretrained(str(packed / "tiny"), "other", root=packed) == packed / "tiny"
    with pytest.raises(pretrained.PretrainedError, match="holds no trained run .*leave it unset to use the pretrained 'tiny'"):
        pretrained.run_or_pretrained(str(tmp_path), "tiny", root=packed)


def test_unknown_name_lists_the_known_ones(packed):
    with pytest.raises(pretrained.PretrainedError, match="unknown pretrained model 'gan'; the package has: tiny"):
        pretrained.entry("gan", root=packed)


def test_training_command_names_only_what_differs():
    from keras_diffusion.config import TrainConfig

    assert training_command(TrainConfig().resolved()) == "python -m keras_diffusion.train"
    assert training_command(TrainConfig(conditional=True, epochs=5).resolved()) == "python -m keras_diffusion.train --epochs 5 --conditional"
    assert training_command(TrainConfig(model="noisy_classifier").resolved()) == "python -m keras_diffusion.train --classifier"


def test_list_prints_every_shipped_model():
    out = subprocess.run([sys.executable, "-m", "keras_diffusion.pretrained", "list"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0].split()[:2] == ["name", "parameters"]
    for name in SHIPPED:
        assert name in out


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_model_loads_offline_and_runs(name):
    model, schedule, config = pretrained.load(name)  # sha256 checked, config rebuilt, weights loaded
    entry = pretrained.entry(name)
    assert model.count_params() == entry["parameters"] and entry["megabytes"] < 10
    if entry["kind"] == "text_encoder":  # (MiniClip, tokenizer, thresholds): it reads the zero-shot prompts
        from keras_diffusion.text import class_prompt

        texts = np.asarray(model.encode_texts(schedule.encode([class_prompt(c) for c in range(10)])))  # (10, D), unit rows
        np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-4)
        assert entry["quality"]["zero_shot"] >= 0.8
        return
    if entry["kind"] == "classifier":
        logits = np.asarray(model([np.zeros((2, 28, 28, 1), np.float32), np.array([0, 100], np.int32)]))
        assert logits.shape == (2, 10) and np.isfinite(logits).all()
        return
    labels = np.array([7, 8]) if config.conditional else None
    prompts = ["a dark ankle boot", "a bag"] if config.text else None
    guidance = 1.0 if config.conditional or config.text else 0.0
    images = sample(model, schedule, 2, sampler="ddim", steps=8, seed=0, labels=labels, prompts=prompts, guidance=guidance)
    from keras_diffusion.data import to_uint8

    if config.latent:  # latents z_0 of 7x7xC: the images are the decoder's
        from keras_diffusion.latent import load_decoder

        assert images.shape[1:3] == (7, 7)
        images = load_decoder(pretrained.path(name))(images)
    pixels = to_uint8(images, config.scaling)
    assert pixels.shape == (2, 28, 28, 1) and pixels.dtype == np.uint8


def test_everything_shipped_stays_small():
    assert sum(pretrained.entry(name)["megabytes"] for name in SHIPPED) < 25


@pytest.mark.skipif(not any(pretrained.entry(n)["kind"] == "denoiser" for n in SHIPPED), reason="no pretrained denoiser shipped")
def test_pretrained_flag_in_sample_evaluate_and_edit(tmp_path, capsys):
    name = next(n for n in SHIPPED if pretrained.entry(n)["kind"] == "denoiser")
    npz = tmp_path / "s.npz"
    assert sample_cli.main(["--pretrained", name, "--n", "2", "--sampler", "ddim", "--steps", "4", "--npz", str(npz)]) == 0
    assert np.load(npz)["images"].shape == (2, 28, 28, 1)
    assert evaluate.main(["--pretrained", name, "--n", "130", "--sampler", "ddim", "--steps", "2"]) == 0
    assert "fid" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    from keras_diffusion import edit

    edited = tmp_path / "e.npz"
    argv = ["inpaint", "--pretrained", name, "--images", "test:0-1", "--seeds", "1", "--sampler", "ddim", "--steps", "4", "--npz", str(edited)]
    assert edit.main(argv) == 0
    assert np.load(edited)["images"].shape == (2, 28, 28, 1)
