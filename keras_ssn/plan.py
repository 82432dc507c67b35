"""The sharing plan: which bank entries each shared layer reads.

All budget arithmetic lives in this module. `plan_sharing` turns a parameter
budget into a bank size, one bank slice per parameter group and, for every
shared layer, a `LayerSpec` that says how its weight is generated. The plan is
plain data: it is stored in the model config and in every shared layer config,
so a saved model is rebuilt exactly.
"""

import dataclasses
import math

from keras_ssn.generation import bilinear_gain

COMBINE = "combine"
UPSAMPLE = "upsample"
WARP = "warp"


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """How one shared layer generates its weight from the bank.

    The layer reads `read_length` consecutive entries of its group's bank slice,
    starting at `offset` and wrapping around the end of the slice. In
    `"combine"` mode these entries form `templates` full-size templates that are
    mixed by learned coefficients (or used as is when there is one template).
    In `"upsample"` mode they form one reduced template of `template_shape`
    that is bilinearly resized to the weight's 2-D view.

    Args:
        group: Index of the parameter group.
        shape: Shape of the generated weight.
        start: First bank entry of the group's slice.
        size: Number of entries in the group's slice.
        offset: Position inside the slice where this layer's reads begin.
        templates: Number of templates (1 when upsampling).
        template_shape: `(rows, cols)` of the reduced template when
            upsampling, else `None`.
        scale: Constant factor that gives the generated weight the standard
            deviation of the layer's own initializer.
        share: How templates are combined: `"wavg"` (learned coefficients),
            `"avg"` (their mean) or `"softmax"` (learned coefficients through
            a softmax, used when learning groups).
        upsample: How a weight larger than the group's slice is made:
            `"inter"` (bilinear resize of a reduced template) or `"repeat"`
            (the slice tiled to the weight's size).
        template_stride: Set only in `"warp"` mode, where the layer reads
            `templates` reduced templates of `template_shape` that start
            `template_stride` entries apart and resizes each to its weight
            before combining them.
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

    @property
    def mode(self):
        if self.template_stride is not None:
            return WARP
        return UPSAMPLE if self.template_shape is not None else COMBINE

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
        return self.templates * self.weight_size

    @property
    def num_coefficients(self):
        return coefficient_count(self.templates, self.share)

    def get_config(self):
        config = dataclasses.asdict(self)
        config["shape"] = list(self.shape)
        if self.template_shape is not None:
            config["template_shape"] = list(self.template_shape)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["shape"] = tuple(config["shape"])
        if config.get("template_shape") is not None:
            config["template_shape"] = tuple(config["template_shape"])
        return cls(**config)


@dataclasses.dataclass(frozen=True)
class GroupSlice:
    """One parameter group: its bank slice and the layers that read it."""

    index: int
    start: int
    size: int
    stddev: float
    layers: tuple

    def get_config(self):
        config = dataclasses.asdict(self)
        config["layers"] = list(self.layers)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layers"] = tuple(config["layers"])
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
        layers: Dict mapping layer path to `LayerSpec`.
        unshared_layers: List of dicts `{"path", "class_name", "params",
            "reason"}` for layers with trainable weights that are not shared.
    """

    budget: int
    bank_size: int
    unshared_params: int
    groups: tuple
    layers: dict
    unshared_layers: tuple = ()

    @property
    def coefficient_params(self):
        return sum(spec.num_coefficients for spec in self.layers.values())

    def get_config(self):
        return {
            "budget": self.budget,
            "bank_size": self.bank_size,
            "unshared_params": self.unshared_params,
            "groups": [group.get_config() for group in self.groups],
            "layers": {p: s.get_config() for p, s in self.layers.items()},
            "unshared_layers": [dict(entry) for entry in self.unshared_layers],
        }

    @classmethod
    def from_config(cls, config):
        return cls(
            budget=config["budget"],
            bank_size=config["bank_size"],
            unshared_params=config["unshared_params"],
            groups=tuple(GroupSlice.from_config(g) for g in config["groups"]),
            layers={
                p: LayerSpec.from_config(s) for p, s in config["layers"].items()
            },
            unshared_layers=tuple(dict(e) for e in config["unshared_layers"]),
        )


