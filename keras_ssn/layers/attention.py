"""Shared variant of `MultiHeadAttention`.

`MultiHeadAttention` creates its four `EinsumDense` projections in
`build()`, from its own arguments. The shared variant carries their specs
in its config and turns the projections into `SharedEinsumDense` layers
each time it builds them, so the query, key, value and output kernels are
generated from the bank.
"""

import keras

from keras_ssn.keras_internals import unlocked
from keras_ssn.layers.container import SharedContainerMixin


@keras.saving.register_keras_serializable(package="keras_ssn")
class SharedMultiHeadAttention(SharedContainerMixin, keras.layers.MultiHeadAttention):
    """`MultiHeadAttention` whose projection kernels come from the weight bank."""

    base_class = keras.layers.MultiHeadAttention

    part_attributes = {
        "query": "_query_dense",
        "key": "_key_dense",
        "value": "_value_dense",
        "output": "_output_dense",
    }

    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        with unlocked(self):
            self._share_parts()
