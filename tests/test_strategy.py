"""More than one device (issue 7): tf.distribute strategies, mixed precision, steps per call.

A CPU is split into two logical devices to stand in for two GPUs. That has to
happen before TensorFlow starts its runtime, so those tests run in a fresh
Python process.
"""

import csv
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_diffusion import checkpoint, cli, sample, train
from keras_diffusion.config import TrainConfig
from keras_diffusion.devices import DeviceWarning
from keras_diffusion.models import model_defaults
from keras_diffusion.training import build_training, train as train_run

TINY = ["--model", "mlp", "--model-kwargs", '{"hidden": 32, "blocks": 1}', "--timesteps", "20"]
TINY += ["--limit", "256", "--batch-size", "64", "--n-samples", "2", "--epochs", "1"]

SPLIT_CPU = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""

# One step on the same global batch, t and ε: on one device, and mirrored on two.
# SGD, not Adam: Adam's first step is lr·sign(g), blind to a gradient twice too large.
ONE_STEP = SPLIT_CPU + """
import json
import keras
import numpy as np
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.models import build_model
from keras_diffusion.schedule import NoiseSchedule

rng = np.random.default_rng(0)
x0 = rng.uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
t = rng.integers(0, 20, 8).astype("int32")
eps = rng.standard_normal((8, 28, 28, 1)).astype("float32")
keras.utils.set_random_seed(0)
initial = build_model("mlp", hidden=32, blocks=1, timesteps=20).get_weights()


def diffusion_model():
    denoiser = build_model("mlp", hidden=32, blocks=1, timesteps=20)
    denoiser.set_weights(initial)
    model = DiffusionModel(denoiser, NoiseSchedule.cosine(20), seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.optimizer.build(denoiser.trainable_variables)
    return model


one = diffusion_model()
one_loss = float(tf.function(one.descent_step)(x0, t, eps))

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    two = diffusion_model()
batches = tf.data.Dataset.from_tensor_slices((x0, t, eps)).batch(8)  # the global batch: 4 a replica
batch = next(iter(strategy.experimental_distribute_dataset(batches)))
losses = tf.function(lambda b: strategy.run(two.descent_step, args=b))(batch)
draws = tf.function(lambda b: strategy.run(two.noise_draws, args=(b[0],)))(batch)
t0, t1 = (t.numpy() for t in strategy.experimental_local_results(draws[0]))


def largest_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "one_loss": one_loss,
    "two_loss": float(strategy.reduce("MEAN", losses, axis=None)),
    "weights_apart": largest_difference(one.denoiser.get_weights(), two.denoiser.get_weights()),
    "weights_moved": largest_difference(initial, one.denoiser.get_weights()),
    "same_draws": bool(np.array_equal(t0, t1)),
}))
"""

TRAIN_ON_TWO_CPUS = SPLIT_CPU + """
from keras_diffusion import cli, train
sys.exit(cli.run(train.main, sys.argv[1:]))
"""


def python(script, *argv, env=None):
    """Run ``python -c script argv`` in a fresh process (TensorFlow not started yet)."""
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=180, env=env)


