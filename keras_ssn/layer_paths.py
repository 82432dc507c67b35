"""Walking a model's layers by path, and counting its trainable parameters."""

import math
import re

import keras

from keras_ssn.bank import WeightBank
from keras_ssn.keras_internals import Functional
from keras_ssn.keras_internals import sublayers
from keras_ssn.keras_internals import to_snake_case


def walk_layers(model):
    """Yields `(path, layer)` for every layer inside `model`, each once.

    Paths join names with `/` from the model down, for example
    `"encoder/block_1/dense"`. Inside models and wrappers a child is named by
    its layer name; inside any other layer (a custom layer, a subclassed
    model, an `LSTM`'s cell) by the attribute that holds it (`"ffn/0"` for
    the first item of a list attribute `ffn`), which stays the same when the
    layer is rebuilt from its config, while auto-generated layer names do
    not. Where a layer is rebuilt by code rather than from a config that
    names its sublayers (inside a custom layer or a `keras_hub` backbone),
    names Keras generated become stable ones (see `stable_names`), and
    inside a `Sequential` or Functional model that such code builds every
    layer is named by its class and rank (`dense#1`). Children are visited depth first; the model's own
    `WeightBank` and input layers are skipped.

    Args:
        model: A Keras model or layer.

    Yields:
        Tuples `(path, layer)`.
    """
    seen = set()

    def visit(parent, prefix, in_code):
        for name, child in children(parent, in_code):
            if id(child) in seen or isinstance(
                child, (WeightBank, keras.layers.InputLayer)
            ):
                continue
            seen.add(id(child))
            path = f"{prefix}/{name}" if prefix else name
            yield path, child
            yield from visit(child, path, in_code or not describes_its_sublayers(parent))

    yield from visit(model, "", False)


def children(layer, in_code=False):
    """`(name, sublayer)` pairs of a layer's direct sublayers (see `walk_layers`).

    Args:
        layer: A Keras layer or model.
        in_code: Whether `layer` is rebuilt by the code of a layer that
            holds it, rather than from a config that names its sublayers.
    """
    direct = sublayers(layer, recursive=False)
    if describes_its_sublayers(layer):
        if in_code:
            # Code names these layers, sometimes with counters of its own
            # (keras_cv's `conv_block43_conv`): each is named by its rank.
            return list(zip(ranked_names(direct), direct))
        return [(child.name, child) for child in direct]
    if isinstance(layer, Functional):
        return list(zip(stable_names(direct), direct))
    named = list(_attribute_sublayers(layer))
    found = {id(child) for _, child in named}
    rest = [child for child in direct if id(child) not in found]
    return named + list(zip(stable_names(rest), rest))


def ranked_names(layers):
    """`<class>#<rank>` for each of `layers`, ranked among those of its class."""
    counts = {}
    for layer in layers:
        prefix = _class_prefix(layer)
        rank = counts[prefix] = counts.get(prefix, -1) + 1
        yield f"{prefix}#{rank}"


def _class_prefix(layer):
    """The snake-case name of a layer's class (its base class, if shared)."""
    layer_class = getattr(type(layer), "base_class", None) or type(layer)
    return to_snake_case(layer_class.__name__)


def stable_names(layers):
    """Names of `layers` that a model rebuilt from its arguments gives them too.

    A layer made without a name gets one from a process-wide counter
    (`dense`, `dense_1`, ...), so the same layer of a model rebuilt from its
    constructor arguments gets another one. Such names become the class's
    name and the layer's rank among its siblings named so: `dense#0`,
    `dense#1`. Other names stay as they are.
    """
    counts = {}
    for layer in layers:
        prefix = _class_prefix(layer)
        if re.fullmatch(rf"{re.escape(prefix)}(_[0-9]+)?", layer.name):
            rank = counts[prefix] = counts.get(prefix, -1) + 1
            yield f"{prefix}#{rank}"
        else:
            yield layer.name


# Attributes through which Keras (and, on TensorFlow, `tf.Module`, whose are
# named `_self_*`) track layers, rather than the layer's own attributes.
_TRACKING_ATTRIBUTES = frozenset({"_layers", "_tracker", "_inbound_nodes",
                                  "_outbound_nodes", "_operations"})


def _attribute_sublayers(layer):
    for attribute, value in vars(layer).items():
        if attribute in _TRACKING_ATTRIBUTES or attribute.startswith("_self_"):
            continue
        if isinstance(value, keras.layers.Layer):
            yield attribute, value
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, keras.layers.Layer):
                    yield f"{attribute}/{index}", item
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, keras.layers.Layer):
                    yield f"{attribute}/{key}", item


def describes_its_sublayers(layer):
    """Whether `layer`'s config holds its sublayers' configs.

    Sublayers of such layers (Functional and Sequential models, wrappers
    like `Bidirectional` and `TimeDistributed`, a generic `RNN` around a
    cell) are rebuilt from the config with their own classes and names.
    Other layers (custom layers, subclassed models, `LSTM`,
    `MultiHeadAttention`) recreate their sublayers from their own
    arguments, as plain layers with fresh names.
    """
    if isinstance(layer, Functional):
        return describes_its_graph(type(layer))
    described = (keras.Sequential, keras.layers.Wrapper, keras.layers.Bidirectional)
    return isinstance(layer, described) or type(layer) is keras.layers.RNN


def describes_its_graph(model_class):
    """Whether a Functional model class's config is its graph of layers.

    Subclasses that define their own `get_config()` (`keras_hub` and
    `keras_cv` backbones) describe themselves by constructor arguments
    instead; keras_ssn's own model classes add to the graph config.
    """
    for cls in model_class.__mro__:
        if cls is Functional:
            return True
        if "get_config" in vars(cls) and not cls.__module__.startswith("keras_ssn."):
            return False
    return True


def own_variables(layer):
    """The variables a layer created itself, excluding those of sublayers."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def count_trainable(model):
    """Counts trainable parameters the way `model.summary()` does.

    Each variable is counted once, however many layers use it.

    Args:
        model: A Keras model or layer.

    Returns:
        The number of trainable parameters, an `int`.
    """
    unique = {id(v): v for v in model.trainable_weights}
    return sum(math.prod(v.shape) for v in unique.values())
