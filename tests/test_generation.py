import keras
import numpy as np
import pytest
import scipy.ndimage
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from conftest import MODELS
from conftest import backend_independent
from conftest import sample_input

import keras_ssn
from keras_ssn.generation import UPSAMPLE
from keras_ssn.generation import read_window
from keras_ssn.generation import upsample_template
from keras_ssn.planner import split_proportionally


def test_read_window_wraps_around_the_slice():
    bank = np.arange(20, dtype="float32")
    window = keras.ops.convert_to_numpy(read_window(bank, 5, 6, 4, 15))
    expected = 5 + (4 + np.arange(15)) % 6
    np.testing.assert_array_equal(window, expected)


def test_upsample_template_matches_bilinear_resize():
    """Half-pixel centers (plans saved before corners were aligned) match
    Keras's resize; aligned corners match SciPy's linear zoom."""
    template = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    ours = keras.ops.convert_to_numpy(upsample_template(template, (20, 13), False))
    resized = keras.ops.image.resize(
        template[..., None], (20, 13), interpolation="bilinear", antialias=False
    )
    np.testing.assert_allclose(
        ours, keras.ops.convert_to_numpy(resized)[..., 0], atol=1e-5
    )
    ours = keras.ops.convert_to_numpy(upsample_template(template, (20, 13)))
    zoomed = scipy.ndimage.zoom(template, (20 / 7, 13 / 5), order=1, grid_mode=False)
    np.testing.assert_allclose(ours, zoomed, atol=1e-5)


def distinct_columns(kernel):
    matrix = kernel.reshape(-1, kernel.shape[-1])
    return len({column.tobytes() for column in matrix.T})


def test_an_inter_weight_gets_distinct_output_units():
    """A tall, thin head with a large slice gets a template of two columns,
    and the resize makes no copies of a template's edge columns."""
    inputs = keras.Input((10,), dtype="int32")
    pooled = keras.layers.GlobalMaxPooling1D()(keras.layers.Embedding(28, 32)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(pooled))
    small = keras_ssn.convert(model, 56, groups="type", share="avg", upsample="inter",
                              templates="fewest", placement="sliding", seed=1)
    spec = small.sharing_plan.weights["head/kernel"]
    assert spec.template_shape[1] == 2 and spec.align_corners
    kernel = keras.ops.convert_to_numpy(small.get_layer("head").kernel)
    assert distinct_columns(kernel) == 2

    wide = keras.Sequential([keras.Input((64,)), keras.layers.Dense(60, name="wide"),
                             keras.layers.Dense(3)])
    small = keras_ssn.convert(wide, 0.05, upsample="inter", seed=0)
    spec = small.sharing_plan.weights["wide/kernel"]
    assert spec.matrix_shape[1] >= 3 * spec.template_shape[1]
    assert distinct_columns(keras.ops.convert_to_numpy(small.get_layer("wide").kernel)) == 60


@pytest.mark.parametrize("upsample", ["repeat", "mask"])
def test_no_plan_tiles_a_slice_smaller_than_a_weights_output_units(upsample):
    """Tiling a 1-entry slice would make the head's two outputs equal: the
    budget is refused, and the smallest one it names has distinct units."""
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(28, activation="sigmoid"),
                              keras.layers.Dense(2, name="head")])
    with pytest.raises(keras_ssn.BudgetError, match="copies of each other") as info:
        keras_ssn.convert(model, 35, groups="shape", upsample=upsample, seed=1)
    small = keras_ssn.convert(model, info.value.smallest, groups="shape",
                              upsample=upsample, seed=1)
    for spec in small.sharing_plan.weights.values():
        assert spec.size >= spec.shape[-1]
    for layer in small.layers:
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        assert distinct_columns(kernel) == kernel.shape[-1], layer.name


def test_split_proportionally_is_exact():
    parts = split_proportionally(1001, [3, 1, 7, 7])
    assert sum(parts) == 1001 and min(parts) >= 1
    assert split_proportionally(4, [1000, 1, 1, 1]) == [1, 1, 1, 1]


