"""The sharing plan: which bank entries each shared layer reads.

All budget arithmetic lives in this module. `plan_sharing` turns a parameter
budget into a bank size, one bank slice per parameter group and, for every
shared layer, a `WeightSpec` that says how its weight is generated. The plan is
plain data: it is stored in the model config and in every shared layer config,
so a saved model is rebuilt exactly.
"""

import dataclasses
import functools
import math

from keras_ssn.budget import BudgetError
from keras_ssn.budget import budget_error
from keras_ssn.generation import COMBINE
from keras_ssn.generation import HASHED
from keras_ssn.generation import UPSAMPLE
from keras_ssn.generation import WARP
from keras_ssn.methods import EmbeddedAverage
from keras_ssn.methods import bilinear_gain
from keras_ssn.methods import combination
from keras_ssn.methods import reduced_template_shape
from keras_ssn.methods import upsampling
PLACEMENTS = ("consecutive", "sliding")
_MAX_SETTLE_ROUNDS = 1000
_MAX_FIT_ROUNDS = 8


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """How one shared weight is generated from the bank.

    The layer reads `read_length` consecutive entries of its group's bank slice,
    starting at `offset` and wrapping around the end of the slice. In
    `"combine"` mode these entries form `templates` full-size templates that are
    mixed (or used as is when there is one template). In `"upsample"` mode the
    slice is smaller than the weight: the entries form a `template_shape`
    array that the `upsample` method enlarges to the weight's 2-D view.

    Args:
        group: Index of the parameter group.
        shape: Shape of the generated weight.
        start: First bank entry of the group's slice.
        size: Number of entries in the group's slice.
        offset: Position inside the slice where this layer's reads begin.
        templates: Number of templates (1 when upsampling).
        template_shape: When upsampling, the shape of the entries read:
            the reduced template for `"inter"`, the weight's 2-D view for
            `"repeat"` and `"mask"`, `(2, half_slice)` for `"wavg"`.
            `None` when combining.
        scale: Constant factor that gives the generated weight the standard
            deviation of the layer's own initializer.
        share: How templates are combined: `"wavg"` (learned coefficients),
            `"emb"` (coefficients projected from a layer embedding by a
            map shared in the group), `"avg"` (their mean) or `"softmax"`
            (learned coefficients through a softmax, used when learning
            groups).
        upsample: How a weight larger than the group's slice is made:
            `"inter"`, `"repeat"`, `"mask"` or `"wavg"` (see
            `keras_ssn.generation.upsample_window`).
        template_stride: Set only in `"warp"` mode, where the layer reads
            `templates` reduced templates of `template_shape` that start
            `template_stride` entries apart and resizes each to its weight
            before combining them.
        coefficient_map: For `share="emb"` layers that combine templates:
            `(start, embedding_dim, group_templates)` of the group's map in
            the bank's `coefficient_maps`.
        hashing: Set only for the HashedNets baseline
            (`keras_ssn.baselines.hashed`): `(seed, position, total)`. All
            hashed weights, `total` entries together, are laid end to end;
            this weight's entries start at `position`, and entry `j` of that
            sequence reads bank entry `permutation(total)[j] % size` with a
            random sign, both drawn from `seed`.
    """

    group: int
    shape: tuple
    start: int
    size: int
    offset: int
    templates: int
    template_shape: tuple = None
    scale: float = 1.0
    share: str = "wavg"
    upsample: str = "inter"
    template_stride: int = None
    coefficient_map: tuple = None
    hashing: tuple = None

    @property
    def mode(self):
        if self.hashing is not None:
            return HASHED
        if self.template_stride is not None:
            return WARP
        return UPSAMPLE if self.template_shape is not None else COMBINE

    @property
    def combination(self):
        """The `Combination` method named by `share`."""
        return combination(self.share)

    @property
    def upsampling(self):
        """The `Upsampling` method named by `upsample`."""
        return upsampling(self.upsample)

    @property
    def generation_method(self):
        """The method whose learned parameters the layer owns, or `None`."""
        if self.mode == UPSAMPLE:
            return self.upsampling
        if self.mode == HASHED:
            return None
        return self.combination

    @property
    def weight_size(self):
        return math.prod(self.shape)

    @property
    def matrix_shape(self):
        """The weight's 2-D view: all leading axes by the last axis."""
        return (math.prod(self.shape[:-1]), self.shape[-1])

    @property
    def read_length(self):
        if self.mode == UPSAMPLE:
            return math.prod(self.template_shape)
        if self.mode == WARP:
            return (self.templates - 1) * self.template_stride + math.prod(
                self.template_shape
            )
        if self.mode == HASHED:
            return self.size  # reads are scattered over the whole slice
        return self.templates * self.weight_size

    @property
    def num_coefficients(self):
        """Learned generation parameters the layer owns (coefficients, masks)."""
        embedding_dim = self.coefficient_map[1] if self.coefficient_map else 0
        return generation_params(
            self.shape, self.templates, self.size, self.share, self.upsample,
            embedding_dim,
        )

    def get_config(self):
        config = dataclasses.asdict(self)
        config["shape"] = list(self.shape)
        for key in ("template_shape", "coefficient_map", "hashing"):
            if config[key] is not None:
                config[key] = list(config[key])
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["shape"] = tuple(config["shape"])
        for key in ("template_shape", "coefficient_map", "hashing"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class GroupSlice:
    """One parameter group: its bank slice and the weights generated from it.

    `coefficient_map` is `(start, embedding_dim, templates)` of the group's
    linear map in the bank's `coefficient_maps` when the group uses
    `share="emb"` and some layer combines templates; else `None`.
    """

    index: int
    start: int
    size: int
    stddev: float
    weights: tuple
    coefficient_map: tuple = None

    @property
    def coefficient_map_size(self):
        if self.coefficient_map is None:
            return 0
        return self.coefficient_map[1] * self.coefficient_map[2]

    def get_config(self):
        config = dataclasses.asdict(self)
        config["weights"] = list(self.weights)
        if self.coefficient_map is not None:
            config["coefficient_map"] = list(self.coefficient_map)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["weights"] = tuple(config["weights"])
        if config.get("coefficient_map") is not None:
            config["coefficient_map"] = tuple(config["coefficient_map"])
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class SharingPlan:
    """The whole model's plan: budget split, groups and per-layer specs.

    Args:
        budget: Trainable parameter count of the converted model.
        bank_size: Entries in the weight bank.
        unshared_params: Trainable parameters that stay in their own layers
            (biases, normalization layers, layers that are not shared).
        groups: List of `GroupSlice`.
        weights: Dict mapping each shared weight's path (layer path, then
            weight name: `"encoder/dense/kernel"`) to its `WeightSpec`.
        unshared_layers: List of dicts `{"path", "class_name", "params",
            "reason"}` for layers with trainable weights that are not shared.
    """

    budget: int
    bank_size: int
    unshared_params: int
    groups: tuple
    weights: dict
    unshared_layers: tuple = ()

    @property
    def coefficient_params(self):
        """Learned generation parameters: per-layer ones and group maps."""
        per_layer = sum(spec.num_coefficients for spec in self.weights.values())
        return per_layer + self.coefficient_map_size

    @property
    def coefficient_map_size(self):
        return sum(group.coefficient_map_size for group in self.groups)

    @property
    def coefficient_map_shapes(self):
        """`(embedding_dim, templates)` of every group map, in bank order."""
        return [g.coefficient_map[1:] for g in self.groups if g.coefficient_map]

    def get_config(self):
        return {
            "budget": self.budget,
            "bank_size": self.bank_size,
            "unshared_params": self.unshared_params,
            "groups": [group.get_config() for group in self.groups],
            "weights": {p: s.get_config() for p, s in self.weights.items()},
            "unshared_layers": [dict(entry) for entry in self.unshared_layers],
        }

    @classmethod
    def from_config(cls, config):
        """The plan a config describes.

        Raises:
            ValueError: The config lacks a field or holds one of the wrong
                kind (a damaged file, or one from another version).
        """
        try:
            return cls(
                budget=config["budget"],
                bank_size=config["bank_size"],
                unshared_params=config["unshared_params"],
                groups=tuple(GroupSlice.from_config(g) for g in config["groups"]),
                weights={
                    p: WeightSpec.from_config(s) for p, s in config["weights"].items()
                },
                unshared_layers=tuple(dict(e) for e in config["unshared_layers"]),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise DamagedPlanError(
                f"its sharing plan cannot be read ({type(error).__name__}: {error})"
            ) from None

    def check(self, bank_size):
        """Checks that the plan is whole and fits a bank of `bank_size` entries.

        Raises:
            DamagedPlanError: naming the first inconsistency.
        """
        if self.bank_size != bank_size:
            raise DamagedPlanError(
                f"the plan's bank has {self.bank_size} entries, the bank {bank_size}"
            )
        start = 0
        for index, group in enumerate(self.groups):
            if (group.index, group.start) != (index, start) or group.size < 1:
                raise DamagedPlanError(f"group {index} does not follow group {index - 1}")
            start += group.size
            members = {p for p, s in self.weights.items() if s.group == index}
            if set(group.weights) != members:
                raise DamagedPlanError(
                    f"group {index} lists {sorted(group.weights)}, but the specs of "
                    f"{sorted(members)} name it"
                )
            for path in group.weights:
                spec = self.weights[path]
                if (spec.start, spec.size) != (group.start, group.size):
                    raise DamagedPlanError(f"'{path}' reads outside its group's slice")
        if start != self.bank_size:
            raise DamagedPlanError(
                f"the groups cover {start} of the bank's {self.bank_size} entries"
            )
        total = self.bank_size + self.coefficient_params + self.unshared_params
        if total != self.budget:
            raise DamagedPlanError(
                f"its parts add up to {total} parameters, not its budget {self.budget}"
            )


class DamagedPlanError(ValueError):
    """A saved sharing plan that is incomplete or inconsistent."""

    def __init__(self, detail):
        super().__init__(
            f"This converted model's file is damaged or was saved by another "
            f"version of keras_ssn: {detail}. Save it again from the model that "
            "made it, or convert the original model again."
        )


@dataclasses.dataclass(frozen=True)
class SharedWeight:
    """A weight that the planner may generate from the bank.

    Args:
        path: Path of the weight: its layer's path, then its name.
        shape: Shape of the weight.
        stddev: Standard deviation the layer's initializer gives it.
    """

    path: str
    shape: tuple
    stddev: float

    @property
    def size(self):
        return math.prod(self.shape)


def generation_params(shape, templates, slice_size, share, upsample, embedding_dim=0):
    """Learned parameters one layer owns to generate its weight.

    Args:
        shape: Shape of the weight.
        templates: Templates the layer combines (1 when upsampling).
        slice_size: Entries in its group's bank slice.
        share: Combination method (a name in `keras_ssn.methods.COMBINATIONS`,
            or `"hashed"`).
        upsample: Upsampling method (a name in `keras_ssn.methods.UPSAMPLINGS`).
        embedding_dim: Layer embedding size, for `share="emb"`.

    Returns:
        The count the method asks for: template coefficients, a layer
        embedding, mask values or piece mixes; 0 for parameter-free methods.
    """
    if share == "hashed":
        return 0
    size = math.prod(shape)
    if templates == 1 and size > slice_size and share != "softmax":
        return upsampling(upsample).parameter_count(size, slice_size)
    return combination(share).parameter_count(templates, embedding_dim)


def plan_sharing(
    weights,
    group_ids,
    unshared_params,
    budget,
    max_templates=8,
    share="wavg",
    upsample="repeat",
    placement="consecutive",
    unshared_layers=(),
):
    """Splits `budget` into a bank, groups and per-layer generation specs.

    The bank takes whatever the budget leaves after unshared parameters and
    learned generation parameters (coefficients, embeddings, maps, masks), so
    the converted model has exactly `budget` trainable parameters. Groups get
    bank slices in proportion to the full-size weight count of their layers.
    Every bank entry is read by at least one layer.

    Args:
        weights: List of `SharedWeight`, one per shared layer.
        group_ids: List of group ids, one per weight.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        max_templates: Largest number of templates one layer may combine.
        share: Template combination method.
        upsample: Upsampling method.
        placement: `"consecutive"` (each layer reads on from where the
            previous one stopped, wrapping around the slice) or `"sliding"`
            (read windows spread evenly over the slice, so every entry is
            read about equally often).
        unshared_layers: Report entries for layers left unshared.

    Returns:
        A `SharingPlan`.
    """
    members = _group_members(group_ids)
    full_sizes = [sum(weights[i].size for i in m) for m in members]
    settle = functools.partial(
        _settle, weights, members, full_sizes, max_templates, share, upsample
    )

    def settled(candidate):
        """Template counts and slice sizes that spend `candidate`, or `None`."""
        available = candidate - unshared_params
        if available < len(members):
            return None
        try:
            return settle(available)
        except ValueError:
            return None

    result = settled(budget)
    if result is None:
        largest = largest_budget(
            weights, members, unshared_params, max_templates, share
        )
        raise budget_error(
            budget,
            lambda candidate: settled(candidate) is not None,
            below=unshared_params + len(members) - 1,
            above=largest + 1,
            options=(
                f"{len(members)} parameter group{'s' if len(members) > 1 else ''}, "
                f"share={share!r}, "
                f"upsample={upsample!r}, max_templates={max_templates}"
            ),
        )
    templates, sizes = result
    groups, specs = _place_templates(
        weights, members, sizes, templates, share, upsample, placement
    )
    plan = SharingPlan(
        budget=int(budget),
        bank_size=sum(sizes),
        unshared_params=int(unshared_params),
        groups=tuple(groups),
        weights=specs,
        unshared_layers=tuple(unshared_layers),
    )
    total = plan.bank_size + plan.coefficient_params + plan.unshared_params
    if total != budget:
        raise RuntimeError(
            f"internal error: the plan holds {total} parameters, not the budget "
            f"{budget}. Please report it with the model and options."
        )
    return plan


def plan_warped(weights, unshared_params, budget, templates=4):
    """A one-group plan where every layer reads the whole bank.

    The bank is cut into `templates` equal chunks; each layer reads a reduced
    template from the start of every chunk, resizes it to its weight and
    mixes the results with softmax coefficients. Since all layers mix the
    same chunks, their coefficient vectors are comparable, which is what
    learning groups needs (the paper's pretraining step).

    Args:
        weights: List of `SharedWeight`.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        templates: Chunks, and so coefficients, per layer.

    Returns:
        A `SharingPlan` with one group.
    """
    bank = budget - unshared_params - templates * len(weights)
    if bank < templates:
        smallest = unshared_params + templates * (len(weights) + 1)
        raise BudgetError(
            budget, smallest=smallest,
            options=f"learned groups ({templates} templates per layer)",
        )
    stride = bank // templates
    stddev = _group_stddev(weights)
    specs = {}
    for weight in weights:
        rows, cols = math.prod(weight.shape[:-1]), weight.shape[-1]
        shape = reduced_template_shape(rows, cols, min(stride, rows * cols))
        gain = bilinear_gain(shape, (rows, cols)) / math.sqrt(templates)
        specs[weight.path] = WeightSpec(
            group=0,
            shape=tuple(weight.shape),
            start=0,
            size=bank,
            offset=0,
            templates=templates,
            template_shape=shape,
            scale=float(weight.stddev / stddev / gain),
            share="softmax",
            upsample="inter",
            template_stride=stride,
        )
    return _single_group_plan(specs, stddev, budget, unshared_params)


def plan_hashed(weights, unshared_params, budget, seed=0, unshared_layers=()):
    """A HashedNets plan: every weight entry reads one random bank entry.

    The baseline of Chen et al. (2015) that the paper compares against: one
    bank, and each entry of each weight is a randomly signed copy of a bank
    entry chosen by a fixed hash. Hashing is a random permutation of all
    weight entries taken modulo the bank size, so every bank entry is used
    and all are used about equally often.

    Args:
        weights: List of `SharedWeight`.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        seed: Seed of the hash.
        unshared_layers: Report entries for layers left unshared.

    Returns:
        A `SharingPlan` with one group and `hashing` set in every spec.
    """
    total = sum(w.size for w in weights)
    bank = budget - unshared_params
    if not 1 <= bank <= total:
        raise BudgetError(
            budget,
            smallest=unshared_params + 1,
            largest=unshared_params + total,
            options="a hashed bank",
        )
    stddev = _group_stddev(weights)
    specs = {}
    position = 0
    for weight in weights:
        specs[weight.path] = WeightSpec(
            group=0,
            shape=tuple(weight.shape),
            start=0,
            size=bank,
            offset=0,
            templates=1,
            scale=float(weight.stddev / stddev),
            share="hashed",
            hashing=(int(seed), position, total),
        )
        position += weight.size
    return _single_group_plan(specs, stddev, budget, unshared_params, unshared_layers)


def _single_group_plan(specs, stddev, budget, unshared_params, unshared_layers=()):
    """A plan whose one group is the whole bank, read by every spec."""
    bank = budget - unshared_params - sum(s.num_coefficients for s in specs.values())
    return SharingPlan(
        budget=int(budget),
        bank_size=bank,
        unshared_params=int(unshared_params),
        groups=(GroupSlice(0, 0, bank, stddev, tuple(specs)),),
        weights=specs,
        unshared_layers=tuple(unshared_layers),
    )


def largest_budget(weights, members, unshared_params, max_templates, share="wavg"):
    """The largest budget whose bank every layer can still read in full.

    Args:
        weights: List of `SharedWeight`.
        members: Positions in `weights` of each group's layers.
        unshared_params: Trainable parameters outside the bank.
        max_templates: Largest number of templates per layer.
        share: Combination method.
    """
    full = sum(w.size for w in weights)
    total = unshared_params + max_templates * full
    for member in members:
        total += _combination_params(
            [max_templates] * len(member), share
        )
    return total


def split_proportionally(total, weights):
    """Splits the integer `total` in proportion to `weights`, each part ≥ 1.

    Uses the largest-remainder method on exact integers, so the parts always
    add up to `total`.
    """
    spare = total - len(weights)
    denominator = sum(weights)
    parts = [spare * w // denominator for w in weights]
    remainders = [spare * w % denominator for w in weights]
    left = spare - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        parts[i] += 1
    return [p + 1 for p in parts]


def _group_members(group_ids):
    index = {}
    members = []
    for position, group_id in enumerate(group_ids):
        if group_id not in index:
            index[group_id] = len(members)
            members.append([])
        members[index[group_id]].append(position)
    return members


def _group_of(members, count):
    owner = [0] * count
    for g, m in enumerate(members):
        for i in m:
            owner[i] = g
    return owner


def _initial_templates(weight_size, group_size, max_templates):
    """The paper's choice: as many full copies as fit, capped."""
    return max(1, min(max_templates, group_size // weight_size))


def _settle(weights, members, full_sizes, max_templates, share, upsample, available):
    """Template counts and slice sizes that spend `available` exactly."""
    estimate = split_proportionally(available, full_sizes)
    templates = [
        _initial_templates(w.size, estimate[g], max_templates)
        for w, g in zip(weights, _group_of(members, len(weights)))
    ]
    settle = functools.partial(
        _settle_templates, weights, members, full_sizes, available=available,
        max_templates=max_templates, share=share, upsample=upsample,
    )
    sizes = settle(templates=templates)
    owner = _group_of(members, len(weights))
    for _ in range(_MAX_FIT_ROUNDS):
        # The first templates came from an estimate of the slices; where the
        # settled slice holds fewer copies, a layer's templates would
        # overlap. Settle again from the copies that fit.
        fitting = [
            min(k, max(1, sizes[owner[i]] // weights[i].size))
            for i, k in enumerate(templates)
        ]
        if fitting == templates:
            break
        try:
            fitted_sizes = settle(templates=fitting)
        except ValueError:
            break  # keep the overlapping plan, the only one that fits
        templates, sizes = fitting, fitted_sizes
    return templates, sizes


def _settle_templates(
    weights, members, full_sizes, *, templates, available, max_templates, share,
    upsample,
):
    """Finds slice sizes and template counts that fit the budget exactly.

    The learned generation parameters depend on the slice sizes (a smaller
    slice upsamples more layers, and adding templates adds coefficients),
    and the slices get what those parameters leave, so this iterates to a
    fixed point. `templates` is updated in place, only ever upward, and every
    group's slice ends up read in full.

    Returns:
        The list of group slice sizes.
    """
    sizes = split_proportionally(available, full_sizes)
    for _ in range(_MAX_SETTLE_ROUNDS):
        learned = _generation_total(weights, members, templates, sizes, share, upsample)
        bank = available - learned
        if bank < len(members):
            raise ValueError(
                f"The learned generation parameters (template coefficients, "
                f"embeddings or masks: {learned}) leave no room for the bank "
                f"within this budget. Use a larger budget, a smaller "
                f"max_templates (now {max_templates}), or methods that "
                f"learn fewer (share='avg', upsample='inter' or 'repeat')."
            )
        settled = split_proportionally(bank, full_sizes)
        grown = _add_templates(weights, members, templates, settled, max_templates)
        if not grown and settled == sizes:
            return sizes
        sizes = settled
    raise ValueError(
        "Could not split this budget into bank slices and learned generation "
        "parameters exactly. Try a budget a few parameters larger or smaller."
    )


def _add_templates(weights, members, templates, sizes, max_templates):
    """Adds templates until each combining group reads its whole slice.

    Returns:
        Whether any layer got more templates.
    """
    grown = False
    for g, member in enumerate(members):
        if any(_is_upsampled(weights[i], templates[i], sizes[g]) for i in member):
            continue  # an upsampled layer reads the whole slice
        reads = sum(templates[i] * weights[i].size for i in member)
        while reads < sizes[g]:
            growable = [i for i in member if templates[i] < max_templates]
            if not growable:
                raise ValueError(
                    f"The budget leaves more bank entries than the layers "
                    f"can read with max_templates={max_templates}, so some "
                    f"would never be used. Lower the budget, or raise "
                    f"max_templates to at least "
                    f"{_templates_needed(weights, member, sizes[g])}."
                )
            i = max(growable, key=lambda j: (
                _fits_once(weights[j], templates[j] + 1, sizes[g]), weights[j].size))
            templates[i] += 1
            reads += weights[i].size
            grown = True
    return grown


def _fits_once(weight, templates, slice_size):
    """Whether `templates` copies of `weight` fit in the slice without overlap.

    A layer whose templates overlap reads some entries twice; the planner
    grows the layers that still fit first, and lets one wrap only when no
    other layer of the group can read the rest.
    """
    return templates * weight.size <= slice_size


def _is_upsampled(weight, templates, slice_size):
    return templates == 1 and weight.size > slice_size


def _generation_total(weights, members, templates, sizes, share, upsample):
    """All learned generation parameters for the given slices and templates."""
    total = 0
    for g, member in enumerate(members):
        combining = []
        for i in member:
            if _is_upsampled(weights[i], templates[i], sizes[g]):
                total += generation_params(
                    weights[i].shape, 1, sizes[g], share, upsample
                )
            else:
                combining.append(templates[i])
        total += _combination_params(combining, share)
    return total


def _combination_params(templates, share):
    """Coefficients of one group's combining layers, its map included."""
    method = combination(share)
    mixing = [k for k in templates if k >= 2]
    if isinstance(method, EmbeddedAverage):
        return method.group_parameter_count(mixing)
    return sum(method.parameter_count(k) for k in mixing)


def _templates_needed(weights, member, size):
    return math.ceil(size / sum(weights[i].size for i in member))


def _place_templates(weights, members, sizes, templates, share, upsample, placement):
    """Walks each group's slice and gives every layer its read window."""
    groups = []
    specs = {}
    start = 0
    map_start = 0
    for g, member in enumerate(members):
        size = sizes[g]
        stddev = _group_stddev([weights[i] for i in member])
        coefficient_map = None
        mixing = [
            templates[i] for i in member
            if not _is_upsampled(weights[i], templates[i], size) and templates[i] >= 2
        ]
        if isinstance(combination(share), EmbeddedAverage) and mixing:
            coefficient_map = (map_start, *EmbeddedAverage.map_shape(mixing))
            map_start += coefficient_map[1] * coefficient_map[2]
        layer_specs = []
        for i in member:
            weight = weights[i]
            if _is_upsampled(weight, templates[i], size):
                template_shape, gain = _upsampled_template(weight, size, upsample)
            else:
                template_shape = None
                gain = combination(share).gain(templates[i])
            layer_specs.append(
                WeightSpec(
                    group=g,
                    shape=tuple(weight.shape),
                    start=start,
                    size=size,
                    offset=0,
                    templates=templates[i],
                    template_shape=template_shape,
                    scale=float(weight.stddev / stddev / gain),
                    share=share,
                    upsample=upsample,
                    coefficient_map=(
                        coefficient_map if templates[i] >= 2 and template_shape is None
                        else None
                    ),
                )
            )
        offsets = _read_offsets([s.read_length for s in layer_specs], size, placement)
        for i, spec, offset in zip(member, layer_specs, offsets):
            specs[weights[i].path] = dataclasses.replace(spec, offset=offset)
        groups.append(
            GroupSlice(
                index=g,
                start=start,
                size=size,
                stddev=stddev,
                weights=tuple(weights[i].path for i in member),
                coefficient_map=coefficient_map,
            )
        )
        start += size
    return groups, specs


def _read_offsets(read_lengths, size, placement):
    """Where each layer of a group starts reading its slice.

    `"consecutive"` starts each layer where the previous one stopped. With
    `"sliding"`, layer i starts at `size * (reads before i) / (all reads)`,
    so windows overlap evenly. Both cover the whole slice, since a group's
    layers read at least `size` entries in total.
    """
    offsets = []
    before = 0
    total = sum(read_lengths)
    for length in read_lengths:
        if placement == "sliding":
            offsets.append(size * before // total)
        else:
            offsets.append(before % size)
        before += length
    return offsets


def _upsampled_template(weight, size, upsample):
    """The entries a layer upsamples from, and the std it keeps of the bank."""
    rows, cols = math.prod(weight.shape[:-1]), weight.shape[-1]
    return upsampling(upsample).template_shape(rows, cols, size)


def _group_stddev(weights):
    total = sum(w.size for w in weights)
    variance = sum(w.size * w.stddev**2 for w in weights) / total
    return float(math.sqrt(variance)) or 1.0
