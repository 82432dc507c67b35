import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn


@pytest.mark.parametrize("budget", ["100", None, [10], True])
def test_budget_of_the_wrong_type(budget):
    with pytest.raises(TypeError, match="budget"):
        keras_ssn.convert(MODELS["mlp"](), budget)


@pytest.mark.parametrize("budget", [0, -5, 0.0, -0.5, float("nan"), float("inf")])
def test_budget_that_is_not_positive_and_finite(budget):
    with pytest.raises(ValueError, match="budget"):
        keras_ssn.convert(MODELS["mlp"](), budget)


@pytest.mark.parametrize("budget", [0.5, 1000])
def test_a_frozen_model_says_to_unfreeze_it(budget):
    model = MODELS["mlp"]()
    model.trainable = False
    with pytest.raises(ValueError, match=r"no trainable parameters: it is frozen .*"
                       r"Set `model.trainable = True` before converting it"):
        keras_ssn.convert(model, budget)


def test_unbuilt_model():
    model = keras.Sequential([keras.layers.Dense(4)], name="unbuilt")
    with pytest.raises(ValueError, match="'unbuilt' is not built.*call it on a batch"):
        keras_ssn.convert(model, 0.5)


class Custom(keras.layers.Layer):
    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], 4))

    def call(self, x):
        return x @ self.w


def custom_model():
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16)(inputs)
    outputs = Custom(name="custom")(x)
    return keras.Model(inputs, outputs)


def test_strict_rejects_an_unsupported_layer():
    with pytest.raises(keras_ssn.UnsupportedLayerError, match="'custom'.*strict=False"):
        keras_ssn.convert(custom_model(), 0.5, strict=True)


def test_unsupported_layer_passes_through_and_is_reported(capsys):
    with pytest.warns(UserWarning, match="custom"):
        small = keras_ssn.convert(custom_model(), 0.5)
    report = keras_ssn.summary(small)
    assert [e["path"] for e in small.sharing_plan.unshared_layers] == ["custom"]
    assert report.unshared_layers[0]["params"] == 64
    # The shared Dense layer keeps its bias, listed after the unshared layers.
    assert [(e["class_name"], e["params"], e["reason"]) for e in report.unshared_layers[1:]] == [
        ("Dense", 16, "shared; keeps its bias")]
    assert "custom" in capsys.readouterr().out
    assert not isinstance(small.get_layer("custom"), keras_ssn.SharedDense)


