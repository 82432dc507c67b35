"""Shared variant of `Embedding`."""

import keras

from keras_ssn.layers.base import SharedWeightMixin


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedEmbedding(SharedWeightMixin, keras.layers.Embedding):
    """`Embedding` whose table is generated from the model's weight bank."""

    shared_weight = "embeddings"
    base_class = keras.layers.Embedding

    @property
    def embeddings(self):
        return self._generated_weight()
