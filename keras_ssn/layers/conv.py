"""Shared variants of `Conv1D`, `Conv2D` and `Conv3D`."""

import keras

from keras_ssn.layers.base import SharedWeightMixin


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedConv1D(SharedWeightMixin, keras.layers.Conv1D):
    """`Conv1D` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.Conv1D

    @property
    def kernel(self):
        return self._generated_weight()


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedConv2D(SharedWeightMixin, keras.layers.Conv2D):
    """`Conv2D` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.Conv2D

    @property
    def kernel(self):
        return self._generated_weight()


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedConv3D(SharedWeightMixin, keras.layers.Conv3D):
    """`Conv3D` whose kernel is generated from the model's weight bank."""

    base_class = keras.layers.Conv3D

    @property
    def kernel(self):
        return self._generated_weight()