def losses(run):
    with open(run / checkpoint.HISTORY) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def test_one_mirrored_step_on_two_devices_equals_one_step_on_one():
    result = python(ONE_STEP)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["replicas"] == 2
    # the loss of the step is the mean over the global batch
    assert found["two_loss"] == pytest.approx(found["one_loss"], rel=1e-5)
    # gradients summed over replicas, each from loss / replicas: the same update as on one device
    assert found["weights_moved"] > 1e-3  # a gradient twice too large would be this far off
    assert found["weights_apart"] < 1e-6
    # each replica draws its own t and ε for its half of the batch
    assert not found["same_draws"]


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("mirrored") / "run"
    result = python(TRAIN_ON_TWO_CPUS, *TINY, "--strategy", "mirrored", "--data-dir", str(fake_data_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "2 replicas" in result.stdout
    return out


def test_train_with_a_mirrored_strategy_writes_a_run_that_sample_loads(mirrored_run, tmp_path):
    config = json.loads((mirrored_run / checkpoint.CONFIG).read_text())["train"]
    assert config["strategy"] == "mirrored" and config["steps_per_execution"] == 1
    assert len(losses(mirrored_run)) == 1 and np.isfinite(losses(mirrored_run)).all()
    npz = tmp_path / "s.npz"
    assert sample.main(["--run", str(mirrored_run), "--n", "2", "--npz", str(npz)]) == 0
    with np.load(npz, allow_pickle=False) as data:
        assert data["images"].shape == (2, 28, 28, 1)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_the_same_run_as_two_mirrored_devices(mirrored_run, fake_data_dir, tmp_path):
    """Two processes on localhost stand in for two machines; worker 0 is the chief and alone writes the run."""
    out = tmp_path / "run"
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    command = [sys.executable, "-m", "keras_diffusion.train", *TINY, "--strategy", "multiworker"]
    command += ["--data-dir", str(fake_data_dir), "--out", str(out)]
    workers = []
    for index in (1, 0):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [worker.communicate(timeout=180) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
    assert "the chief worker wrote the run directory" in outputs[0][0]
    for name in (checkpoint.WEIGHTS, checkpoint.STATE, "samples.png"):
        assert (out / name).is_file(), name
    # the same global batches, split the same way, with the same draws a replica
    np.testing.assert_allclose(losses(out), losses(mirrored_run), rtol=1e-5)
    checkpoint.load_run(out)


def test_multiworker_without_tf_config_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = cli.run(train.main, TINY + ["--strategy", "multiworker", "--out", str(tmp_path / "run")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, lines
    assert "--strategy multiworker needs the TF_CONFIG environment variable" in lines[0]
    assert not (tmp_path / "run").exists()


def test_steps_per_execution_comes_from_the_model_and_is_checked():
    assert TrainConfig(model="mlp_seed").resolved().steps_per_execution == model_defaults("mlp_seed")["steps_per_execution"] > 1
    assert TrainConfig(model="unet").resolved().steps_per_execution == 1
    assert TrainConfig(model="mlp", strategy="mirrored").resolved().steps_per_execution == 1
    with pytest.raises(ValueError, match="steps_per_execution must be >= 1, got 0"):
        TrainConfig(steps_per_execution=0).resolved()
    with pytest.raises(ValueError, match="steps_per_execution must be 1 with strategy 'mirrored', got 8"):
        TrainConfig(strategy="mirrored", steps_per_execution=8).resolved()
    with pytest.raises(ValueError, match="strategy must be one of default, mirrored, multiworker; got 'tpu'"):
        TrainConfig(strategy="tpu").resolved()


def test_mixed_precision_trains_in_float16_with_a_float32_loss_and_restores_the_policy(fake_data_dir, tmp_path):
    config = TrainConfig(
        model="mlp", model_kwargs={"hidden": 32, "blocks": 1}, timesteps=20, limit=64, batch_size=64, epochs=1,
        n_samples=2, data_dir=str(fake_data_dir), mixed_precision=True,
    )
    with pytest.warns(DeviceWarning, match="float16 is emulated there"):
        _, denoiser, model = build_training(config.resolved(), (28, 28, 1))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert denoiser.dtype_policy.name == "mixed_float16" and denoiser.weights[0].dtype == "float32"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    loss = model.diffusion_loss(np.zeros((4, 28, 28, 1), "float32"))
    assert loss.dtype == "float32"

    with pytest.warns(DeviceWarning):
        run, history = train_run(config, out=tmp_path / "run", verbose=0)  # one step: 64 images, batch 64
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaks into later tests
    assert np.isfinite(history["loss"]).all()
    assert json.loads((run / checkpoint.CONFIG).read_text())["train"]["mixed_precision"] is True
    loaded, _, _ = checkpoint.load_run(run)  # sampling rebuilds the denoiser in float32
    assert loaded.dtype_policy.name == "float32"
