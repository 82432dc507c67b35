"""The mixin that turns a Keras layer into one that generates its weight."""

import keras
from keras import ops

from keras_ssn import generation
from keras_ssn.plan import LayerSpec

# Names of the learned generation parameters a shared layer may own. None of
# them is a weight of the original layer, and optimizer weight decay skips
# them (as in the paper, for the coefficients).
COEFFICIENTS_NAME = "template_coefficients"  # share="wavg" / "softmax"
EMBEDDING_NAME = "layer_embedding"  # share="emb"
MASK_NAME = "upsample_mask"  # upsample="mask"
PIECE_MIX_NAME = "upsample_coefficients"  # upsample="wavg"
COEFFICIENT_MAPS_NAME = "coefficient_maps"  # the bank's share="emb" maps
GENERATION_PARAM_NAMES = (
    COEFFICIENTS_NAME,
    EMBEDDING_NAME,
    MASK_NAME,
    PIECE_MIX_NAME,
    COEFFICIENT_MAPS_NAME,
)


class SharedWeightMixin:
    """Makes a layer generate one weight from a `WeightBank` instead of owning it.

    The layer class it is mixed into (`Dense`, `Conv2D`, ...) keeps its call,
    masking, bias, activation and config; only the weight named
    `shared_weight` changes. The base layer creates it in `build()` with
    `add_weight(name=shared_weight)` and reads it through a property; the
    shared subclass skips that variable and makes the property return a
    tensor generated from the bank. The bank itself is owned by the model
    (see `keras_ssn.models`), which attaches it to every shared layer.

    Args:
        sharing: The layer's `LayerSpec` (or its config dict), made by
            `keras_ssn.convert()`.
    """

    shared_weight = "kernel"
    base_class = None

    def __init__(self, *args, sharing=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._set_sharing(sharing)

    def _set_sharing(self, sharing):
        if isinstance(sharing, dict):
            sharing = LayerSpec.from_config(sharing)
        if not isinstance(sharing, LayerSpec):
            raise ValueError(
                f"{type(self).__name__} needs a `sharing` spec. Shared layers "
                "are created by `keras_ssn.convert(model, budget)`; they cannot "
                f"be created on their own. Received: sharing={sharing!r}"
            )
        self.sharing = sharing
        object.__setattr__(self, "_bank_link", _BankLink(None))

    def attach_bank(self, bank):
        """Points this layer at the bank it generates its weight from.

        The reference is deliberately hidden from Keras's tracking and saving:
        the model owns the bank, so it is saved once, under the model, however
        many layers read it.
        """
        object.__setattr__(self, "_bank_link", _BankLink(bank))

    def build(self, input_shape):
        self._skip_shared_weight = True
        try:
            super().build(input_shape)
        finally:
            self._skip_shared_weight = False
        self._build_coefficients()

    def add_weight(self, *args, **kwargs):
        if getattr(self, "_skip_shared_weight", False) and (
            kwargs.get("name") == self.shared_weight
        ):
            return None
        return super().add_weight(*args, **kwargs)

    def _build_coefficients(self, seed=None):
        """Creates the layer's learned generation parameters, if it has any."""
        self.coefficients = None
        count = self.sharing.num_coefficients
        if not count:
            return
        name, shape, initializer = _generation_param(self.sharing, count, seed)
        self.coefficients = self.add_weight(
            name=name,
            shape=shape,
            initializer=initializer,
            dtype="float32",
            autocast=False,
        )

    def generate_weight(self):
        """Returns the generated weight in float32, the bank's dtype."""
        bank = self._bank_link.bank
        if bank is None:
            raise ValueError(
                f"Layer '{self.name}' generates its `{self.shared_weight}` "
                "from a WeightBank but is not attached to one. Shared layers "
                "live inside a model made by `keras_ssn.convert()` or loaded "
                "with `keras.models.load_model()` after `import keras_ssn`."
            )
        coefficients = None
        if self.coefficients is not None:
            coefficients = self.coefficients.value
        if self.sharing.coefficient_map is not None:
            coefficients = generation.embedded_coefficients(
                coefficients, bank.coefficient_maps.value, self.sharing
            )
        return generation.generate_weight(
            bank.entries.value, self.sharing, coefficients
        )

    def _generated_weight(self):
        if not self.built:
            raise AttributeError(
                f"You must build the layer before accessing `{self.shared_weight}`."
            )
        return ops.cast(self.generate_weight(), self.compute_dtype)

    def save_own_variables(self, store):
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        keras.layers.Layer.load_own_variables(self, store)

    def enable_lora(self, *args, **kwargs):
        raise NotImplementedError(
            f"Layer '{self.name}' generates its weight from a shared bank; "
            "LoRA needs an owned weight. Call `keras_ssn.materialize(model)` "
            "first."
        )

    def quantize(self, *args, **kwargs):
        raise NotImplementedError(
            f"Layer '{self.name}' generates its weight from a shared bank and "
            "cannot be quantized in place. Call `keras_ssn.materialize(model)` "
            "first, then quantize the plain model."
        )

    def get_config(self):
        config = super().get_config()
        config["sharing"] = self.sharing.get_config()
        return config


def _generation_param(spec, count, seed):
    """Name, shape and initializer of a layer's learned generation parameters.

    Template coefficients and layer embeddings start as random unit-norm
    rows, so the generated weight starts with the std the plan set; a mask
    starts at ones (plain tiling); piece mixes start as random unit-norm
    mixes of the two halves.
    """
    if spec.mode == generation.UPSAMPLE:
        if spec.upsample == "mask":
            return MASK_NAME, (count,), "ones"
        return PIECE_MIX_NAME, (count // 2, 2), _UnitRows(seed)
    if spec.share == "emb":
        return EMBEDDING_NAME, (1, count), keras.initializers.Orthogonal(seed=seed)
    return COEFFICIENTS_NAME, (1, count), keras.initializers.Orthogonal(seed=seed)


class _UnitRows(keras.initializers.Initializer):
    """Random rows of unit norm (a normal draw, each row normalized)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        draw = keras.random.normal(shape, dtype=dtype, seed=self.seed)
        return draw / ops.sqrt(ops.sum(draw * draw, axis=-1, keepdims=True))

    def get_config(self):
        return {"seed": self.seed}


class _BankLink:
    """An untracked reference from a shared layer to its model's bank."""

    __slots__ = ("bank",)

    def __init__(self, bank):
        self.bank = bank


def share_in_place(layer, shared_class, spec, seed=None):
    """Turns a built layer into its shared variant, keeping its other weights.

    The layer's own copy of the shared weight is deleted; biases and every
    other variable stay as they are.

    Args:
        layer: A built layer of `shared_class.base_class`.
        shared_class: The shared subclass to turn it into.
        spec: The layer's `LayerSpec`.
        seed: Optional seed for the coefficient initializer.
    """
    attribute = _weight_attribute(layer, shared_class.shared_weight)
    layer._tracker.unlock()
    try:
        delattr(layer, attribute)
        layer.__class__ = shared_class
        layer._set_sharing(spec)
        layer._build_coefficients(seed)
    finally:
        layer._tracker.lock()


def owned_variable(layer, name):
    """The variable a plain layer holds as its weight `name`, or `None`.

    Keras layers keep a weight either behind a property over a private
    attribute (`Dense._kernel`) or as a plain attribute
    (`DepthwiseConv2D.kernel`).
    """
    attribute = _weight_attribute(layer, name)
    return None if attribute is None else layer.__dict__[attribute]


def _weight_attribute(layer, name):
    for attribute in ("_" + name, name):
        if isinstance(layer.__dict__.get(attribute), keras.Variable):
            return attribute
    return None


def generated_weight_property(name):
    """The class property through which a shared layer's code reads `name`.

    Reading it generates the weight from the bank. Base classes that assign
    the weight as a plain attribute in `build()` assign `None` here (the
    mixin skips creating it), which is ignored.
    """

    def get(self):
        return self._generated_weight()

    def set(self, value):
        if value is not None:
            raise AttributeError(
                f"`{name}` of layer '{self.name}' is generated from the "
                "model's weight bank and cannot be assigned."
            )

    return property(get, set, doc=f"The `{name}` generated from the bank.")
