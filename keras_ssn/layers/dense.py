"""Shared variants of `Dense` and `EinsumDense`."""

import keras

from keras_ssn.layers.base import shared_variant

SharedDense = shared_variant(keras.layers.Dense)
SharedEinsumDense = shared_variant(keras.layers.EinsumDense)
