"""``python -m keras_diffusion.bench speed``: the classic loop against the package, on the same model.

The classic loop is re-implemented here, clearly labelled, as the baseline:
``train_on_batch`` with NumPy noise, and one ``model.predict`` per reverse
step for one image. The package trains as ``train`` does (``build_training``:
the model's batch size, XLA setting and steps per compiled call; noising
inside the compiled step) and samples a whole batch in one ``tf.function``.
The floor of sampling is T calls of the compiled denoiser on the same batch;
the ratio to it is the loop's overhead.
"""

import dataclasses

import resource
import time

import keras
import numpy as np
import tensorflow as tf

from keras_diffusion.config import TrainConfig
from keras_diffusion.data import load_images, make_dataset
from keras_diffusion.models import build_model
from keras_diffusion.reverse import sample
from keras_diffusion.schedule import NoiseSchedule
from keras_diffusion.training import build_training


def classic_train(model, schedule, x0, batch_size, steps, rng):
    """The classic demo's training loop: NumPy noise and train_on_batch. Returns images/s."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    a, b = schedule.sqrt_alpha_bars.astype(np.float32), schedule.sqrt_one_minus_alpha_bars.astype(np.float32)

    def step(i):
        batch = x0[(i * batch_size) % (len(x0) - batch_size) :][:batch_size]
        t = rng.integers(0, schedule.timesteps, len(batch))
        noise = rng.standard_normal(batch.shape).astype(np.float32)
        x_t = a[t, None, None, None] * batch + b[t, None, None, None] * noise
        model.train_on_batch([x_t, t.astype(np.int32)], noise)

    step(0)  # warm-up
    start = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    return steps * batch_size / (time.perf_counter() - start)


def classic_sample_seconds_per_image(model, schedule, rng, measured_steps=20):
    """The classic demo's sampler: one model.predict per step, one image. Timed for a few steps, scaled to T."""
    x = rng.standard_normal((1, 28, 28, 1)).astype(np.float32)
    model.predict([x, np.array([0], np.int32)], verbose=0)  # warm-up
    start = time.perf_counter()
    for t in range(schedule.timesteps - 1, schedule.timesteps - 1 - measured_steps, -1):
        eps = model.predict([x, np.array([t], np.int32)], verbose=0)
        alpha, beta, abar = schedule.alphas[t], schedule.betas[t], schedule.alpha_bars[t]
        x = (x - beta / np.sqrt(1 - abar) * eps) / np.sqrt(alpha) + np.sqrt(beta) * rng.standard_normal(x.shape)
        x = x.astype(np.float32)
    return (time.perf_counter() - start) / measured_steps * schedule.timesteps


def package_train(config, images, steps, windows=1):
    """The package's training, built as ``train`` builds it, on its tf.data pipeline. Returns (images/s, denoiser).

    The rate is the best of ``windows`` runs of ``steps`` steps: other work on a
    shared machine only ever slows a window down.
    """
    schedule, denoiser, diffusion = build_training(config, images.shape[1:])
    dataset = make_dataset(images, config.batch_size, config.scaling, seed=config.seed).repeat()
    # warm-up: tracing and compilation are not what we measure
    diffusion.fit(dataset, steps_per_epoch=max(3, config.steps_per_execution), epochs=1, verbose=0, shuffle=False)
    best = 0.0
    for _ in range(windows):
        before = int(diffusion.optimizer.iterations.numpy())
        start = time.perf_counter()
        diffusion.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        # fit runs whole compiled calls, so it may take a few more steps than asked: count them
        best = max(best, (int(diffusion.optimizer.iterations.numpy()) - before) * config.batch_size / seconds)
    return best, denoiser


