"""The text-conditioned U-Net: cross-attention, the null prompt, prompt dropout, CFG on prompts, the command lines."""

import numpy as np
import pytest

from keras_diffusion import sample as sample_cli
from keras_diffusion import train
from keras_diffusion.diffusion import DiffusionModel
from keras_diffusion.guidance import Guide
from keras_diffusion.models.prompt import PROMPT_LAYER, prompt_tokenizer_of
from keras_diffusion.models.unet import unet
from keras_diffusion.reverse import sample
from keras_diffusion.samplers import SAMPLERS
from keras_diffusion.schedule import NoiseSchedule
from keras_diffusion.text import vocabulary

PROMPT = dict(words=vocabulary(), max_length=12, width=16, depth=1, heads=2, embed_dim=8)
SCHEDULE = NoiseSchedule.cosine(20)


@pytest.fixture(scope="module")
def model():
    return unet(widths=(8, 16), groups=4, prompt=PROMPT, timesteps=20)


def _inputs(model, texts, seed=0):
    tokens = prompt_tokenizer_of(model).encode(texts)
    x = np.random.default_rng(seed).standard_normal((len(texts), 28, 28, 1)).astype("float32")
    return x, np.full(len(texts), 7, np.int32), tokens


def test_cross_attention_sits_below_the_top_resolution_and_shapes_hold(model):
    names = [layer.name for layer in model.layers if layer.name.startswith("cross_attention")]
    # one down block and two up blocks at 14x14, and the middle: the 28x28 level attends to nothing
    assert names == ["cross_attention_down1_0", "cross_attention_middle", "cross_attention_up1_0", "cross_attention_up1_1"]
    x, t, tokens = _inputs(model, ["a dark ankle boot", "white trainers"])
    context, mask, pooled = model.get_layer(PROMPT_LAYER)(tokens)
    assert tuple(context.shape) == (2, 13, 16) and tuple(pooled.shape) == (2, 8)
    # the null token first, then exactly the real words
    np.testing.assert_array_equal(np.asarray(mask).sum(axis=1), [1 + 4, 1 + 2])
    eps = model([x, t, tokens])
    assert tuple(eps.shape) == (2, 28, 28, 1) and eps.dtype == "float32"


def test_padding_tokens_change_nothing(model):
    x, t, tokens = _inputs(model, ["a bag", ""])
    before = np.asarray(model([x, t, tokens]))
    words = model.get_layer(PROMPT_LAYER).text_encoder.words
    table = words.embeddings.numpy()
    try:  # make the padding id's embedding huge: a masked token cannot reach the output
        words.embeddings.assign(np.concatenate([np.full_like(table[:1], 50.0), table[1:]]))
        np.testing.assert_allclose(np.asarray(model([x, t, tokens])), before, atol=1e-5)
    finally:
        words.embeddings.assign(table)


def test_the_null_prompt_is_a_learned_embedding(model):
    x, t, tokens = _inputs(model, ["", ""])
    encoder = model.get_layer(PROMPT_LAYER)
    _, mask, pooled = encoder(tokens)
    np.testing.assert_array_equal(np.asarray(mask)[:, 0], True)  # only the null token is attended to
    np.testing.assert_allclose(np.asarray(pooled), np.broadcast_to(encoder.null_pooled.numpy(), (2, 8)), atol=1e-6)


def test_text_encoder_is_frozen_and_the_rest_trains(model):
    encoder = model.get_layer(PROMPT_LAYER)
    frozen = {id(v) for v in encoder.text_encoder.weights}
    assert frozen and not frozen & {id(v) for v in model.trainable_weights}
    assert {id(encoder.null_token), id(encoder.null_pooled)} <= {id(v) for v in model.trainable_weights}


def test_prompt_dropout_rate_and_what_a_dropped_prompt_becomes(model):
    wrapper = DiffusionModel(model, SCHEDULE, seed=3, cond_drop=0.1)
    tokens = np.tile(prompt_tokenizer_of(model).encode(["a dark ankle boot"]), (4000, 1))
    dropped = np.asarray(wrapper.drop_labels(tokens))
    empty = (dropped == 0).all(axis=1)
    assert 0.085 < empty.mean() < 0.115  # 0.1 ± 3.5 standard deviations of 4000 draws
    np.testing.assert_array_equal(dropped[~empty], tokens[~empty])  # a kept prompt is kept whole


