"""`convert()` a Keras model to share its weights, and `materialize()` it back."""

import math
import re
import warnings

import keras
import numpy as np
from keras import ops

from keras_ssn.bank import BankInitializer
from keras_ssn.bank import CoefficientMapInitializer
from keras_ssn.bank import WeightBank
from keras_ssn.layer_paths import count_trainable
from keras_ssn.layer_paths import own_variables
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import GENERATION_PARAM_NAMES
from keras_ssn.layers import LAYER_FAMILIES
from keras_ssn.layers import NORMALIZATION_CLASSES
from keras_ssn.layers import is_shared
from keras_ssn.layers import owned_variable
from keras_ssn.layers import share_in_place
from keras_ssn.layers import shared_class_for
from keras_ssn.mapping import assign_groups
from keras_ssn.models import BankOwnerMixin
from keras_ssn.models import shared_model_class
from keras_ssn.plan import PLACEMENTS
from keras_ssn.plan import SharedWeight
from keras_ssn.plan import plan_sharing

SHARE_METHODS = ("wavg", "emb", "avg")
UPSAMPLE_METHODS = ("inter", "repeat", "mask", "wavg")


class UnsupportedLayerError(TypeError):
    """A layer with trainable weights cannot be shared and `strict=True`."""


def convert(
    model,
    budget,
    *,
    groups="single",
    share="wavg",
    upsample="inter",
    max_templates=8,
    placement="consecutive",
    exclude=None,
    min_size=0,
    seed=None,
    strict=False,
):
    """Returns a copy of `model` that trains under an exact parameter budget.

    Every `Dense`, `EinsumDense`, `Conv1D/2D/3D` and `Embedding` layer stops
    owning its weight: the copy owns one `WeightBank`, the layers are
    clustered into parameter groups that each own a slice of it, and each
    layer generates its weight from its group's slice inside `call()`.
    Biases, normalization layers and layers without a shared variant keep
    their own weights and count toward the budget.

    The input model is not modified. The copy is not compiled.

    Args:
        model: A built `keras.Sequential` or Functional model (nested models
            included).
        budget: `int`: the exact trainable parameter count of the result.
            `float`: a fraction of `model`'s trainable count (`0.1` for a
            compact model, `4.0` for extra training capacity).
        groups: Parameter mapping: `"single"`, `"type"`, `"shape"`, an `int`
            number of random groups, or a dict mapping every shareable layer
            path to a group id.
        share: How a layer combines several templates: `"wavg"` (learned
            coefficients per layer), `"emb"` (a learned embedding per layer,
            turned into coefficients by a linear map shared in its group) or
            `"avg"` (their plain mean, no coefficients).
        upsample: How a layer makes a weight larger than its group's slice:
            `"inter"` (bilinear resize of a reduced template), `"repeat"`
            (the slice tiled to the weight's size), `"mask"` (that tiling
            with a learned mask value per copy) or `"wavg"` (chunks that are
            learned mixes of the two halves of the slice).
        max_templates: Most templates one layer combines.
        placement: Where layers read their group's slice: `"consecutive"`
            (each layer reads on from where the previous one stopped,
            wrapping around) or `"sliding"` (windows spread evenly, so every
            entry is read about equally often).
        exclude: Layers to keep unshared: a layer name, a layer path (as
            `summary()` prints it), a regular expression that fully matches
            a name or a path, a list of those, or a predicate that takes a
            layer and returns `True` to keep it unshared.
        min_size: Layers whose weight has fewer entries keep it unshared
            (small weights gain little from sharing).
        seed: Optional integer seed for the bank, coefficients and random
            groups.
        strict: If `True`, raise `UnsupportedLayerError` for any layer with
            trainable weights that cannot be shared (normalization layers
            excepted) instead of leaving it unshared.

    Returns:
        A `SharedFunctional` or `SharedSequential` model whose trainable
        parameter count equals the budget.
    """
    check_model(model)
    _check_options(share, upsample, max_templates, placement)
    original = count_trainable(model)
    target = resolve_budget(budget, original)
    copy = copy_model(model)
    exclusion = layer_filter(exclude, min_size)
    candidates, unshared_layers = find_shareable(copy, strict, exclusion)
    if not candidates:
        raise ValueError(
            f"Model '{model.name}' has no layer whose weight can be shared "
            "(Dense, EinsumDense, Conv1D/2D/3D, Embedding with trainable "
            f"weights). Unshared layers: {[e['path'] for e in unshared_layers]}."
        )
    weights = [shared_weight(path, layer, cls) for path, layer, cls in candidates]
    group_ids = assign_groups(
        [w.path for w in weights],
        [LAYER_FAMILIES[type(layer)] for _, layer, _ in candidates],
        [w.shape for w in weights],
        groups=groups,
        seed=seed,
    )
    plan = plan_sharing(
        weights,
        group_ids,
        unshared_params=original - sum(w.size for w in weights),
        budget=target,
        max_templates=max_templates,
        share=share,
        upsample=upsample,
        placement=placement,
        unshared_layers=unshared_layers,
    )
    return apply_plan(copy, candidates, plan, seed)


