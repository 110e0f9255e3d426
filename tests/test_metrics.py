"""Quality numbers: FID against its formula, class entropy, the classifier, bits/dim, the evaluate CLI."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from keras_diffusion import NoiseSchedule, evaluate, metrics, train
from keras_diffusion.data import find_data_dir, load_images

from conftest import make_idx_dir
from test_cli import _tensorflow_noise


# --- Fréchet distance ----------------------------------------------------------------


def test_fid_of_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert metrics.fid_from_features(features, features) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_a_mean_shift_is_the_squared_shift():
    features = np.random.default_rng(1).normal(size=(400, 8))
    shift = np.arange(8) / 4.0
    # same covariance: the trace term cancels and d² = |shift|²
    assert metrics.fid_from_features(features, features + shift) == pytest.approx(shift @ shift, rel=1e-6)


def test_frechet_distance_of_diagonal_gaussians_matches_the_formula():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    assert metrics.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_frechet_distance_survives_singular_covariances():
    features = np.random.default_rng(3).normal(size=(10, 32))  # 10 samples in 32 dims: rank 9
    value = metrics.fid_from_features(features, features + 1.0)
    assert math.isfinite(value) and value == pytest.approx(32.0, rel=1e-3)


def test_fid_errors_are_clear():
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.gaussian_fit(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="shapes do not match"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


# --- class coverage ------------------------------------------------------------------


def test_class_entropy_is_zero_for_one_class_and_one_for_all():
    assert metrics.class_entropy(metrics.class_histogram([3] * 50)) == 0.0
    assert metrics.class_entropy(metrics.class_histogram(np.arange(100) % 10)) == pytest.approx(1.0)
    assert 0 < metrics.class_entropy([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]) < 1
    np.testing.assert_array_equal(metrics.class_histogram([0, 0, 9]), [2, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="histogram"):
        metrics.class_entropy([0] * 10)


# --- the classifier ------------------------------------------------------------------


def test_the_packaged_classifier_weights_exist():
    assert metrics.weights_path().is_file(), "re-create them: python -m keras_diffusion.evaluate --train-classifier"
    model = metrics.load_classifier()
    assert model.get_layer("features").units == metrics.FEATURES


@pytest.mark.skipif(find_data_dir() is None, reason="needs the real Fashion-MNIST files")
def test_the_classifier_classifies_real_test_images():
    images, labels = load_images("fashion_mnist", "test", limit=300)
    features, predicted = metrics.Evaluator().features(images)
    assert features.shape == (300, metrics.FEATURES) and features.dtype == np.float64
    assert np.mean(predicted == labels) > 0.88


def test_evaluator_rejects_bad_images():
    evaluator = metrics.Evaluator()
    with pytest.raises(ValueError, match="uint8"):
        evaluator.score(np.zeros((200, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="more images than features"):
        evaluator.score(np.zeros((50, 28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 28, 28, 1\)"):
        evaluator.features(np.zeros((4, 32, 32, 3), np.uint8))


# --- bits per dimension --------------------------------------------------------------


def test_the_discretised_decoder_is_a_distribution_over_256_levels():
    levels = np.linspace(-1, 1, 256, dtype=np.float32)[:, None]  # every pixel value, as a column
    for mean, log_scale in ((0.3, -2.0), (-0.97, -5.0), (1.4, 0.5)):
        logp = metrics.discretized_gaussian_log_likelihood(levels, tf.constant(mean), tf.constant(log_scale))
        assert float(np.exp(np.asarray(logp, np.float64)).sum()) == pytest.approx(1.0, abs=1e-4)


def _toy(schedule):
    """Every image the same: an oracle knows x0 and so knows ε exactly."""
    pixels = np.tile((np.arange(28, dtype=np.uint8) * 9)[None, :, None], (28, 1, 1))  # (28, 28, 1)
    x0 = pixels.astype(np.float32) / 127.5 - 1.0
    sqrt_ab, sqrt_1mab = schedule.tensor("sqrt_alpha_bars"), schedule.tensor("sqrt_one_minus_alpha_bars")

    def oracle(inputs, training=False):
        x_t, t = inputs
        a = tf.reshape(tf.gather(sqrt_ab, t), (-1, 1, 1, 1))
        b = tf.reshape(tf.gather(sqrt_1mab, t), (-1, 1, 1, 1))
        return (x_t - a * x0) / b

    def zero(inputs, training=False):
        return tf.zeros_like(inputs[0])

    return np.repeat(pixels[None], 4, axis=0), x0, oracle, zero


def test_bits_per_dim_of_an_oracle_is_its_prior_and_decoder_only():
    schedule = NoiseSchedule.cosine(50)
    images, x0, oracle, zero = _toy(schedule)
    perfect = metrics.bits_per_dim(oracle, schedule, images, batch_size=2)
    blind = metrics.bits_per_dim(zero, schedule, images, batch_size=2)
    assert math.isfinite(perfect["bpd"]) and perfect["bpd"] < blind["bpd"]
    assert perfect["kl"] == pytest.approx(0.0, abs=1e-4)  # the oracle's mean is the true posterior mean
    to_bits = 1 / (x0.size * math.log(2))
    # L_T in closed form: KL(N(sqrt(ᾱ_T) x0, 1 - ᾱ_T) || N(0, 1)) summed over pixels
    abar = schedule.alpha_bars[-1]
    prior = 0.5 * np.sum(abar * x0.astype(np.float64) ** 2 + (1 - abar) - 1 - np.log(1 - abar))
    assert perfect["prior"] == pytest.approx(prior * to_bits, rel=1e-3)
    # L_0: at t = 0 the posterior mean is x0 itself, so each pixel's bin is centred on its mean
    sigma = math.exp(0.5 * schedule.posterior_log_variance_clipped[0])
    half = 1 / 255
    inner = -np.log(scipy.stats.norm.cdf(half / sigma) - scipy.stats.norm.cdf(-half / sigma))
    edge = -np.log(scipy.stats.norm.cdf(half / sigma))  # the first and last bins reach out to infinity
    n_edge = np.sum((images[0] == 0) | (images[0] == 255))
    decoder = inner * (x0.size - n_edge) + edge * n_edge
    assert perfect["decoder"] == pytest.approx(decoder * to_bits, rel=1e-3)


# --- the command line ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_unet_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "tiny_unet"
    argv = ["--model", "unet", "--model-kwargs", '{"widths": [8, 16], "attention": false}', "--epochs", "1"]
    argv += ["--no-xla"]  # XLA compilation would take longer than this tiny training
    argv += ["--limit", "256", "--timesteps", "20", "--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]
    assert train.main(argv) == 0
    return out


@pytest.fixture(scope="module")
def eval_data_dir(tmp_path_factory):
    """Fake data with enough test images for FID at n > 128."""
    return make_idx_dir(tmp_path_factory.mktemp("fake-eval"), n_train=300, n_test=200)


def _json_line(capsys):
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_evaluate_scores_an_npz(tmp_path, eval_data_dir, capsys):
    images = np.random.default_rng(0).integers(0, 256, (150, 28, 28, 1), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", images=images)
    assert evaluate.main(["--npz", str(tmp_path / "s.npz"), "--data-dir", str(eval_data_dir)]) == 0
    result = _json_line(capsys)
    assert result["n"] == 150 and result["fid"] >= 0 and result["floor"] >= 0
    assert sum(result["histogram"]) == 150 and 0 <= result["class_entropy"] <= 1


def test_evaluate_samples_a_run_and_computes_bits_per_dim(tiny_unet_run, eval_data_dir, capsys):
    argv = ["--run", str(tiny_unet_run), "--n", "130", "--sampler", "ddim", "--steps", "5", "--bpd", "--data-dir", str(eval_data_dir)]
    assert evaluate.main(argv) == 0
    result = _json_line(capsys)
    assert result["n"] == 130 and result["sampler"] == "ddim" and result["steps"] == 5
    assert math.isfinite(result["fid"]) and math.isfinite(result["bpd"]) and result["bpd"] > 0
    assert set(result["bpd_parts"]) == {"prior", "kl", "decoder"}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bpd", "--npz", "x.npz"], "--bpd needs --run"),
        (["--npz", "no/such.npz"], "no such file"),
        (["--run", "r", "--npz", "x.npz"], "not allowed with argument"),
        (["--real", "--no-fid"], "nothing to compute"),
        (["--run", "no/such/run", "--n", "200"], "no/such/run is not a run directory"),
    ],
)
def test_evaluate_bad_arguments_exit_2_with_one_line(argv, message):
    result = subprocess.run([sys.executable, "-m", "keras_diffusion.evaluate", *argv], capture_output=True, text=True)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and not _tensorflow_noise(line)]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_fid_during_training_goes_to_history_and_tensorboard(fake_data_dir, tmp_path):
    out = tmp_path / "fid_run"
    argv = ["--model", "mlp", "--model-kwargs", '{"hidden": 32, "blocks": 1}', "--epochs", "2", "--limit", "256"]
    argv += ["--timesteps", "20", "--n-samples", "2", "--data-dir", str(fake_data_dir), "--out", str(out)]
    assert train.main(argv + ["--fid-every", "2", "--fid-n", "130", "--tensorboard"]) == 0
    lines = (out / "history.csv").read_text().splitlines()
    header = lines[0].split(",")
    fid = [row.split(",")[header.index("fid")] for row in lines[1:]]
    assert fid[0] == "nan" and math.isfinite(float(fid[1])) and float(fid[1]) > 0  # only every 2nd epoch
    assert any((out / "tensorboard").rglob("events.out.tfevents.*"))


def test_fid_during_training_needs_enough_samples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--fid-every", "1", "--fid-n", "64"])
    assert exit_info.value.code == 2 and "fid_n must be > 128" in capsys.readouterr().err


def test_the_fid_callback_scores_the_ema_weights_and_puts_the_raw_ones_back(eval_data_dir, monkeypatch):
    import keras

    from keras_diffusion.config import TrainConfig
    from keras_diffusion.data import make_dataset
    from keras_diffusion.training import build_training

    config = TrainConfig(model="mlp", model_kwargs={"hidden": 16, "blocks": 1}, timesteps=10, epochs=1, ema=0.5, steps_per_execution=1).resolved()
    images, _ = load_images("fashion_mnist", "train", eval_data_dir, limit=64)
    schedule, denoiser, model = build_training(config, images.shape[1:])
    seen = {}

    class Record(keras.callbacks.Callback):
        def __init__(self, key):
            super().__init__()
            self.key = key

        def on_epoch_end(self, epoch, logs=None):
            seen[self.key] = denoiser.get_weights()[0].copy()
            seen[self.key + " averages"] = [np.asarray(v) for v in model.optimizer.variables if v.path.endswith("_average")]

    from keras_diffusion import reverse

    draw = reverse.sample
    monkeypatch.setattr(reverse, "sample", lambda *a, **k: (seen.setdefault("scored", denoiser.get_weights()[0].copy()), draw(*a, **k))[1])
    fid = metrics.FIDCallback(schedule, config.scaling, n=130, steps=2, data_dir=eval_data_dir)
    # 4 steps with EMA momentum 0.5: the average lags the weights
    history = model.fit(make_dataset(images, 16, config.scaling), epochs=1, verbose=0, callbacks=[Record("before"), fid, Record("after")])
    assert math.isfinite(history.history["fid"][0])
    # the raw weights are back (Keras swaps by adding and subtracting: round-off of an ulp or so)
    np.testing.assert_allclose(seen["after"], seen["before"], rtol=0, atol=1e-7)
    assert not np.array_equal(seen["scored"], seen["before"])  # they were not what was scored ...
    averages = [a for a in seen["before averages"] if a.shape == seen["scored"].shape]
    assert any(np.allclose(seen["scored"], a, rtol=0, atol=1e-7) for a in averages)  # ... their EMA was
