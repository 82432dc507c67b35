"""Making a layer class shared: its shared variant, and turning a built layer into it."""

import keras

from keras_ssn.keras_internals import drop_quantize_binding
from keras_ssn.keras_internals import instance_variable
from keras_ssn.keras_internals import unlocked
from keras_ssn.layers.base import SharedWeightMixin


def share_in_place(layer, shared_class, sharing, seed=None):
    """Turns a built layer into its shared variant, keeping its other weights.

    The layer's own copies of the shared weights are deleted; biases and
    every other variable stay as they are.

    Args:
        layer: A built layer of `shared_class.base_class`.
        shared_class: The shared subclass to turn it into.
        sharing: Dict mapping each of `shared_class.shared_weights` to its
            `WeightSpec`.
        seed: Optional seed for the coefficient initializers.
    """
    attributes = [_weight_attribute(layer, n, shared_class.attribute_of(n))
                  for n in shared_class.shared_weights]
    with unlocked(layer):
        for attribute in attributes:
            _delete_variable(layer, attribute)
        become(layer, shared_class)
        layer._set_sharing(sharing)
        layer._build_coefficients(seed)


def become(layer, shared_class):
    """Changes a built layer's (or model's) class to its shared variant.

    Keras binds each layer's `quantize` method when the layer is made; the
    instance's binding is dropped so that the shared class's `quantize`
    applies.
    """
    layer.__class__ = shared_class
    drop_quantize_binding(layer)


def _delete_variable(layer, attribute):
    """Untracks and deletes a layer's variable attribute.

    `Layer.__delattr__` does the same but also runs a full garbage
    collection per variable, which makes converting a model with a hundred
    layers take many seconds; the memory is freed all the same.
    """
    layer._untrack_variable(getattr(layer, attribute))
    super(keras.layers.Layer, layer).__delattr__(attribute)


def owned_variable(layer, name, attribute=None):
    """The variable a plain layer holds as its weight `name`, or `None`.

    Keras layers keep a weight either behind a property over a private
    attribute (`Dense._kernel`) or as a plain attribute
    (`DepthwiseConv2D.kernel`); some keep it under another name
    (`attribute`: keras_hub's `PositionEmbedding` keeps its `embeddings` as
    `position_embeddings`).
    """
    attribute = _weight_attribute(layer, name, attribute)
    return None if attribute is None else instance_variable(layer, attribute)


def _weight_attribute(layer, name, attribute=None):
    for candidate in (attribute, "_" + name, name):
        if candidate and isinstance(instance_variable(layer, candidate), keras.Variable):
            return candidate
    return None


def shared_variant(
    base_class,
    weights=("kernel",),
    attribute_prefixes=None,
    package="keras_ssn",
    call=None,
    weight_attributes=None,
    name=None,
):
    """Defines and registers the shared variant of a layer class.

    This is also the protocol for your own layers. A layer can be shared when
    its `build()` creates each shareable weight with
    `self.add_weight(name=...)` (as `self.<name>` or `self._<name>`) and its
    `call()` reads it as `self.<name>` (or under another attribute, named in
    `weight_attributes`). The variant generates those weights
    from the bank; every other variable, and the layer's call and config,
    stay the base class's. Register the variant with
    `keras_ssn.register_shared_layer()` so that `convert()` uses it, and
    define it at import time so that `load_model()` finds it.

    Args:
        base_class: The Keras layer class.
        weights: Names of its shareable weights.
        attribute_prefixes: Dict mapping a weight name to the prefix of the
            base class's `<prefix>_initializer`, `<prefix>_regularizer` and
            `<prefix>_constraint` attributes, for weights where it is not the
            weight's own name (`DepthwiseConv2D` keeps `kernel`'s at
            `depthwise_initializer`, ...). The initializer sets the generated
            weight's initial std; the regularizer and the constraint are
            honoured.
        package: Package name for Keras serialization.
        call: Optional mixin class whose `call` replaces the base class's,
            applying the weight through `SharedWeightMixin.apply_weight`.
        weight_attributes: Dict mapping a weight name to the attribute the
            base class keeps it in and reads it from, for weights where that
            is neither `<name>` nor `_<name>` read through a `<name>`
            property (keras_hub's `PositionEmbedding` creates `embeddings`
            as `self.position_embeddings`; an MoE layer reads
            `self._expert_feedforward_gate_dense`).
        name: The class name; `"Shared" + base_class.__name__` by default.

    Returns:
        The new class.
    """
    attributes = {
        "__doc__": f"`{base_class.__name__}` whose {', '.join(weights)} "
        f"{'is' if len(weights) == 1 else 'are'} generated from the model's "
        "weight bank.",
        "__module__": base_class.__module__ if package != "keras_ssn" else __name__,
        "base_class": base_class,
        "shared_weights": tuple(weights),
        "attribute_prefixes": dict(attribute_prefixes or {}),
        "weight_attributes": dict(weight_attributes or {}),
        **{(weight_attributes or {}).get(name, name): generated_weight_property(name)
           for name in weights},
    }
    bases = (SharedWeightMixin, base_class) if call is None else (
        SharedWeightMixin, call, base_class)
    cls = type(name or f"Shared{base_class.__name__}", bases, attributes)
    return keras.saving.register_keras_serializable(package=package)(cls)


def generated_weight_property(name):
    """The class property through which a shared layer's code reads `name`.

    Reading it generates the weight from the bank. Base classes that assign
    the weight as a plain attribute in `build()` assign `None` here (the
    mixin skips creating it), which is ignored.
    """

    def get(self):
        if getattr(self, "_skip_shared_weights", False):
            return None  # being built: TensorFlow's setattr reads it back
        return self._generated_weight(name)

    def set(self, value):
        if value is not None:
            raise AttributeError(
                f"`{name}` of layer '{self.name}' is generated from the "
                "model's weight bank and cannot be assigned."
            )

    return property(get, set, doc=f"The `{name}` generated from the bank.")
