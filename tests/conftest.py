import json
import os
import pathlib
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# On JAX the suite compiles hundreds of small XLA programs (every eager op)
# and runs each a few times, so LLVM's optimizations of the generated CPU code
# cost more time than they save. The figures the tests assert from XLA
# (`cost_analysis()`, `memory_analysis()`) come from the HLO module and its
# buffer assignment, which this flag does not change. Subprocesses that the
# tests start inherit it. (TensorFlow compiles a few train steps and runs
# them more: its half is slower without the optimizations.)
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from keras_ssn.checks import check_conversion  # noqa: E402


def mlp():
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(256, activation="relu", name="hidden_1"),
            keras.layers.Dense(128, activation="relu", name="hidden_2"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp",
    )


def residual_cnn():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(48, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    skip = x
    x = keras.layers.Conv2D(48, 3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(48, 3, padding="same")(x)
    x = keras.layers.Add()([x, skip])
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5)(x)
    return keras.Model(inputs, outputs, name="residual_cnn")


def nested_model():
    block = keras.Sequential(
        [
            keras.Input((128,)),
            keras.layers.Dense(256, activation="relu", use_bias=False,
                               name="expand"),
            keras.layers.Dense(128, name="project"),
        ],
        name="block",
    )
    inner_in = keras.Input((128,))
    inner_out = keras.layers.Dense(128, name="inner_dense")(block(inner_in))
    inner = keras.Model(inner_in, inner_out, name="inner")
    inputs = keras.Input((32,))
    x = keras.layers.Dense(128, name="stem")(inputs)
    x = inner(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs, name="outer")


def sequence_model():
    inputs = keras.Input((10,), dtype="int32")
    x = keras.layers.Embedding(1000, 32)(inputs)
    x = keras.layers.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = keras.layers.EinsumDense(
        "btd,de->bte", output_shape=(None, 16), bias_axes="e"
    )(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(4)(x)
    return keras.Model(inputs, outputs, name="sequence_model")


def volume_model():
    inputs = keras.Input((4, 4, 4, 2))
    x = keras.layers.Conv3D(8, 2, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(3)(x)
    return keras.Model(inputs, outputs, name="volume_model")


MODELS = {
    "mlp": mlp,
    "residual_cnn": residual_cnn,
    "nested": nested_model,
    "sequence": sequence_model,
    "volume": volume_model,
}


# Tests of pure-Python code (plan arithmetic, docs, benchmark bookkeeping)
# whose outcome cannot depend on the backend run once, on the TensorFlow half
# of the suite (README's command runs both halves). So do property tests of
# the planner that look at its plans through the generated weights: the
# generation itself is tested on both halves, and on JAX every example's new
# shapes would compile every op again.
backend_independent = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent: the TensorFlow half of the suite runs it",
)


def run_script(path, *args, timeout=600):
    """Runs a Python script of the repository in a fresh process; its last JSON line.

    The script gets the repository on `PYTHONPATH` and sets up its own
    backend and devices (which a process can do only before importing them).
    """
    root = pathlib.Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / path), *args], capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(root)), timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def read_positions(spec):
    """Positions inside its group's slice that a combining or upsampling weight reads."""
    if spec.mode == "combine":
        return np.concatenate(
            [(o + np.arange(spec.weight_size)) % spec.size for o in spec.template_offsets]
        )
    return (spec.offset + np.arange(spec.read_length)) % spec.size


def sample_input(model, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch,) + tuple(model.inputs[0].shape[1:])
    if "int" in str(model.inputs[0].dtype):
        return rng.integers(0, 1000, shape).astype("int32")
    return rng.normal(size=shape).astype("float32")


def sample_targets(model, batch=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch,) + tuple(model.outputs[0].shape[1:])).astype(
        "float32"
    )


@pytest.fixture(params=sorted(MODELS))
def model_name(request):
    return request.param


# Every test is deterministic: hypothesis draws the same examples on every
# run (and keeps no database of past failures between runs), and each test
# starts from the same global seed (Python, NumPy, TensorFlow and Keras's
# global `SeedGenerator`), so layers built and models converted without a
# seed draw the same weights every time. Each test also starts from a fresh
# Keras session, so the names Keras gives layers without one do not depend on
# which tests ran before it in the same process (`pytest -n 2` hands tests to
# two processes in an order that varies from run to run).
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")
GLOBAL_SEED = 1234


@pytest.fixture(autouse=True)
def _seed_and_reset_policy():
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(GLOBAL_SEED)
    yield
    keras.config.set_dtype_policy("float32")


def assert_converts(model, budget, tmp_path, **options):
    """Converts `model` and checks the whole contract on the result.

    See `keras_ssn.checks.check_conversion`; every check runs (export is
    left out only off TensorFlow or for several inputs). Returns the
    converted, trained model.
    """
    result = check_conversion(model, budget, str(tmp_path), **options)
    skipped = dict(result["skipped"])
    reason = skipped.pop("export", "")
    assert not skipped, f"checks skipped: {skipped}"
    assert not reason or "needs the TensorFlow backend" in reason or (
        "one input" in reason), f"export skipped: {reason}"
    return result["model"]
