"""The benchmark command runs and writes its results (its numbers are reported, never asserted)."""

import json

import pytest

from keras_diffusion import bench


def test_ladder_bench_writes_json_and_figure(fake_data_dir, tmp_path):
    out, figure = tmp_path / "ladder.json", tmp_path / "ladder.png"
    argv = ["ladder", "--epochs", "1", "--limit", "256", "--only", "mlp_seed", "--sample-batch", "4"]
    assert bench.main(argv + ["--data-dir", str(fake_data_dir), "--json", str(out), "--figure", str(figure)]) == 0
    results = json.loads(out.read_text())
    assert [row["rung"] for row in results["rows"]] == [rung.label for rung in bench.RUNGS if rung.model == "mlp_seed"]
    for row in results["rows"]:
        assert row["parameters"] > 0 and row["train_images_per_s"] > 0 and row["sample_ddim50_images_per_s"] > 0
    assert "tensorflow" in results["versions"] and results["device"]
    assert figure.stat().st_size > 0
    assert bench.markdown_table(results["rows"]).count("\n") == len(results["rows"]) + 1


def test_speed_bench_trains_as_train_does(fake_data_dir):
    """bench speed times the training that train runs: built by build_training, steps per call included."""
    from keras_diffusion import speed
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import load_images

    images, _ = load_images("fashion_mnist", "train", str(fake_data_dir), limit=64)
    config = TrainConfig(model="mlp_seed", model_kwargs={"hidden": 16}, batch_size=8, steps_per_execution=4).resolved()
    rate, denoiser = speed.package_train(config, images, steps=2)
    assert rate > 0 and denoiser.name == "mlp_seed"


def test_equal_wall_clock_ladder_with_fid_and_loss_against_t(fake_data_dir, tmp_path):
    """--seconds stops each rung on the clock; --fid-n scores it; --loss-figure draws the loss against t."""
    out, figure = tmp_path / "ladder.json", tmp_path / "loss_t.png"
    argv = ["ladder", "--seconds", "2", "--limit", "256", "--only", "cosine", "--no-speed", "--fid-n", "130", "--loss-n", "40"]
    assert bench.main(argv + ["--data-dir", str(fake_data_dir), "--json", str(out), "--loss-figure", str(figure)]) == 0
    results = json.loads(out.read_text())
    (row,) = results["rows"]
    assert results["seconds"] == 2 and results["epochs"] is None and row["key"] == "cosine"
    assert row["sample_ddpm_images_per_s"] is None  # --no-speed
    # 2 s of training, plus at most one compiled call of 64 steps and the first call's tracing
    assert 2 <= row["train_seconds"] < 60 and row["epochs_trained"] > 0
    assert sorted(map(int, row["loss_t"])) == list(bench.LOSS_T) and all(v > 0 for v in row["loss_t"].values())
    assert row["fid"] > 0 and row["floor"] > 0 and 0 <= row["class_entropy"] <= 1
    assert figure.stat().st_size > 0 and "FID" in bench.markdown_table(results["rows"])


def test_each_ablation_takes_one_thing_from_the_default_unet():
    keys = [rung.key for rung in bench.ABLATIONS]
    assert keys[0] == "unet" and len(set(keys)) == len(keys)
    assert bench.ABLATIONS[0].kwargs == {} and bench.ABLATIONS[0].settings == {}
    for rung in bench.ABLATIONS[1:]:
        assert rung.model == "unet" and len(rung.kwargs) + len(rung.settings) == 1


def test_an_unknown_rung_is_a_one_line_error(capsys):
    from keras_diffusion import cli

    assert cli.run(bench.main, ["ablations", "--only", "unet_no_unet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no rung or model 'unet_no_unet'" in err and "unet_no_skips" in err


@pytest.mark.parametrize("rung", bench.RUNGS + bench.ABLATIONS[1:], ids=lambda rung: rung.key)
def test_every_rung_resolves_builds_and_predicts(rung):
    """Each rung's settings make a valid config, and its denoiser (x_0 rungs: with EpsFromX0) gives finite ε̂."""
    import numpy as np

    from keras_diffusion.checkpoint import build_denoiser
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.models.objective import objective_of

    config = TrainConfig(model=rung.model, model_kwargs=rung.kwargs, epochs=1, **rung.settings).resolved()
    denoiser = build_denoiser(config, (28, 28, 1))
    eps = np.asarray(denoiser([np.zeros((2, 28, 28, 1), "float32"), np.array([0, 199], "int32")]), "float32")
    assert eps.shape == (2, 28, 28, 1) and np.isfinite(eps).all()
    assert objective_of(denoiser) == rung.settings.get("objective", "eps")


def test_peer_dir_names_where_the_peer_scripts_are(tmp_path):
    from keras_diffusion import cli
    from keras_diffusion.peer import peer_scripts

    assert (peer_scripts() / "unet.py").is_file()  # a source checkout finds its own
    with pytest.raises(cli.UsageError, match="--peer-dir .*: no unet.py there"):
        peer_scripts(tmp_path)
    (tmp_path / "unet.py").write_text("")
    assert peer_scripts(tmp_path) == tmp_path


def test_the_benchmark_modules_import_no_circle():
    """bench, peer and speed share the results writer through cpu, a floor below them all."""
    import ast
    import pathlib

    package = pathlib.Path(__file__).resolve().parents[1] / "keras_diffusion"
    imports = {}
    for name in ("bench", "peer", "speed", "cpu"):
        tree = ast.parse((package / f"{name}.py").read_text())
        found = {node.module.split(".")[1] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_diffusion.")}
        found |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "keras_diffusion" for alias in node.names}
        imports[name] = found
    assert "bench" not in imports["speed"] | imports["peer"] | imports["cpu"]
    assert not imports["cpu"] & {"bench", "peer", "speed"}
