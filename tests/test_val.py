"""--val: a validation loss on held-out test images, with the same draws every epoch; and the time budget."""

import numpy as np
import pytest

from keras_diffusion import train
from keras_diffusion.config import TrainConfig
from keras_diffusion.plotting import read_history

TINY = ["--model", "mlp", "--model-kwargs", '{"hidden": 32, "blocks": 1}', "--limit", "256", "--timesteps", "20", "--n-samples", "2"]


def test_val_loss_goes_to_history_each_epoch(fake_data_dir, tmp_path):
    out = tmp_path / "val_run"
    assert train.main(TINY + ["--epochs", "2", "--val", "64", "--data-dir", str(fake_data_dir), "--out", str(out)]) == 0
    history = read_history(out / "history.csv")
    assert len(history["val_loss"]) == 2 and all(np.isfinite(history["val_loss"])) and all(v > 0 for v in history["val_loss"])


def test_the_validation_draws_are_fixed():
    """Evaluated twice, the same model scores the same val loss: only the model can move the curve."""
    import keras

    from keras_diffusion.data import validation_dataset
    from keras_diffusion.training import build_training

    config = TrainConfig(model="mlp", model_kwargs={"hidden": 16, "blocks": 1}, timesteps=20).resolved()
    _, _, model = build_training(config, (28, 28, 1))
    images = np.random.default_rng(1).integers(0, 256, (50, 28, 28, 1), dtype=np.uint8)
    data = validation_dataset(images, 16, config.scaling, 20, seed=3)
    first, second = (model.evaluate(data, verbose=0, return_dict=True)["loss"] for _ in range(2))
    assert first == pytest.approx(second, rel=1e-6)
    other = validation_dataset(images, 16, config.scaling, 20, seed=4)  # other draws, another value
    assert model.evaluate(other, verbose=0, return_dict=True)["loss"] != pytest.approx(first, rel=1e-6)
    keras.backend.clear_session()


@pytest.mark.parametrize("values, message", [({"val": -1}, "val must be >= 0"), ({"val": 10, "latent": True}, "drop --val for --latent")])
def test_bad_val_is_refused(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values).resolved()


def test_time_budget_stops_a_long_fit(monkeypatch):
    """A fake clock that moves 0.1 s a reading: the fit stops once 0.5 s have passed, not after its 100,000 epochs."""
    import itertools

    import keras

    from keras_diffusion import progress
    from keras_diffusion.progress import TimeBudget

    ticks = itertools.count()
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(ticks) / 10)
    budget = TimeBudget(0.5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((64, 4), np.float32)
    history = model.fit(x, x[:, :1], batch_size=8, epochs=100000, verbose=0, callbacks=[budget])
    assert len(history.history["loss"]) == 1 and model.stop_training  # 5 readings after the start: within the first epoch
    with pytest.raises(ValueError, match="must be > 0 seconds"):
        TimeBudget(0)
