"""Which layers of a model share their weights, and which keep them."""

import dataclasses
import math
import re
import warnings

import keras
import numpy as np

from keras_ssn.initial_scale import initial_stddev
from keras_ssn.keras_internals import sublayers
from keras_ssn.layer_paths import describes_its_sublayers
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import FAMILIES
from keras_ssn.layers import NORMALIZATION_CLASSES
from keras_ssn.layers import is_container
from keras_ssn.layers import owned_variable
from keras_ssn.layers import register_optional_layers
from keras_ssn.layers import shared_class_for
from keras_ssn.plan import SharedWeight


class UnsupportedLayerError(TypeError):
    """A layer with trainable weights cannot be shared and `strict=True`."""


@dataclasses.dataclass
class Candidate:
    """A layer that will generate its weights from the bank.

    Attributes:
        path: The layer's path in the model.
        layer: The layer (in the model copy being converted).
        shared_class: Its shared variant.
        parts: List of `(part, owner, owner_class)`: the layers that hold
            the shared weights (the layer itself, with part `""`, or the
            sublayers of a container such as an `LSTM`'s cell).
    """

    path: str
    layer: keras.layers.Layer
    shared_class: type
    parts: list

    @classmethod
    def of(cls, path, layer, shared_class):
        """The candidate for `layer`, with the parts its shared class names."""
        return cls(path, layer, shared_class, _parts(layer, shared_class))

    @property
    def family(self):
        return FAMILIES[self.shared_class]

    def weight_paths(self):
        """Dict mapping each shared weight's path to `(part, owner, name)`."""
        paths = {}
        for part, owner, owner_class in self.parts:
            prefix = "/".join(p for p in (self.path, part) if p)
            for name in owner_class.shared_weights:
                paths[f"{prefix}/{name}"] = (part, owner, name)
        return paths

    def shared_weights(self):
        """One `SharedWeight` per weight, with the std its initializer gives."""
        weights = []
        for part, owner, owner_class in self.parts:
            prefix = "/".join(p for p in (self.path, part) if p)
            for name in owner_class.shared_weights:
                variable = owned_variable(owner, name, owner_class.attribute_of(name))
                shape = tuple(variable.shape)
                stddev = initial_stddev(
                    owner_class.initializer_of(owner, name), shape, variable
                )
                weights.append(SharedWeight(
                    f"{prefix}/{name}", shape, stddev,
                    lookup=name in owner_class.lookup_tables,
                    units=owner_class.output_units(owner, name, shape),
                ))
        return weights

    def size(self):
        return sum(w.size for w in self.shared_weights())

    def weight_values(self):
        """Dict mapping each shared weight's path to its value (float32 NumPy)."""
        values = {}
        for part, owner, owner_class in self.parts:
            prefix = "/".join(p for p in (self.path, part) if p)
            for name in owner_class.shared_weights:
                variable = owned_variable(owner, name, owner_class.attribute_of(name))
                values[f"{prefix}/{name}"] = keras.ops.convert_to_numpy(
                    variable).astype("float32")
        return values


