import warnings

import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import sample_input
from conftest import sample_targets

import keras_ssn
from keras_ssn.layers import COEFFICIENTS_NAME


@pytest.mark.parametrize("fraction", [0.1, 4.0])
def test_fit_under_xla_updates_the_bank(model_name, fraction):
    small = keras_ssn.convert(MODELS[model_name](), fraction, seed=0)
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    x, y = sample_input(small, 8), sample_targets(small, 8)
    before = keras.ops.convert_to_numpy(small.bank.vector()).copy()
    history = small.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert small.jit_compile is True
    assert np.all(np.isfinite(history.history["loss"]))
    assert np.abs(keras.ops.convert_to_numpy(small.bank.vector()) - before).max() > 0
    assert keras_ssn.count_trainable(small) == round(
        fraction * keras_ssn.count_trainable(MODELS[model_name]())
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_the_bank_in_float32(policy):
    keras.config.set_dtype_policy(policy)
    model = MODELS["residual_cnn"]()
    small = keras_ssn.convert(model, 0.1, seed=0)
    assert all(piece.dtype == "float32" for piece in small.bank.pieces)
    for layer in small.shared_layers():
        assert layer.compute_dtype == policy.split("_")[1]
        for variable in layer.coefficients.values():
            assert variable is None or variable.dtype == "float32"
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    x, y = sample_input(small, 8), sample_targets(small, 8)
    history = small.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    out = small(x)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]


def test_callbacks_run_during_fit():
    small = keras_ssn.convert(MODELS["mlp"](), 0.1, seed=0)
    small.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    seen = []
    callbacks = [
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e)),
        keras.callbacks.EarlyStopping(monitor="loss", patience=5),
    ]
    x, y = sample_input(small, 8), sample_targets(small, 8)
    small.fit(x, y, epochs=3, verbose=0, callbacks=callbacks)
    assert seen == [0, 1, 2]


def test_coefficients_are_excluded_from_weight_decay():
    small = keras_ssn.convert(MODELS["mlp"](), 3.0, seed=0)
    small.compile(optimizer=keras.optimizers.AdamW(weight_decay=0.1), loss="mse")
    coefficients = [v for v in small.trainable_variables if COEFFICIENTS_NAME in v.name]
    assert coefficients
    optimizer = small.optimizer
    assert not any(optimizer._use_weight_decay(v) for v in coefficients)
    assert all(optimizer._use_weight_decay(p) for p in small.bank.pieces)


def test_user_weight_decay_exclusions_are_kept():
    small = keras_ssn.convert(MODELS["mlp"](), 3.0, seed=0)
    optimizer = keras.optimizers.AdamW(weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    small.compile(optimizer=optimizer, loss="mse")
    biases = [v for v in small.trainable_variables if v.name == "bias"]
    assert biases and not any(optimizer._use_weight_decay(v) for v in biases)


def test_user_weight_decay_pattern_with_alternatives_is_kept_whole():
    small = keras_ssn.convert(MODELS["mlp"](), 3.0, seed=0)
    optimizer = keras.optimizers.AdamW(weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["bi(as|x)$"])
    small.compile(optimizer=optimizer, loss="mse")
    decayed = {v.name for v in small.trainable_variables if optimizer._use_weight_decay(v)}
    # The bank (held in pieces at 300%); biases and coefficients excluded.
    assert decayed == {piece.name for piece in small.bank.pieces}
    assert len(decayed) > 1


def test_kernel_regularizer_applies_to_the_generated_kernel():
    model = keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(32, kernel_regularizer=keras.regularizers.L2(0.5)),
    ])
    small = keras_ssn.convert(model, 0.5, seed=0)
    kernel = keras.ops.convert_to_numpy(small.layers[0].kernel)
    (loss,) = small.losses
    np.testing.assert_allclose(float(loss), 0.5 * np.sum(kernel**2), rtol=1e-5)


def test_compiling_with_frozen_shared_layers_warns_and_names_them():
    model = MODELS["nested"]()
    small = keras_ssn.convert(model, 0.5, seed=0)
    small.get_layer("inner").trainable = False
    with pytest.warns(UserWarning, match=r"Layers \['inner/block/expand', "
                      r"'inner/block/project', 'inner/inner_dense'\] are frozen.*exclude="):
        small.compile(optimizer="adam", loss="mse")

    whole = keras_ssn.convert(MODELS["mlp"](), 0.5, seed=0)  # a Sequential
    whole.trainable = False  # nothing trains, so nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole.compile(optimizer="adam", loss="mse")

    frozen = keras_ssn.convert(model, 0.99, seed=0, exclude="inner")
    frozen.get_layer("inner").trainable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frozen.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 32)).astype("float32")
    inner = frozen.get_layer("inner")
    before = [keras.ops.convert_to_numpy(w) for w in inner.weights]
    frozen.fit(x, np.zeros((16, 3)), epochs=1, verbose=0)
    for old, new in zip(before, inner.weights):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


def test_a_compiled_model_converts_to_an_uncompiled_copy(tmp_path):
    # Trained first, then converted: the copy is not compiled, so it saves,
    # reloads and trains once compiled, and the model itself stays compiled.
    model = MODELS["nested"]()
    model.compile(optimizer="adam", loss="mse")
    x, y = sample_input(model, 8), sample_targets(model, 8)
    model.fit(x, y, epochs=1, verbose=0)
    small = keras_ssn.convert(model, 0.5, seed=0)
    assert not small.compiled
    assert model.compiled
    small.save(str(tmp_path / "small.keras"))
    loaded = keras.models.load_model(str(tmp_path / "small.keras"))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(small(x)),
        rtol=1e-6, atol=1e-6)
    small.compile(optimizer="adam", loss="mse")
    assert np.isfinite(small.fit(x, y, epochs=1, verbose=0).history["loss"][0])
