"""`materialize()`: a converted model's generated weights baked into a plain model.

After training, the generated weights are computed once and written into
the architecture `convert()` was given (paper, Section 3: a high budget adds
capacity during training that inference does not pay for).
"""

import keras
from keras import ops

from keras_ssn.copying import model_classes
from keras_ssn.copying import plain_config
from keras_ssn.copying import rebuilt
from keras_ssn.layer_paths import own_variables
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import is_generation_param
from keras_ssn.layers import is_shared
from keras_ssn.layers import owned_variable
from keras_ssn.models import BankOwnerMixin
from keras_ssn.models import SharedModel


def materialize(model):
    """Bakes generated weights into an ordinary Keras model.

    The result has the architecture of the model `convert()` was given (the
    same layer classes, names and configs), no keras_ssn layers and no bank,
    so inference costs exactly what the original model costs. Its outputs
    equal the shared model's.

    Args:
        model: A model returned by `convert()` (or loaded from one).

    Returns:
        A plain `keras.Sequential` or Functional model.
    """
    if not isinstance(model, BankOwnerMixin):
        raise TypeError(
            "materialize() expects a model made by keras_ssn.convert(); "
            f"received {type(model).__name__} '{getattr(model, 'name', model)}'."
        )
    if isinstance(model, SharedModel):
        plain = rebuilt(model.model)
        _copy_weights(model.model, plain)
        return plain
    if getattr(model, "original_model", None) is not None:
        plain = keras.saving.deserialize_keras_object(model.original_model)
        _copy_weights(model, plain)
        return plain
    config = model.get_config()
    config.pop("bank")
    config.pop("sharing_plan")
    config.pop("original_model", None)
    config = plain_config(config)
    classes = model_classes(model)
    if isinstance(model, keras.Sequential):
        plain = keras.Sequential.from_config(config, custom_objects=classes)
    else:
        plain = keras.Model.from_config(config, custom_objects=classes)
    _copy_weights(model, plain)
    return plain


def _copy_weights(model, plain):
    """Copies `model`'s weights into `plain`, generating the shared ones."""
    targets = dict(walk_layers(plain))
    for path, layer in walk_layers(model):
        if not is_shared(layer) and not own_variables(layer):
            continue
        target = targets.get(path)
        if target is None:
            raise ValueError(
                f"Cannot materialize: layer '{path}' of the converted model has "
                f"no counterpart in the rebuilt {type(plain).__name__} "
                f"'{plain.name}' (its layers are at {sorted(targets)})."
            )
        if not is_shared(layer):
            _copy_in_order(path, own_variables(layer), own_variables(target))
            continue
        for name in layer.shared_weights:
            generated = ops.convert_to_numpy(layer.generate_weight(name))
            owned_variable(target, name, layer.attribute_of(name)).assign(generated)
        by_name = {v.name: v for v in own_variables(target)}
        for variable in own_variables(layer):
            if not is_generation_param(variable):
                by_name[variable.name].assign(_values(variable))


def _copy_in_order(path, sources, destinations):
    if len(sources) != len(destinations):
        raise ValueError(
            f"internal error: layer '{path}' has {len(sources)} variables "
            f"but its plain copy has {len(destinations)}."
        )
    for source, destination in zip(sources, destinations):
        destination.assign(_values(source))


def _values(variable):
    """A copy of a variable's values.

    Assigning one variable to another can share one device buffer (JAX),
    which either model's training may then donate and delete.
    """
    return ops.convert_to_numpy(variable)
