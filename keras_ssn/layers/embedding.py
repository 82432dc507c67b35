"""Shared variants of `Embedding` and `ReversibleEmbedding`: the table comes from the bank.

`ReversibleEmbedding` also reads its table, transposed, as the output
projection when `tie_weights=True`; an untied `reverse_embeddings` stays
the layer's own.
"""

import keras

from keras_ssn.layers.variants import shared_variant

SharedEmbedding = shared_variant(keras.layers.Embedding, ("embeddings",))
SharedReversibleEmbedding = shared_variant(keras.layers.ReversibleEmbedding,
                                           ("embeddings",))