def test_repeat_tiles_the_group_slice():
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, use_bias=False)])
    small = keras_ssn.convert(model, 100, upsample="repeat")
    (spec,) = small.sharing_plan.weights.values()
    bank = keras.ops.convert_to_numpy(small.bank.vector())
    kernel = keras.ops.convert_to_numpy(small.layers[0].kernel).reshape(-1)
    np.testing.assert_allclose(kernel, spec.scale * np.resize(bank, 256), rtol=1e-6)


@backend_independent
@settings(max_examples=30, deadline=None)
@given(
    widths=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    budget=st.integers(1, 3000),
    groups=st.sampled_from(["auto", "single", "type", "shape", 2]),
    upsample=st.sampled_from(["repeat", "inter", "mask", "scale", "wavg"]),
    templates=st.sampled_from(["auto", "fit", "fewest"]),
    embedding=st.booleans(),
)
def test_no_converted_weight_has_equal_output_units(widths, budget, groups, upsample,
                                                    templates, embedding):
    """Whatever the model, budget and options, a converted model's generated
    kernels (drawn at random) have pairwise different output units, or the
    budget is refused. (An embedding's table is a lookup; see below.)"""
    if embedding:
        inputs = keras.Input((6,), dtype="int32")
        x = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(30, 12)(inputs))
    else:
        inputs = keras.Input((12,))
        x = inputs
    for width in widths:
        x = keras.layers.Dense(width)(x)
    model = keras.Model(inputs, x)
    if isinstance(groups, int) and groups > len(widths) + embedding:
        groups = "single"
    try:
        small = keras_ssn.convert(model, budget, groups=groups, upsample=upsample,
                                  templates=templates, seed=0)
    except keras_ssn.BudgetError:
        return
    for layer in small.layers:
        if hasattr(layer, "kernel") and layer.kernel.shape[-1] > 1:
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            assert distinct_columns(kernel) == kernel.shape[-1], layer.name


@pytest.mark.parametrize("upsample", ["repeat", "mask", "scale"])
def test_attention_heads_tiled_from_one_slice_come_out_apart(upsample):
    """A `(dim, heads, head_dim)` query kernel has `heads * head_dim` output
    units: the smallest budget gives its group all 512, where a slice of
    `head_dim` (64) entries would give the 8 heads one projection."""
    inputs = keras.Input((10, 16))
    outputs = keras.layers.MultiHeadAttention(8, key_dim=64, name="mha")(inputs, inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 10, upsample=upsample, seed=0)
    small = keras_ssn.convert(model, info.value.smallest, upsample=upsample, seed=0)
    assert [g.size for g in small.sharing_plan.groups] == [512]
    attention = keras_ssn.materialize(small).get_layer("mha")
    for dense in (attention._query_dense, attention._key_dense, attention._value_dense):
        kernel = keras.ops.convert_to_numpy(dense.kernel).reshape(16, 512)
        assert distinct_columns(kernel) == 512, dense.name


def test_a_lookup_table_may_tile_a_slice_narrower_than_its_rows():
    """An embedding's columns are the dimensions of one token's vector, not
    output units: its group may hold fewer entries than a row (47 for 64
    dimensions here), where a dense kernel's may not."""
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(96, 64, name="embedding")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    for i in range(4):
        x = keras.layers.Dense(64, name=f"hidden_{i}")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="head")(x))
    small = keras_ssn.convert(model, 440, groups="type", seed=0)
    sizes = {g.weights[0]: g.size for g in small.sharing_plan.groups}
    assert sizes == {"embedding/embeddings": 47, "hidden_0/kernel": 127}
    table = keras.ops.convert_to_numpy(small.get_layer("embedding").embeddings)
    assert distinct_columns(table) == 47  # column j + 47 repeats column j
    for name in ("hidden_0", "hidden_3", "head"):
        kernel = keras.ops.convert_to_numpy(small.get_layer(name).kernel)
        assert distinct_columns(kernel) == kernel.shape[-1], name