class Mixer(keras.layers.Layer):
    """A custom layer that holds a Dense layer and creates a matrix of its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.mix = self.add_weight(shape=(4, 4), name="mix")

    def call(self, x):
        return self.dense(x) @ self.mix


def test_weights_a_custom_layer_creates_itself_are_reported_or_refused():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, Mixer(name="mixer")(inputs))
    with pytest.warns(UserWarning, match=r"mixer \(Mixer\)"):
        small = keras_ssn.convert(model, 0.5)
    assert list(small.sharing_plan.weights) == ["mixer/dense/kernel"]
    assert [(e["path"], e["params"], e["reason"]) for e in small.sharing_plan.unshared_layers] == [
        ("mixer", 16, "no shared variant of Mixer for the weights it creates itself "
                      "(its sublayers are shared)")]
    with pytest.raises(keras_ssn.UnsupportedLayerError, match="'mixer'.*strict=False"):
        keras_ssn.convert(model, 0.5, strict=True)


def test_strict_accepts_normalization_layers():
    small = keras_ssn.convert(MODELS["residual_cnn"](), 0.5, strict=True)
    reasons = {e["reason"] for e in small.sharing_plan.unshared_layers}
    assert reasons == {"normalization layers keep their own weights"}


def test_already_converted_model():
    small = keras_ssn.convert(MODELS["mlp"](), 0.5)
    with pytest.raises(ValueError, match="already converted"):
        keras_ssn.convert(small, 0.5)
    inputs = keras.Input(small.input_shape[1:])
    outer = keras.Model(inputs, keras.layers.Dense(2)(small(inputs)), name="outer")
    with pytest.raises(ValueError, match=(
            f"Model 'outer' contains '{small.name}', a model keras_ssn already "
            "converted")):
        keras_ssn.convert(outer, 0.5)


def test_a_model_without_weights_has_nothing_to_share():
    model = keras.Sequential([keras.Input((4,)), keras.layers.ReLU()])
    with pytest.raises(ValueError, match="has no weights to share"):
        keras_ssn.convert(model, 0.5)


def test_subclassed_model_that_cannot_be_copied_says_how_to_fix_it():
    class Sub(keras.Model):
        def __init__(self, scale):
            super().__init__()
            self.scale = scale
            self.d = keras.layers.Dense(3)

        def call(self, x):
            return self.d(x) * self.scale.value

    class Holder:  # not serializable, so Keras cannot record Sub's arguments
        value = 2.0

    model = Sub(Holder())
    model(keras.ops.ones((1, 4)))
    with pytest.raises(keras_ssn.CopyError, match=(
            r"(?s)Cannot copy model 'sub' \(Sub\) from its config: .*"
            r"give each custom layer or model a `get_config\(\)`")):
        keras_ssn.convert(model, 0.5)
    with pytest.raises(TypeError, match="takes a Keras model"):
        keras_ssn.convert(keras.layers.Dense(3), 0.5)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"share": "nope"}, ValueError, "share"),
        ({"upsample": "nope"}, ValueError, "upsample"),
        ({"max_templates": 0}, ValueError, "max_templates"),
        ({"max_templates": 2.5}, TypeError, "max_templates"),
        ({"groups": "nope"}, ValueError, "groups"),
        ({"groups": 99}, ValueError, "random groups"),
        ({"groups": {"hidden_1": 0}}, ValueError, "Missing paths"),
    ],
)
def test_bad_options(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        keras_ssn.convert(MODELS["mlp"](), 0.5, **kwargs)


def test_shared_layer_without_a_bank():
    small = keras_ssn.convert(MODELS["mlp"](), 0.5)
    config = keras.saving.serialize_keras_object(small.layers[0])
    orphan = keras.saving.deserialize_keras_object(config)
    with pytest.raises(ValueError, match="not attached"):
        orphan(keras.ops.ones((1, 64)))


@pytest.mark.filterwarnings("ignore:Layer InputLayer does not have a `quantize`")
def test_quantizing_a_converted_model_is_refused(tmp_path):
    small = keras_ssn.convert(MODELS["mlp"](), 0.5, seed=0)
    small.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    for model in (small, loaded):
        with pytest.raises(ValueError, match=r"Model '.*' generates its weights .*materialize"):
            model.quantize("int8")
    outer = keras.Sequential([keras.Input(small.input_shape[1:]), small])
    with pytest.raises(ValueError, match=r"Layer '.*' generates its weights .*materialize"):
        outer.quantize("int8")  # Keras reaches the shared layers one by one
    plain = keras_ssn.materialize(small)
    plain.quantize("int8")
    assert {l.dtype_policy.name for l in plain.layers if l.weights} == {"int8_from_float32"}


def test_an_unsupported_backend_is_refused(monkeypatch, tmp_path):
    small = keras_ssn.convert(MODELS["mlp"](), 0.5, seed=0)
    small.save(str(tmp_path / "m.keras"))
    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    message = r"runs on the TensorFlow and JAX backends; Keras is running on 'torch'"
    with pytest.raises(RuntimeError, match=message):
        keras_ssn.convert(MODELS["mlp"](), 0.5)
    with pytest.raises(RuntimeError, match=message):
        keras_ssn.baselines.hashed(MODELS["mlp"](), 0.5)
    with pytest.raises(RuntimeError, match=message):
        keras.models.load_model(str(tmp_path / "m.keras"))


@pytest.mark.parametrize("make", [keras_ssn.convert, keras_ssn.baselines.hashed])
def test_seeds_are_ints_a_jax_key_can_hold(make):
    model = MODELS["mlp"]()
    with pytest.raises(ValueError, match=r"seed must be between 0 and 2,147,483,647 "
                                         r"\(2\*\*31 - 1\); received -1\."):
        make(model, 0.5, seed=-1)
    with pytest.raises(ValueError, match="received 1099511627776"):
        make(model, 0.5, seed=2**40)
    with pytest.raises(TypeError, match="seed must be an int or None; received 2.5"):
        make(model, 0.5, seed=2.5)
    small = make(model, 0.5, seed=np.int64(3))
    assert keras_ssn.count_trainable(small) == round(0.5 * keras_ssn.count_trainable(model))


def test_a_hashed_model_without_a_seed_records_the_one_it_drew():
    small = keras_ssn.baselines.hashed(MODELS["mlp"](), 0.5, seed=None)
    seeds = {spec.hashing[0] for spec in small.sharing_plan.weights.values()}
    assert len(seeds) == 1 and 0 <= seeds.pop() <= 2**31 - 1