def apply_plan(copy, candidates, plan, seed=None):
    """Turns the candidate layers of `copy` into shared layers, per `plan`.

    Args:
        copy: The model copy to convert in place.
        candidates: `(path, layer, shared_class)` tuples from
            `find_shareable()`.
        plan: The `SharingPlan` covering every candidate path.
        seed: Optional seed for the bank and coefficient initializers.

    Returns:
        `copy`, now a `SharedFunctional` or `SharedSequential`.
    """
    bank = WeightBank(
        plan.bank_size,
        initializer=BankInitializer(
            [(g.size, g.stddev) for g in plan.groups], seed=seed
        ),
        coefficient_maps=plan.coefficient_map_shapes,
        coefficient_map_initializer=CoefficientMapInitializer(
            plan.coefficient_map_shapes, seed=seed
        ),
        name="weight_bank",
    )
    for index, (path, layer, shared_class) in enumerate(candidates):
        layer_seed = None if seed is None else seed + index + 1
        share_in_place(layer, shared_class, plan.layers[path], seed=layer_seed)
    copy.__class__ = shared_model_class(copy)
    copy.attach_bank(bank, plan)
    return copy


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
    config = model.get_config()
    config.pop("bank")
    config.pop("sharing_plan")
    config = _plain_config(config)
    if isinstance(model, keras.Sequential):
        plain = keras.Sequential.from_config(config)
    else:
        plain = keras.Model.from_config(config)
    _copy_weights(model, plain)
    return plain


def resolve_budget(budget, original):
    """Turns an int or fractional budget into an exact parameter count."""
    if isinstance(budget, bool) or not isinstance(
        budget, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            "budget must be an int (the exact trainable parameter count) or a "
            f"float (a fraction of the model's {original} trainable "
            f"parameters); received budget={budget!r}."
        )
    if isinstance(budget, (int, np.integer)):
        if budget < 1:
            raise ValueError(
                f"budget must be a positive parameter count; received budget={budget}."
            )
        return int(budget)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(
            "A float budget is a positive, finite fraction of the model's "
            f"{original} trainable parameters; received budget={budget}."
        )
    target = round(float(budget) * original)
    if target < 1:
        raise ValueError(
            f"budget={budget} of {original} parameters rounds to {target}; "
            "use a larger fraction."
        )
    return target


def check_model(model):
    if isinstance(model, BankOwnerMixin):
        raise ValueError(
            f"Model '{model.name}' is already converted. Convert the original "
            "model, or call keras_ssn.materialize() on this one first."
        )
    if type(model) not in (keras.Sequential, keras.src.models.functional.Functional):
        raise TypeError(
            "convert() supports Sequential and Functional models (nested "
            f"ones included); received {type(model).__name__}."
        )
    if not model.built or not model.weights:
        raise ValueError(
            f"Model '{model.name}' is not built, so its weight shapes are "
            "unknown. Give it an `keras.Input(shape=...)` first layer, or call "
            "`model.build(input_shape)` before converting."
        )


def _check_options(share, upsample, max_templates, placement):
    if share not in SHARE_METHODS:
        raise ValueError(f"share must be one of {SHARE_METHODS}; received {share!r}.")
    if upsample not in UPSAMPLE_METHODS:
        raise ValueError(
            f"upsample must be one of {UPSAMPLE_METHODS}; received {upsample!r}."
        )
    if placement not in PLACEMENTS:
        raise ValueError(
            f"placement must be one of {PLACEMENTS}; received {placement!r}."
        )
    if isinstance(max_templates, bool) or not isinstance(max_templates, int):
        raise TypeError(f"max_templates must be an int; received {max_templates!r}.")
    if max_templates < 1:
        raise ValueError(f"max_templates must be at least 1; received {max_templates}.")