def find_shareable(model, strict, exclusion=None):
    """Splits a model's layers with trainable weights into shareable and not.

    Descends into nested models and wrappers (`Bidirectional`,
    `TimeDistributed`), whose configs hold their sublayers; other layers
    with sublayers are shared as a whole (`LSTM`, `MultiHeadAttention`) or
    kept unshared as a whole.

    Args:
        model: The model copy to convert.
        strict: Raise `UnsupportedLayerError` for layers that cannot be
            shared (normalization layers and excluded layers aside).
        exclusion: Optional function `(path, layer, weight_size)` returning
            the reason a shareable layer stays unshared, or `None`.

    Returns:
        `(candidates, unshared)`: `Candidate`s, and report entries for the
        layers that keep their weights.
    """
    register_optional_layers()
    candidates = []
    unshared = []
    inside = set()  # layers handled with the layer that contains them
    for path, layer in walk_layers(model):
        if id(layer) in inside:
            continue
        shared_class = shared_class_for(layer)
        opened = opens_up(layer, shared_class)
        if not describes_its_sublayers(layer) and not opened:
            inside.update(id(sub) for sub in sublayers(layer))
        params = _trainable_count(layer, opened)
        if not params:
            continue
        reason = _reason_not_shared(layer, shared_class, opened)
        if reason is None:
            candidate = Candidate.of(path, layer, shared_class)
            reason = _reason_parts_not_shared(candidate)
        if reason is None and exclusion is not None:
            excluded = exclusion(path, layer, candidate.size())
            if excluded:
                unshared.append(_unshared_entry(path, layer, params, excluded))
                continue
        if reason is None:
            candidates.append(candidate)
            continue
        if strict and reason not in (NORMALIZATION, PER_CHANNEL):
            raise UnsupportedLayerError(
                f"Layer '{path}' ({type(layer).__name__}) cannot be shared: "
                f"{reason}. Pass strict=False to keep it unshared (it then "
                "counts toward the budget with its own weights)."
            )
        unshared.append(_unshared_entry(path, layer, params, reason))
    _warn_unsupported(unshared)
    return candidates, unshared


def opens_up(layer, shared_class):
    """Whether the sublayers of `layer` are shared one by one.

    True for layers without a shared variant that hold other layers: custom
    layers (a transformer block), subclassed models, and Keras layers such
    as `keras_hub`'s. Their own variables, if any, stay unshared.
    """
    return (
        shared_class is None
        and not describes_its_sublayers(layer)
        and bool(sublayers(layer, recursive=False))
    )


def _trainable_count(layer, opened=False):
    """Trainable parameters of `layer`, its sublayers' included unless they
    are visited on their own."""
    if not layer.trainable:
        return 0
    return sum(math.prod(v.shape) for v in _own_trainable(layer, opened))


def _is_vector(shape):
    """Whether a weight of `shape` holds one value per channel (or one value)."""
    return math.prod(shape) == (shape[-1] if shape else 1)


def _own_trainable(layer, opened=False):
    """The trainable variables counted with `layer` (see `_trainable_count`)."""
    if opened or describes_its_sublayers(layer):
        return [v for v in layer._trainable_variables if v.trainable]
    return layer.trainable_weights


def _parts(layer, shared_class):
    if not is_container(shared_class):
        return [("", layer, shared_class)]
    return [
        (part, sublayer, shared_class_for(sublayer))
        for part, sublayer in shared_class.shared_parts(layer).items()
    ]


def _warn_unsupported(unshared):
    skipped = [e for e in unshared if "no shared variant" in e["reason"]]
    if skipped:
        warnings.warn(
            "These layers have no shared variant and keep their own weights: "
            + ", ".join(f"{e['path']} ({e['class_name']})" for e in skipped),
            stacklevel=4,
        )


def _unshared_entry(path, layer, params, reason):
    return {
        "path": path,
        "class_name": type(layer).__name__,
        "params": params,
        "reason": reason,
    }


