import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import sample_input

import keras_ssn
from keras_ssn.layers import SharedWeightMixin


def layer_signature(model):
    return [
        (type(layer), layer.name, tuple(tuple(w.shape) for w in layer.weights))
        for layer in model._flatten_layers()
        if not isinstance(layer, keras.layers.InputLayer)
    ]


@pytest.mark.parametrize("fraction", [0.015, 0.1, 4.0])
def test_materialize_gives_the_original_architecture_and_outputs(
    model_name, fraction
):
    model = MODELS[model_name]()
    small = keras_ssn.convert(model, fraction, seed=0)
    plain = keras_ssn.materialize(small)
    assert type(plain) is type(model)
    assert layer_signature(plain) == layer_signature(model)
    assert keras_ssn.count_trainable(plain) == keras_ssn.count_trainable(model)
    assert not any(
        isinstance(layer, SharedWeightMixin) for layer in plain._flatten_layers()
    )
    x = sample_input(small)
    expected = keras.ops.convert_to_numpy(small(x))
    got = keras.ops.convert_to_numpy(plain(x))
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= 1e-5 * scale


def test_materialize_after_training_and_reloading(tmp_path):
    model = MODELS["mlp"]()
    small = keras_ssn.convert(model, 0.1, seed=0)
    small.compile(optimizer="adam", loss="mse")
    x = sample_input(small, 8)
    small.fit(x, np.ones((8, 10)), epochs=1, verbose=0)
    small.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    plain = keras_ssn.materialize(loaded)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(plain(x)),
        keras.ops.convert_to_numpy(small(x)),
        rtol=1e-5, atol=1e-5,
    )


def test_materialize_rejects_a_plain_model():
    with pytest.raises(TypeError, match="made by keras_ssn.convert"):
        keras_ssn.materialize(MODELS["mlp"]())


@pytest.mark.parametrize("name", ["mlp", "residual_cnn", "nested"])
def test_conversion_and_materialize_keep_the_input_layer_names(name):
    model = MODELS[name]()

    def input_names(m):
        return [layer.name for layer in m.layers if isinstance(layer, keras.layers.InputLayer)] or [
            m.get_config()["layers"][0]["config"]["name"]]

    small = keras_ssn.convert(model, 0.5)
    assert input_names(small) == input_names(model)
    assert input_names(keras_ssn.materialize(small)) == input_names(model)


def test_a_materialized_model_shares_no_buffer_with_its_source(tmp_path):
    # On JAX, assigning a variable to another shared one device buffer, which
    # a later call then found deleted.
    x = np.random.default_rng(0).normal(size=(64, 16)).astype("float32")
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32), keras.layers.Dense(3)])
    small = keras_ssn.convert(model, 0.5, seed=0)
    small.compile(optimizer="adam", loss="mse")
    small.fit(x, np.zeros((64, 3)), epochs=1, verbose=0)
    small.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    plain = keras_ssn.materialize(loaded)
    np.testing.assert_allclose(plain.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    plain.compile(optimizer="adam", loss="mse")
    plain.fit(x, np.zeros((64, 3)), epochs=1, verbose=0)
    assert np.isfinite(loaded.predict(x, verbose=0)).all()
