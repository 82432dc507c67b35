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
from keras_ssn.layers.embedding import SharedUntiedReversibleEmbedding
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
    SharedUntiedReversibleEmbedding: "embedding",
    SharedMultiHeadAttention: "attention",
    **{cls: "conv" for cls in CONV_CLASSES},
    **{cls: "recurrent" for cls in CELL_CLASSES + RNN_CLASSES},
}

SHARED_CLASSES = {cls.base_class: cls for cls in FAMILIES
                  if cls is not SharedUntiedReversibleEmbedding}

NORMALIZATION_CLASSES = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.RMSNormalization,
)


def register_shared_layer(shared_class, family="custom", default=True):
    """Makes `convert()` share layers of `shared_class.base_class`.

    Args:
        shared_class: A class made by `shared_variant()` (or a subclass of
            `SharedWeightMixin` and the layer class, with `base_class`,
            `shared_weights` and a generated property per weight).
        family: Its family for `groups="type"`.
        default: Whether `convert()` picks this class for layers of its base
            class. `False` for a variant that the default class's
            `variant_for(layer)` picks for some layers.
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
    if default:
        SHARED_CLASSES[shared_class.base_class] = shared_class


def shared_class_for(layer):
    """The shared subclass for `layer`'s exact class, or `None`."""
    shared_class = SHARED_CLASSES.get(type(layer))
    return None if shared_class is None else shared_class.variant_for(layer)


def is_shared(layer):
    """Whether `layer` generates weights from a bank itself."""
    return isinstance(layer, SharedWeightMixin)


def is_container(shared_class):
    return issubclass(shared_class, SharedContainerMixin)


OPTIONAL_VARIANTS = {"keras_hub": ("keras_ssn_hub", "keras_ssn.layers.hub")}


def register_optional_layers(config=None):
    """Registers the shared variants of layers from optional libraries in use.

    Only libraries the program has already imported, or whose shared
    variants `config` names, are considered, so converting never imports one
    (today: `keras_hub`).

    Args:
        config: Optional model config about to be deserialized.
    """
    named = _registered_packages(config)
    for library, (package, module) in OPTIONAL_VARIANTS.items():
        if library in sys.modules or package in named:
            importlib.import_module(module)


def _registered_packages(config):
    """The packages of every registered name in a (nested) config."""
    if isinstance(config, list):
        return set().union(*map(_registered_packages, config)) if config else set()
    if not isinstance(config, dict):
        return set()
    packages = set().union(*map(_registered_packages, config.values())) if config else set()
    name = config.get("registered_name")
    if isinstance(name, str) and ">" in name:
        packages.add(name.split(">", 1)[0])
    return packages
