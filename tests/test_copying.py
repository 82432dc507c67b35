"""`convert()` copies a model from its own config, keeps a Functional
subclass's class, and names layers so that a rebuilt model finds them."""

import keras
import numpy as np
import pytest

import keras_ssn
from keras_ssn.copying import copy_model


@keras.saving.register_keras_serializable(package="test_copying")
class TinyBackbone(keras.Model):
    """A Functional subclass described by its arguments, with unnamed layers."""

    def __init__(self, units=8, **kwargs):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(units, activation="relu")(inputs)
        outputs = keras.layers.Dense(units)(hidden)
        super().__init__(inputs, outputs, **kwargs)
        self.units = units

    def get_config(self):
        return {"units": self.units, "name": self.name, "trainable": self.trainable}


@keras.saving.register_keras_serializable(package="test_copying")
class ForgetfulBackbone(TinyBackbone):
    def get_config(self):
        return {"name": self.name}  # forgets `units`


class Scale(keras.layers.Layer):
    """A custom layer that is not registered."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return dict(super().get_config(), factor=self.factor)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_a_functional_subclass_keeps_its_class_and_layer_paths(tmp_path):
    model = TinyBackbone(units=6)
    small = keras_ssn.convert(model, 0.5, seed=0)
    assert type(small).__name__ == "SharedTinyBackbone"
    assert isinstance(small, TinyBackbone) and small.units == 6
    # Unnamed layers get the name of their class and their rank: the same in
    # a copy rebuilt after other layers took `dense_<n>` names.
    assert sorted(small.sharing_plan.weights) == ["dense#0/kernel", "dense#1/kernel"]
    for _ in range(3):
        keras.layers.Dense(2)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    small.save(tmp_path / "tiny.keras")
    loaded = keras.models.load_model(tmp_path / "tiny.keras")
    assert type(loaded) is type(small)
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(small(x)))
    plain = keras_ssn.materialize(loaded)
    assert type(plain) is TinyBackbone
    np.testing.assert_allclose(numpy(plain(x)), numpy(small(x)), rtol=1e-6, atol=1e-6)
    clone = keras_ssn.clone_model(small)
    assert type(clone) is type(small) and clone.bank is not small.bank


def test_the_input_model_keeps_its_weights_and_class():
    model = TinyBackbone()
    before = [numpy(v) for v in model.weights]
    keras_ssn.convert(model, 0.5, seed=0)
    assert type(model) is TinyBackbone
    assert len(model.weights) == len(before)
    for value, variable in zip(before, model.weights):
        np.testing.assert_array_equal(value, numpy(variable))


def test_a_config_that_does_not_describe_the_model_is_refused():
    with pytest.raises(keras_ssn.CopyError, match=r"its weight 0 is '.*' of shape \(4, 8\) "
                       r"where the model's is '.*' of shape \(4, 3\)\. .*get_config\(\)"):
        keras_ssn.convert(ForgetfulBackbone(units=3), 0.5)


def test_unregistered_custom_layers_are_copied():
    inputs = keras.Input((4,))
    hidden = Scale(3.0)(keras.layers.Dense(8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    small = keras_ssn.convert(model, 0.5, seed=0)
    x = np.ones((2, 4), "float32")
    plain = keras_ssn.materialize(small)
    assert isinstance(plain.layers[2], Scale) and plain.layers[2].factor == 3.0
    np.testing.assert_allclose(numpy(plain(x)), numpy(small(x)), rtol=1e-6, atol=1e-6)


def test_summary_lists_the_weights_shared_layers_keep():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="hidden"),
                              keras.layers.LayerNormalization(name="norm"),
                              keras.layers.Dense(3, name="head")])
    small = keras_ssn.convert(model, 0.5, seed=0)
    report = keras_ssn.summary(small, print_fn=lambda text: None)
    rows = {e["path"]: (e["class_name"], e["params"], e["reason"])
            for e in report.unshared_layers}
    assert rows == {
        "norm": ("LayerNormalization", 16, "normalization layers keep their own weights"),
        "hidden": ("Dense", 8, "shared; keeps its bias"),
        "head": ("Dense", 3, "shared; keeps its bias"),
    }
    assert sum(params for _, params, _ in rows.values()) == report.unshared_params


class TokenTable(keras.layers.Layer):
    """Reads its Embedding's private `_embeddings`, as keras_hub's SAM3 does."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.table = keras.layers.Embedding(6, 4)

    def build(self, input_shape):
        self.table.build((None,))

    def call(self, x):
        return x @ keras.ops.transpose(self.table._embeddings)


def test_a_layer_that_reads_an_embeddings_private_table_reads_the_generated_one():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, TokenTable(name="tokens")(keras.layers.Dense(4)(inputs)))
    small = keras_ssn.convert(model, 0.5, seed=0)
    assert "tokens/table/embeddings" in small.sharing_plan.weights
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    plain = keras_ssn.materialize(small)
    np.testing.assert_allclose(numpy(plain(x)), numpy(small(x)), rtol=1e-6, atol=1e-6)


def test_an_add_layer_and_an_added_constant_are_copied_apart():
    """MobileNetV3 adds with `layers.Add()` and with `x + 3.0`: both are named
    `Add` in a config, and only the layer may be looked up by that name."""
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.Add()([x + 3.0, x]))
    model = keras.Model(inputs, outputs)
    copy = copy_model(model)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy(x)),
                                  keras.ops.convert_to_numpy(model(x)))