def test_cfg_with_prompts_is_the_label_formula_and_a_negative_prompt_replaces_the_null(model):
    x, t, tokens = _inputs(model, ["a dark ankle boot", "white trainers"])
    w = 2.5
    null = prompt_tokenizer_of(model).encode(["", ""])
    negative = prompt_tokenizer_of(model).encode(["a bag", "a bag"])
    eps = lambda tok: np.asarray(model([x, t, tok]))  # noqa: E731
    for negative_prompt, against in ((None, null), ("a bag", negative)):
        guide = Guide(model, guidance=w, prompts=["a dark ankle boot", "white trainers"], negative_prompt=negative_prompt)
        got = np.asarray(guide.eps(model, SCHEDULE, x, t, guide.labels(None, 2)))
        np.testing.assert_allclose(got, (1 + w) * eps(tokens) - w * eps(against), atol=1e-4)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_draws_from_prompts_and_a_seed_repeats(model, sampler):
    steps = None if sampler == "ddpm" else 3
    draw = lambda seed: sample(model, SCHEDULE, 3, sampler=sampler, steps=steps, seed=seed, prompts="a dark ankle boot", guidance=2.0)  # noqa: E731
    first = draw(0)
    assert first.shape == (3, 28, 28, 1) and np.isfinite(first).all()
    np.testing.assert_array_equal(first, draw(0))
    assert not np.allclose(first, draw(1))


def test_generate_draws_one_image_a_prompt(model):
    wrapper = DiffusionModel(model, SCHEDULE)
    images = wrapper.generate(prompts=["a dark ankle boot", "a bag", "white trainers"], sampler="ddim", steps=2, guidance=3, seed=0)
    assert images.shape == (3, 28, 28, 1)
    assert wrapper.generate(4, prompts="a bag", sampler="ddim", steps=2, seed=0).shape == (4, 28, 28, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(labels=[1, 2]), "conditioned on text: give prompts="),
        (dict(prompts=["a dark sneakr", "a bag"]), "unknown words ['sneakr']"),
        (dict(guidance=2.0), "guidance and negative_prompt need prompts="),
        (dict(prompts=["a bag", "a coat", "a dress"]), "give one prompt for all 2 images or one per image, got 3"),
        (dict(prompts=""), "prompts is empty"),
    ],
)
def test_bad_prompt_settings_are_one_line_errors(model, kwargs, message):
    with pytest.raises(ValueError) as error:
        sample(model, SCHEDULE, 2, sampler="ddim", steps=2, **kwargs)
    assert message in str(error.value)


def test_prompts_need_a_text_model():
    plain = unet(widths=(8, 16), groups=4, timesteps=20)
    with pytest.raises(ValueError, match="prompts need a text-conditioned denoiser"):
        sample(plain, SCHEDULE, 1, sampler="ddim", steps=2, prompts="a bag")


TINY_CLIP = ["--text-encoder", "--epochs", "1", "--limit", "128", "--batch-size", "32"]
TINY_CLIP += ["--model-kwargs", '{"embed_dim": 8, "width": 16, "depth": 1, "heads": 2, "image_width": 4}']


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, fake_data_dir):
    runs = tmp_path_factory.mktemp("runs")
    assert train.main(TINY_CLIP + ["--data-dir", str(fake_data_dir), "--out", str(runs / "clip")]) == 0
    tiny = ["--limit", "64", "--batch-size", "32", "--epochs", "1", "--timesteps", "20", "--n-samples", "10", "--precision", "float32"]
    tiny += ["--model-kwargs", '{"widths": [8, 16], "groups": 4}', "--data-dir", str(fake_data_dir)]
    argv = ["--text", "--text-encoder-run", str(runs / "clip"), "--objective", "x0", *tiny, "--out", str(runs / "text")]
    assert train.main(argv) == 0
    return runs / "clip", runs / "text"


