"""The HashedNets baseline (`keras_ssn.baselines.hashed`)."""

import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn.generation import hash_table


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
    bank = keras.ops.convert_to_numpy(small.bank.entries)
    used = []
    for layer in small.layers:
        spec = layer.sharing["kernel"]
        index, sign = hash_table(spec)
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
