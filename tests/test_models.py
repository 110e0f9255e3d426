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