def test_train_text_writes_a_run_whose_text_encoder_is_the_clip_s(text_run):
    from keras_diffusion.checkpoint import load_run
    from keras_diffusion.text import load_clip

    clip_dir, run = text_run
    denoiser, _, loaded = load_run(run)
    assert loaded.text and loaded.model_kwargs["prompt"]["words"] == vocabulary() and loaded.model_kwargs["prompt"]["width"] == 16
    clip = load_clip(clip_dir)[0]
    for ours, theirs in zip(denoiser.get_layer(PROMPT_LAYER).text_encoder.get_weights(), clip.text_encoder.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # copied in and, frozen, unchanged by training
    assert (run / "samples.png").is_file() and (run / "reverse_grid.png").is_file()


def test_sample_cli_draws_a_row_a_prompt(text_run, tmp_path, capsys):
    _, run = text_run
    npz = tmp_path / "s.npz"
    argv = ["--run", str(run), "--prompt", "a dark ankle boot", "--prompt", "white trainers", "--negative-prompt", "a bag", "--n", "4"]
    assert sample_cli.main(argv + ["--steps", "3", "--npz", str(npz), "--out", str(tmp_path / "s.png")]) == 0
    assert np.load(npz)["images"].shape == (4, 28, 28, 1) and (tmp_path / "s.png").is_file()
    assert "6 network evaluations an image" in capsys.readouterr().out  # 3 steps, guided: 2 calls each


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--label", "bag"], "this run is conditioned on text: give --prompt TEXT"),
        (["--guidance", "2"], "guidance needs --label: a class by number or name, or 'all' (or --prompt TEXT with a text run)"),
        (["--prompt", "a dark sneakr"], "unknown words ['sneakr']"),
    ],
)
def test_sample_cli_prompt_errors_are_one_line(text_run, argv, message, tmp_path, capsys):
    _, run = text_run
    with pytest.raises((ValueError, SystemExit)) as error:  # the parser's errors exit, the run's raise
        sample_cli.main(["--run", str(run), "--n", "2", "--steps", "2", "--npz", str(tmp_path / "never.npz"), *argv])
    said = capsys.readouterr().err.strip().splitlines() if error.type is SystemExit else [str(error.value)]
    assert len(said) == 1 and message in said[0], said


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--text", "--conditional"], "--text conditions the U-Net on prompts; drop --conditional"),
        (["--text", "--model", "mlp"], "--text trains a U-Net with cross-attention; drop --model mlp"),
        (["--text-encoder-run", "runs/clip"], "--text-encoder-run runs/clip needs --text"),
        (["--text", "--val", "100"], "drop --val with --text"),
    ],
)
def test_bad_text_flags_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        train.parse_args(argv)
    assert exit.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines


def test_prompt_flags_refuse_a_class_run(capsys):
    with pytest.raises(SystemExit):
        sample_cli.parse_args(["--pretrained", "unet-fashion-mnist-conditional", "--prompt", "a bag", "--label", "bag"])
    assert "give one of them" in capsys.readouterr().err


def test_pack_records_a_text_encoder_and_a_text_run(text_run, tmp_path):
    from keras_diffusion import pretrained
    from keras_diffusion.pretrained.pack import pack

    clip_dir, run = text_run
    pack(clip_dir, "tiny-clip", root=tmp_path)
    pack(run, "tiny-text", root=tmp_path)
    clip, text = pretrained.entry("tiny-clip", root=tmp_path), pretrained.entry("tiny-text", root=tmp_path)
    assert clip["kind"] == "text_encoder" and "evaluation.json" in clip["files"] and 0 <= clip["quality"]["zero_shot"] <= 1
    assert text["kind"] == "denoiser" and text["text"] and "--text" in text["command"] and "prompt" not in text["command"]
    tokenizer = pretrained.load("tiny-clip", root=tmp_path)[1]
    assert tokenizer.decode(tokenizer.encode(["a dark bag"])) == ["a dark bag"]
    denoiser, _, config = pretrained.load("tiny-text", root=tmp_path)
    assert config.text and prompt_tokenizer_of(denoiser) is not None


def test_edit_inpaints_under_a_prompt(text_run, tmp_path, fake_data_dir):
    from keras_diffusion import edit

    _, run = text_run
    npz = tmp_path / "e.npz"
    argv = ["inpaint", "--run", str(run), "--images", "test:0-1", "--data-dir", str(fake_data_dir), "--seeds", "1", "--steps", "3"]
    assert edit.main(argv + ["--prompt", "a dark bag", "--npz", str(npz), "--out", str(tmp_path / "e.png")]) == 0
    assert np.load(npz)["images"].shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match="one --prompt for all its images"):
        edit.main(argv + ["--prompt", "a bag", "--prompt", "a coat", "--npz", str(npz)])


def test_attention_maps_are_a_softmax_over_the_prompt_s_real_tokens(model):
    from keras_diffusion.models.prompt import attention_maps, cross_attention_layers

    x, t, tokens = _inputs(model, ["a dark bag", "a coat"])
    maps = attention_maps(model, x, t, tokens, "cross_attention_down1_0")
    assert maps.shape == (2, 14, 14, 13) and cross_attention_layers(model)[0] == "cross_attention_down1_0"
    np.testing.assert_allclose(maps.sum(axis=-1), 1, atol=1e-5)
    np.testing.assert_array_equal(maps[0, ..., 4:], 0)  # null token + 3 words; the padding is never looked at
    assert (maps[1, ..., :3] > 0).all() and (maps[1, ..., 3:] == 0).all()
    with pytest.raises(ValueError, match="no cross-attention layer 'attention'"):
        attention_maps(model, x, t, tokens, "attention")
