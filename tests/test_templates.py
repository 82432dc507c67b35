"""How many templates each layer mixes: `convert(templates=...)`."""

import keras
import numpy as np
import pytest
from conftest import MODELS
from test_budget import bank_coverage

import keras_ssn


def stack(depth=16, width=64):
    return keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, use_bias=False) for _ in range(depth)]
    )


def kernel_templates(model):
    plan = model.sharing_plan
    return [plan.weights[path].templates for group in plan.groups for path in group.weights]


@pytest.mark.parametrize("budget, expected", [(0.1, {1}), (0.5, {1}), (1.0, {1})])
def test_fewest_reads_one_window_per_layer_up_to_the_whole_model(budget, expected):
    small = keras_ssn.convert(stack(), budget, templates="fewest", seed=0)
    assert set(kernel_templates(small)) == expected
    # Without coefficients the bank is the whole budget, and every entry is read.
    assert small.sharing_plan.bank_size == round(budget * 16 * 64 * 64)
    assert all(bank_coverage(small.sharing_plan))


def test_fewest_takes_the_budgets_multiple_above_the_whole_model():
    small = keras_ssn.convert(stack(), 4.0, templates="fewest", seed=0)
    counts = kernel_templates(small)
    # 4 copies of every weight, and one more template on the layers that
    # read what the coefficients leave over 4 copies.
    assert set(counts) <= {4, 5} and counts.count(4) >= 14
    assert keras_ssn.count_trainable(small) == 4 * 16 * 64 * 64
    assert all(bank_coverage(small.sharing_plan))


def test_equal_layers_share_the_extra_templates():
    # 45 x Dense(8) with biases at 400%: the bank holds 4 copies of the
    # kernels and the biases' share; the layers that read it get one more
    # template each, not several on the first layers.
    model = keras.Sequential(
        [keras.Input((8,))] + [keras.layers.Dense(8) for _ in range(45)]
    )
    counts = kernel_templates(keras_ssn.convert(model, 4.0, seed=0))
    assert set(counts) == {4, 5} and counts.count(5) > 1


def test_fit_mixes_every_copy_that_fits_up_to_max_templates():
    assert set(kernel_templates(keras_ssn.convert(stack(), 1.0, templates="fit"))) == {8}
    small = keras_ssn.convert(stack(), 0.1, templates="fit", max_templates=3)
    assert set(kernel_templates(small)) == {1}  # 1.6 copies of a weight fit
    small = keras_ssn.convert(stack(), 0.5, templates="fit", max_templates=3)
    assert set(kernel_templates(small)) == {3}


def test_one_template_is_a_scaled_window_of_the_slice():
    small = keras_ssn.convert(stack(depth=4), 0.5, templates="fewest", seed=0)
    bank = keras.ops.convert_to_numpy(small.bank.vector())
    for layer in small.layers:
        spec = layer.sharing["kernel"]
        window = bank[spec.start + (spec.offset + np.arange(spec.weight_size)) % spec.size]
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer.kernel).reshape(-1), spec.scale * window,
            rtol=1e-6,
        )
        assert layer.coefficients == {"kernel": None}


@pytest.mark.parametrize("budget, expected", [
    (0.1, {1}),  # 1.6 copies of a weight fit in the slice
    (0.5, {7}),  # 8 weights' worth less the coefficients: mix the 7 that fit
    (0.99, {8}),
    (1.0, {1}),  # the slice holds every weight once: one window each
    (2.0, {2}),
])
def test_auto_fits_below_the_whole_model_and_takes_the_fewest_from_it(budget, expected):
    assert set(kernel_templates(keras_ssn.convert(stack(), budget, seed=0))) == expected


def mixed_families():
    return keras.Sequential([
        keras.Input((20,), dtype="int32"), keras.layers.Embedding(50, 16),
        keras.layers.Conv1D(16, 3), keras.layers.Conv1D(32, 3),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(32), keras.layers.Dense(10),
    ])


@pytest.mark.parametrize("groups", ["auto", "type"])
@pytest.mark.parametrize("build", [mixed_families, MODELS["residual_cnn"],
                                   MODELS["sequence"], MODELS["nested"]])
def test_every_group_reads_its_weights_once_at_the_models_size(build, groups):
    # At 100% each group's slice is exactly its weights (no rounding leaves
    # one slice an entry over, which a second template of the same window
    # would read), so one window per layer reads the bank once.
    plan = keras_ssn.convert(build(), 1.0, groups=groups, seed=0).sharing_plan
    assert {spec.templates for spec in plan.weights.values()} == {1}
    for group in plan.groups:
        assert group.size == sum(plan.weights[p].weight_size for p in group.weights)
    assert plan.bank_size == sum(spec.weight_size for spec in plan.weights.values())


def test_one_template_per_layer_spends_exactly_the_models_size():
    model = mixed_families()
    small = keras_ssn.convert(model, 1.0, groups="type", max_templates=1, seed=0)
    assert keras_ssn.count_trainable(small) == keras_ssn.count_trainable(model)


def test_a_count_instead_of_a_rule_raises_a_type_error_naming_max_templates():
    with pytest.raises(TypeError, match="max_templates caps the count"):
        keras_ssn.convert(stack(), 0.5, templates=4)
    with pytest.raises(TypeError, match="templates must be one of"):
        keras_ssn.convert(stack(), 0.5, templates=["fit"])


def test_unknown_template_rule_raises():
    with pytest.raises(ValueError, match=r"templates must be one of \('auto', 'fit', 'fewest'\)"):
        keras_ssn.convert(stack(), 0.5, templates="many")
