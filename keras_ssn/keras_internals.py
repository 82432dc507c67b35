"""Every use of Keras's private API, in one place.

keras_ssn changes layers and models after Keras made them (a layer becomes
its shared variant in place; a model gains a bank), which Keras's public API
does not offer. Each function below wraps one private attribute or module of
Keras and says what it relies on. Checked against Keras `KERAS_CHECKED`; on
another Keras version, run the test suite before trusting them.
"""

import contextlib
import functools

from keras.src.backend.common.symbolic_scope import in_symbolic_scope
from keras.src.models.functional import Functional
from keras.src.utils.naming import to_snake_case

KERAS_CHECKED = "3.15.1"

__all__ = [
    "KERAS_CHECKED",
    "Functional",
    "build_shapes",
    "clone_recording_copies",
    "drop_quantize_binding",
    "in_symbolic_scope",
    "instance_variable",
    "jax_compute_loss_and_updates",
    "set_build_shapes",
    "sublayers",
    "to_snake_case",
    "unlocked",
    "untrack_sublayer",
    "weight_decay_exclusions",
    "set_weight_decay_exclusions",
]


@contextlib.contextmanager
def unlocked(layer):
    """Lets variables and sublayers be added to or removed from a built layer.

    Keras locks a layer's tracker (`layer._tracker`) once it is built.
    """
    layer._tracker.unlock()
    try:
        yield layer
    finally:
        layer._tracker.lock()


def sublayers(layer, recursive=True):
    """The layers inside `layer`, in Keras's order (`Layer._flatten_layers`)."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))


def untrack_sublayer(layer, sublayer):
    """Forgets a sublayer replaced in place (Keras never untracks layers)."""
    layer._layers.remove(sublayer)


def drop_quantize_binding(layer):
    """Drops the `quantize` method Keras bound to the instance when it was made.

    `Layer.__new__` wraps each instance's `quantize`; after the layer's class
    changes, the class's own method should apply.
    """
    layer.__dict__.pop("quantize", None)


def instance_variable(layer, attribute):
    """`layer.<attribute>` when it is set on the instance itself, else `None`.

    Keras layers keep a weight either as a plain attribute or behind a
    property over a private one (`Dense._kernel`); reading the instance's
    dict finds the variable without running the property.
    """
    return layer.__dict__.get(attribute)


def build_shapes(model):
    """The input shapes a model was built with (`_build_shapes_dict`)."""
    return model._build_shapes_dict


def set_build_shapes(model, shapes):
    model._build_shapes_dict = shapes


def weight_decay_exclusions(optimizer):
    """`(pattern, variable keys)` the optimizer excludes from weight decay.

    `exclude_from_weight_decay(var_names=...)` joins the names into one
    regular expression (`_exclude_from_weight_decay_pattern`, or `None`);
    `var_list` becomes a set of variable keys (`_exclude_from_weight_decay`).
    """
    pattern = getattr(optimizer, "_exclude_from_weight_decay_pattern", None)
    keys = set(getattr(optimizer, "_exclude_from_weight_decay", set()))
    return pattern, keys


def set_weight_decay_exclusions(optimizer, names, keys):
    """Excludes variables by name pattern and keeps the given variable keys.

    `exclude_from_weight_decay()` replaces both kinds of exclusion at once,
    so the keys set before are restored after it.
    """
    optimizer.exclude_from_weight_decay(var_names=names)
    optimizer._exclude_from_weight_decay = keys


def jax_compute_loss_and_updates(model):
    """Keras's own `compute_loss_and_updates` of `model` (JAX backend).

    The JAX trainer's train step differentiates this method
    (`keras/src/backend/jax/trainer.py`); a converted model overrides it to
    run per device under data parallelism (`keras_ssn.data_parallel`), and
    calls Keras's from there.
    """
    from keras.src.backend.jax.trainer import JAXTrainer

    return functools.partial(JAXTrainer.compute_loss_and_updates, model)


def clone_recording_copies(model, **kwargs):
    """`keras.models.clone_model(model, **kwargs)` and the copy of each layer.

    `clone_model` takes an undocumented `cache` keyword: a dict it fills with
    `{id(layer): copy}` for every layer it copies, nested models included
    when `recursive=True` (`keras.src.models.cloning._wrap_clone_function`).

    Returns:
        `(clone, copies)`.
    """
    import keras

    copies = {}
    return keras.models.clone_model(model, cache=copies, **kwargs), copies
