"""Trains a converted model under keras.distribution.DataParallel on 2 CPUs (JAX).

Prints a JSON line: the all-reduce bytes of the compiled train step of the
plain model and of its conversion, and how far the converted model trained
on 2 devices ends from the same training on one device.
"""

import json

from two_cpu_devices import dense_model
from two_cpu_devices import devices
from two_cpu_devices import x
from two_cpu_devices import y

import keras  # after two_cpu_devices, which sets up JAX
import numpy as np

import keras_ssn
from benchmarks.distributed import measure


def build(batch_norm=False):
    return dense_model([keras.layers.BatchNormalization()] if batch_norm else [])


def trained(distributed, batch_norm=False):
    keras.backend.clear_session()
    if distributed:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    keras.utils.set_random_seed(0)
    model = keras_ssn.convert(build(batch_norm), 0.2, seed=0)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"], jit_compile=True)
    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history
    history["evaluate"] = model.evaluate(x, y, batch_size=16, verbose=0)
    return model, history


def recurrent_losses(distributed):
    keras.backend.clear_session()
    if distributed:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    keras.utils.set_random_seed(0)
    model = keras_ssn.convert(
        keras.Sequential([keras.Input((4, 4)), keras.layers.LSTM(8), keras.layers.Dense(4)]),
        0.5, seed=0,
    )
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    sequences = x.reshape(64, 4, 4)
    history = model.fit(sequences, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    return history.history["loss"] + [model.evaluate(sequences, y, batch_size=16, verbose=0)]


recurrent_one = recurrent_losses(False)
recurrent_two = recurrent_losses(True)
one, one_history = trained(False)
two, two_history = trained(True)
_, bn_history = trained(True, batch_norm=True)
print(json.dumps({
    "devices": len(devices),
    "plain": measure("dense", None, devices),
    "converted": measure("dense", 0.2, devices),
    "bank_max_diff": float(np.max(np.abs(
        keras.ops.convert_to_numpy(one.bank.vector())
        - keras.ops.convert_to_numpy(two.bank.vector())))),
    "moved": float(np.max(np.abs(keras.ops.convert_to_numpy(one.bank.vector())))),
    "loss_one": one_history["loss"], "loss_two": two_history["loss"],
    "mae_one": one_history["mae"], "mae_two": two_history["mae"],
    "batch_norm_loss": bn_history["loss"],
    "recurrent_one": recurrent_one, "recurrent_two": recurrent_two,
    "evaluate_one": one_history["evaluate"], "evaluate_two": two_history["evaluate"],
}))
