"""Speed levers keep the numerics where they must be, and bench peer fails clearly without its peer.

No timing is asserted here: speed is measured by ``bench speed`` and ``bench peer``.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_diffusion import cpu, devices, peer
from keras_diffusion.config import TrainConfig
from keras_diffusion.reverse import ddim_step, ddpm_step, sample
from keras_diffusion.training import build_training

TINY_UNET = {"widths": [8, 16], "groups": 4}


def tiny_config(**kw):
    return TrainConfig(model="unet", model_kwargs=TINY_UNET, timesteps=20, batch_size=8, epochs=1, xla=False, **kw).resolved()


def test_cpuinfo_flags_decide_native_bf16(tmp_path):
    intel = tmp_path / "intel"
    intel.write_text("processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16\n\nprocessor\t: 1\n")
    amd = tmp_path / "amd"
    amd.write_text("processor\t: 0\nmodel name\t: EPYC\nflags\t\t: fpu avx avx2 fma\n")
    assert cpu.native_bf16(intel) and not cpu.native_bf16(amd) and not cpu.native_bf16(tmp_path / "missing")
    info = cpu.cpu_info(amd)
    assert info["model"] == "EPYC" and info["vector_extensions"] == ["avx", "avx2", "fma"] and info["native_bf16"] is False


def test_auto_precision_picks_bf16_without_xla_only_on_native_bf16_cpus(monkeypatch):
    monkeypatch.setattr(devices, "native_bf16", lambda: True)
    assert devices.auto_precision(gpu=False) == "mixed_bfloat16"
    assert devices.auto_precision(gpu=True) == "float32"  # a GPU's dtype is --precision's to choose
    assert devices.auto_precision(strategy="mirrored", gpu=False) == "float32"  # a strategy keeps the model's settings
    monkeypatch.setattr(devices, "native_bf16", lambda: False)
    assert devices.auto_precision(gpu=False) == "float32"  # AVX2 only: bf16 is emulated
    # what a resolved config records in config.json: on AVX2, float32 and the model's XLA setting
    monkeypatch.setattr(devices.backends, "gpu_present", lambda: False)
    unet = TrainConfig(model="unet").resolved()
    assert (unet.precision, unet.xla) == ("float32", True)
    assert TrainConfig(model="unet", mixed_precision=True).resolved().precision == "mixed_float16"
    # on a CPU with native bf16: bf16, and XLA off unless asked for (it slowed every model's step there)
    monkeypatch.setattr(devices, "native_bf16", lambda: True)
    for model in ("unet", "mlp_seed", "mlp"):
        config = TrainConfig(model=model).resolved()
        assert (config.precision, config.xla) == ("mixed_bfloat16", False)
    with_xla = TrainConfig(model="unet", xla=True).resolved()
    assert (with_xla.precision, with_xla.xla) == ("mixed_bfloat16", True)
    chosen = TrainConfig(model="unet", precision="float32").resolved()
    assert (chosen.precision, chosen.xla) == ("float32", True)  # a chosen precision keeps the model's XLA
    monkeypatch.setattr(devices.backends, "gpu_present", lambda: True)
    on_gpu = TrainConfig(model="unet").resolved()
    assert (on_gpu.precision, on_gpu.xla) == ("float32", True)


def test_precision_flags_are_checked():
    with pytest.raises(ValueError, match="precision must be one of float32, mixed_bfloat16, mixed_float16; got 'bf16'"):
        TrainConfig(precision="bf16").resolved()
    with pytest.raises(ValueError, match="--mixed-precision is mixed_float16, but precision is 'mixed_bfloat16'"):
        TrainConfig(mixed_precision=True, precision="mixed_bfloat16").resolved()
    assert TrainConfig.from_dict({"model": "unet"}).precision is None  # a config.json from before the field: auto


def test_bf16_policy_keeps_the_loss_and_the_sampler_in_float32():
    schedule, denoiser, model = build_training(tiny_config(precision="mixed_bfloat16"), (28, 28, 1))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored: nothing leaks into later code
    assert denoiser.dtype_policy.name == "mixed_bfloat16"
    assert {w.dtype for w in denoiser.weights} == {"float32"}  # the weights load into a float32 model
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # bf16 has float32's range
    x0 = keras.ops.zeros((4, 28, 28, 1), "float32")
    t = keras.ops.convert_to_tensor(np.array([0, 5, 10, 19], "int32"))
    eps = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((4, 28, 28, 1)).astype("float32"))
    assert keras.backend.standardize_dtype(denoiser([x0, t]).dtype) == "bfloat16"  # the denoiser computes in bf16 ...
    assert keras.backend.standardize_dtype(model.denoising_loss(x0, t, eps).dtype) == "float32"  # ... the loss does not
    eps_bf16 = keras.ops.cast(eps, "bfloat16")
    assert keras.backend.standardize_dtype(ddpm_step(schedule, x0, t, eps_bf16, eps).dtype) == "float32"  # nor the sampler's update
    assert keras.backend.standardize_dtype(ddim_step(schedule, x0, t, t - 1, eps_bf16).dtype) == "float32"


def test_a_bf16_training_step_and_sample_are_finite():
    schedule, denoiser, model = build_training(tiny_config(precision="mixed_bfloat16"), (28, 28, 1))
    x0 = np.random.default_rng(1).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
    history = model.fit(x0, batch_size=8, epochs=1, verbose=0, shuffle=False).history
    assert np.isfinite(history["loss"]).all()
    images = sample(denoiser, schedule, 3, sampler="ddim", steps=5, seed=0, clip=(-1, 1))
    assert images.dtype == np.float32 and np.isfinite(images).all()


def test_with_precision_copies_the_weights_and_computes_close_to_float32():
    _, denoiser, _ = build_training(tiny_config(precision="float32"), (28, 28, 1))
    rng = np.random.default_rng(2)
    denoiser.set_weights([w + 0.05 * rng.standard_normal(w.shape).astype("float32") for w in denoiser.get_weights()])
    copy = devices.with_precision(denoiser, "mixed_bfloat16")
    assert copy.dtype_policy.name == "mixed_bfloat16" and devices.with_precision(denoiser, "float32") is denoiser
    for a, b in zip(denoiser.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((2, 28, 28, 1)).astype("float32")
    t = np.array([3, 17], "int32")
    reference = np.asarray(denoiser([x, t]))
    out = np.asarray(keras.ops.cast(copy([x, t]), "float32"))
    # bf16 keeps 8 bits of mantissa: about 1 % of the output's scale
    assert np.abs(out - reference).max() < 0.05 * np.abs(reference).max() + 1e-3


def test_bench_peer_without_its_python_is_a_one_line_error(tmp_path):
    missing = tmp_path / "nowhere" / "bin" / "python"
    for args, message in (
        (["--python", str(missing)], f"error: --python {missing}: no such executable"),
        ([], "error: bench peer needs --python PATH"),
        (["--python", sys.executable], "cannot import torch and diffusers"),  # the package's venv has no torch
    ):
        done = subprocess.run([sys.executable, "-m", "keras_diffusion.bench", "peer", *args], capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], done.stderr


def test_our_side_of_a_peer_row_reports_speed_and_memory():
    result = peer.measure("mlp_sample", "quick")
    assert result["value"] > 0 and result["peak_rss_mib"] > 0 and result["model"] == "mlp_seed"
    assert json.loads(json.dumps(result)) == result  # the child prints it as one JSON line
    assert peer.ratio("images/s", 300, 150) == 2 and peer.ratio("ms", 100, 250) == 2.5  # > 1: ours faster


def test_bench_peer_writes_one_table_of_ours_the_peers_and_their_ratio(tmp_path):
    """End to end with a stand-in for the peer's Python (the tests never need torch): one row, quick."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\n[ "$1" = -c ] && exit 0\necho \'{"value": 2.0, "unit": "images/s", "peak_rss_mib": 300.0}\'\n')
    fake.chmod(0o755)
    out = tmp_path / "peer.json"
    argv = ["peer", "--python", str(fake), "--only", "mlp_sample", "--quick", "--json", str(out)]
    done = subprocess.run([sys.executable, "-m", "keras_diffusion.bench", *argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    (row,) = results["rows"]
    assert row["row"] == "mlp_sample" and row["peer"] == 2.0 and row["ratio"] == pytest.approx(row["ours"] / 2.0)
    assert row["ours_peak_rss_mib"] > 0 and row["peer_peak_rss_mib"] == 300.0
    assert results["cpu"]["cores"] >= 1 and "vector_extensions" in results["cpu"] and results["ratio_min"] == row["ratio"]
    assert "| mlp_seed sampling" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "keras_diffusion.bench", "peer", "--python", str(fake), "--only", "gan"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: --only: no row 'gan'; the rows are {', '.join(peer.ROWS)}"


def test_the_dpmpp_2m_row_is_on_both_sides():
    """DPM-Solver++(2M), 20 steps: ours by the registry's name, the peer's by diffusers' DPMSolverMultistepScheduler."""
    from keras_diffusion import samplers

    for config in ("peer_config", "default"):
        key = f"unet_dpmpp_{config}"
        assert peer.sampler_of(key) == "dpmpp_2m" and samplers.entry("dpmpp_2m")  # our side samples with it
        assert peer.ROWS[key][2][:2] == ["unet.py", "dpmpp"] and peer.ROWS[key][2][2:] == peer.ROWS[f"unet_ddim_{config}"][2][2:]
        assert "--timed-steps" in peer.peer_command("peer", key, "quick") and "--timed-steps" not in peer.peer_command("peer", key, "full")
    assert peer.CHAIN_STEPS["dpmpp_2m"] == 20 and peer.sampler_of("unet_ddpm_default") == "ddpm" and peer.sampler_of("unet_call_default") is None
    script = (peer.peer_scripts() / "unet.py").read_text()
    assert 'algorithm_type="dpmsolver++", solver_order=2' in script and '"dpmpp": 20' in script
    x = keras.Input((28, 28, 1))
    tiny = keras.Model([x, keras.Input((), dtype="int32")], keras.layers.Conv2D(1, 1)(x))
    rate, steps = peer._sampling_rate(tiny, TrainConfig(model="unet").resolved().noise_schedule(), None, "dpmpp_2m", 4, 1)
    assert rate > 0 and steps == 4  # 4 of the chain's 20 steps timed, scaled to 20


def test_peer_config_names_each_rows_configuration_and_a_bad_file_is_one_line(tmp_path):
    from keras_diffusion import cli

    good = tmp_path / "levers.json"
    good.write_text(json.dumps({"rows": {"unet_ddim_default": {"config": "bf16+channels_last"}, "mlp_train": {"config": "fp32"}}}))
    assert peer.load_peer_config(good) == {"unet_ddim_default": "bf16+channels_last", "mlp_train": "fp32"}
    assert peer.peer_command("p", "unet_ddim_default", "full", config="bf16+channels_last")[-2:] == ["--bf16", "--channels-last"]
    assert all(not peer.peer_command("p", key, "full")[-1].startswith("--bf16") for key in peer.ROWS)  # default: fp32 eager
    assert "channels_last" not in " ".join(peer.peer_configs("mlp_sample")) and "bf16+channels_last" in peer.peer_configs("unet_call_default")
    for text, message in (
        (None, r"--peer-config .*missing.json: cannot read it \(No such file or directory\)"),
        ("{not json", r"--peer-config .*: not JSON \(Expecting property name"),
        ('{"unet_ddim_default": "bf16"}', r'--peer-config .*: no "rows" object'),
        ('{"rows": {"gan": {"config": "bf16"}}}', r"--peer-config .*: no row 'gan'; the rows are mlp_train, "),
        ('{"rows": {"unet_ddim_default": {"config": "fp16"}}}', r"row 'unet_ddim_default' has configuration 'fp16'; it is 'fp32' or levers joined by '\+'"),
        ('{"rows": {"unet_ddim_default": "bf16"}}', r"row 'unet_ddim_default' has configuration None"),
        ('{"rows": {"mlp_train": {"config": "channels_last"}}}', r"channels_last is for the U-Net rows"),
    ):
        path = tmp_path / ("missing.json" if text is None else "bad.json")
        if text is not None:
            path.write_text(text)
        with pytest.raises(cli.UsageError, match=message) as caught:
            peer.load_peer_config(path)
        assert "\n" not in str(caught.value)


def test_bench_peer_runs_each_peer_row_in_its_configuration_and_names_it(tmp_path, monkeypatch, capsys):
    """The peer's command gets the configuration's flags; the line, the table and the JSON name it (no processes run)."""
    import argparse

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 0\n")  # check_python's import probe passes
    fake.chmod(0o755)
    commands = []
    monkeypatch.setattr(peer, "run_json", lambda command: commands.append(command) or {"value": 4.0, "peak_rss_mib": 100.0})
    config = tmp_path / "levers.json"
    config.write_text(json.dumps({"rows": {"unet_dpmpp_default": {"config": "bf16+channels_last"}}}))
    out = tmp_path / "peer.json"
    args = argparse.Namespace(python=str(fake), only=["unet_dpmpp_default", "mlp_sample"], quick=True, data_dir=None, json=str(out), peer_config=str(config))
    assert peer.peer(args) == 0
    _, fp32, ours, theirs = commands  # in the table's order: mlp_sample first
    assert ours[-3:] == ["unet_dpmpp_default", "--mode", "quick"] and theirs[-2:] == ["--bf16", "--channels-last"]
    assert fp32[-2] == "--repeat"  # a row the file does not name: no levers
    table = capsys.readouterr().out
    assert "| 4.0 (bf16+channels_last) |" in table and "| 4.0 (fp32) |" in table and "PyTorch + diffusers (configuration)" in table
    results = json.loads(out.read_text())
    assert [r["peer_config"] for r in results["rows"]] == ["fp32", "bf16+channels_last"] and results["peer_config"] == str(config)
    bad = argparse.Namespace(**{**vars(args), "peer_config": str(tmp_path / "none.json")})
    commands.clear()
    with pytest.raises(ValueError, match="--peer-config .*none.json: cannot read it"):
        peer.peer(bad)
    assert not commands  # refused before any row runs


PEER_PYTHON = peer.peer_scripts().parents[1] / ".peer" / "bin" / "python"


@pytest.mark.skipif(not PEER_PYTHON.exists(), reason="no .peer venv with torch and diffusers (bash benchmarks/peer/setup.sh makes one; CI has none)")
def test_a_peer_script_runs_with_bf16_autocast():
    command = peer.peer_command(peer.peer_scripts(), "unet_dpmpp_default", "quick", config="bf16")
    command[command.index("--timed-steps") + 1] = "2"
    done = subprocess.run([str(PEER_PYTHON), *command, "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["config"] == "bf16" and result["value"] > 0 and result["steps"] == 20 and result["timed_steps"] == 2
