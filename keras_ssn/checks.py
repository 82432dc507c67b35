"""`check_conversion()`: run the whole contract of `convert()` on one model."""

import os
import tempfile

import keras
import numpy as np

from keras_ssn.cloning import clone_model
from keras_ssn.convert import convert
from keras_ssn.copying import copy_model
from keras_ssn.materializing import materialize
from keras_ssn.keras_internals import sublayers
from keras_ssn.layer_paths import count_trainable


def check_conversion(model, budget, directory=None, jit_compile=True, seed=0,
                     inputs=None, **options):
    """Converts `model` and checks every promise `convert()` makes about it.

    Raises `AssertionError` at the first broken promise: the trainable count
    equals the budget; one `fit` step runs (under XLA by default) and changes
    the bank; `.keras` save and load give identical predictions; SavedModel
    export serves the same predictions (TensorFlow backend, one input);
    `keras_ssn.clone_model()` gives a model with the same plan and a bank
    of its own that predicts the same after `set_weights`;
    `materialize()` gives the original architecture and parameter count with
    the same predictions. Models with several outputs (a list or a dict) are
    trained with a mean squared error on each output and compared output by
    output. Where save and load, cloning or export fails, the check runs the
    same operation on the plain model (trained one step, for save and load);
    if that fails too, a Keras or library limit (Keras cannot clone
    keras_hub's Llama backbone), the check is skipped and the result says why.

    Args:
        model: A built model (Sequential, Functional or subclassed).
        budget: As for `convert()`.
        directory: Where to write the saved files (created if missing); a
            temporary directory by default.
        jit_compile: Passed to `compile()`.
        seed: Seed for `convert()` and the random batch.
        inputs: A batch of inputs for the checks (one array, a list or a
            dict, as `model` takes them). By default a random batch of 4 that
            follows the model's inputs, with 8 for every dimension the model
            leaves open (see `random_batch`); pass your own for a model that
            needs other lengths or values (a fixed number of tokens, token
            ids below some value).
        **options: Other `convert()` arguments.

    Returns:
        Dict with the converted, trained model (`"model"`), the names of the
        checks that ran (`"checks"`) and the checks skipped, each with why
        (`"skipped"`: `"save_load"`, `"clone"` or `"export"` where the same
        operation fails on the plain model too, a Keras or library limit,
        and `"export"` for models with several inputs or off TensorFlow).
    """
    if directory is None:
        with tempfile.TemporaryDirectory() as directory:
            return check_conversion(model, budget, directory, jit_compile, seed,
                                    inputs, **options)
    os.makedirs(directory, exist_ok=True)
    original = count_trainable(model)
    small = convert(model, budget, seed=seed, **options)
    expected_count = budget if isinstance(budget, int) else round(budget * original)
    _check(count_trainable(small) == expected_count,
           f"trainable count {count_trainable(small)} != budget {expected_count}")
    checks, skipped = ["budget"], {}
    x, outputs = random_batch(small, seed, inputs=inputs)
    y, loss = _training_targets(x, outputs, small)
    small.compile(optimizer="adam", loss=loss, jit_compile=jit_compile)
    before = keras.ops.convert_to_numpy(small.bank.vector())
    small.fit(x, y, epochs=1, batch_size=len(keras.tree.flatten(y)[0]), verbose=0)
    _check(not np.array_equal(before, keras.ops.convert_to_numpy(small.bank.vector())),
           "fit did not change the bank")
    checks.append("fit")
    expected = _predict(small, x)
    saved = {}
    _unless_plain_fails_too("save_load", lambda: saved.update(
        model=_check_save_load(small, x, expected, os.path.join(directory, "model.keras"))),
        lambda: _plain_reload_failure(model, x, outputs, directory, jit_compile),
        checks, skipped)
    # The later checks start from the loaded model, or, where the plain
    # model does not reload either, from the converted one.
    loaded = saved.get("model", small)
    _unless_plain_fails_too(
        "clone", lambda: _check_clone(loaded, x, expected),
        lambda: _failure("keras.models.clone_model()", keras.models.clone_model,
                         copy_model(model)),
        checks, skipped)
    if keras.backend.backend() != "tensorflow":
        skipped["export"] = "SavedModel export needs the TensorFlow backend"
    elif _input_count(model) != 1:
        skipped["export"] = "the check exports models with one input"
    else:
        _unless_plain_fails_too(
            "export", lambda: _check_export(
                loaded, x, expected, os.path.join(directory, "saved_model")),
            lambda: _plain_export_failure(model, x, directory),
            checks, skipped)
    plain = materialize(loaded)
    _check([type(l) for l in sublayers(plain)]
           == [type(l) for l in sublayers(model)] and type(plain) is type(model),
           "materialize() changed the layer classes")
    _check(count_trainable(plain) == original,
           f"materialized count {count_trainable(plain)} != original {original}")
    difference = _relative_difference(_predict(plain, x), expected)
    _check(difference <= 1e-4, f"materialized predictions differ by {difference:.3g} "
           "(relative to the largest output value, or absolute below 1)")
    checks.append("materialize")
    return {"model": small, "checks": checks, "skipped": skipped}


