"""Shared variant of `Embedding`."""

import keras

from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import generated_weight_property


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedEmbedding(SharedWeightMixin, keras.layers.Embedding):
    """`Embedding` whose table is generated from the model's weight bank."""

    shared_weight = "embeddings"
    base_class = keras.layers.Embedding

    embeddings = generated_weight_property("embeddings")
