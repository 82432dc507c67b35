"""Shared variants of `Dense` and `EinsumDense`."""

import keras

from keras_ssn.layers.base import SharedWeightMixin


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedDense(SharedWeightMixin, keras.layers.Dense):
    """`Dense` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.Dense

    @property
    def kernel(self):
        return self._generated_weight()


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedEinsumDense(SharedWeightMixin, keras.layers.EinsumDense):
    """`EinsumDense` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.EinsumDense

    @property
    def kernel(self):
        return self._generated_weight()
