"""`keras_ssn.clone_model()` on converted models, and what Keras's own gives."""

import keras
import numpy as np
import pytest

import keras_ssn
from conftest import MODELS
from conftest import sample_input
from conftest import sample_targets


def outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


@pytest.mark.parametrize("name", ["mlp", "residual_cnn", "nested"])
def test_a_clone_is_a_converted_model_with_a_bank_of_its_own(name):
    model = keras_ssn.convert(MODELS[name](), 0.5, seed=0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = sample_input(model), sample_targets(model)

    clone = keras_ssn.clone_model(model)

    assert type(clone) is type(model)
    assert clone.sharing_plan == model.sharing_plan
    assert keras_ssn.count_trainable(clone) == keras_ssn.count_trainable(model)
    assert clone.bank is not model.bank
    assert [v.shape for v in clone.weights] == [v.shape for v in model.weights]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(outputs(clone, x), outputs(model, x))
    assert clone.compiled and clone.loss == "mse"
    bank = keras.ops.convert_to_numpy(model.bank.vector())
    clone.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(keras.ops.convert_to_numpy(clone.bank.vector()), bank)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model.bank.vector()), bank)


def test_a_clone_that_reuses_the_layers_reuses_the_bank():
    model = keras_ssn.convert(MODELS["residual_cnn"](), 0.5, seed=0)
    x = sample_input(model)
    clone = keras_ssn.clone_model(model, clone_function=lambda layer: layer)
    assert clone.bank is model.bank
    np.testing.assert_array_equal(outputs(clone, x), outputs(model, x))


def test_a_recursive_clone_of_a_nested_model():
    model = keras_ssn.convert(MODELS["nested"](), 0.5, seed=0)
    x = sample_input(model)
    clone = keras_ssn.clone_model(model, recursive=True)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(outputs(clone, x), outputs(model, x))
    assert keras_ssn.count_trainable(keras_ssn.materialize(clone)) == (
        keras_ssn.count_trainable(MODELS["nested"]()))


def test_a_clone_of_a_converted_backbone_materializes_to_its_class():
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    model = keras_ssn.convert(backbone, 0.5, seed=0)
    clone = keras_ssn.clone_model(model)
    assert type(clone) is type(model) and isinstance(clone, type(backbone))
    assert clone.bank is not model.bank
    clone.set_weights(model.get_weights())
    x = {"token_ids": np.ones((2, 8), "int32"), "padding_mask": np.ones((2, 8), "int32")}
    plain = keras_ssn.materialize(clone)
    assert type(plain) is type(backbone)
    np.testing.assert_allclose(outputs(plain, x), outputs(model, x), rtol=1e-5, atol=1e-5)


def test_a_plain_model_clones_as_keras_clones_it():
    model = MODELS["mlp"]()
    clone = keras_ssn.clone_model(model)
    assert type(clone) is keras.Sequential and not hasattr(clone, "bank")


@pytest.mark.parametrize("name", ["mlp", "residual_cnn"])
def test_keras_clone_model_gives_layers_without_a_bank_and_says_what_to_do(name):
    model = keras_ssn.convert(MODELS[name](), 0.5, seed=0)
    clone = keras.models.clone_model(model)
    with pytest.raises(ValueError, match=r"copy it with `keras_ssn.clone_model\(\)`"):
        clone(sample_input(model))


def test_importing_keras_ssn_leaves_kerass_cloning_module_as_it_is():
    from keras.src.models import cloning

    for name in ("clone_model", "_clone_sequential_model", "_clone_functional_model"):
        function = getattr(cloning, name)
        assert function.__module__ == "keras.src.models.cloning"
        assert not hasattr(function, "__wrapped__")


def test_a_converted_model_nested_in_a_plain_one_is_cloned_with_its_bank():
    inner = keras_ssn.convert(MODELS["mlp"](), 0.5, seed=0)
    x = sample_input(inner)
    outer = keras.Sequential([keras.Input(x.shape[1:]), inner, keras.layers.Dense(3)])
    for recursive in (False, True):
        clone = keras_ssn.clone_model(outer, recursive=recursive)
        copy = clone.layers[0]
        assert isinstance(copy, keras_ssn.SharedSequential) and copy.bank is not inner.bank
        clone.set_weights(outer.get_weights())
        np.testing.assert_array_equal(outputs(clone, x), outputs(outer, x))
