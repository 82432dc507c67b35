"""Shared variant of `keras_hub`'s own `ReversibleEmbedding` (older models use it).

`convert()` imports this module when `keras_hub` is imported, and
`load_model()` imports it through the `module` of the saved class, so
`keras_hub` stays an optional dependency. The layer shares its `embeddings`
(also read, transposed, as the output projection when `tie_weights=True`);
an untied `reverse_embeddings` stays the layer's own. Other `keras_hub`
layers that hold Keras layers (transformer blocks, attention) have their
sublayers shared one by one.
"""

from keras_hub.layers import ReversibleEmbedding

from keras_ssn.layers import register_shared_layer
from keras_ssn.layers.variants import shared_variant

SharedHubReversibleEmbedding = shared_variant(
    ReversibleEmbedding, weights=("embeddings",), package="keras_ssn_hub")
SharedHubReversibleEmbedding.__module__ = __name__
register_shared_layer(SharedHubReversibleEmbedding, family="embedding")
