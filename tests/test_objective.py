"""The x_0 and v objectives and min-SNR weights: the network predicts x̂_0 or v̂, the samplers still get ε̂,
the loss is ‖x_0 − x̂_0‖² or ‖v − v̂‖², each image weighted as Hang et al. 2023 say."""

import keras
import numpy as np
import pytest

from keras_diffusion import checkpoint, train
from keras_diffusion.config import TrainConfig
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.forward import q_sample
from keras_diffusion.models import build_model
from keras_diffusion.models.objective import EpsFromV, EpsFromX0, loss_weights, objective_of, parameterized, x0_parameterized
from keras_diffusion.reverse import predict_x0
from keras_diffusion.schedule import NoiseSchedule

SCHEDULE = NoiseSchedule.cosine(200)  # its last ᾱ is 6e-8: the hardest case for the conversion


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    eps = rng.standard_normal(x0.shape).astype("float32")
    t = np.array([0, 1, 50, 100, 150, 197, 198, 199][:n], "int32")
    return x0, eps, t


def test_eps_from_x0_is_the_forward_process_solved_for_eps():
    x0, eps, t = _batch()
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    x0_pred = np.random.default_rng(1).uniform(-1, 1, x0.shape).astype("float32")
    got = np.asarray(EpsFromX0(SCHEDULE.alpha_bars)([x_t, t, x0_pred]))
    a = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(got, (x_t - np.sqrt(a) * x0_pred) / np.sqrt(1 - a), rtol=1e-4)  # ε̂ reaches 100 at t = 0
    # the true x_0 gives back the true ε
    np.testing.assert_allclose(np.asarray(EpsFromX0(SCHEDULE.alpha_bars)([x_t, t, x0])), eps, atol=1e-3)


def test_reverse_predict_x0_undoes_the_conversion_at_every_t_to_float32_precision():
    x0, eps, t = _batch()
    x_t = q_sample(SCHEDULE, x0, t, eps)
    x0_pred = np.random.default_rng(2).uniform(-1, 1, x0.shape).astype("float32")
    eps_pred = EpsFromX0(SCHEDULE.alpha_bars)([x_t, t, x0_pred])
    back = np.asarray(predict_x0(SCHEDULE, x_t, t, eps_pred))
    # about 1e-3 at t = 199 (√ᾱ = 2.5e-4), far below the x_0 loss there (about the data's variance)
    np.testing.assert_allclose(back, x0_pred, atol=5e-3)
    np.testing.assert_allclose(back[:5], x0_pred[:5], atol=1e-4)


def test_conversion_stays_float32_under_a_mixed_policy():
    layer = EpsFromX0(SCHEDULE.alpha_bars)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = EpsFromX0(SCHEDULE.alpha_bars)
    finally:
        keras.config.set_dtype_policy("float32")
    x0, eps, t = _batch()
    out = layer([q_sample(SCHEDULE, x0, t, eps), t, x0])
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    again = EpsFromX0.from_config(layer.get_config())
    assert again.alpha_bars == layer.alpha_bars


def _tiny_x0_model():
    keras.utils.set_random_seed(0)
    network = build_model("mlp", hidden=32, blocks=1, emb_dim=8)
    return network, x0_parameterized(network, SCHEDULE)


def test_the_loss_of_an_x0_denoiser_is_the_x0_error_of_its_network():
    network, denoiser = _tiny_x0_model()
    assert objective_of(denoiser) == "x0" and objective_of(network) == "eps"
    assert len(denoiser.weights) == len(network.weights)  # the wrapper adds no weights
    model = DiffusionModel(denoiser, SCHEDULE, seed=0)
    assert model.objective == "x0"
    x0, eps, t = _batch()
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    want = np.mean((x0 - np.asarray(network([x_t, t]))) ** 2)
    got = float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps))
    assert got == pytest.approx(want, rel=1e-4)
    # and it is not the ε loss of the same predictions, which target="eps" asks for
    eps_loss = np.mean((eps - np.asarray(denoiser([x_t, t]))) ** 2)
    assert abs(eps_loss - got) > 0.1 * got
    assert float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps, target="eps")) == pytest.approx(eps_loss, rel=1e-4)