@dataclasses.dataclass(frozen=True)
class SharedWeight:
    """A weight that the planner may generate from the bank.

    Args:
        path: Path of the layer that owns the weight.
        shape: Shape of the weight.
        stddev: Standard deviation the layer's initializer gives it.
    """

    path: str
    shape: tuple
    stddev: float

    @property
    def size(self):
        return math.prod(self.shape)


def coefficient_count(templates, share):
    """Trainable coefficients a layer with `templates` templates needs."""
    if share == "wavg" and templates >= 2:
        return templates
    if share == "softmax":
        return templates
    return 0


def plan_sharing(
    weights,
    group_ids,
    unshared_params,
    budget,
    max_templates=8,
    share="wavg",
    upsample="inter",
    unshared_layers=(),
):
    """Splits `budget` into a bank, groups and per-layer generation specs.

    The bank takes whatever the budget leaves after unshared parameters and
    coefficients, so the converted model has exactly `budget` trainable
    parameters. Groups get bank slices in proportion to the full-size weight
    count of their layers. Every bank entry is read by at least one layer.

    Args:
        weights: List of `SharedWeight`, one per shared layer.
        group_ids: List of group ids, one per weight.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        max_templates: Largest number of templates one layer may combine.
        share: Template combination method.
        upsample: Upsampling method.
        unshared_layers: Report entries for layers left unshared.

    Returns:
        A `SharingPlan`.
    """
    members = _group_members(group_ids)
    full_sizes = [sum(weights[i].size for i in m) for m in members]
    available = budget - unshared_params
    smallest = unshared_params + len(members)
    if available < len(members):
        raise ValueError(
            f"budget={budget} is below the smallest feasible budget for this "
            f"model, {smallest} ({unshared_params} unshared parameters plus one "
            f"bank entry per parameter group). Pass a budget of at least "
            f"{smallest}."
        )
    largest = largest_budget(weights, unshared_params, max_templates, share)
    if budget > largest:
        raise ValueError(
            f"budget={budget} is above the largest budget whose bank the layers "
            f"can read in full with max_templates={max_templates}, {largest}; "
            f"larger budgets would leave bank entries unused. Lower the budget "
            f"or raise max_templates."
        )
    estimate = split_proportionally(available, full_sizes)
    templates = [
        _initial_templates(w.size, estimate[g], max_templates)
        for w, g in zip(weights, _group_of(members, len(weights)))
    ]
    sizes = _settle_templates(
        weights, members, full_sizes, templates, available, max_templates, share
    )
    groups, specs = _place_templates(
        weights, members, sizes, templates, share, upsample
    )
    plan = SharingPlan(
        budget=int(budget),
        bank_size=sum(sizes),
        unshared_params=int(unshared_params),
        groups=tuple(groups),
        layers=specs,
        unshared_layers=tuple(unshared_layers),
    )
    total = plan.bank_size + plan.coefficient_params + plan.unshared_params
    assert total == budget, f"internal error: plan holds {total} != {budget}"
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
        raise ValueError(
            f"budget={budget} is below the smallest budget for learning groups "
            f"with {templates} templates per layer, {smallest}."
        )
    stride = bank // templates
    stddev = _group_stddev(weights)
    specs = {}
    for weight in weights:
        rows, cols = math.prod(weight.shape[:-1]), weight.shape[-1]
        shape = reduced_template_shape(rows, cols, min(stride, rows * cols))
        gain = bilinear_gain(shape, (rows, cols)) / math.sqrt(templates)
        specs[weight.path] = LayerSpec(
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
    group = GroupSlice(0, 0, bank, stddev, tuple(w.path for w in weights))
    return SharingPlan(
        budget=int(budget),
        bank_size=bank,
        unshared_params=int(unshared_params),
        groups=(group,),
        layers=specs,
    )


def largest_budget(weights, unshared_params, max_templates, share="wavg"):
    """The largest budget whose bank every layer can still read in full."""
    full = sum(w.size for w in weights)
    coefficients = len(weights) * coefficient_count(max_templates, share)
    return unshared_params + max_templates * full + coefficients


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


def _settle_templates(
    weights, members, full_sizes, templates, available, max_templates, share
):
    """Adds templates until every group's slice is read in full.

    Adding templates adds coefficients, which shrinks the bank, so this
    iterates to a fixed point. `templates` is updated in place.

    Returns:
        The list of group slice sizes.
    """
    while True:
        coefficients = sum(
            coefficient_count(k, share) for k in templates
        )
        bank = available - coefficients
        if bank < len(members):
            raise ValueError(
                f"The template coefficients ({coefficients}) leave no room for "
                f"the bank within this budget. Use a larger budget or a smaller "
                f"max_templates (now {max_templates})."
            )
        sizes = split_proportionally(bank, full_sizes)
        changed = False
        for g, member in enumerate(members):
            if any(templates[i] == 1 and weights[i].size > sizes[g] for i in member):
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
                i = max(growable, key=lambda j: weights[j].size)
                templates[i] += 1
                reads += weights[i].size
                changed = True
        if not changed:
            return sizes


def _templates_needed(weights, member, size):
    return math.ceil(size / sum(weights[i].size for i in member))


def _place_templates(weights, members, sizes, templates, share, upsample):
    """Walks each group's slice and gives every layer its read window."""
    groups = []
    specs = {}
    start = 0
    for g, member in enumerate(members):
        size = sizes[g]
        stddev = _group_stddev([weights[i] for i in member])
        cursor = 0
        for i in member:
            weight = weights[i]
            if templates[i] == 1 and weight.size > size:
                template_shape, gain = _upsampled_template(weight, size, upsample)
            else:
                template_shape, gain = None, _combination_gain(templates[i], share)
            spec = LayerSpec(
                group=g,
                shape=tuple(weight.shape),
                start=start,
                size=size,
                offset=cursor,
                templates=templates[i],
                template_shape=template_shape,
                scale=float(weight.stddev / stddev / gain),
                share=share,
                upsample=upsample,
            )
            specs[weight.path] = spec
            cursor = (cursor + spec.read_length) % size
        groups.append(
            GroupSlice(
                index=g,
                start=start,
                size=size,
                stddev=stddev,
                layers=tuple(weights[i].path for i in member),
            )
        )
        start += size
    return groups, specs


def _upsampled_template(weight, size, upsample):
    """The template a layer upsamples from, and the std it keeps of the bank.

    `"inter"` reads a reduced grid of at least `size` entries and resizes it
    bilinearly; `"repeat"` reads the weight's full size from the slice,
    wrapping around it, which tiles the slice.
    """
    rows, cols = math.prod(weight.shape[:-1]), weight.shape[-1]
    if upsample == "repeat":
        return (rows, cols), 1.0
    template_shape = reduced_template_shape(rows, cols, size)
    return template_shape, bilinear_gain(template_shape, (rows, cols))


def _combination_gain(templates, share):
    """The std a combination of independent unit-variance templates keeps."""
    if share == "avg":
        return 1.0 / math.sqrt(templates)
    return 1.0  # a single template, or coefficients with unit norm


def _group_stddev(weights):
    total = sum(w.size for w in weights)
    variance = sum(w.size * w.stddev**2 for w in weights) / total
    return float(math.sqrt(variance)) or 1.0


def reduced_template_shape(rows, cols, min_size):
    """The smallest `(r, c)` grid with `r * c >= min_size` and the weight's aspect.

    Args:
        rows: Rows of the weight's 2-D view.
        cols: Columns of the weight's 2-D view.
        min_size: Entries the template must hold (the group's slice size), so
            that reading it uses every entry of the slice.

    Returns:
        A tuple `(r, c)` with `r <= rows` and `c <= cols`.
    """
    ratio = math.sqrt(min_size / (rows * cols))
    r = min(rows, max(1, round(rows * ratio)))
    c = min(cols, math.ceil(min_size / r))
    if r * c < min_size:
        r = min(rows, math.ceil(min_size / c))
    return (r, c)
