"""Shared set-up of the JAX distribution scripts: 2 CPU devices and a small task.

Import it before Keras or JAX: a process chooses its backend and host
device count once, at their first import.
"""

import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

_rng = np.random.default_rng(0)
x = _rng.normal(size=(64, 16)).astype("float32")
y = _rng.normal(size=(64, 4)).astype("float32")
devices = keras.distribution.list_devices("cpu")


def dense_model(middle=()):
    """16 -> 64 -> 64 -> 4 Dense layers, with `middle` layers after the first."""
    return keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(64, activation="relu"), *middle,
         keras.layers.Dense(64, activation="relu"), keras.layers.Dense(4)]
    )
