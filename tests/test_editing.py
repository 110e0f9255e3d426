"""Editing: the constraint in the reverse loop, inpainting (RePaint), super-resolution (ILVR), SDEdit, and the edit command."""

import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_diffusion import cli, edit, editing, train
from keras_diffusion.models import build_model
from keras_diffusion.reverse import ddim_step, sample, step_plan, timestep_sequence
from keras_diffusion.schedule import NoiseSchedule

SHAPE = (8, 8, 1)  # small images: every method works at any size the factor divides
T = 20


def images(n=4, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n,) + SHAPE).astype(np.float32)


def halving_denoiser(shape=SHAPE):
    """A fake denoiser, ε̂ = x_t / 2: deterministic and simple enough to follow by hand."""
    x_t = keras.Input(shape, name="x_t")
    t = keras.Input((), dtype="int32", name="t")
    eps = keras.layers.Rescaling(0.5)(x_t)
    return keras.Model([x_t, t], eps)


@pytest.fixture(scope="module")
def unet():
    """An untrained tiny U-Net: its ε̂ is not a denoiser's, but every code path runs."""
    return build_model("unet", image_shape=SHAPE, timesteps=T, widths=[8, 16], blocks=1, attention=False)


@pytest.fixture(scope="module")
def mlp():
    """An untrained MLP whose ε̂ is far from zero (the U-Net's last layer starts at zero)."""
    return build_model("mlp_seed", image_shape=SHAPE, timesteps=T, hidden=16)


class Drift:
    """A constraint with no randomness: x_t ← 0.9·x_t + 0.01·(t + 1), to check where and with which t it is applied."""

    key = ("drift",)

    def inputs(self, start, size):
        return {}

    def apply(self, schedule, x, t, inputs, seed):
        return 0.9 * x + 0.01 * tf.cast(t + 1, tf.float32)


# --- the constraint mechanism -------------------------------------------------------------


def test_constraint_is_applied_after_every_step_with_the_next_timestep():
    schedule, denoiser, x_T = NoiseSchedule.cosine(T), halving_denoiser(), images(3)
    out = sample(denoiser, schedule, 3, sampler="ddim", steps=6, x_T=x_T, constraint=Drift(), image_shape=SHAPE)
    # the reference: a plain Python loop over the same DDIM steps (eq. 12), the constraint after each
    seq = timestep_sequence(T, 6)
    x = tf.constant(x_T)
    for t, t_prev in zip(seq, list(seq[1:]) + [-1]):
        x = ddim_step(schedule, x, t, t_prev, 0.5 * x)
        x = 0.9 * x + 0.01 * (t_prev + 1)
    np.testing.assert_allclose(out, x.numpy(), atol=1e-5)


def test_constraint_reaches_the_final_image_as_t_minus_1():
    class Stamp(Drift):
        key = ("stamp",)

        def apply(self, schedule, x, t, inputs, seed):
            return x * 0 + tf.cast(t, tf.float32)  # the state becomes the t it was given

    out, snaps = sample(halving_denoiser(), NoiseSchedule.cosine(T), 2, constraint=Stamp(), snapshots=[T - 1, 5], image_shape=SHAPE)
    np.testing.assert_array_equal(out, -1.0)  # the last state is x_0, t = −1
    np.testing.assert_array_equal(snaps[:, 0], T - 2)  # after the step at t, the state is x_{t−1}
    np.testing.assert_array_equal(snaps[:, 1], 4)


# --- inpainting -----------------------------------------------------------------------------


def test_masks_by_name_fill_the_named_region():
    right = editing.make_mask("right", 2, SHAPE)
    assert right.shape == (2,) + SHAPE and right[:, :, 4:].all() and not right[:, :, :4].any()
    assert editing.make_mask("top", 1, SHAPE)[0, :4].all() and not editing.make_mask("top", 1, SHAPE)[0, 4:].any()
    box = editing.make_mask("box", 1, SHAPE)[0, ..., 0]
    assert box.sum() == 16 and box[2:6, 2:6].all()  # the centre, half the side
    for name in ("left", "bottom"):
        np.testing.assert_array_equal(editing.make_mask(name, 1, SHAPE) + editing.make_mask({"left": "right", "bottom": "top"}[name], 1, SHAPE), 1)
    random = editing.make_mask("random", 3, SHAPE, seed=1)
    assert 0.2 < random.mean() < 0.8 and not np.array_equal(random[0], random[1])
    np.testing.assert_array_equal(random, editing.make_mask("random", 3, SHAPE, seed=1))


