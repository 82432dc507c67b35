"""Copying a model from its own config, weights included.

`convert()` works on a copy, made the way `keras.saving` reloads a model: the
model's class rebuilds it from `get_config()` (a `keras_hub` backbone from its
constructor arguments, a Functional model from its graph), then the weights
are copied over in the order the model creates them. Keras's
`clone_model(recursive=True)` is not used: it rebuilds every layer from the
layer's own config, which many layers that hold other layers do not
round-trip, and turns a Functional subclass into a plain Functional model.
"""

import keras

from keras_ssn.keras_internals import Functional
from keras_ssn.keras_internals import sublayers
from keras_ssn.layers import SharedContainerMixin
from keras_ssn.layers import SharedWeightMixin


class CopyError(ValueError):
    """A model could not be rebuilt from its config, or its weights copied."""


def copy_model(model):
    """A copy of `model`, rebuilt from its config, with the same weights.

    The copy is not compiled, whether or not `model` is (its optimizer
    belongs to `model`'s variables).

    Args:
        model: A built Keras model.

    Returns:
        A model of the same class, with new variables holding `model`'s
        values.

    Raises:
        CopyError: `model` cannot be rebuilt from its config (its class, or a
            layer inside it, has no `get_config()` that round-trips, or is
            not registered), or the copy creates other weights than `model`.
    """
    copy = rebuilt(model)
    copy_weights_in_order(model, copy)
    return copy


def rebuilt(model):
    """A model made anew from `model`'s config and built like it (no weights copied)."""
    try:
        config = _without_compile_configs(keras.saving.serialize_keras_object(model))
        # The model is the caller's own, already in memory: nothing in its
        # config (a `Lambda` layer's function) is code from an untrusted file,
        # and its own classes need no registration to be found.
        copy = keras.saving.deserialize_keras_object(
            config, custom_objects=model_classes(model), safe_mode=False)
        if not copy.built:
            copy.build_from_config(model.get_build_config())
    except Exception as error:
        raise CopyError(
            f"Cannot copy model '{model.name}' ({type(model).__name__}) from its "
            f"config: {type(error).__name__}: {error}\nkeras_ssn converts a copy "
            "made the way keras.saving reloads a model, so the model must "
            "survive `model.save()` and `keras.models.load_model()`: give each "
            "custom layer or model a `get_config()` that returns its "
            "constructor arguments, and register the custom functions and "
            "objects it uses with `@keras.saving.register_keras_serializable()`."
        ) from error
    return copy


def model_classes(model):
    """The classes of `model` and its layers, by the names their configs give.

    As `custom_objects`, they let Keras rebuild the model from its config
    when its custom layers are not registered. Keras's own classes are left
    to Keras, which finds them by module: named `Add` in `custom_objects`,
    the `keras.layers.Add` of MobileNetV3's residual connections would also
    stand for the `x + 3.0` of its hard sigmoid, and that op would be
    rebuilt as a layer called on `3.0`.
    """
    return {keras.saving.get_registered_name(type(layer)): type(layer)
            for layer in [model, *sublayers(model)]
            if not type(layer).__module__.startswith("keras.")}


def copy_weights_in_order(source, destination):
    """Assigns `source`'s weights to `destination`'s, which must match one to one.

    Raises:
        CopyError: The two models hold different numbers or shapes of weights.
    """
    sources, destinations = source.weights, destination.weights
    shapes = [tuple(v.shape) for v in sources]
    if shapes != [tuple(v.shape) for v in destinations]:
        first = next(
            (i for i, (a, b) in enumerate(zip(sources, destinations))
             if tuple(a.shape) != tuple(b.shape)),
            min(len(sources), len(destinations)),
        )
        if len(sources) != len(destinations):
            detail = (f"it creates {len(destinations)} weights where the model "
                      f"has {len(sources)}")
        else:
            detail = (f"its weight {first} is {_describe(destinations, first)} "
                      f"where the model's is {_describe(sources, first)}")
        raise CopyError(
            f"The copy of model '{source.name}' made from its config does not "
            f"match the model: {detail}. The model's config does not describe "
            "the model: check that its `get_config()` returns every "
            "constructor argument."
        )
    for variable, value in zip(destinations, source.get_weights()):
        variable.assign(value)


def _describe(variables, index):
    if index >= len(variables):
        return "none"
    return f"'{variables[index].path}' of shape {tuple(variables[index].shape)}"


def _without_compile_configs(config):
    """A serialized model without the compile configs of it and its nested models."""
    if isinstance(config, list):
        return [_without_compile_configs(item) for item in config]
    if not isinstance(config, dict):
        return config
    return {key: _without_compile_configs(value) for key, value in config.items()
            if key != "compile_config"}


def plain_config(config):
    """A serialized model with every shared layer replaced by its base layer."""

    if isinstance(config, list):
        return [plain_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: plain_config(value) for key, value in config.items()}
    registered = config.get("registered_name")
    shared_class = None
    if isinstance(registered, str) and isinstance(config.get("config"), dict):
        shared_class = keras.saving.get_registered_object(registered)
    if isinstance(shared_class, type) and issubclass(
        shared_class, (SharedWeightMixin, SharedContainerMixin)
    ):
        layer_config = dict(config["config"])
        layer_config.pop("sharing", None)
        plain = keras.saving.serialize_keras_object(
            shared_class.base_class.from_config(layer_config)
        )
        for key in ("module", "class_name", "registered_name", "config"):
            config[key] = plain[key]
    return config


def is_subclassed(model):
    """Whether `model` is a subclassed model (its layers are built in code).

    Functional subclasses (`keras_hub` backbones) are not: their layers form
    a graph, rebuilt by their constructor.
    """
    from keras_ssn.models import SharedModel  # models import this module

    return not isinstance(model, (keras.Sequential, Functional, SharedModel))