def sampling(model, schedule, n, jit=False, repeat=2):
    """(package seconds for n images, floor seconds = T compiled denoiser calls on the same batch)."""
    sample(model, schedule, n, seed=0, jit_compile=jit)  # warm-up: tracing
    start = time.perf_counter()
    for _ in range(repeat):
        sample(model, schedule, n, seed=0, jit_compile=jit)
    seconds = (time.perf_counter() - start) / repeat
    call = tf.function(lambda x, t: model([x, t]), jit_compile=jit)
    x, t = tf.random.normal((n, 28, 28, 1)), tf.fill([n], 5)
    call(x, t).numpy()
    start = time.perf_counter()
    for _ in range(20):
        out = call(x, t)
    out.numpy()
    floor = (time.perf_counter() - start) / 20 * schedule.timesteps
    return seconds, floor


def speed(args):
    """Measure and print the table; write JSON when asked."""
    from keras_diffusion.cpu import write_results

    rng = np.random.default_rng(args.seed)
    keras.utils.set_random_seed(args.seed)
    schedule = NoiseSchedule.linear(200)
    images, _ = load_images("fashion_mnist", "train", args.data_dir, limit=args.limit or 20000)
    x0 = images.astype(np.float32) / 255.0
    steps = 30 if args.quick else 200
    n = args.sample_batch
    rows = {}
    config = TrainConfig(model="mlp_seed", seed=args.seed).resolved()  # what train uses: batch 128, ...
    batch, per_call = config.batch_size, config.steps_per_execution
    classic = build_model("mlp_seed")
    classic_rows = (f"classic loop: mlp_seed train images/s (train_on_batch, batch {batch})", "classic loop: mlp_seed sample images/s (predict per step, 1 image)")
    rows[classic_rows[0]] = classic_train(classic, schedule, x0, batch, steps, rng)
    rows[classic_rows[1]] = 1 / classic_sample_seconds_per_image(classic, schedule, rng)
    # one step a call is what fit did before steps_per_execution: the rows side by side show what it buys
    rate, _ = package_train(dataclasses.replace(config, steps_per_execution=1), images, steps)
    rows[f"package: mlp_seed train images/s (fit, batch {batch}, 1 step a call)"] = rate
    for xla in (False, True):
        tag = " + XLA" if xla else ""
        rate, mlp = package_train(dataclasses.replace(config, xla=xla), images, steps)
        rows[f"package: mlp_seed train images/s (fit, batch {batch}, {per_call} steps a call){tag}"] = rate
        seconds, floor = sampling(mlp, schedule, n, xla)
        rows[f"package: mlp_seed sample images/s (batch {n}){tag}"] = n / seconds
        rows[f"package: mlp_seed sampling overhead vs T compiled calls{tag}"] = seconds / floor
    unet_config = TrainConfig(model="unet", seed=args.seed).resolved()
    rate, unet = package_train(unet_config, images, steps // 4)
    rows[f"package: unet train images/s (fit, batch {unet_config.batch_size}){' + XLA' * unet_config.xla}"] = rate
    seconds, floor = sampling(unet, NoiseSchedule.cosine(200), n, repeat=1)
    rows[f"package: unet sample images/s (batch {n})"] = n / seconds
    rows[f"package: unet ms per denoiser call (batch {n})"] = floor / 200 * 1000
    rows["package: unet sampling overhead vs T compiled calls"] = seconds / floor
    rows["peak memory (RSS, MiB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best = max(rows[f"package: mlp_seed sample images/s (batch {n})"], rows[f"package: mlp_seed sample images/s (batch {n}) + XLA"])
    rows["sampling speed-up over the classic loop (mlp_seed)"] = best / rows[classic_rows[1]]
    train_rate = rows[f"package: mlp_seed train images/s (fit, batch {batch}, {per_call} steps a call)"]
    rows["training speed-up over the classic loop (mlp_seed)"] = train_rate / rows[classic_rows[0]]
    for name, value in rows.items():
        print(f"{name:75s} {value:12,.2f}")
    if args.json:
        write_results(args.json, {"quick": args.quick, "sample_batch": n, "results": rows})
    return 0