@pytest.mark.parametrize(
    "mask, match",
    [
        ("middle", "mask must be one of box, left, right, top, bottom, random"),
        (np.ones((7, 8)), r"mask must be \(8, 8\) or one per image \(2, 8, 8, 1\), got shape \(7, 8\)"),
        (np.ones((3, 8, 8, 1)), r"got shape \(3, 8, 8, 1\)"),
        (np.full((8, 8), 0.5), "mask must hold only 0 .keep. and 1 .fill."),
    ],
)
def test_bad_masks_are_refused(mask, match):
    with pytest.raises(ValueError, match=match):
        editing.make_mask(mask, 2, SHAPE)


@pytest.mark.parametrize("settings", [dict(), dict(sampler="ddim", steps=5), dict(resample=3, jump=4)], ids=["ddpm", "ddim", "repaint"])
def test_inpainting_keeps_known_pixels_exactly_and_changes_the_masked_ones(unet, settings):
    x, mask = images(5), editing.make_mask("random", 5, SHAPE, seed=2)
    # batch_size 2: each batch must get its own slice of the images and masks
    out = editing.inpaint(unet, NoiseSchedule.cosine(T), x, mask, seed=0, clip=(-1, 1), batch_size=2, **settings)
    known = np.broadcast_to(mask == 0, x.shape)
    np.testing.assert_array_equal(out[known], x[known])
    assert np.all(out[~known] != x[~known])


def test_repaint_with_one_resampling_is_replacement(unet):
    schedule, x = NoiseSchedule.cosine(T), images(3)
    replacement = sample(unet, schedule, 3, seed=4, constraint=editing.Replace(x, editing.make_mask("left", 3, SHAPE)), clip=(-1, 1))
    for jump in (1, 5):
        assert step_plan(timestep_sequence(T), jump, 1) == [(t, False) for t in range(T - 1, -1, -1)]
        np.testing.assert_array_equal(editing.inpaint(unet, schedule, x, "left", resample=1, jump=jump, seed=4, clip=(-1, 1)), replacement)
    resampled = editing.inpaint(unet, schedule, x, "left", resample=3, jump=5, seed=4, clip=(-1, 1))
    assert not np.allclose(resampled, replacement)  # r > 1 goes back up the chain: another path


def test_repaint_needs_ddpm(unet):
    with pytest.raises(ValueError, match="sampler='ddpm'"):
        editing.inpaint(unet, NoiseSchedule.cosine(T), images(1), "box", resample=2, sampler="ddim", steps=5)


def test_inpainting_works_with_a_conditional_denoiser():
    model = build_model("unet", image_shape=SHAPE, timesteps=T, widths=[8, 16], blocks=1, attention=False, num_classes=10)
    x, schedule = images(2), NoiseSchedule.cosine(T)
    for labels in (None, [3, 7]):  # None: the null label, an unconditional edit
        out = editing.inpaint(model, schedule, x, "bottom", seed=0, labels=labels)
        np.testing.assert_array_equal(out[:, :4], x[:, :4])


def test_editing_refuses_images_that_do_not_fit(unet):
    schedule = NoiseSchedule.cosine(T)
    with pytest.raises(ValueError, match=r"images must be \(N, 8, 8, 1\) to fit the denoiser, got shape \(2, 28, 28, 1\)"):
        editing.inpaint(unet, schedule, np.zeros((2, 28, 28, 1), np.float32), "box")
    with pytest.raises(ValueError, match="scale uint8 pixels with data.scale_images"):
        editing.img2img(unet, schedule, np.zeros((2,) + SHAPE, np.uint8), 0.5)


# --- super-resolution -----------------------------------------------------------------------


def test_low_pass_is_a_projection_onto_block_means():
    x = images(2)
    phi = editing.low_pass(x, 2).numpy()
    np.testing.assert_allclose(phi[0, :2, :2, 0], x[0, :2, :2, 0].mean(), rtol=1e-6)
    np.testing.assert_allclose(editing.low_pass(phi, 2).numpy(), phi, atol=1e-6)  # φ(φ(x)) = φ(x)


