"""The benchmark command runs and writes its results (its numbers are reported, never asserted)."""

import json

from keras_diffusion import bench


def test_ladder_bench_writes_json_and_figure(fake_data_dir, tmp_path):
    out, figure = tmp_path / "ladder.json", tmp_path / "ladder.png"
    argv = ["ladder", "--epochs", "1", "--limit", "256", "--only", "mlp_seed", "--sample-batch", "4"]
    assert bench.main(argv + ["--data-dir", str(fake_data_dir), "--json", str(out), "--figure", str(figure)]) == 0
    results = json.loads(out.read_text())
    assert [row["rung"] for row in results["rows"]] == [label for label, model, _, _ in bench.RUNGS if model == "mlp_seed"]
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
