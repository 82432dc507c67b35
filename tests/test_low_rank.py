"""The low-rank baseline (`keras_ssn.baselines.low_rank`)."""

import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import sample_input

import keras_ssn


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def truncated(matrix, rank):
    u, s, vt = np.linalg.svd(matrix.astype("float64"), full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


@pytest.mark.parametrize("fraction", [0.05, 0.5])
@pytest.mark.parametrize("name", ["residual_cnn", "sequence"])
def test_each_weight_is_its_truncated_svd_and_the_budget_is_exact(name, fraction, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    small = keras_ssn.baselines.low_rank(model, fraction)
    assert keras_ssn.count_trainable(small) == round(
        fraction * keras_ssn.count_trainable(model))
    assert small.sharing_plan.coefficient_params == 0
    plain = keras_ssn.materialize(small)
    specs = list(small.sharing_plan.weights.values())
    kernels = [(a, b) for a, b in zip(model.weights, plain.weights) if len(a.shape) >= 2]
    assert len(kernels) == len(specs)
    for (original, generated), spec in zip(kernels, specs):
        rank, extra = spec.factors
        value = numpy(original).reshape(spec.matrix_shape)
        expected = truncated(value, rank).reshape(-1)
        expected[:extra] = value.reshape(-1)[:extra]
        np.testing.assert_allclose(numpy(generated).reshape(-1), expected, atol=2e-5)
    x = sample_input(model)
    small.save(tmp_path / "low_rank.keras")
    loaded = keras.models.load_model(tmp_path / "low_rank.keras")
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(small(x)))
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    small.fit(x, numpy(model(x)), verbose=0)


def test_ranks_go_where_the_energy_is():
    # Kernel `a` has rank 2, kernel `b` rank 12: a budget that pays for
    # exactly those ranks reproduces both.
    rng = np.random.default_rng(0)
    model = keras.Sequential([
        keras.Input((40,)), keras.layers.Dense(40, use_bias=False, name="a"),
        keras.layers.Dense(40, use_bias=False, name="b")])
    model.get_layer("a").kernel.assign(rng.normal(size=(40, 2)) @ rng.normal(size=(2, 40)))
    model.get_layer("b").kernel.assign(rng.normal(size=(40, 12)) @ rng.normal(size=(12, 40)))
    small = keras_ssn.baselines.low_rank(model, (2 + 12) * 80)
    assert [s.factors for s in small.sharing_plan.weights.values()] == [(2, 0), (12, 0)]
    x = sample_input(model)
    np.testing.assert_allclose(numpy(small(x)), numpy(model(x)), rtol=1e-4, atol=1e-4)


def test_entries_left_over_correct_the_largest_weight():
    model = keras.Sequential([
        keras.Input((30,)), keras.layers.Dense(20, use_bias=False, name="a"),
        keras.layers.Dense(5, use_bias=False, name="b")])
    small = keras_ssn.baselines.low_rank(model, 50 + 25 + 7)
    assert [s.factors for s in small.sharing_plan.weights.values()] == [(1, 7), (1, 0)]
    a = numpy(model.get_layer("a").kernel).reshape(-1)
    generated = numpy(keras_ssn.materialize(small).get_layer("a").kernel).reshape(-1)
    np.testing.assert_allclose(generated[:7], a[:7], atol=1e-6)


def test_a_budget_outside_the_factorizations_raises():
    model = keras.Sequential([keras.Input((30,)), keras.layers.Dense(20, use_bias=False)])
    with pytest.raises(keras_ssn.BudgetError) as error:
        keras_ssn.baselines.low_rank(model, 49)
    assert (error.value.smallest, error.value.largest) == (50, 20 * 50 + 600)
