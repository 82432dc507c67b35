"""Trains a converted model under tf.distribute.MirroredStrategy on 2 CPUs.

Prints a JSON line: the largest difference between the bank trained on 2
replicas and on one device, and the error raised when a model converted
outside the strategy's scope is compiled inside it.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 16)).astype("float32")
y = rng.normal(size=(64, 4)).astype("float32")


def build():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(4)])


def trained(model):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return keras.ops.convert_to_numpy(model.bank.vector())


strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = keras_ssn.convert(build(), 0.5, seed=0)
    mirrored_bank = trained(mirrored)
single_bank = trained(keras_ssn.convert(build(), 0.5, seed=0))

outside = keras_ssn.convert(build(), 0.5, seed=0)
try:
    with strategy.scope():
        outside.compile(optimizer="sgd", loss="mse", jit_compile=False)
    error = None
except ValueError as caught:
    error = str(caught)

print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "bank_is_mirrored": type(mirrored.bank.pieces[0].value).__name__,
    "max_diff": float(np.abs(mirrored_bank - single_bank).max()),
    "moved": float(np.abs(mirrored_bank - keras.ops.convert_to_numpy(
        keras_ssn.convert(build(), 0.5, seed=0).bank.vector())).max()),
    "outside_error": error,
}))