@pytest.mark.parametrize("factor", [2, 4])
def test_ilvr_keeps_the_low_frequencies_of_the_reference(mlp, factor):
    x = images(3)
    low = editing.downsample(x, factor).numpy()  # (3, 8/f, 8/f, 1)
    out = editing.super_resolve(mlp, NoiseSchedule.cosine(T), low, seed=0, clip=(-1, 1))
    assert out.shape == x.shape
    np.testing.assert_allclose(editing.low_pass(out, factor).numpy(), editing.low_pass(x, factor).numpy(), atol=1e-4)
    assert not np.allclose(out, editing.upsample(low, factor).numpy(), atol=1e-2)  # the model adds the detail


def test_super_resolve_refuses_a_factor_that_does_not_fit(mlp):
    schedule = NoiseSchedule.cosine(T)
    with pytest.raises(ValueError, match=r"factor must be an integer that divides 8 \(2, 4, 8\), got 3"):
        editing.super_resolve(mlp, schedule, np.zeros((1, 2, 2, 1), np.float32), factor=3)
    with pytest.raises(ValueError, match="factor 2 takes 4x4 images to 8x8, got 2x2"):
        editing.super_resolve(mlp, schedule, np.zeros((1, 2, 2, 1), np.float32), factor=2)


# --- image-to-image -------------------------------------------------------------------------


def test_sdedit_start_follows_strength():
    schedule = NoiseSchedule.cosine(T)
    assert editing.sdedit_start(schedule, 1.0) == (T - 1, T)  # the whole chain: the input is ignored
    assert editing.sdedit_start(schedule, 0.5) == (T // 2 - 1, T // 2)
    assert editing.sdedit_start(schedule, 0.9) == (17, 18)  # 20·(1 − 0.9) is 1.9999999999999996 in floats
    assert editing.sdedit_start(schedule, 1e-6) == (0, 1)  # one last step at t = 0
    assert editing.sdedit_start(schedule, 0.5, steps=10) == (8, 5)  # DDIM: half of its 10 steps
    for strength in (0, -0.5, 1.01, float("nan"), True):
        with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
            editing.sdedit_start(schedule, strength)


@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 10)])
def test_sdedit_at_strength_near_0_returns_the_input(mlp, sampler, steps):
    schedule, x = NoiseSchedule.linear(T), images(4)  # β_0 = 1e-4: x at t = 0 is the input plus 1 % noise
    distance = {}
    for strength in (1e-3, 0.5, 1.0):
        out = editing.img2img(mlp, schedule, x, strength, seed=0, sampler=sampler, steps=steps)
        distance[strength] = float(np.sqrt(np.mean((out - x) ** 2)))
    assert distance[1e-3] < 0.05, distance
    assert distance[1e-3] < distance[0.5] < distance[1.0], distance


def test_sdedit_with_the_same_seed_is_reproducible(unet):
    schedule, x = NoiseSchedule.cosine(T), images(2)
    a = editing.img2img(unet, schedule, x, 0.6, seed=3)
    np.testing.assert_array_equal(a, editing.img2img(unet, schedule, x, 0.6, seed=3))
    assert not np.allclose(a, editing.img2img(unet, schedule, x, 0.6, seed=4))


# --- the command line -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fake_data_dir):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    argv = ["--model", "mlp_seed", "--model-kwargs", '{"hidden": 32}', "--epochs", "1", "--limit", "128", "--batch-size", "64"]
    argv += ["--timesteps", str(T), "--data-dir", str(fake_data_dir), "--out", str(out), "--n-samples", "4"]
    assert train.main(argv) == 0
    return out


@pytest.mark.parametrize("method, flags", [("inpaint", ["--mask", "right"]), ("superres", ["--factor", "4"]), ("img2img", ["--strength", "0.3"])])
def test_edit_writes_a_figure_and_the_results(tiny_run, fake_data_dir, tmp_path, method, flags):
    from keras_diffusion.data import load_images

    png, npz = tmp_path / "edit.png", tmp_path / "edit.npz"
    argv = [method, "--run", str(tiny_run), "--images", "test:3-5", "--data-dir", str(fake_data_dir), "--seeds", "2"]
    assert edit.main(argv + flags + ["--out", str(png), "--npz", str(npz)]) == 0
    assert png.stat().st_size > 0
    with np.load(npz, allow_pickle=False) as data:
        results, every = data["images"], data["all_seeds"]
    assert results.shape == (3, 28, 28, 1) and results.dtype == np.uint8 and every.shape == (3, 2, 28, 28, 1)
    np.testing.assert_array_equal(every[:, 0], results)
    if method == "inpaint":  # known pixels survive the trip to uint8 exactly, in the order of the input images
        originals = load_images("fashion_mnist", "test", fake_data_dir)[0][3:6]
        np.testing.assert_array_equal(results[:, :, :14], originals[:, :, :14])