def layer_filter(exclude, min_size, model=None):
    """The `exclusion` function of `find_shareable` for `exclude=` and `min_size=`.

    A name, path or pattern in `exclude` matches a layer when it equals or
    fully matches the layer's path or name, or the path or name of a layer
    that contains it (so a nested model's name excludes all of it).

    Args:
        exclude: As in `convert()`.
        min_size: As in `convert()`.
        model: The model the exclusions apply to; when given, every name or
            pattern must match one of its layers.

    Returns:
        A function `(path, layer, weight_size)` that returns why a layer
        stays unshared, or `None` to share it; `None` if nothing is excluded.

    Raises:
        TypeError: `exclude` or `min_size` has the wrong type.
        ValueError: A pattern is not a valid regular expression, or matches
            no layer of `model`.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)):
        raise TypeError(f"min_size must be an int; received {min_size!r}.")
    if min_size < 0:
        raise ValueError(
            f"min_size is a number of weight entries, at least 0; received {min_size}."
        )
    matches = _exclusion_matcher(exclude, model)
    if matches is None and not min_size:
        return None

    def exclusion(path, layer, size):
        if matches is not None and matches(path, layer):
            return "excluded by exclude="
        if size < min_size:
            return f"its weight has {size} entries, fewer than min_size={min_size}"
        return None

    return exclusion


def _exclusion_matcher(exclude, model=None):
    if exclude is None:
        return None
    single = (str, re.Pattern, keras.layers.Layer)  # one item of `exclude`
    if callable(exclude) and not isinstance(exclude, keras.layers.Layer):
        return lambda path, layer: bool(exclude(layer))
    patterns = [exclude] if isinstance(exclude, single) else exclude
    if not isinstance(patterns, (list, tuple, set)) or not all(
        isinstance(p, single) for p in patterns
    ):
        raise TypeError(
            "exclude must be a layer, a layer name, path or regular expression "
            "(a string or a compiled re.Pattern), a list of those, or a function "
            f"of a layer; received {exclude!r}."
        )
    compiled = [_compiled_pattern(p) for p in patterns]
    if model is not None:
        _check_every_pattern_matches(compiled, model)

    def matches(path, layer):
        return any(_matches(p, name) for p in compiled for name in _names(path, layer))

    return matches


def _compiled_pattern(pattern):
    """A compiled pattern for a name, path or pattern; a layer matches by name."""
    if isinstance(pattern, re.Pattern):
        return pattern
    if isinstance(pattern, keras.layers.Layer):
        return re.compile(re.escape(pattern.name))
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f"exclude pattern {pattern!r} is not a valid regular "
            f"expression ({error}). Escape it with re.escape() to match a "
            "name literally."
        ) from None


def _names(path, layer):
    """The layer's path and name, and the path and name of each container.

    Paths are made of layer names, so the containers' names are the path's
    parts and their paths its prefixes.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return [layer.name] + parts + prefixes


def _matches(pattern, name):
    return name == pattern.pattern or pattern.fullmatch(name) is not None


def _check_every_pattern_matches(compiled, model):
    names = [(path, layer.name) for path, layer in walk_layers(model)]
    unmatched = [
        p.pattern for p in compiled
        if not any(_matches(p, n) for path, name in names for n in (path, name))
    ]
    if unmatched:
        raise ValueError(
            f"exclude={unmatched[0]!r} matches no layer of model '{model.name}'"
            f"{f' (nor do {unmatched[1:]})' if unmatched[1:] else ''}. A name "
            "or pattern must equal or fully match a layer's name or path. "
            f"Layer paths: {[path for path, _ in names]}."
        )


NORMALIZATION = "normalization layers keep their own weights"
PER_CHANNEL = ("its own weights are per-channel vectors (scales, offsets, a class "
               "token), kept as they are")


def _reason_not_shared(layer, shared_class, opened=False):
    if shared_class is None:
        if isinstance(layer, NORMALIZATION_CLASSES):
            return NORMALIZATION
        own = _own_trainable(layer, opened)
        if all(_is_vector(tuple(v.shape)) for v in own):
            # Custom normalization layers (keras_hub's `LlamaLayerNorm`, ...),
            # a ViT's class token.
            return PER_CHANNEL
        if opened:
            return (f"no shared variant of {type(layer).__name__} for the weights "
                    "it creates itself (its sublayers are shared)")
        return f"no shared variant of {type(layer).__name__}"
    if getattr(layer, "quantization_mode", None):
        return "it is quantized"
    if getattr(layer, "lora_enabled", False):
        return "it has LoRA enabled"
    return None


def _reason_parts_not_shared(candidate):
    for part, owner, owner_class in candidate.parts:
        if owner_class is None:
            return f"no shared variant of its {type(owner).__name__} '{part}'"
        for name in owner_class.shared_weights:
            variable = owned_variable(owner, name, owner_class.attribute_of(name))
            if variable is None or not variable.trainable:
                return f"its {name} is not a trainable variable"
            if owner_class.constraint_of(owner, name) is not None:
                return (
                    f"its {name} has a constraint, which a generated weight "
                    "cannot keep"
                )
        if getattr(owner, "lora_enabled", False):
            return "it has LoRA enabled"
    return None
