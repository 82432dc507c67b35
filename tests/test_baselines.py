"""The HashedNets baseline (`keras_ssn.baselines.hashed`)."""

import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn import hashing
from keras_ssn.generation import hashed_read


@pytest.mark.parametrize("fraction", [0.05, 0.5])
def test_hashed_model_is_exact_trains_saves_and_materializes(fraction, tmp_path):
    model = MODELS["residual_cnn"]()
    small = keras_ssn.baselines.hashed(model, fraction, seed=0)
    assert keras_ssn.count_trainable(small) == round(
        fraction * keras_ssn.count_trainable(model))
    assert small.sharing_plan.coefficient_params == 0
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    small.fit(x, np.zeros((4, 5)), verbose=0)
    expected = small.predict(x, verbose=0)
    small.save(str(tmp_path / "hashed.keras"))
    loaded = keras.models.load_model(str(tmp_path / "hashed.keras"))
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    plain = keras_ssn.materialize(loaded)
    np.testing.assert_allclose(plain.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_every_weight_entry_is_a_signed_bank_entry_and_every_entry_is_used():
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(30, use_bias=False),
                              keras.layers.Dense(7, use_bias=False)])
    small = keras_ssn.baselines.hashed(model, 100, seed=3)
    bank = keras.ops.convert_to_numpy(small.bank.vector())
    used = []
    for layer in small.layers:
        spec = layer.sharing["kernel"]
        index, sign = (keras.ops.convert_to_numpy(t) for t in hashed_read([spec]))
        kernel = keras.ops.convert_to_numpy(layer.kernel).reshape(-1)
        np.testing.assert_allclose(kernel, spec.scale * sign * bank[index], rtol=1e-6)
        assert set(np.unique(sign)) == {-1.0, 1.0}
        used.append(index)
    counts = np.bincount(np.concatenate(used), minlength=100)
    assert counts.min() == 8 and counts.max() == 9  # 810 entries over 100 bank entries


def test_hashed_budget_above_the_model_raises():
    model = MODELS["mlp"]()
    original = keras_ssn.count_trainable(model)
    with pytest.raises(keras_ssn.BudgetError, match="with a hashed bank") as info:
        keras_ssn.baselines.hashed(model, 2.0)
    assert info.value.largest == original
    assert keras_ssn.count_trainable(keras_ssn.baselines.hashed(model, original)) == original


def test_the_hash_is_the_same_on_every_backend():
    """Pinned: the same seed reads the same bank entries with the same signs
    on TensorFlow and JAX (int32 arithmetic that never overflows)."""
    positions = keras.ops.arange(0, 6, dtype="int32")
    index, sign = hashing.hashed_reads(3, 810, hashing.ROUNDS, positions, 100)
    assert keras.ops.convert_to_numpy(index).tolist() == [17, 35, 43, 72, 8, 7]
    assert keras.ops.convert_to_numpy(sign).tolist() == [1.0, 1.0, -1.0, 1.0, 1.0, 1.0]
    everything = keras.ops.arange(0, 810, dtype="int32")
    index, _ = hashing.hashed_reads(3, 810, hashing.ROUNDS, everything, 810)
    assert sorted(keras.ops.convert_to_numpy(index).tolist()) == list(range(810))


def largest_constant(model, x):
    """Elements in the largest constant of the traced forward pass."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        graph = tf.function(model).get_concrete_function(x).graph.as_graph_def()
        return max(tf.make_ndarray(node.attr["value"].tensor).size
                   for node in graph.node if node.op == "Const")
    import jax

    variables = ([v.value for v in model.trainable_variables],
                 [v.value for v in model.non_trainable_variables])
    traced = jax.make_jaxpr(lambda t, n, x: model.stateless_call(t, n, x)[0])(*variables, x)
    return max((np.size(c) for c in traced.consts), default=0)


def test_the_graph_holds_no_weight_sized_hash():
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(30, use_bias=False),
                              keras.layers.Dense(7, use_bias=False)])
    small = keras_ssn.baselines.hashed(model, 100, seed=3)
    assert largest_constant(small, np.ones((2, 20), "float32")) < 20


def test_a_model_beyond_the_hash_raises(monkeypatch):
    monkeypatch.setattr(hashing, "MAX_TOTAL", 500)
    with pytest.raises(ValueError, match="at most 500 weight entries; this model's shared "
                                         "weights have 810. Leave some layers out"):
        keras_ssn.baselines.hashed(keras.Sequential([
            keras.Input((20,)), keras.layers.Dense(30, use_bias=False),
            keras.layers.Dense(7, use_bias=False)]), 100)


def test_a_plan_with_another_versions_hash_is_refused():
    small = keras_ssn.baselines.hashed(MODELS["mlp"](), 0.5, seed=0)
    config = small.sharing_plan.get_config()
    for spec in config["weights"].values():
        spec["hashing"] = spec["hashing"][:3]  # (seed, position, total)
    with pytest.raises(ValueError, match="names a hash of another version"):
        keras_ssn.plan.SharingPlan.from_config(config).check(small.bank.size)
