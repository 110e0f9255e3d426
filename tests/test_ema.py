"""The EMA warm-up: its momentum values, an average that follows the first steps, Keras' rule when off, and resuming."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_diffusion.ema import WarmupEMAAdam, ema_decay


def test_decay_values():
    n = np.array([0, 1, 2, 8, 90, 10_000])
    # diffusers: 0 for the first update, then (1 + n)/(10 + n) until it reaches the chosen decay
    np.testing.assert_allclose(ema_decay(n, 0.999), [0.0, 2 / 11, 3 / 12, 9 / 18, 91 / 100, 0.999])
    np.testing.assert_allclose(ema_decay(n, 0.9), [0.0, 2 / 11, 3 / 12, 9 / 18, 0.9, 0.9])
    np.testing.assert_allclose(ema_decay(n, 0.999, warmup=False), [0.0] + [0.999] * 5)  # Keras' own rule
    assert ema_decay(8990, 0.999) == pytest.approx(0.999)  # (1 + n)/(10 + n) = 0.999 at n = 8990


def run_steps(optimizer, steps):
    """Adam on one weight vector pulled away from its initialisation 0; returns (weights after each step, the EMA)."""
    w = keras.Variable(np.zeros(4, np.float32))
    optimizer.build([w])
    seen = []
    for _ in range(steps):
        optimizer.apply([keras.ops.ones(4)], [w])  # a constant gradient: w walks down by about lr a step
        seen.append(np.asarray(w)[0])
    return np.array(seen), np.asarray(optimizer._model_variables_moving_average[0])[0]


def test_the_average_follows_the_first_steps_not_the_initialisation():
    steps = 30
    weights, average = run_steps(WarmupEMAAdam(0.1, use_ema=True, ema_momentum=0.999), steps)
    expected = 0.0
    for n, w in enumerate(weights):  # the recursion, with the momentum of each step
        m = ema_decay(n, 0.999)
        expected = m * expected + (1 - m) * w
    assert average == pytest.approx(expected, rel=1e-5)
    # after 30 steps the average sits among the recent weights (about 2/3 of the way from the first to
    # the last), while a fixed momentum 0.999 keeps it at the weights of the first step
    progress = (average - weights[0]) / (weights[-1] - weights[0])
    assert 0.5 < progress < 0.9
    _, fixed = run_steps(keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.999), steps)
    assert (fixed - weights[0]) / (weights[-1] - weights[0]) < 0.02


def test_without_warmup_it_is_keras_adam():
    _, ours = run_steps(WarmupEMAAdam(0.1, use_ema=True, ema_momentum=0.99, ema_warmup=False), 12)
    _, keras_own = run_steps(keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.99), 12)
    assert ours == pytest.approx(keras_own, rel=1e-6)


def test_round_trips_its_config():
    opt = WarmupEMAAdam(3e-4, use_ema=True, ema_momentum=0.995, ema_warmup=False)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(clone, WarmupEMAAdam) and clone.ema_warmup is False and clone.ema_momentum == 0.995


def test_training_warms_up_and_a_saved_state_resumes_the_average(tmp_path):
    """build_training uses the warm-up; save_state/load_state carry the average and the step count n."""
    from keras_diffusion import checkpoint
    from keras_diffusion.config import TrainConfig
    from keras_diffusion.training import build_training

    config = TrainConfig(model="mlp_seed", model_kwargs={"hidden": 8}, ema=0.999, timesteps=20, steps_per_execution=1).resolved()
    _, _, model = build_training(config, (28, 28, 1))
    assert isinstance(model.optimizer, WarmupEMAAdam) and model.optimizer.ema_warmup
    x = np.random.default_rng(0).random((40, 28, 28, 1)).astype(np.float32)
    model.fit(x, batch_size=8, epochs=1, verbose=0)  # 5 steps
    averages = [np.asarray(v) for v in model.optimizer._model_variables_moving_average]
    checkpoint.save_state(tmp_path, model, 1)

    _, _, resumed = build_training(config, (28, 28, 1))
    checkpoint.load_state(tmp_path, resumed)
    assert int(resumed.optimizer.iterations) == 5
    for a, b in zip(averages, resumed.optimizer._model_variables_moving_average):
        np.testing.assert_array_equal(a, np.asarray(b))
    # --no-ema-warmup gives Keras' fixed momentum back
    _, _, plain = build_training(dataclasses.replace(config, ema_warmup=False), (28, 28, 1))
    assert plain.optimizer.ema_warmup is False
