"""Shared layer variants and the registry that maps Keras layers to them."""

import importlib
import sys

import keras

from keras_ssn.layers.attention import SharedMultiHeadAttention
from keras_ssn.layers.base import COEFFICIENTS_NAME
from keras_ssn.layers.base import GENERATION_PARAM_NAMES
from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import is_generation_param
from keras_ssn.layers.container import SharedContainerMixin
from keras_ssn.layers.conv import CONV_CLASSES
from keras_ssn.layers.conv import SharedConv1D
from keras_ssn.layers.conv import SharedConv1DTranspose
from keras_ssn.layers.conv import SharedConv2D
from keras_ssn.layers.conv import SharedConv2DTranspose
from keras_ssn.layers.conv import SharedConv3D
from keras_ssn.layers.conv import SharedConv3DTranspose
from keras_ssn.layers.conv import SharedDepthwiseConv1D
from keras_ssn.layers.conv import SharedDepthwiseConv2D
from keras_ssn.layers.conv import SharedSeparableConv1D
from keras_ssn.layers.conv import SharedSeparableConv2D
from keras_ssn.layers.dense import SharedDense
from keras_ssn.layers.dense import SharedEinsumDense
from keras_ssn.layers.embedding import SharedEmbedding
from keras_ssn.layers.embedding import SharedReversibleEmbedding
from keras_ssn.layers.rnn import CELL_CLASSES
from keras_ssn.layers.rnn import RNN_CLASSES
from keras_ssn.layers.rnn import SharedGRU
from keras_ssn.layers.rnn import SharedGRUCell
from keras_ssn.layers.rnn import SharedLSTM
from keras_ssn.layers.rnn import SharedLSTMCell
from keras_ssn.layers.rnn import SharedSimpleRNN
from keras_ssn.layers.rnn import SharedSimpleRNNCell
from keras_ssn.layers.variants import owned_variable
from keras_ssn.layers.variants import share_in_place
from keras_ssn.layers.variants import shared_variant

# The layer family of each shared class, for `groups="type"`.
FAMILIES = {
    SharedDense: "dense",
    SharedEinsumDense: "dense",
    SharedEmbedding: "embedding",
    SharedReversibleEmbedding: "embedding",
    SharedMultiHeadAttention: "attention",
    **{cls: "conv" for cls in CONV_CLASSES},
    **{cls: "recurrent" for cls in CELL_CLASSES + RNN_CLASSES},
}

SHARED_CLASSES = {cls.base_class: cls for cls in FAMILIES}

NORMALIZATION_CLASSES = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.RMSNormalization,
)


def register_shared_layer(shared_class, family="custom"):
    """Makes `convert()` share layers of `shared_class.base_class`.

    Args:
        shared_class: A class made by `shared_variant()` (or a subclass of
            `SharedWeightMixin` and the layer class, with `base_class`,
            `shared_weights` and a generated property per weight).
        family: Its family for `groups="type"`.
    """
    if not (isinstance(shared_class, type) and issubclass(
            shared_class, (SharedWeightMixin, SharedContainerMixin))):
        raise TypeError(
            "register_shared_layer() takes a class made by "
            f"keras_ssn.layers.shared_variant(); received {shared_class!r}."
        )
    if not isinstance(shared_class.base_class, type):
        raise TypeError(
            f"{shared_class.__name__}.base_class must be the Keras layer class "
            f"it shares; it is {shared_class.base_class!r}."
        )
    FAMILIES[shared_class] = family
    SHARED_CLASSES[shared_class.base_class] = shared_class


def shared_class_for(layer):
    """The shared subclass for `layer`'s exact class, or `None`."""
    return SHARED_CLASSES.get(type(layer))


def is_shared(layer):
    """Whether `layer` generates weights from a bank itself."""
    return isinstance(layer, SharedWeightMixin)


def is_container(shared_class):
    return issubclass(shared_class, SharedContainerMixin)


def register_optional_layers():
    """Registers the shared variants of layers from optional libraries in use.

    Only libraries the program has already imported are considered, so
    converting never imports one (today: `keras_hub`).
    """
    if "keras_hub" in sys.modules:
        importlib.import_module("keras_ssn.layers.hub")
