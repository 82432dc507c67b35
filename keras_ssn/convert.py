"""`convert()` a Keras model to share its weights, and `materialize()` it back."""

import dataclasses

import keras
import numpy as np

from keras_ssn.backends import check_backend
from keras_ssn.bank import BankInitializer
from keras_ssn.bank import CoefficientMapInitializer
from keras_ssn.bank import WeightBank
from keras_ssn.bank_sharding import BANK_NAME
from keras_ssn.bank_sharding import bank_shards
from keras_ssn.budget import BudgetError
from keras_ssn.budget import resolve_budget
from keras_ssn.calibration import calibration_calls
from keras_ssn.copying import copy_model
from keras_ssn.copying import is_subclassed
from keras_ssn.bank_cuts import bank_pieces
from keras_ssn.functional_subclasses import make_shared
from keras_ssn.layer_paths import count_trainable
from keras_ssn.layer_paths import walk_layers
from keras_ssn.mapping import assign_groups
from keras_ssn.models import BankOwnerMixin
from keras_ssn.models import SharedModel
from keras_ssn.placement import PLACEMENTS
from keras_ssn.planner import TEMPLATE_COUNTS
from keras_ssn.planner import plan_sharing
from keras_ssn.selection import UnsupportedLayerError  # noqa: F401 (re-exported)
from keras_ssn.selection import find_shareable
from keras_ssn.selection import layer_filter
from keras_ssn.sharing import share_candidate
from keras_ssn.weight_fit import fit_to_weights
from keras_ssn.weight_fit import resolve_init

SHARE_METHODS = ("wavg", "emb", "avg")
UPSAMPLE_METHODS = ("inter", "repeat", "mask", "scale", "wavg")


