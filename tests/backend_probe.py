"""What tests/test_backends.py computes on each Keras backend: run as a script under KERAS_BACKEND, or imported on TensorFlow.

    KERAS_BACKEND=jax python tests/backend_probe.py OUT.npz [WEIGHTS_DIR]
    KERAS_BACKEND=jax python tests/backend_probe.py --cli keras_diffusion.sample --pretrained ...   # + a last line {"tensorflow": ...}

Every input comes from a fixed NumPy generator, so the three backends see the
same numbers; only their random streams differ, which the deterministic
results here never read. With WEIGHTS_DIR the tiny models load the weights
that TensorFlow saved there (weights are backend-neutral); without it they are
built from a fixed seed and saved there by the caller.
"""

import sys

import numpy as np

SCHEDULE_T = 50


def _inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)
    return {
        "x": x,
        "x0": np.clip(rng.standard_normal(x.shape), -1, 1).astype(np.float32),
        "eps": rng.standard_normal(x.shape).astype(np.float32),
        "z": rng.standard_normal(x.shape).astype(np.float32),
        "t": np.array([0, 17, 49], np.int32),
        "t_prev": np.array([-1, 9, 30], np.int32),
    }


def step_results():
    """Every step rule of the core on the same inputs: {name: float32 array}."""
    from keras import ops

    from keras_diffusion import backends, samplers
    from keras_diffusion.editing import ddim_inverse_step
    from keras_diffusion.forward import q_sample, q_step
    from keras_diffusion.reverse import ddim_step, ddpm_step, posterior_mean, predict_x0
    from keras_diffusion.schedule import NoiseSchedule

    s, v = NoiseSchedule.cosine(SCHEDULE_T), _inputs()
    x, x0, eps, z, t, t_prev = v["x"], v["x0"], v["eps"], v["z"], v["t"], v["t_prev"]
    out = {
        "q_sample": q_sample(s, x0, t, eps),
        "q_step": q_step(s, x0, t, eps),
        "predict_x0": predict_x0(s, ops.convert_to_tensor(x), t, ops.convert_to_tensor(eps)),
        "posterior_mean": posterior_mean(s, ops.convert_to_tensor(x0), ops.convert_to_tensor(x), t),
        "ddpm_beta": ddpm_step(s, x, t, eps, z),
        "ddpm_posterior_clip": ddpm_step(s, x, t, eps, z, variance="posterior", clip=(-1, 1)),
        "ddim_eta0": ddim_step(s, x, t, t_prev, eps),
        "ddim_eta1_clip": ddim_step(s, x, t, t_prev, eps, eta=1.0, noise=z, clip=(-1, 1)),
        "ddim_inverse": ddim_inverse_step(s, x, t_prev, t, eps),
    }

    def eps_fn(x_t, t):  # a fixed "network": smooth in x and t, so every rule's arithmetic shows
        return 0.5 * x_t + 0.01 * ops.cast(t, "float32")

    for name in samplers.SAMPLERS:
        rule = samplers.entry(name).load()(s, 5, churn=1.0 if name == "heun" else 0.0, eta=0.5 if name == "ddim" else 0.0)
        history = rule.start(ops.convert_to_tensor(x))
        move = samplers.Move(ops.convert_to_tensor(17, "int32"), ops.convert_to_tensor(9, "int32"), ops.convert_to_tensor(30, "int32"))
        out[f"rule_{name}"], _ = rule.step(eps_fn, ops.convert_to_tensor(x), move, ops.convert_to_tensor(z), history)
    return {k: np.asarray(backends.to_numpy(value), np.float32) for k, value in out.items()}


def tiny_models(weights_dir=None):
    """(unconditional U-Net, conditional U-Net, noise-aware classifier), tiny, with TensorFlow's saved weights when given."""
    import keras

    from keras_diffusion import models

    keras.utils.set_random_seed(0) if weights_dir is None else None
    built = (
        models.build_model("unet", image_shape=(8, 8, 1), widths=(8, 16), timesteps=SCHEDULE_T),
        models.build_model("unet", image_shape=(8, 8, 1), widths=(8, 16), timesteps=SCHEDULE_T, num_classes=3),
        models.build_model("noisy_classifier", image_shape=(8, 8, 1), widths=(8, 16), timesteps=SCHEDULE_T, num_classes=3),
    )
    for i, model in enumerate(built):
        if weights_dir is not None:
            model.load_weights(f"{weights_dir}/model{i}.weights.h5")
    return built


def sampling_results(weights_dir=None):
    """Deterministic draws from a fixed x_T with every ODE sampler, guided and not: {name: float32 array}."""
    from keras_diffusion import editing
    from keras_diffusion.reverse import sample
    from keras_diffusion.schedule import NoiseSchedule

    s, x_T = NoiseSchedule.cosine(SCHEDULE_T), _inputs()["x"]
    unet, conditional, classifier = tiny_models(weights_dir)
    out = {
        "ddim": sample(unet, s, 3, sampler="ddim", steps=8, x_T=x_T),
        "dpmpp_2m": sample(unet, s, 3, sampler="dpmpp_2m", steps=8, spacing="karras", x_T=x_T, clip=(-1, 1)),
        "heun": sample(unet, s, 3, sampler="heun", steps=4, x_T=x_T),
        "cfg": sample(conditional, s, 3, sampler="ddim", steps=8, x_T=x_T, labels=[0, 1, 2], guidance=2.0),
        "classifier_guidance": sample(unet, s, 3, sampler="ddim", steps=8, x_T=x_T, labels=[0, 1, 2], classifier=classifier, classifier_scale=1.0),
        "invert": editing.invert(unet, s, np.clip(x_T, -1, 1), steps=8),
    }
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def seeded_results(weights_dir=None):
    """Draws that read the backend's random stream: each twice with one seed, once with another."""
    from keras_diffusion import editing
    from keras_diffusion.reverse import sample
    from keras_diffusion.schedule import NoiseSchedule

    s = NoiseSchedule.cosine(12)  # short chains: PyTorch runs them eagerly, a call at a time
    unet, _, _ = tiny_models(weights_dir)
    out = {}
    for name, kwargs in (("ddpm", dict(sampler="ddpm")), ("sde", dict(sampler="dpmpp_2m_sde", steps=5))):
        out[f"{name}_a"], out[f"{name}_b"] = (sample(unet, s, 4, seed=7, batch_size=2, **kwargs) for _ in range(2))
        out[f"{name}_other"] = sample(unet, s, 4, seed=8, batch_size=2, **kwargs)
    images = np.clip(_inputs()["x0"], -1, 1)
    out["inpaint_images"] = images
    out["inpaint"] = editing.inpaint(unet, s, images, "right", seed=3)
    out["inpaint_mask"] = np.asarray(editing.make_mask("right", 3, images.shape[1:]), np.float32)
    return {k: np.asarray(v, np.float32) for k, v in out.items()}


def main(out, weights_dir=None):
    results = {**step_results(), **{f"sample_{k}": v for k, v in sampling_results(weights_dir).items()}}
    results.update({f"seeded_{k}": v for k, v in seeded_results(weights_dir).items()})
    np.savez(out, tensorflow_imported=np.array("tensorflow" in sys.modules), **results)


def cli(module, *args):
    """Run a command line as ``python -m module args``, then print whether TensorFlow got imported, as a JSON line."""
    import json
    import runpy

    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__")
    except SystemExit as done:
        if done.code:
            raise
    print(json.dumps({"tensorflow": "tensorflow" in sys.modules}))


if __name__ == "__main__":
    cli(*sys.argv[2:]) if sys.argv[1] == "--cli" else main(*sys.argv[1:])
