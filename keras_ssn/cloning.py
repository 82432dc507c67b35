"""Copies of converted models: `keras_ssn.clone_model()`.

A converted model owns its bank beside its layers. `keras.models.clone_model()`
copies a Sequential or Functional model by rebuilding it from copies of its
layers, so its copy of a converted model has shared layers and no bank to
read (calling it raises a `ValueError` that points here).
`keras_ssn.clone_model()` takes the same arguments, lets Keras copy the
layers, then gives every converted model in the copy the plan of the model it
copies and a bank of its own.
"""

import keras

from keras_ssn.keras_internals import clone_recording_copies
from keras_ssn.keras_internals import sublayers
from keras_ssn.layers import is_shared
from keras_ssn.layers.variants import become
from keras_ssn.models import BankOwnerMixin
from keras_ssn.models import SharedFunctional
from keras_ssn.models import SharedSequential


def clone_model(model, input_tensors=None, clone_function=None,
                call_function=None, recursive=False):
    """`keras.models.clone_model()` for converted models and models holding them.

    The copy of a converted model is a converted model of the same class
    with the same sharing plan and a bank of its own: new variables, as every
    clone gets (copy the values with `clone.set_weights(model.get_weights())`).
    A copy that reuses the shared layers (`clone_function=lambda layer:
    layer`) reads the original's bank instead, as reused layers keep their
    weights. A converted Functional subclass (a `keras_hub` backbone) is
    copied from its config, as `keras.models.load_model()` makes it, and keeps
    its class. A plain model is copied exactly as Keras copies it.

    Args:
        model: A Keras model, converted or not.
        input_tensors: As for `keras.models.clone_model()`.
        clone_function: As for `keras.models.clone_model()`.
        call_function: As for `keras.models.clone_model()`.
        recursive: As for `keras.models.clone_model()`; converted models
            nested inside `model` are finished too.

    Returns:
        The copy.

    Raises:
        ValueError: what `keras.models.clone_model()` raises for the same
            arguments (e.g. a `clone_function` for a subclassed model).
    """
    if _is_converted_subclass(model) and not (
            input_tensors or clone_function or call_function):
        return keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(model))
    clone, copies = clone_recording_copies(
        model, input_tensors=input_tensors, clone_function=clone_function,
        call_function=call_function, recursive=recursive)
    for layer in sublayers(model):
        copy = copies.get(id(layer))
        if isinstance(layer, BankOwnerMixin) and copy is not None:
            finish_clone(layer, copy)
    return finish_clone(model, clone)


def finish_clone(source, clone):
    """Gives `clone`, Keras's copy of `source`, the plan and a bank.

    Args:
        source: A model, converted or not.
        clone: The copy `keras.models.clone_model()` made of it.

    Returns:
        `clone`, a `SharedSequential` or `SharedFunctional` attached to a
        bank when `source` is a converted model (a copy that reuses
        `source`'s shared layers reads `source`'s bank); otherwise `clone`
        unchanged. A copy made from `source`'s config already has its bank
        and is returned unchanged.
    """
    if not isinstance(source, BankOwnerMixin) or getattr(clone, "bank", None) is not None:
        return clone
    bank = source.bank
    if not any(layer.attached_bank() is bank for layer in _shared_layers_of(clone)):
        bank = keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(source.bank))
    become(clone, SharedSequential if isinstance(clone, keras.Sequential)
           else SharedFunctional)
    clone.original_model = getattr(source, "original_model", None)
    clone.attach_bank(bank, source.sharing_plan)
    if source.compiled:
        clone.compile_from_config(source.get_compile_config())
    return clone


def _is_converted_subclass(model):
    return isinstance(model, BankOwnerMixin) and getattr(model, "base_class", None) is not None


def _shared_layers_of(model):
    return [layer for layer in sublayers(model) if is_shared(layer)]