def test_edit_reads_npz_and_png_images(tiny_run, tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "in.npz", images=pixels)
    Image.fromarray(pixels[0]).save(tmp_path / "in.png")
    npz = tmp_path / "out.npz"
    argv = ["inpaint", "--run", str(tiny_run), "--images", str(tmp_path / "in.npz"), str(tmp_path / "in.png"), "--seeds", "1"]
    assert edit.main(argv + ["--mask", "top", "--npz", str(npz)]) == 0
    with np.load(npz) as data:
        np.testing.assert_array_equal(data["images"][:, 14:, :, 0], np.concatenate([pixels, pixels[:1]])[:, 14:])


def _error(argv, capsys):
    """Exit code and stderr of the edit command: every error is one line, exit code 2."""
    try:
        code = cli.run(edit.main, argv)
    except SystemExit as stop:  # argparse's own errors, before anything loads
        code = stop.code
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["img2img", "--strength", "0"], r"--strength must be in \(0, 1\] .1 ignores the input image., got 0.0"),
        (["img2img", "--strength", "1.5"], r"--strength must be in \(0, 1\]"),
        (["superres", "--factor", "3"], r"--factor must divide 28 \(2, 4, 7, 14 or 28\), got 3"),
        (["superres", "--mask", "box"], "--mask is for inpaint, not superres"),
        (["inpaint", "--strength", "0.5"], "--strength is for img2img, not inpaint"),
        (["inpaint", "--resample", "2", "--sampler", "ddim", "--steps", "5"], "--resample > 1 .* needs --sampler ddpm"),
        (["inpaint", "--mask", "middle"], "--mask middle: not one of box, left, right, top, bottom, random and not a file"),
        (["inpaint", "--images", "test:5-2"], "--images test:5-2: the range ends before it starts"),
        (["inpaint", "--images", "tests:0-3"], "--images tests:0-3: neither a range like test:0-15 nor a file"),
        (["inpaint", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["inpaint", "--images", "test:0-999999"], r"--images test:0-999999: the test split has images 0-199"),
        (["img2img", "--sampler", "ddim", "--steps", "500"], "--steps must be <= T=20 of this run, got 500"),
    ],
)
def test_edit_errors_are_one_line(tiny_run, fake_data_dir, capsys, flags, message):
    code, err = _error(flags + ["--run", str(tiny_run), "--data-dir", str(fake_data_dir)], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.search(message, err), err


@pytest.mark.parametrize(
    "array, flag, message",
    [
        (np.zeros((27, 28)), "--mask", r"mask must be \(28, 28\) or one per image \(1, 28, 28, 1\), got shape \(27, 28\)"),
        (np.zeros((2, 27, 27), np.uint8), "--images", r"images must be \(N, 28, 28\) .*got shape \(2, 27, 27\)"),
        (np.zeros((2, 28, 28), np.float32), "--images", "images must be uint8 pixels 0..255 .*got float32"),
        (np.full((2, 28, 28), 300), "--images", r"images must be uint8 pixels 0..255 .*got int64 values 300..300"),
    ],
)
def test_edit_refuses_arrays_of_the_wrong_shape_or_range(tiny_run, tmp_path, capsys, array, flag, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    images = ["--images", "test:0"] if flag == "--mask" else []
    code, err = _error(["inpaint", "--run", str(tiny_run), flag, str(path)] + images, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert re.search(message, err), err


def test_edit_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    code, err = _error(["inpaint", "--run", str(tmp_path)], capsys)
    assert code == 2 and "is not a run directory (no config.json)" in err


def test_edit_help_does_not_import_tensorflow():
    code = """
import sys
from keras_diffusion import edit
for argv in (["--help"], ["inpaint", "--no-such-flag"]):
    try:
        edit.main(argv)
    except SystemExit as stop:
        assert stop.code == (0 if argv == ["--help"] else 2), stop.code
print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