def test_x0_loss_is_the_eps_loss_weighted_by_one_over_the_snr():
    _, denoiser = _tiny_x0_model()
    x0, eps, t = _batch()
    t = np.full_like(t, 60)
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    eps_loss = np.mean((eps - np.asarray(denoiser([x_t, t]))) ** 2)
    x0_loss = float(DiffusionModel(denoiser, SCHEDULE).denoising_loss(x0, keras.ops.convert_to_tensor(t), eps))
    assert x0_loss == pytest.approx(eps_loss / SCHEDULE.snr[60], rel=1e-3)


def test_config_checks_the_objective():
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(model="mlp", objective="y").resolved()
    with pytest.raises(ValueError, match="--objective is for denoisers"):
        TrainConfig(model="noisy_classifier", objective="x0").resolved()
    with pytest.raises(ValueError, match="--loss-weight is for denoisers"):
        TrainConfig(model="noisy_classifier", loss_weight="min_snr").resolved()
    with pytest.raises(ValueError, match="min_snr_gamma must be a finite number > 0"):
        TrainConfig(model="mlp", min_snr_gamma=0.0).resolved()
    with pytest.raises(ValueError, match="lr_warmup must be >= 0"):
        TrainConfig(model="mlp", lr_warmup=-1).resolved()


# ---- v-prediction (Salimans & Ho 2022) -------------------------------------------------------


def test_eps_from_v_is_exact_and_the_true_v_gives_the_true_eps():
    x0, eps, t = _batch()
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    a = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1)
    v = np.sqrt(a) * eps - np.sqrt(1 - a) * x0  # v = √ᾱ·ε − √(1−ᾱ)·x_0
    np.testing.assert_allclose(np.asarray(EpsFromV(SCHEDULE.alpha_bars)([x_t, t, v])), eps, atol=1e-5)  # at every t, the last too
    v_pred = np.random.default_rng(4).standard_normal(x0.shape).astype("float32")
    got = np.asarray(EpsFromV(SCHEDULE.alpha_bars)([x_t, t, v_pred]))
    np.testing.assert_allclose(got, np.sqrt(1 - a) * x_t + np.sqrt(a) * v_pred, atol=1e-5)
    assert EpsFromV.from_config(EpsFromV(SCHEDULE.alpha_bars).get_config()).alpha_bars == list(SCHEDULE.alpha_bars)


def test_the_loss_of_a_v_denoiser_is_the_v_error_of_its_network():
    keras.utils.set_random_seed(0)
    network = build_model("mlp", hidden=32, blocks=1, emb_dim=8)
    denoiser = parameterized(network, SCHEDULE, "v")
    assert objective_of(denoiser) == "v" and len(denoiser.weights) == len(network.weights)
    model = DiffusionModel(denoiser, SCHEDULE, seed=0)
    x0, eps, t = _batch()
    t = t[:6]  # up to t = 197; at 199 recovering v̂ through x̂_0 loses float32 digits (as for x_0)
    x0, eps = x0[:6], eps[:6]
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    a = SCHEDULE.alpha_bars[t].reshape(-1, 1, 1, 1)
    want = np.mean((np.sqrt(a) * eps - np.sqrt(1 - a) * x0 - np.asarray(network([x_t, t]))) ** 2)
    assert float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps)) == pytest.approx(want, rel=2e-3)
    # ‖v − v̂‖² = ‖ε − ε̂‖² / ᾱ_t at one t
    t = np.full(6, 60, "int32")
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    eps_loss = np.mean((eps - np.asarray(denoiser([x_t, t]))) ** 2)
    assert float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps)) == pytest.approx(eps_loss / SCHEDULE.alpha_bars[60], rel=1e-3)


# ---- min-SNR-γ weights (Hang et al. 2023) ------------------------------------------------------


def test_min_snr_weights_are_the_papers_and_give_one_effective_weight():
    a = SCHEDULE.alpha_bars[[0, 20, 60, 120, 199]]
    snr = a / (1 - a)
    w = {objective: np.asarray(loss_weights(a, objective, "min_snr", 5.0)) for objective in ("eps", "x0", "v")}
    np.testing.assert_allclose(w["eps"], np.minimum(snr, 5) / snr, rtol=1e-6)
    np.testing.assert_allclose(w["x0"], np.minimum(snr, 5), rtol=1e-6)
    np.testing.assert_allclose(w["v"], np.minimum(snr, 5) / (snr + 1), rtol=1e-6)
    # each objective's loss is SNR, 1 or SNR + 1 times the x_0 error: the weighted losses all put min(SNR, 5) on it
    for objective, factor in (("eps", snr), ("x0", 1.0), ("v", snr + 1)):
        np.testing.assert_allclose(w[objective] * factor, np.minimum(snr, 5), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(loss_weights(a, "eps")), np.ones_like(a))
    with pytest.raises(ValueError, match="unknown loss weighting 'snr'"):
        loss_weights(a, "eps", "snr")


