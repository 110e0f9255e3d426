"""Class-conditional denoisers, classifier-free guidance and classifier guidance."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_diffusion import evaluate, sample as sample_cli, train
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.guidance import cfg_eps, classifier_eps, classifier_gradient
from keras_diffusion.models import build_model
from keras_diffusion.models.embeddings import num_classes_of
from keras_diffusion.reverse import ddim_step, sample, timestep_sequence
from keras_diffusion.schedule import NoiseSchedule

SCHEDULE = NoiseSchedule.cosine(20)
TINY = dict(widths=(8, 16), attention=False)


@pytest.fixture(scope="module")
def conditional():
    return build_model("unet", num_classes=10, **TINY)


@pytest.fixture(scope="module")
def classifier():
    return build_model("noisy_classifier", widths=(8, 16))


class FakeDenoiser:
    """ε̂ = x·(y + 1)/10, and a record of every batch it was called on."""

    def __init__(self):
        self.batches = []

    def __call__(self, inputs):
        x, _, y = inputs
        self.batches.append(int(x.shape[0]))
        return x * tf.reshape(tf.cast(y, tf.float32) + 1, (-1, 1, 1, 1)) / 10


def test_conditional_unet_shapes_and_null_label(conditional):
    assert num_classes_of(conditional) == 10 and num_classes_of(build_model("unet", **TINY)) is None
    assert [tuple(i.shape) for i in conditional.inputs] == [(None, 28, 28, 1), (None,), (None,)]
    x = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype(np.float32)
    t = np.array([0, 7, 19], np.int32)
    for y in ([0, 4, 9], [10, 10, 10]):  # 10 is the null label
        out = np.asarray(conditional([x, t, np.array(y, np.int32)]))
        assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # the zero-initialised output layer makes every ε̂ 0 at first; give it weights so the label can show
    conditional.layers[-1].kernel.assign(np.random.default_rng(1).standard_normal(conditional.layers[-1].kernel.shape) * 0.1)
    a = np.asarray(conditional([x, t, np.array([0, 0, 0], np.int32)]))
    b = np.asarray(conditional([x, t, np.array([5, 5, 5], np.int32)]))
    assert np.abs(a - b).max() > 1e-4, "the label must change ε̂"


def test_label_dropout_rate(conditional):
    model = DiffusionModel(conditional, SCHEDULE, seed=0, cond_drop=0.3)
    labels = tf.constant(np.arange(20000) % 10, tf.int32)
    dropped = np.asarray(model.drop_labels(labels))
    kept = dropped != 10
    assert abs(np.mean(~kept) - 0.3) < 0.015
    np.testing.assert_array_equal(dropped[kept], np.arange(20000)[kept] % 10)  # the others are untouched


def test_cfg_matches_a_hand_computation_in_one_batch_of_2B():
    fake, w = FakeDenoiser(), 2.5
    x = tf.constant(np.random.default_rng(0).standard_normal((4, 28, 28, 1)), tf.float32)
    t, y = tf.constant([3, 3, 3, 3]), tf.constant([0, 1, 2, 9])
    got = np.asarray(cfg_eps(fake, x, t, y, 10, w))
    scale = np.array([1, 2, 3, 10], np.float32).reshape(-1, 1, 1, 1) / 10
    want = (1 + w) * x.numpy() * scale - w * x.numpy() * 11 / 10  # ε(x, y) and ε(x, ∅ = 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert fake.batches == [8]


def test_cfg_with_w0_is_the_conditional_prediction_exactly():
    fake = FakeDenoiser()
    x = tf.constant(np.random.default_rng(1).standard_normal((3, 28, 28, 1)), tf.float32)
    t, y = tf.constant([5, 5, 5]), tf.constant([1, 4, 7])
    np.testing.assert_array_equal(np.asarray(cfg_eps(fake, x, t, y, 10, 0.0)), np.asarray(fake([x, t, y])))
    assert fake.batches == [3, 3]  # one pass of B for w = 0, not two


def test_cfg_through_ddim_equals_a_hand_loop(conditional):
    w, y = 2.0, np.array([3, 8], np.int32)
    x_T = np.random.default_rng(2).standard_normal((2, 28, 28, 1)).astype(np.float32)
    got = sample(conditional, SCHEDULE, 2, sampler="ddim", steps=5, labels=y, guidance=w, x_T=x_T, clip=(-1, 1))
    seq = timestep_sequence(20, 5)
    x = tf.constant(x_T)
    for t, t_prev in zip(seq, list(seq[1:]) + [-1]):
        tt = tf.fill([2], int(t))
        eps = (1 + w) * conditional([x, tt, tf.constant(y)]) - w * conditional([x, tt, tf.fill([2], 10)])
        x = ddim_step(SCHEDULE, x, int(t), int(t_prev), eps, clip=(-1, 1))
    # one batch of 2B against two of B: float32 sums in another order, amplified over 5 steps
    np.testing.assert_allclose(got, x.numpy(), atol=2e-3)


def test_cfg_through_ddpm_changes_the_draw(conditional):
    kwargs = dict(seed=4, labels=np.array([1, 2], np.int32), clip=(-1, 1))
    plain = sample(conditional, SCHEDULE, 2, guidance=0.0, **kwargs)
    guided = sample(conditional, SCHEDULE, 2, guidance=3.0, **kwargs)
    assert np.isfinite(guided).all() and np.abs(plain - guided).max() > 1e-4
    np.testing.assert_array_equal(plain, sample(conditional, SCHEDULE, 2, guidance=0.0, **kwargs))


def test_classifier_gradient_raises_log_p(classifier):
    rng = np.random.default_rng(3)
    x = tf.constant(rng.standard_normal((4, 28, 28, 1)), tf.float32)
    t, y = tf.constant([0, 5, 10, 19]), tf.constant([2, 7, 0, 9])

    def log_p(images):
        return tf.gather(tf.nn.log_softmax(classifier([images, t])), y, batch_dims=1).numpy()

    grad = classifier_gradient(classifier, x, t, y)
    assert grad.shape == x.shape
    step = 1e-2 / np.abs(grad.numpy()).max()
    assert np.all(log_p(x + step * grad) > log_p(x))


def test_classifier_eps_is_the_formula(classifier):
    x = tf.constant(np.random.default_rng(5).standard_normal((2, 28, 28, 1)), tf.float32)
    t, y, eps = tf.constant([4, 12]), tf.constant([1, 6]), tf.zeros((2, 28, 28, 1))
    got = np.asarray(classifier_eps(SCHEDULE, eps, classifier, x, t, y, 2.0))
    sigma = np.sqrt(1 - SCHEDULE.alpha_bars[[4, 12]]).reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(got, -2.0 * sigma * classifier_gradient(classifier, x, t, y).numpy(), rtol=1e-5, atol=1e-7)


def test_classifier_guidance_works_with_an_unconditional_model(classifier):
    unconditional = build_model("unet", **TINY)
    out = sample(unconditional, SCHEDULE, 3, sampler="ddim", steps=4, labels=5, classifier=classifier, classifier_scale=1.0, seed=0)
    assert out.shape == (3, 28, 28, 1) and np.isfinite(out).all()


def test_classifier_guidance_runs_a_conditional_model_with_its_null_label(classifier):
    from keras_diffusion.guidance import Guide

    fake = FakeDenoiser()
    fake.get_layer = lambda name: type("Embedding", (), {"input_dim": 11})()  # a conditional model with 10 classes
    x = tf.constant(np.random.default_rng(6).standard_normal((2, 28, 28, 1)), tf.float32)
    t, y = tf.constant([3, 3]), tf.constant([2, 5])
    guide = Guide(fake, labels=np.array([2, 5]), classifier=classifier, classifier_scale=1.5)
    got = np.asarray(guide.eps(fake, SCHEDULE, x, t, y))
    want = classifier_eps(SCHEDULE, fake([x, t, tf.fill([2], 10)]), classifier, x, t, y, 1.5)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-6)


def test_clear_errors(conditional, classifier):
    unconditional = build_model("unet", **TINY)
    with pytest.raises(ValueError, match="labels were given to an unconditional denoiser"):
        sample(unconditional, SCHEDULE, 2, labels=[1, 2])
    with pytest.raises(ValueError, match="needs a class-conditional denoiser"):
        sample(unconditional, SCHEDULE, 2, guidance=1.0, labels=1)
    with pytest.raises(ValueError, match="guidance needs labels"):
        sample(conditional, SCHEDULE, 2, guidance=1.0)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 9\], got \[10, 1\]"):
        sample(conditional, SCHEDULE, 2, guidance=1.0, labels=[10, 1])
    with pytest.raises(ValueError, match="classifier_scale needs classifier="):
        sample(unconditional, SCHEDULE, 2, labels=1, classifier_scale=1.0)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        sample(conditional, SCHEDULE, 2, guidance=-1.0, labels=1)
    images = np.zeros((4, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match="this denoiser is class-conditional"):
        DiffusionModel(conditional, SCHEDULE).unpack(images)
    with pytest.raises(ValueError, match="this denoiser is unconditional but the batches carry labels"):
        DiffusionModel(unconditional, SCHEDULE).unpack((images, np.zeros(4, np.int32)))


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, fake_data_dir):
    """A tiny conditional run and a tiny noisy-classifier run, a few steps each."""
    root = tmp_path_factory.mktemp("guided")
    common = ["--epochs", "1", "--limit", "128", "--batch-size", "32", "--data-dir", str(fake_data_dir), "--timesteps", "20", "--no-xla"]
    kwargs = json.dumps({"widths": [8, 16], "attention": False})
    assert train.main(["--conditional", "--model-kwargs", kwargs, "--n-samples", "10", "--out", str(root / "cond")] + common) == 0
    assert train.main(["--classifier", "--model-kwargs", '{"widths": [8, 16]}', "--out", str(root / "clf")] + common) == 0
    return root / "cond", root / "clf"


def test_conditional_run_records_its_settings(tiny_runs):
    cond, clf = tiny_runs
    config = json.loads((cond / "config.json").read_text())["train"]
    assert config["conditional"] is True and config["cond_drop"] == 0.1
    report = json.loads((clf / "accuracy.json").read_text())
    assert report["timesteps"][0] == 0 and report["timesteps"][-1] == 19 and len(report["accuracy"]) == len(report["timesteps"])


def test_sample_label_and_label_all(tiny_runs, tmp_path):
    cond, clf = tiny_runs
    npz = tmp_path / "s.npz"
    args = ["--run", str(cond), "--sampler", "ddim", "--steps", "3", "--npz", str(npz)]
    assert sample_cli.main(args + ["--n", "4", "--label", "sneaker", "--guidance", "2"]) == 0
    assert np.load(npz)["images"].shape == (4, 28, 28, 1)
    assert sample_cli.main(args + ["--n", "20", "--label", "all", "--out", str(tmp_path / "grid.png")]) == 0
    assert np.load(npz)["images"].shape == (20, 28, 28, 1) and (tmp_path / "grid.png").stat().st_size
    assert sample_cli.main(args + ["--n", "2", "--label", "bag", "--classifier", str(clf), "--classifier-scale", "2"]) == 0


def test_sample_guidance_errors(tiny_runs, tiny_unconditional_run, capsys):
    cond, clf = tiny_runs
    assert sample_cli.cli.run(sample_cli.main, ["--run", str(cond), "--label", "sneakers"]) == 2
    assert "unknown label 'sneakers'" in capsys.readouterr().err
    assert sample_cli.cli.run(sample_cli.main, ["--run", str(tiny_unconditional_run), "--label", "bag"]) == 2
    assert "--label needs a run trained with --conditional" in capsys.readouterr().err
    assert sample_cli.cli.run(sample_cli.main, ["--run", str(clf)]) == 2
    assert "is a noisy classifier, not a denoiser" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        sample_cli.main(["--run", str(cond), "--guidance", "2"])
    assert exit_info.value.code == 2 and "guidance needs --label" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_unconditional_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("plain") / "run"
    argv = ["--model", "mlp_seed", "--epochs", "1", "--limit", "64", "--batch-size", "32", "--timesteps", "20"]
    assert train.main(argv + ["--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]) == 0
    return out


def test_evaluate_label_accuracy(tiny_runs, fake_data_dir, capsys):
    cond, _ = tiny_runs
    argv = ["--run", str(cond), "--n", "200", "--label-accuracy", "--guidance", "1", "--sampler", "ddim", "--steps", "2"]
    assert evaluate.main(argv + ["--data-dir", str(fake_data_dir)]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert 0 <= result["label_accuracy"] <= 1 and len(result["label_accuracy_per_class"]) == 10
    assert result["guidance"] == 1 and result["n"] == 200
