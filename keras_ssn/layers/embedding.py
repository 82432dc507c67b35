"""Shared variant of `Embedding`: its table is generated from the bank."""

import keras

from keras_ssn.layers.base import shared_variant

SharedEmbedding = shared_variant(keras.layers.Embedding, ("embeddings",))
