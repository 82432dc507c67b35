"""The mixin that turns a Keras layer into one that generates its weights."""

import contextlib
import math

import keras
from keras import ops


from keras_ssn import calibration
from keras_ssn import engine
from keras_ssn import generation
from keras_ssn import recipes
from keras_ssn.keras_internals import in_symbolic_scope
from keras_ssn.methods import GENERATION_PARAM_NAMES
from keras_ssn.methods import WeightedAverage
from keras_ssn.plan import WeightSpec
from keras_ssn.remat import apply_rematerialized

COEFFICIENTS_NAME = WeightedAverage.parameter_name


class SharedWeightMixin:
    """Makes a layer generate its weights from a `WeightBank` instead of owning them.

    The layer class it is mixed into (`Dense`, `Conv2D`, `LSTMCell`, ...)
    keeps its call, masking, bias, activation and config; only the weights
    named in `shared_weights` change. The base layer creates each in
    `build()` with `add_weight(name=...)` and reads it as an attribute; the
    shared subclass skips those variables and defines each name as a
    property that returns a tensor generated from the bank. The bank itself
    is owned by the model (see `keras_ssn.models`), which attaches it to
    every shared layer.

    Args:
        sharing: Dict mapping each name in `shared_weights` to its
            `WeightSpec` (or its config dict), made by `keras_ssn.convert()`.
    """

    shared_weights = ("kernel",)
    base_class = None
    # The prefix of the base class's `<prefix>_initializer`,
    # `<prefix>_regularizer` and `<prefix>_constraint` attributes for each
    # weight, when not the weight's name.
    attribute_prefixes = {}
    # The attribute through which the base class reads each weight, when
    # not the weight's name (see `shared_variant`).
    weight_attributes = {}
    # The shared weights that are lookup tables, read a whole row at a time
    # by index (an embedding's table). Their columns are the dimensions of
    # one vector, which the next layer mixes, rather than output units, so
    # the planner lets them tile a slice narrower than a row.
    lookup_tables = ()

    def __init__(self, *args, sharing=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_sharing(sharing)

    def _set_sharing(self, sharing):
        if not isinstance(sharing, dict) or set(sharing) != set(self.shared_weights):
            raise ValueError(
                f"{type(self).__name__} needs a `sharing` dict with a spec for "
                f"each of {list(self.shared_weights)}. Shared layers are "
                "created by `keras_ssn.convert(model, budget)`; they cannot be "
                f"created on their own. Received: sharing={sharing!r}"
            )
        # Plain attributes, kept out of Keras's tracking: they hold no
        # variables of their own.
        object.__setattr__(self, "sharing", as_specs(sharing))
        object.__setattr__(self, "_bank_link", _BankLink(None))

    def attached_bank(self):
        """The `WeightBank` this layer reads; `None` until its model attaches one.

        A method, not a property: Keras saves every layer an attribute
        returns, and the bank is saved once, under the model.
        """
        return self._bank_link.bank

    def attach_bank(self, bank):
        """Points this layer at the bank it generates its weights from.

        The reference is deliberately hidden from Keras's tracking and saving:
        the model owns the bank, so it is saved once, under the model, however
        many layers read it.
        """
        object.__setattr__(self, "_bank_link", _BankLink(bank))

    def build(self, input_shape):
        self._skip_shared_weights = True
        try:
            super().build(input_shape)
        finally:
            self._skip_shared_weights = False
        self._build_coefficients()

    def add_weight(self, *args, **kwargs):
        if getattr(self, "_skip_shared_weights", False) and (
            kwargs.get("name") in self.shared_weights
        ):
            return None
        return super().add_weight(*args, **kwargs)

    def _build_coefficients(self, seed=None):
        """Creates the learned generation parameters of each shared weight."""
        # `add_weight` tracks the variables; the dict only indexes them.
        object.__setattr__(self, "coefficients", {})
        for index, name in enumerate(self.shared_weights):
            spec = self.sharing[name]
            count = spec.num_coefficients
            if not count:
                self.coefficients[name] = None
                continue
            method = spec.generation_method
            self.coefficients[name] = self.add_weight(
                name=f"{name}_{method.parameter_name}",
                shape=method.parameter_shape(count),
                initializer=method.parameter_initializer(
                    None if seed is None else seed + 1000 * index
                ),
                dtype="float32",
                autocast=False,
            )

    def __call__(self, *args, **kwargs):
        with self.standalone_scope():
            return super().__call__(*args, **kwargs)

    def standalone_scope(self):
        """A scope with this layer's weights, when no enclosing one has them.

        Inside its model, the model generates every shared weight once per
        forward pass. Called on its own, the layer generates its weights
        once per call here, however often its code reads them.
        """
        if (engine.is_covered(self) or not self.built
                or self._bank_link.bank is None or in_symbolic_scope()):
            return contextlib.nullcontext()
        return engine.scope(recipes.generated_weights(self._bank_link.bank, [
            (self, name) for name in self.shared_weights]))

    def generation_parameters(self, name, coefficient_maps=None):
        """The learned parameters that generate weight `name`, as tensors.

        Args:
            name: One of `shared_weights`.
            coefficient_maps: The bank's coefficient maps tensor, needed
                when the weight combines templates with `share="emb"`.

        Returns:
            What `keras_ssn.generation.shape_weight` takes, or `None`.
        """
        spec = self.sharing[name]
        variable = self.coefficients[name]
        parameters = None if variable is None else variable.value
        if spec.coefficient_map is not None:
            parameters = generation.embedded_coefficients(
                parameters, coefficient_maps, spec
            )
        return parameters

    def generate_weight(self, name=None):
        """Generates weight `name` from the bank, in float32 (the bank's dtype).

        This generates the weight on its own; inside its model's forward
        pass the layer reads the weight its model generated for it.

        Args:
            name: One of `shared_weights`; the first by default.
        """
        name = name or self.shared_weights[0]
        if self._bank_link.bank is None and in_symbolic_scope():
            # Keras infers output shapes by calling layers on symbolic
            # tensors, e.g. while `load_model` rebuilds the graph and before
            # the model attaches its bank: only the shape matters there.
            return ops.zeros(self.sharing[name].shape, dtype="float32")
        return self.weight_recipe(name).weight()

    def weight_recipe(self, name, chain=None):
        """What weight `name` is generated from, as a `WeightRecipe`.

        Args:
            name: One of `shared_weights`.
            chain: The forward pass's `PieceChain`; by default one of this
                layer's own.

        Raises:
            ValueError: The layer is not attached to a bank.
        """
        bank = self._bank_link.bank
        if bank is None:
            raise ValueError(
                f"Layer '{self.name}' generates its `{name}` from a "
                "WeightBank but is not attached to one. Shared layers live "
                "inside a model made by `keras_ssn.convert()`, "
                "`keras.models.load_model()` or `keras_ssn.clone_model()`; "
                "`keras.models.clone_model()` copies a converted model's "
                "layers without the bank it owns, so copy it with "
                "`keras_ssn.clone_model()`, which takes the same arguments."
            )
        maps = bank.coefficient_maps
        parameters = self.generation_parameters(
            name, None if maps is None else maps.value
        )
        return recipes.weight_recipe(bank, self.sharing[name], parameters, chain)

    def apply_weight(self, name, op, inputs):
        """`op(inputs, weight)`, the weight generated where `op` uses it.

        Where the forward pass holds weight `name` as a recipe (see
        `keras_ssn.remat`), the weight is generated just before `op` and
        again for `op`'s backward pass, and is not kept in between; a
        weight that is one bank piece times a scale is not generated at
        all: `op` applies the piece and its output is scaled.

        Args:
            name: One of `shared_weights`.
            op: Function `(inputs, weight) -> outputs`, bilinear in its two
                arguments (a matmul, an einsum, a convolution).
            inputs: The op's input tensor.
        """
        if not in_symbolic_scope():
            calibration.record(self, name, op, inputs)
        recipe = engine.lookup_recipe(self, name)
        if recipe is None or in_symbolic_scope():
            return op(inputs, getattr(self, name))
        dtype = self.compute_dtype
        if recipe.is_view():
            shape, scale = recipe.view
            if scale == 1.0 or _fewer_outputs_than_weights(inputs, shape):
                # op(x, scale * piece) = scale * op(x, piece): the piece as it is.
                outputs = op(inputs, ops.cast(recipe.piece_view(), dtype))
                return outputs if scale == 1.0 else outputs * ops.cast(scale, outputs.dtype)
        return apply_rematerialized(
            lambda x, weight: op(x, ops.cast(weight, dtype)), inputs, recipe
        )

    def _generated_weight(self, name):
        if not self.built:
            raise AttributeError(
                f"You must build the layer before accessing `{name}`."
            )
        weight = engine.lookup(self, name)
        if weight is None:
            weight = self.generate_weight(name)
        return ops.cast(weight, self.compute_dtype)

    @classmethod
    def variant_for(cls, layer):
        """The shared class for `layer` (another variant of its class may fit it)."""
        return cls

    @classmethod
    def attribute_of(cls, name):
        """The attribute the base class reads weight `name` from."""
        return cls.weight_attributes.get(name, name)

    def regularizer_of(self, name):
        """The regularizer the base layer applies to weight `name`, or `None`."""
        return self.weight_attribute(self, name, "regularizer")

    @classmethod
    def constraint_of(cls, layer, name):
        """The constraint `layer` puts on weight `name`, or `None`."""
        return cls.weight_attribute(layer, name, "constraint")

    @classmethod
    def initializer_of(cls, layer, name):
        """The initializer `layer` draws weight `name` with, or `None`."""
        return cls.weight_attribute(layer, name, "initializer")

    @classmethod
    def output_units(cls, layer, name, shape):
        """How many output units the trailing axes of weight `name` hold.

        A weight tiled from a slice smaller than this repeats output units,
        which never learn apart (see `Upsampling.repeats_columns`). The last
        axis, as for `Dense` and convolution kernels.
        """
        return shape[-1]

    @classmethod
    def weight_attribute(cls, layer, name, kind):
        """`layer.<prefix>_<kind>` for weight `name` (`kind`: "regularizer", ...)."""
        prefix = cls.attribute_prefixes.get(name, name)
        return getattr(layer, f"{prefix}_{kind}" if prefix else kind, None)

    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def enable_lora(self, *args, **kwargs):
        refuse_lora(self)

    def quantize(self, *args, **kwargs):
        refuse_quantization(self)

    def get_config(self):
        config = super().get_config()
        config["sharing"] = {
            name: spec.get_config() for name, spec in self.sharing.items()
        }
        return config


def as_specs(sharing):
    """A `{weight name: WeightSpec}` dict from specs or their configs."""
    return {
        name: spec if isinstance(spec, WeightSpec) else WeightSpec.from_config(spec)
        for name, spec in sharing.items()
    }


def refuse_quantization(layer):
    """Raises: quantizing needs weights the layer owns.

    A `ValueError`, not Keras's `NotImplementedError`, which
    `Model.quantize()` turns into a warning and skips.
    """
    kind = "Model" if isinstance(layer, keras.Model) else "Layer"
    raise ValueError(
        f"{kind} '{layer.name}' generates its weights from a shared bank and "
        "cannot be quantized in place. Call `keras_ssn.materialize(model)` "
        "first, then quantize the plain model it returns."
    )


def refuse_lora(layer):
    raise NotImplementedError(
        f"Layer '{layer.name}' generates its weights from a shared bank; LoRA "
        "needs owned weights. Call `keras_ssn.materialize(model)` first."
    )


def _fewer_outputs_than_weights(inputs, shape):
    """Whether a linear op's output (about) is smaller than its weight of `shape`.

    The output has one row per input row and the weight's last axis as
    columns (exactly so for a matmul, about so for a convolution). Unknown
    sizes count as not smaller.
    """
    rows = inputs.shape[:-1]
    if any(size is None for size in rows):
        return False
    return math.prod(rows) * shape[-1] < math.prod(shape)


class _BankLink:
    """An untracked reference from a shared layer to its model's bank."""

    __slots__ = ("bank",)

    def __init__(self, bank):
        self.bank = bank


def is_generation_param(variable):
    """Whether `variable` is a learned generation parameter, not a layer weight."""
    return variable.name.endswith(GENERATION_PARAM_NAMES)
