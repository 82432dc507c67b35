"""Shared layer variants and the registry that maps Keras layers to them."""

import keras

from keras_ssn.layers.base import COEFFICIENTS_NAME
from keras_ssn.layers.base import GENERATION_PARAM_NAMES
from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import share_in_place
from keras_ssn.layers.conv import SharedConv1D
from keras_ssn.layers.conv import SharedConv2D
from keras_ssn.layers.conv import SharedConv3D
from keras_ssn.layers.dense import SharedDense
from keras_ssn.layers.dense import SharedEinsumDense
from keras_ssn.layers.embedding import SharedEmbedding

SHARED_CLASSES = {
    cls.base_class: cls
    for cls in (
        SharedDense,
        SharedEinsumDense,
        SharedConv1D,
        SharedConv2D,
        SharedConv3D,
        SharedEmbedding,
    )
}

# The layer family each shareable class belongs to, for `groups="type"`.
LAYER_FAMILIES = {
    keras.layers.Dense: "dense",
    keras.layers.EinsumDense: "dense",
    keras.layers.Conv1D: "conv",
    keras.layers.Conv2D: "conv",
    keras.layers.Conv3D: "conv",
    keras.layers.Embedding: "embedding",
}

NORMALIZATION_CLASSES = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.RMSNormalization,
)


def shared_class_for(layer):
    """The shared subclass for `layer`'s exact class, or `None`."""
    return SHARED_CLASSES.get(type(layer))


def is_shared(layer):
    return isinstance(layer, SharedWeightMixin)