def test_a_min_snr_loss_is_the_weighted_mean_of_each_images_error():
    keras.utils.set_random_seed(0)
    network = build_model("mlp", hidden=32, blocks=1, emb_dim=8)
    model = DiffusionModel(network, SCHEDULE, seed=0, loss_weight="min_snr", min_snr_gamma=5.0)
    x0, eps, t = _batch()
    x_t = np.asarray(q_sample(SCHEDULE, x0, t, eps))
    per_image = np.mean((eps - np.asarray(network([x_t, t]))) ** 2, axis=(1, 2, 3))
    snr = SCHEDULE.alpha_bars[t] / (1 - SCHEDULE.alpha_bars[t])
    want = np.mean(per_image * np.minimum(snr, 5.0) / snr)
    assert float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps)) == pytest.approx(want, rel=1e-4)
    assert float(model.denoising_loss(x0, keras.ops.convert_to_tensor(t), eps, target="eps")) == pytest.approx(per_image.mean(), rel=1e-4)
    with pytest.raises(ValueError, match="unknown loss_weight"):
        DiffusionModel(network, SCHEDULE, loss_weight="snr")


def test_the_learning_rate_warms_up_and_decays_as_configured():
    from keras_diffusion.training import learning_rate

    assert learning_rate(TrainConfig(model="mlp", lr=1e-3, epochs=2)) == 1e-3  # constant: a plain number, as before
    cosine = learning_rate(TrainConfig(model="mlp", lr=1e-3, epochs=2, lr_schedule="cosine", lr_warmup=10), steps_per_epoch=55)
    at = {step: float(cosine(step)) for step in (0, 5, 10, 60, 110, 200)}
    assert at[0] == 0 and at[5] == pytest.approx(5e-4) and at[10] == pytest.approx(1e-3)
    assert at[60] == pytest.approx(0.5e-3, rel=1e-3) and at[110] == pytest.approx(0, abs=1e-9) and at[200] == pytest.approx(0, abs=1e-9)
    warm = learning_rate(TrainConfig(model="mlp", lr=1e-3, epochs=2, lr_warmup=4), steps_per_epoch=55)
    assert [float(warm(s)) for s in (0, 2, 4, 100)] == pytest.approx([0, 5e-4, 1e-3, 1e-3])


@pytest.mark.parametrize("objective", ["x0", "v"])
def test_an_x0_or_v_run_trains_saves_loads_and_samples(objective, fake_data_dir, tmp_path):
    out = tmp_path / objective
    argv = ["--model", "mlp", "--model-kwargs", '{"hidden": 32, "blocks": 1}', "--objective", objective, "--epochs", "1"]
    argv += ["--limit", "256", "--timesteps", "20", "--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]
    argv += ["--loss-weight", "min_snr", "--lr-schedule", "cosine", "--lr-warmup", "2"] if objective == "v" else []
    assert train.main(argv) == 0
    denoiser, schedule, config = checkpoint.load_run(out)
    assert config.objective == objective and objective_of(denoiser) == objective
    images = DiffusionModel(denoiser, schedule).generate(4, sampler="ddim", steps=5, seed=0)
    assert np.isfinite(np.asarray(images)).all()


def test_the_ladder_scores_every_objective_on_the_eps_loss():
    from keras_diffusion.bench import loss_against_t

    _, denoiser = _tiny_x0_model()
    images = np.random.default_rng(3).integers(0, 256, (16, 28, 28, 1)).astype("uint8")
    (got,) = loss_against_t(DiffusionModel(denoiser, SCHEDULE), images, "minus_one_one", [30], seed=0)
    x0 = images.astype("float32") / 127.5 - 1
    eps = np.random.default_rng(0).standard_normal(x0.shape).astype("float32")
    t = np.full(16, 30, "int32")
    want = np.mean((eps - np.asarray(denoiser([np.asarray(q_sample(SCHEDULE, x0, t, eps)), t]))) ** 2)
    assert got == pytest.approx(want, rel=1e-3)
