"""`check_conversion()`: run the whole contract of `convert()` on one model."""

import os
import tempfile

import keras
import numpy as np

from keras_ssn.convert import convert
from keras_ssn.convert import materialize
from keras_ssn.keras_internals import sublayers
from keras_ssn.layer_paths import count_trainable


def check_conversion(model, budget, directory=None, jit_compile=True, seed=0, **options):
    """Converts `model` and checks every promise `convert()` makes about it.

    Raises `AssertionError` at the first broken promise: the trainable count
    equals the budget; one `fit` step runs (under XLA by default) and changes
    the bank; `.keras` save and load give identical predictions; SavedModel
    export serves the same predictions (TensorFlow backend, one input);
    `keras.models.clone_model()` gives a model with the same plan and a bank
    of its own that predicts the same after `set_weights`;
    `materialize()` gives the original architecture and parameter count with
    the same predictions.

    Args:
        model: A built model (Sequential, Functional or subclassed) with one
            input.
        budget: As for `convert()`.
        directory: Where to write the saved files; a temporary directory by
            default.
        jit_compile: Passed to `compile()`.
        seed: Seed for `convert()` and the random batch.
        **options: Other `convert()` arguments.

    Returns:
        Dict with the converted, trained model (`"model"`) and the names of
        the checks that ran (`"checks"`).
    """
    if directory is None:
        with tempfile.TemporaryDirectory() as directory:
            return check_conversion(model, budget, directory, jit_compile, seed, **options)
    original = count_trainable(model)
    small = convert(model, budget, seed=seed, **options)
    expected_count = budget if isinstance(budget, int) else round(budget * original)
    _check(count_trainable(small) == expected_count,
           f"trainable count {count_trainable(small)} != budget {expected_count}")
    checks = ["budget"]
    x, y = random_batch(small, seed)
    small.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    before = keras.ops.convert_to_numpy(small.bank.vector())
    small.fit(x, y, epochs=1, batch_size=len(y), verbose=0)
    _check(not np.array_equal(before, keras.ops.convert_to_numpy(small.bank.vector())),
           "fit did not change the bank")
    checks.append("fit")
    expected = _predict(small, x)
    path = os.path.join(directory, "model.keras")
    small.save(path)
    loaded = keras.models.load_model(path)
    _check(np.array_equal(_predict(loaded, x), expected),
           "predictions changed after save and load")
    checks.append("save_load")
    _check_clone(loaded, x, expected)
    checks.append("clone")
    if keras.backend.backend() == "tensorflow" and _input_count(model) == 1:
        _check_export(loaded, x, expected, os.path.join(directory, "saved_model"))
        checks.append("export")
    plain = materialize(loaded)
    _check([type(l) for l in sublayers(plain)]
           == [type(l) for l in sublayers(model)] and type(plain) is type(model),
           "materialize() changed the layer classes")
    _check(count_trainable(plain) == original,
           f"materialized count {count_trainable(plain)} != original {original}")
    scale = max(1.0, float(np.abs(expected).max()))
    difference = float(np.abs(_predict(plain, x) - expected).max())
    _check(difference <= 1e-4 * scale,
           f"materialized predictions differ by {difference:.3g}")
    checks.append("materialize")
    return {"model": small, "checks": checks}


def random_batch(model, seed=0, batch=4):
    """A random input batch and target batch that fit `model`'s signature.

    Inputs follow the model's inputs (one array, a list or a dict; integer
    inputs get 0s and 1s, valid as token ids and as masks), or for a
    subclassed model the shape it was built with (float inputs).
    """
    rng = np.random.default_rng(seed)

    def sample(shape, dtype):
        shape = (batch,) + tuple(d or 8 for d in shape[1:])
        if "int" in str(dtype) or "bool" in str(dtype):
            return rng.integers(0, 2, shape).astype("int32")
        return rng.normal(size=shape).astype("float32")

    inputs = getattr(model, "_inputs_struct", None)
    if inputs is None:
        x = sample(model.get_build_config()["input_shape"], "float32")
    else:
        x = keras.tree.map_structure(lambda t: sample(t.shape, t.dtype), inputs)
    first = keras.tree.map_structure(lambda a: a[:1], x)
    output = keras.ops.convert_to_numpy(model(first))
    y = rng.normal(size=(batch,) + output.shape[1:]).astype("float32")
    return x, y


def _predict(model, x):
    # A direct call in inference mode: the same outputs as `predict`, without
    # compiling a predict function for every model the check builds.
    return keras.ops.convert_to_numpy(model(x, training=False))


def _input_count(model):
    inputs = getattr(model, "_inputs_struct", None)
    return 1 if inputs is None else len(keras.tree.flatten(inputs))


def _check_clone(model, x, expected):
    copy = keras.models.clone_model(model)
    _check(copy.sharing_plan == model.sharing_plan and copy.bank is not model.bank
           and count_trainable(copy) == count_trainable(model),
           "clone_model() did not give a converted model with the same plan "
           "and a bank of its own")
    copy.set_weights(model.get_weights())
    _check(np.array_equal(_predict(copy, x), expected),
           "clone_model() copy predicts differently after set_weights")


def _check_export(model, x, expected, path):
    import tensorflow as tf

    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)  # kept alive while serving
    served = reloaded.serve(x).numpy()
    difference = float(np.abs(served - expected).max())
    _check(difference <= 1e-5 * max(1.0, float(np.abs(expected).max())),
           f"exported SavedModel differs by {difference:.3g}")


def _check(condition, message):
    if not condition:
        raise AssertionError(message)