def random_batch(model, seed=0, batch=4, inputs=None):
    """A random input batch and target batch that fit `model`'s signature.

    Inputs follow the model's inputs (one array, a list or a dict; integer
    inputs get 0s and 1s, valid as token ids and as masks; every dimension
    the model leaves open is 8), or for a subclassed model the shape it was
    built with (float inputs). Targets follow the model's outputs (one
    array, a list or a dict), drawn from a normal distribution.

    Args:
        model: A built model.
        seed: Seed for the draws.
        batch: Batch size of the drawn inputs.
        inputs: Inputs to use instead of drawn ones.

    Returns:
        `(x, y)`.

    Raises:
        ValueError: `model` cannot be called on the inputs; the message says
            to pass `inputs=`.
    """
    rng = np.random.default_rng(seed)

    def sample(shape, dtype):
        shape = (batch,) + tuple(d or 8 for d in shape[1:])
        if "int" in str(dtype) or "bool" in str(dtype):
            return rng.integers(0, 2, shape).astype("int32")
        return rng.normal(size=shape).astype("float32")

    structure = getattr(model, "_inputs_struct", None)
    if inputs is not None:
        x = inputs
    elif structure is None:
        x = sample(model.get_build_config()["input_shape"], "float32")
    else:
        x = keras.tree.map_structure(lambda t: sample(t.shape, t.dtype), structure)
    try:
        output = _predict(model, x)
    except Exception as error:
        raise ValueError(
            f"Model '{model.name}' cannot be called on the check's inputs "
            f"({_shapes(x)}): {type(error).__name__}: {error}\nPass a batch it "
            "takes: check_conversion(model, budget, inputs=...)."
        ) from error
    y = keras.tree.map_structure(
        lambda out: rng.normal(size=out.shape).astype("float32"), output)
    return x, y


def _shapes(x):
    return keras.tree.map_structure(lambda a: tuple(np.shape(a)), x)


def _training_targets(x, y, model):
    """Targets and losses that `fit` can train `model` on: `(y, loss)`.

    The loss is `"mse"`, or one `"mse"` per output where the outputs are a
    dict named as the model names its outputs (a single loss applies to
    every output; a dict of losses must use the model's output names). A
    model may also return values that do not follow the batch (SAM's image
    positional embeddings, one for the whole batch), which `fit` cannot
    pair with examples: their targets become zeros with one entry per
    example, and their loss `None` where the losses are a dict (a single
    loss broadcasts the output over the batch).
    """
    if not isinstance(y, dict):
        return y, "mse"
    batch = len(keras.tree.flatten(x)[0])
    follows = {key: np.shape(value)[0] == batch for key, value in y.items()}
    targets = {
        key: value if follows[key]
        else np.zeros((batch,) + np.shape(value)[1:], np.asarray(value).dtype)
        for key, value in y.items()
    }
    names = getattr(model, "output_names", None)
    if names is None or sorted(y) != sorted(names):
        return targets, "mse"
    return targets, {key: "mse" if follows[key] else None for key in y}


def _predict(model, x):
    # A direct call in inference mode: the same outputs as `predict`, without
    # compiling a predict function for every model the check builds.
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


def _all_equal(a, b):
    keras.tree.assert_same_structure(a, b)
    return all(np.array_equal(p, q)
               for p, q in zip(keras.tree.flatten(a), keras.tree.flatten(b)))