def convert(
    model,
    budget,
    *,
    groups="auto",
    share="wavg",
    upsample="repeat",
    templates="auto",
    max_templates=8,
    placement="auto",
    exclude=None,
    min_size=0,
    seed=None,
    strict=False,
    rematerialize=True,
    init="random",
):
    """Returns a copy of `model` that trains under an exact parameter budget.

    Every layer with a shared variant (dense, convolution, embedding,
    recurrent and attention layers; see `docs/compatibility.md`) stops
    owning its weights: the copy owns one `WeightBank`, the weights are
    clustered into parameter groups that each own a slice of it, and each
    layer generates its weights from their groups' slices inside `call()`.
    Biases, normalization layers and layers without a shared variant keep
    their own weights and count toward the budget.

    By default (`init="random"`) the bank and the generation parameters are
    drawn anew (from `seed`), so the values of `model`'s shared weights are
    not carried over: a trained model's shared layers start from scratch.
    With `init="weights"` they are fitted to `model`'s weights instead (see
    `keras_ssn.FitWeights`): from 100% of the parameters up the converted
    model computes what `model` computes, and below that it starts from the
    closest weights the plan can generate. With calibration data
    (`init=keras_ssn.FitWeights(data=x)`) "closest" is measured on each
    layer's outputs on `x` where the layer applies its weight with a
    matmul, an einsum or a convolution (activation-aware). Either way the weights that
    layers keep (biases, normalization layers, unshared layers) keep their
    values.

    The input model is not modified. The copy is made the way
    `keras.models.load_model()` makes a model: the model's class rebuilds
    it from `get_config()` (a `keras_hub` backbone from its constructor
    arguments), then the weights are copied. The copy is not compiled.

    Args:
        model: A built `keras.Sequential`, Functional (a Functional
            subclass such as a `keras_hub` backbone included) or subclassed
            model, nested models included, whose config rebuilds it: each
            custom layer or model has a `get_config()` that returns its
            constructor arguments. Register custom classes with
            `@keras.saving.register_keras_serializable()` to load the
            converted model in another program.
        budget: `int`: the exact trainable parameter count of the result.
            `float`: a fraction of `model`'s trainable count (`0.1` for a
            compact model, `4.0` for extra training capacity).
        groups: Parameter mapping: `"auto"` (one group per layer family,
            such as embeddings, attention projections, dense layers and
            convolutions, except that a family whose slice of the bank would
            hold fewer than 32 entries shares the largest family's group, and
            smaller families merge too where the budget cannot pay for their
            own groups' learned parameters; see `mapping.AutoGrouping`),
            `"single"` (one group), `"type"` (one group per family),
            `"shape"`, an `int` number of random groups (drawn from `seed`,
            or from 0 without one, so the same call gives the same groups),
            or a dict mapping
            every shareable weight (by its path, `"<layer path>/<weight
            name>"`, or its layer's path) to a group id. Groups get bank
            slices in proportion to their layers' full-size weights, with
            entries moved where a tiled weight's rows would repeat.
        share: How a layer combines several templates: `"wavg"` (learned
            coefficients per layer), `"emb"` (a learned embedding per layer,
            turned into coefficients by a linear map shared in its group) or
            `"avg"` (their plain mean, no coefficients).
        upsample: How a layer makes a weight larger than its group's slice:
            `"repeat"` (the slice tiled to the weight's size), `"inter"`
            (bilinear resize of a reduced template; the paper's default),
            `"mask"` (the tiling with a learned value per copy, at most 16
            per weight), `"scale"` (the tiling with one learned value per
            weight) or `"wavg"` (chunks that are learned mixes of the two
            halves of the slice). `docs/results.md` compares them.
        templates: How many templates a layer mixes: `"fit"` (as many
            copies of its weight as its group's slice holds, up to
            `max_templates`, as in the paper's code; a train step reads
            that many times the weight), `"fewest"` (as many as the budget
            left after the unshared weights holds whole copies of the
            shared weights, at least one: below 100% each weight is one
            window of its group's slice, at 400% four; a step reads about
            what the plain model's reads) or `"auto"` (`"fit"` below 100%,
            `"fewest"` from 100% up). Layers then get more templates,
            largest first, until every bank entry is read.
            `docs/results.md` measures what each costs and trains to.
        max_templates: Most templates one layer combines.
        placement: Where layers read their group's slice: `"consecutive"`
            (each layer reads on from where the previous one stopped,
            wrapping around, as in the paper's code), `"sliding"`
            (windows spread evenly, so every entry is read about equally
            often), `"rows"` (the slice is cut into rows of each weight
            size, and layers of one size mix rows of that one set, each
            with its own coefficients; a layer with one template takes a
            whole row; see `WeightSpec.ring`) or `"auto"` (per group:
            `"rows"` where its layers of one size read the rows at least
            twice over and one matmul generates them all, as when many
            equal layers mix templates of a small slice: a train step then
            reads the slice once instead of every layer's templates;
            layers that would take bare rows read on from one another;
            else `"consecutive"`). `upsample="inter"`, `templates="fit"` and
            `placement="consecutive"` reproduce the paper's settings.
        exclude: Layers to keep unshared: a layer of `model` (matched by
            its name), a layer name, a layer path (as `summary()` prints
            it), a regular expression (a string or an `re.Pattern`) that
            fully matches a name or a path, a list of those, or a predicate
            that takes a layer and returns `True` to keep it unshared. A
            nested model's (or any container's) name or path covers every
            layer inside it.
            Each name or pattern must match some layer.
        min_size: Layers whose weight has fewer entries keep it unshared
            (small weights gain little from sharing).
        seed: Optional integer seed (0 to 2**31 - 1) for the bank,
            coefficients and random groups. Without one, the bank and
            coefficients are drawn anew on every call (random groups are
            not: they are drawn from 0).
        strict: If `True`, raise `UnsupportedLayerError` for any layer with
            trainable weights that cannot be shared (normalization layers,
            and other layers whose weights are all vectors, excepted)
            instead of leaving it unshared.
        rematerialize: If `True` (the default), a train step generates each
            dense, einsum and convolution weight just before its layer's op
            and again for the op's backward pass, so that no generated
            weight is kept between the two: the step's memory falls with
            the budget, for one more generation pass of compute. If
            `False`, every weight is generated at the start of the forward
            pass and kept until its backward pass, on top of the bank
            (more memory, no recomputation). `docs/results.md` measures
            both.
        init: Where the bank starts: `"random"` (drawn from `seed`),
            `"weights"` (fitted to `model`'s current weights by least
            squares, `keras_ssn.FitWeights()`) or a `keras_ssn.FitWeights`
            that says how, with calibration data or without.

    Returns:
        A model whose trainable parameter count equals the budget: a
        `SharedSequential`, a `SharedFunctional`, a `Shared<Class>` for a
        Functional subclass (a subclass of `model`'s class and of
        `SharedFunctionalSubclass`) or a `SharedModel` around a subclassed
        model.
    Raises:
        CopyError: `model` cannot be rebuilt from its config, or the rebuilt
            copy holds other weights than `model` (a `ValueError`).
        BudgetError: No plan spends `budget` exactly with these options; it
            names the smallest and largest budgets that work (`.smallest`,
            `.largest`).
        ValueError: An option is out of range, an `exclude` name or pattern
            matches no layer, or the model has no shareable layer.
        TypeError: An option (or `seed`) has the wrong type.
        UnsupportedLayerError: With `strict=True`, a layer cannot be shared.
    """
    check_model(model)
    _check_options(share, upsample, templates, max_templates, placement)
    fit = resolve_init(init)
    seed = checked_seed(seed)
    original = count_trainable(model)
    target = resolve_budget(budget, original)
    copy = copy_model(model)
    exclusion = layer_filter(exclude, min_size, copy)
    candidates, unshared_layers = find_shareable(copy, strict, exclusion)
    if not candidates:
        raise ValueError(
            f"Model '{model.name}' has no layer whose weight can be shared. "
            f"Layers with trainable weights: "
            f"{[(e['path'], e['reason']) for e in unshared_layers]}."
        )
    weights = [w for c in candidates for w in c.shared_weights()]
    unshared_params = original - sum(w.size for w in weights)
    grouping = assign_groups(
        [w.path for w in weights],
        [c.family for c in candidates for _ in c.weight_paths()],
        [w.shape for w in weights],
        groups=groups,
        seed=seed,
        layer_paths=[c.path for c in candidates for _ in c.weight_paths()],
    )
    try:
        plan = plan_sharing(
            weights,
            grouping,
            unshared_params=unshared_params,
            budget=target,
            templates=templates,
            max_templates=max_templates,
            share=share,
            upsample=upsample,
            placement=placement,
            unshared_layers=unshared_layers,
        )
    except BudgetError as error:
        raise error.restated(budget, original) from None
    if not isinstance(rematerialize, bool):
        raise TypeError(
            f"`rematerialize` must be True or False; received {rematerialize!r}."
        )
    plan = dataclasses.replace(plan, rematerialize=rematerialize)
    targets = {} if fit is None else {
        path: value for c in candidates for path, value in c.weight_values().items()}
    converted = apply_plan(copy, candidates, plan, seed)
    if fit is not None:
        terms = [
            (owner, name, owner.sharing[name], targets[path])
            for c in candidates for path, (_, owner, name) in c.weight_paths().items()
        ]
        fit_to_weights(terms, converted.bank, fit, calibration_calls(converted, terms, fit))
    return converted


