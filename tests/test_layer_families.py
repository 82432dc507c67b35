"""Layer families and model kinds beyond Dense/Conv/Embedding, and exclusions."""

import keras
import pytest
from conftest import MODELS
from conftest import assert_converts

import keras_ssn


def conv_family_model(rank):
    """Standard, depthwise and transposed convolutions of one rank."""
    conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
    transpose = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose,
                 3: keras.layers.Conv3DTranspose}
    depthwise = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}
    pool = {1: keras.layers.GlobalAveragePooling1D,
            2: keras.layers.GlobalAveragePooling2D,
            3: keras.layers.GlobalAveragePooling3D}
    inputs = keras.Input((6,) * rank + (3,))
    x = conv[rank](16, 3, padding="same", name="conv")(inputs)
    if rank in depthwise:
        x = depthwise[rank](3, padding="same", depth_multiplier=2, name="depthwise")(x)
    x = transpose[rank](8, 3, strides=2, padding="same", name="transpose")(x)
    x = pool[rank]()(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, outputs, name=f"conv{rank}d_family")


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("fraction", [0.1, 3.0])
def test_depthwise_and_transposed_convolutions(rank, fraction, tmp_path):
    small = assert_converts(conv_family_model(rank), fraction, tmp_path)
    shared = {type(l).__name__ for l in small.shared_layers()}
    expected = {f"SharedConv{rank}D", f"SharedConv{rank}DTranspose", "SharedDense"}
    if rank < 3:
        expected.add(f"SharedDepthwiseConv{rank}D")
    assert shared == expected


def test_exclude_by_name_path_regex_list_and_predicate():
    def unshared(**options):
        small = keras_ssn.convert(MODELS["nested"](), 1.0, **options)
        return {e["path"] for e in small.sharing_plan.unshared_layers}

    assert unshared(exclude="head") == {"head"}
    assert unshared(exclude="inner/block/expand") == {"inner/block/expand"}
    assert unshared(exclude=r"inner/.*") == {
        "inner/block/expand", "inner/block/project", "inner/inner_dense"}
    assert unshared(exclude=["stem", "head"]) == {"stem", "head"}
    assert unshared(exclude=lambda layer: layer.units == 128) == {
        "stem", "inner/block/project", "inner/inner_dense"}


def test_excluded_layers_keep_their_weights_and_count_toward_the_budget():
    model = MODELS["mlp"]()
    small = keras_ssn.convert(model, 0.2, exclude="logits", min_size=0)
    assert isinstance(small.get_layer("logits"), keras.layers.Dense)
    assert not keras_ssn.layers.is_shared(small.get_layer("logits"))
    assert keras_ssn.count_trainable(small) == round(0.2 * keras_ssn.count_trainable(model))
    (entry,) = small.sharing_plan.unshared_layers
    assert entry["params"] == 128 * 10 + 10 and entry["reason"] == "excluded by exclude="


def test_min_size_keeps_small_weights_unshared():
    small = keras_ssn.convert(MODELS["mlp"](), 0.2, min_size=2000)
    (entry,) = small.sharing_plan.unshared_layers
    assert entry["path"] == "logits"
    assert "1280 entries, fewer than min_size=2000" in entry["reason"]


def test_excluding_everything_raises_and_bad_exclude_is_typed():
    with pytest.raises(ValueError, match="no layer whose weight can be shared"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude=".*")
    with pytest.raises(TypeError, match="exclude must be"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude=3)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude="dense[")
    with pytest.raises(TypeError, match="min_size must be an int"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, min_size=1.5)


def test_learn_groups_honours_exclude():
    import numpy as np

    model = MODELS["mlp"]()
    x = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    y = np.zeros((32, 10), "float32")
    groups = keras_ssn.learn_groups(model, (x, y), 2, loss="mse", exclude="logits",
                                    seed=0, verbose=0)
    assert set(groups) == {"hidden_1", "hidden_2"}
    small = keras_ssn.convert(model, 0.2, groups=groups, exclude="logits")
    assert len(small.sharing_plan.groups) == 2