def _relative_difference(a, b):
    """The largest difference of two outputs over their largest value (at least 1)."""
    keras.tree.assert_same_structure(a, b)
    pairs = [(np.asarray(p), np.asarray(q))
             for p, q in zip(keras.tree.flatten(a), keras.tree.flatten(b))]
    if not all(np.array_equal(p, q) for p, q in pairs
               if q.dtype.kind not in "fc"):
        return float("inf")  # integer or boolean outputs (masks) must be equal
    pairs = [(p, q) for p, q in pairs if q.dtype.kind in "fc" and q.size]
    scale = max([1.0] + [float(np.abs(q).max()) for _, q in pairs])
    return max([0.0] + [float(np.abs(p - q).max()) for p, q in pairs]) / scale


def _input_count(model):
    inputs = getattr(model, "_inputs_struct", None)
    return 1 if inputs is None else len(keras.tree.flatten(inputs))


def _unless_plain_fails_too(name, check, plain_failure, checks, skipped):
    """Runs `check`, or records why it is skipped where it fails on the plain model too.

    `plain_failure()` runs the same operation on a copy of the plain model
    made as `load_model()` makes one (the checks run on the loaded converted
    model) and returns how it fails there, a Keras or library limit, or
    `None` when it works, in which case `check`'s error stands.
    """
    try:
        check()
    except Exception:
        failure = plain_failure()
        if failure is None:
            raise
        skipped[name] = failure
        return
    checks.append(name)


def _failure(operation, function, *args):
    """How `function(*args)` on the plain model fails, or `None`."""
    try:
        function(*args)
    except Exception as error:
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        return f"{operation} fails on the model itself: {type(error).__name__}: {first}"
    return None


def _plain_export_failure(model, x, directory):
    plain = copy_model(model)
    return _failure("model.export()", _check_export, plain, x, _predict(plain, x),
                    os.path.join(directory, "plain_model"))


def _check_save_load(model, x, expected, path):
    model.save(path)
    loaded = keras.models.load_model(path)
    _check(_all_equal(_predict(loaded, x), expected),
           "predictions changed after save and load")
    return loaded


def _plain_reload_failure(model, x, y, directory, jit_compile):
    """How a copy of the plain model, trained one step as the check trains the
    converted one, fails to reload with the same predictions, or `None`."""
    plain = _trained_copy(model, x, y, jit_compile)
    return _failure("save and load", _check_save_load, plain, x, _predict(plain, x),
                    os.path.join(directory, "plain_model.keras"))


def _trained_copy(model, x, y, jit_compile):
    """A copy of the plain model, trained one step as the check trains the converted one."""
    plain = copy_model(model)
    y, loss = _training_targets(x, y, plain)
    plain.compile(optimizer="adam", loss=loss, jit_compile=jit_compile)
    plain.fit(x, y, epochs=1, batch_size=len(keras.tree.flatten(y)[0]), verbose=0)
    return plain


def _check_clone(model, x, expected):
    copy = clone_model(model)
    _check(copy.sharing_plan == model.sharing_plan and copy.bank is not model.bank
           and count_trainable(copy) == count_trainable(model),
           "keras_ssn.clone_model() did not give a converted model with the same plan "
           "and a bank of its own")
    copy.set_weights(model.get_weights())
    _check(_all_equal(_predict(copy, x), expected),
           "keras_ssn.clone_model() copy predicts differently after set_weights")


def _check_export(model, x, expected, path):
    """The SavedModel serves what `model` computes as a TensorFlow graph.

    Compared with the model run as a graph, not eagerly: TensorFlow's graph
    optimizations can move a trained model's outputs away from its eager
    ones (keras_hub's ViTDet backbone, the plain model trained one step:
    1.8e-4 relative to its largest output), and the export serves the
    graph. `expected` (the eager outputs) gives the structure.
    """
    import tensorflow as tf

    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)  # kept alive while serving
    served = keras.tree.map_structure(np.asarray, reloaded.serve(x))
    graph = tf.function(lambda inputs: model(inputs, training=False))
    computed = keras.tree.map_structure(np.asarray, graph(x))
    keras.tree.assert_same_structure(computed, expected)
    difference = _relative_difference(served, computed)
    _check(difference <= 1e-5, f"exported SavedModel differs by {difference:.3g}")


def _check(condition, message):
    if not condition:
        raise AssertionError(message)