def copy_model(model):
    copy = keras.models.clone_model(model, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def find_shareable(model, strict, exclusion=None):
    """Splits a model's layers with trainable weights into shareable and not.

    Args:
        model: The model copy to convert.
        strict: Raise `UnsupportedLayerError` for layers that cannot be
            shared (normalization layers and excluded layers aside).
        exclusion: Optional function `(path, layer, weight_size)` returning the
            reason a shareable layer stays unshared, or `None`.

    Returns:
        `(candidates, unshared)`: `(path, layer, shared_class)` tuples, and
        report entries for the layers that keep their weights.
    """
    candidates = []
    unshared = []
    for path, layer in walk_layers(model):
        params = sum(math.prod(v.shape) for v in _own_trainable(layer))
        if not params:
            continue
        shared_class = shared_class_for(layer)
        reason = _reason_not_shared(layer, shared_class)
        if reason is None and exclusion is not None:
            size = math.prod(owned_variable(layer, shared_class.shared_weight).shape)
            excluded = exclusion(path, layer, size)
            if excluded:
                unshared.append(_unshared_entry(path, layer, params, excluded))
                continue
        if reason is None:
            candidates.append((path, layer, shared_class))
            continue
        if strict and not isinstance(layer, NORMALIZATION_CLASSES):
            raise UnsupportedLayerError(
                f"Layer '{path}' ({type(layer).__name__}) cannot be shared: "
                f"{reason}. Pass strict=False to keep it unshared (it then "
                "counts toward the budget with its own weights)."
            )
        unshared.append(_unshared_entry(path, layer, params, reason))
    skipped = [e for e in unshared if "no shared variant" in e["reason"]]
    if skipped:
        warnings.warn(
            "These layers have no shared variant and keep their own weights: "
            + ", ".join(f"{e['path']} ({e['class_name']})" for e in skipped),
            stacklevel=3,
        )
    return candidates, unshared


def _unshared_entry(path, layer, params, reason):
    return {
        "path": path,
        "class_name": type(layer).__name__,
        "params": params,
        "reason": reason,
    }


def layer_filter(exclude, min_size):
    """The `exclusion` function of `find_shareable` for `exclude=` and `min_size=`.

    Returns:
        A function `(path, layer, weight_size)` that returns why a layer
        stays unshared, or `None` to share it; `None` if nothing is excluded.
    """
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)):
        raise TypeError(f"min_size must be an int; received {min_size!r}.")
    matches = _exclusion_matcher(exclude)
    if matches is None and not min_size:
        return None

    def exclusion(path, layer, size):
        if matches is not None and matches(path, layer):
            return "excluded by exclude="
        if size < min_size:
            return f"its weight has {size} entries, fewer than min_size={min_size}"
        return None

    return exclusion


def _exclusion_matcher(exclude):
    if exclude is None:
        return None
    if callable(exclude):
        return lambda path, layer: bool(exclude(layer))
    patterns = [exclude] if isinstance(exclude, str) else exclude
    if not isinstance(patterns, (list, tuple, set)) or not all(
        isinstance(p, str) for p in patterns
    ):
        raise TypeError(
            "exclude must be a layer name, path or regular expression, a list "
            f"of those, or a function of a layer; received {exclude!r}."
        )
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(
                f"exclude pattern {pattern!r} is not a valid regular "
                f"expression ({error}). Escape it with re.escape() to match a "
                "name literally."
            ) from None

    def matches(path, layer):
        return any(
            path == p.pattern or layer.name == p.pattern
            or p.fullmatch(path) or p.fullmatch(layer.name)
            for p in compiled
        )

    return matches


def _own_trainable(layer):
    if not layer.trainable:
        return []
    return [v for v in layer._trainable_variables if v.trainable]


def _reason_not_shared(layer, shared_class):
    if shared_class is None:
        if isinstance(layer, NORMALIZATION_CLASSES):
            return "normalization layers keep their own weights"
        return f"no shared variant of {type(layer).__name__}"
    name = shared_class.shared_weight
    variable = owned_variable(layer, name)
    if variable is None or not variable.trainable:
        return f"its {name} is not a trainable variable"
    if getattr(layer, f"{name}_constraint", None) is not None:
        return f"its {name} has a constraint, which a generated weight cannot keep"
    if getattr(layer, "quantization_mode", None):
        return "it is quantized"
    if getattr(layer, "lora_enabled", False):
        return "it has LoRA enabled"
    return None


def shared_weight(path, layer, shared_class):
    variable = owned_variable(layer, shared_class.shared_weight)
    shape = tuple(variable.shape)
    stddev = float(np.std(ops.convert_to_numpy(variable)))
    if not stddev > 0:
        rows, cols = math.prod(shape[:-1]), shape[-1]
        stddev = math.sqrt(2.0 / (rows + cols))
    return SharedWeight(path=path, shape=shape, stddev=stddev)


def _plain_config(config):
    """Replaces every serialized shared layer by its base Keras layer."""
    if isinstance(config, list):
        return [_plain_config(item) for item in config]
    if not isinstance(config, dict):
        return config
    config = {key: _plain_config(value) for key, value in config.items()}
    registered = config.get("registered_name")
    if isinstance(registered, str) and registered.startswith("keras_ssn>"):
        shared_class = keras.saving.get_registered_object(registered)
        layer_config = dict(config["config"])
        layer_config.pop("sharing", None)
        plain = keras.saving.serialize_keras_object(
            shared_class.base_class.from_config(layer_config)
        )
        for key in ("module", "class_name", "registered_name", "config"):
            config[key] = plain[key]
    return config


def _copy_weights(model, plain):
    targets = dict(walk_layers(plain))
    for path, layer in walk_layers(model):
        target = targets[path]
        sources = own_variables(layer)
        if is_shared(layer):
            generated = ops.convert_to_numpy(layer.generate_weight())
            owned_variable(target, layer.shared_weight).assign(generated)
            by_name = {v.name: v for v in own_variables(target)}
            for variable in sources:
                if variable.name not in GENERATION_PARAM_NAMES:
                    by_name[variable.name].assign(variable)
            continue
        destinations = own_variables(target)
        if len(sources) != len(destinations):
            raise ValueError(
                f"internal error: layer '{path}' has {len(sources)} variables "
                f"but its plain copy has {len(destinations)}."
            )
        for source, destination in zip(sources, destinations):
            destination.assign(source)