def apply_plan(copy, candidates, plan, seed=None):
    """Turns the candidate layers of `copy` into shared layers, per `plan`.

    Args:
        copy: The model copy to convert in place (a subclassed model is
            converted in place and wrapped in a `SharedModel`).
        candidates: `Candidate`s from `find_shareable()`.
        plan: The `SharingPlan` covering every candidate's weights.
        seed: Optional seed for the bank and coefficient initializers.

    Returns:
        `copy`, now a `SharedFunctional` or `SharedSequential`, or a
        `SharedModel` around it.
    """
    shards = bank_shards(plan.bank_size)
    bank = WeightBank(
        plan.bank_size,
        initializer=BankInitializer(
            [(g.size, g.stddev) for g in plan.groups], seed=seed
        ),
        coefficient_maps=plan.coefficient_map_shapes,
        coefficient_map_initializer=CoefficientMapInitializer(
            plan.coefficient_map_shapes, seed=seed
        ),
        shards=shards,
        pieces=bank_pieces(plan) if shards == 1 else None,
        name=BANK_NAME,
    )
    for index, candidate in enumerate(candidates):
        share_candidate(candidate, plan, None if seed is None else seed + index + 1)
    if is_subclassed(copy):
        return SharedModel(copy, bank=bank, sharing_plan=plan)
    return make_shared(copy, bank, plan)


