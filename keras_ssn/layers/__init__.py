"""Shared layer variants and the registry that maps Keras layers to them."""

import keras

from keras_ssn.layers.base import COEFFICIENTS_NAME
from keras_ssn.layers.base import GENERATION_PARAM_NAMES
from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import share_in_place
from keras_ssn.layers.base import owned_variable
from keras_ssn.layers.conv import CONV_CLASSES
from keras_ssn.layers.conv import SharedConv1D
from keras_ssn.layers.conv import SharedConv1DTranspose
from keras_ssn.layers.conv import SharedConv2D
from keras_ssn.layers.conv import SharedConv2DTranspose
from keras_ssn.layers.conv import SharedConv3D
from keras_ssn.layers.conv import SharedConv3DTranspose
from keras_ssn.layers.conv import SharedDepthwiseConv1D
from keras_ssn.layers.conv import SharedDepthwiseConv2D
from keras_ssn.layers.dense import SharedDense
from keras_ssn.layers.dense import SharedEinsumDense
from keras_ssn.layers.embedding import SharedEmbedding

SHARED_CLASSES = {
    cls.base_class: cls
    for cls in (SharedDense, SharedEinsumDense, SharedEmbedding, *CONV_CLASSES)
}

# The layer family each shareable class belongs to, for `groups="type"`.
LAYER_FAMILIES = {
    keras.layers.Dense: "dense",
    keras.layers.EinsumDense: "dense",
    keras.layers.Embedding: "embedding",
    **{cls.base_class: "conv" for cls in CONV_CLASSES},
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
