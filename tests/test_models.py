import numpy as np
import pytest

from keras_diffusion.models import build_model, model_names


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("batch", [1, 7])
def test_output_shape_equals_input_shape(name, batch):
    model = build_model(name)
    x = np.random.default_rng(0).standard_normal((batch, 28, 28, 1)).astype(np.float32)
    t = np.array([0, 199, 5, 17, 100, 150, 3][:batch], dtype=np.int32)
    out = np.asarray(model([x, t]))
    assert out.shape == x.shape and out.dtype == np.float32


def test_mlp_seed_is_the_classic_demo():
    model = build_model("mlp_seed")
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    assert [layer.units for layer in dense] == [512, 512, 784]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "linear"]
    # (784 + 1)·512 + 512 + 512·512 + 512 + 512·784 + 784: the image and t/T feed the first layer
    assert model.count_params() == 785 * 512 + 512 + 512 * 512 + 512 + 512 * 784 + 784


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'gan'; choose one of mlp_seed"):
        build_model("gan")
    with pytest.raises(ValueError, match="bad arguments for model 'mlp_seed'"):
        build_model("mlp_seed", widths=3)


def test_sinusoidal_embedding_matches_the_formula():
    from keras_diffusion.models.embeddings import SinusoidalEmbedding

    t = np.array([0, 1, 17, 199])
    emb = np.asarray(SinusoidalEmbedding(8)(t))
    assert emb.shape == (4, 8) and emb.dtype == np.float32
    freqs = 10000.0 ** (-np.arange(4) / 4)  # ω_i = 10000^(−i/(d/2))
    np.testing.assert_allclose(emb[:, :4], np.sin(t[:, None] * freqs), atol=1e-5)
    np.testing.assert_allclose(emb[:, 4:], np.cos(t[:, None] * freqs), atol=1e-5)
    np.testing.assert_allclose(emb[:, :4] ** 2 + emb[:, 4:] ** 2, 1.0, atol=1e-5)  # sin² + cos² = 1
    with pytest.raises(ValueError, match="dim must be an even integer"):
        SinusoidalEmbedding(7)


def test_embedding_layer_round_trips_its_config():
    import keras

    from keras_diffusion.models.embeddings import SinusoidalEmbedding

    layer = SinusoidalEmbedding(16, max_period=500)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, SinusoidalEmbedding) and clone.dim == 16 and clone.max_period == 500


def test_unet_accepts_every_timestep():
    model = build_model("unet", widths=(8, 16, 16), attention=True)
    t = np.arange(200, dtype=np.int32)
    out = np.asarray(model([np.zeros((200, 28, 28, 1), np.float32), t]))
    assert out.shape == (200, 28, 28, 1) and np.all(np.isfinite(out))


def test_unet_groups_adapt_to_widths_and_bad_shapes_are_refused():
    model = build_model("unet", widths=(12, 20), groups=8)  # 8 divides neither: 6 and 5 groups are used
    assert model([np.zeros((2, 28, 28, 1), np.float32), np.array([0, 5])]).shape == (2, 28, 28, 1)
    with pytest.raises(ValueError, match="must be divisible by 2"):
        build_model("unet", image_shape=(28, 28, 1), widths=(8, 8, 8, 8))


def test_mlp_seed_time_embedding_switch():
    model = build_model("mlp_seed", time_embedding="sinusoidal")
    x = np.zeros((3, 28, 28, 1), np.float32)
    assert model([x, np.array([0, 1, 199])]).shape == (3, 28, 28, 1)
    assert any(layer.__class__.__name__ == "SinusoidalEmbedding" for layer in model.layers)
    with pytest.raises(ValueError, match="time_embedding must be one of t_over_T, sinusoidal"):
        build_model("mlp_seed", time_embedding="learned")


def test_unet_ablation_switches():
    """t/T instead of the sinusoidal embedding, no skips, no attention: each builds and runs, and is what it says."""
    x, t = np.zeros((2, 28, 28, 1), np.float32), np.array([0, 199])
    kinds = lambda model: {layer.__class__.__name__ for layer in model.layers}  # noqa: E731
    full = build_model("unet")
    assert {"SinusoidalEmbedding", "Concatenate", "MultiHeadAttention"} <= kinds(full)
    t_over_T = build_model("unet", time_embedding="t_over_T", timesteps=200)
    assert "SinusoidalEmbedding" not in kinds(t_over_T) and "TimeScale" in kinds(t_over_T)
    no_skips = build_model("unet", skips=False)
    assert "Concatenate" not in kinds(no_skips) and no_skips.count_params() < full.count_params()
    no_attention = build_model("unet", attention=False)
    assert "MultiHeadAttention" not in kinds(no_attention)
    for model in (t_over_T, no_skips, no_attention):
        assert model([x, t]).shape == x.shape
    with pytest.raises(ValueError, match="time_embedding must be one of"):
        build_model("unet", time_embedding="learned")
