"""Trains a converted model whose bank is sharded 2 ways (ModelParallel, JAX).

Prints a JSON line: the bank's variables and their shardings, how far the
sharded training ends from the same training on one device, whether a saved
sharded model reloads with the same outputs, and the error for a layout map
that also shards the bank's tail.
"""

import json
import os
import tempfile

from two_cpu_devices import dense_model as build
from two_cpu_devices import devices
from two_cpu_devices import x
from two_cpu_devices import y

import keras  # after two_cpu_devices, which sets up JAX
import numpy as np

import keras_ssn

mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], devices)


def model_parallel(layouts):
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, layout in layouts.items():
        layout_map[path] = layout
    return keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch")


def trained(distribution):
    keras.backend.clear_session()
    keras.distribution.set_distribution(distribution)
    keras.utils.set_random_seed(0)
    model = keras_ssn.convert(build(), 0.2, seed=0)
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    losses = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    return model, losses


one, one_losses = trained(None)
sharded, sharded_losses = trained(model_parallel(keras_ssn.bank_layouts("model")))
variables = {v.path: [list(v.shape), str(v.value.sharding.spec)] for v in sharded.bank.weights}
path = os.path.join(tempfile.mkdtemp(), "sharded.keras")
sharded.save(path)
keras.distribution.set_distribution(None)
reloaded = keras.models.load_model(path)
reload_max_diff = float(np.max(np.abs(
    np.asarray(reloaded.predict(x, verbose=0)) - np.asarray(one.predict(x, verbose=0)))))
keras.distribution.set_distribution(model_parallel(keras_ssn.bank_layouts("model")))
# One output unit: a 1-entry slice can tile its kernel without copying units.
tiny = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
try:
    keras_ssn.convert(tiny, 2)  # a bank of 1 entry, and the bias
    too_small_error = None
except ValueError as caught:
    too_small_error = str(caught)
keras.distribution.set_distribution(model_parallel({".*weight_bank.*": ("model",)}))
try:
    keras_ssn.convert(build(), 0.2, seed=0)
    error = None
except ValueError as caught:
    error = str(caught)
print(json.dumps({
    "variables": variables,
    "trainable": keras_ssn.count_trainable(sharded),
    "loss_one": one_losses, "loss_sharded": sharded_losses,
    "bank_max_diff": float(np.max(np.abs(
        np.asarray(one.bank.vector()) - np.asarray(sharded.bank.vector())))),
    "reload_max_diff": reload_max_diff,
    "tail_error": error,
    "too_small_error": too_small_error,
}))
