"""Shared variants of `Dense` and `EinsumDense`."""

import keras

from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import generated_weight_property


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedDense(SharedWeightMixin, keras.layers.Dense):
    """`Dense` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.Dense

    kernel = generated_weight_property("kernel")


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedEinsumDense(SharedWeightMixin, keras.layers.EinsumDense):
    """`EinsumDense` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.EinsumDense

    kernel = generated_weight_property("kernel")
