"""Walking a model's layers by path, and counting its trainable parameters."""

import math

import keras

from keras_ssn.bank import WeightBank


def walk_layers(model):
    """Yields `(path, layer)` for every layer inside `model`, each once.

    Paths join layer names with `/` from the model down, for example
    `"encoder/block_1/dense"`. Nested models and layers that contain layers
    are descended into, depth first, in the order Keras tracks them. The
    model's own `WeightBank` and input layers are skipped.

    Args:
        model: A Keras model or layer.

    Yields:
        Tuples `(path, layer)`.
    """
    seen = set()

    def visit(parent, prefix):
        for child in parent._flatten_layers(include_self=False, recursive=False):
            if id(child) in seen or isinstance(
                child, (WeightBank, keras.layers.InputLayer)
            ):
                continue
            seen.add(id(child))
            path = f"{prefix}/{child.name}" if prefix else child.name
            yield path, child
            yield from visit(child, path)

    yield from visit(model, "")


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