def check_model(model):
    """Raises unless `model` is a built, unconverted Keras model on a supported backend."""
    check_backend()
    if isinstance(model, BankOwnerMixin):
        raise ValueError(
            f"Model '{model.name}' is already converted. Convert the original "
            "model, or call keras_ssn.materialize() on this one first."
        )
    if not isinstance(model, keras.Model):
        raise TypeError(
            "convert() takes a Keras model (Sequential, Functional or "
            f"subclassed); received {type(model).__name__}."
        )
    for path, layer in walk_layers(model):
        if isinstance(layer, BankOwnerMixin):
            raise ValueError(
                f"Model '{model.name}' contains '{path}', a model keras_ssn "
                "already converted. Build it from the original model instead, "
                "or put keras_ssn.materialize() of it in its place."
            )
    if model.built and not model.weights:
        raise ValueError(f"Model '{model.name}' has no weights to share.")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' is not built, so its weight shapes are "
            "unknown. Give it a `keras.Input(shape=...)` first layer, or call "
            "it on a batch of inputs before converting."
        )
    if is_subclassed(model) and not model.get_build_config():
        raise ValueError(
            f"Model '{model.name}' was built without recording its input shape, "
            "so its copy cannot be rebuilt. Call it on a batch of inputs "
            "before converting."
        )


MAX_SEED = 2**31 - 1


def checked_seed(seed):
    """`seed` as a Python `int` (or `None`), or a clear error.

    Keras seeds must be ints, and on JAX they become unsigned 32-bit keys;
    layers get `seed + 1`, `seed + 2`, ..., so seeds stop at `MAX_SEED`.

    Raises:
        TypeError: `seed` is not an integer.
        ValueError: `seed` is negative or above `MAX_SEED`.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None; received {seed!r}.")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"seed must be between 0 and {MAX_SEED:,} (2**31 - 1); received {seed}."
        )
    return int(seed)


def _check_options(share, upsample, templates, max_templates, placement):
    _check_choice("share", share, SHARE_METHODS)
    _check_choice("upsample", upsample, UPSAMPLE_METHODS)
    _check_choice(
        "templates", templates, tuple(TEMPLATE_COUNTS),
        meaning=", the rule for how many templates a layer mixes (max_templates "
        "caps the count)",
    )
    _check_choice("placement", placement, PLACEMENTS)
    if isinstance(max_templates, bool) or not isinstance(max_templates, int):
        raise TypeError(f"max_templates must be an int; received {max_templates!r}.")
    if max_templates < 1:
        raise ValueError(f"max_templates must be at least 1; received {max_templates}.")


def _check_choice(option, value, choices, meaning=""):
    """`TypeError` for a value that is not a string, `ValueError` for another one."""
    if not isinstance(value, str):
        raise TypeError(
            f"{option} must be one of {tuple(choices)}{meaning}; received {value!r}."
        )
    if value not in choices:
        raise ValueError(f"{option} must be one of {tuple(choices)}; received {value!r}.")
