"""The sharing plan: which bank entries each shared layer reads.

A `SharingPlan` is plain data: the bank's size, one `GroupSlice` per
parameter group and, for every shared weight, a `WeightSpec` that says how
the weight is generated. It is stored in the model's config (and each shared
layer holds its own specs), so a saved model is rebuilt exactly;
`keras_ssn.planner` makes it from a budget.
"""

import dataclasses
import math

from keras_ssn.generation import COMBINE
from keras_ssn.generation import HASHED
from keras_ssn.generation import UPSAMPLE
from keras_ssn.generation import WARP
from keras_ssn.methods import combination
from keras_ssn.methods import upsampling


_TUPLE_FIELDS = ("template_shape", "coefficient_map", "hashing", "ring")


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
        ring: Set only with rows placement: `(rotation, rows)`. The
            group's slice, read from `rotation` on and wrapping around its
            end, is cut into `rows` rows of the weight's size (the last row
            wraps); template `k` is row `(first + k) % rows`, where `offset`
            is where row `first` starts. Layers of the same size then mix
            the same rows, which the model generates with one matmul.
        hashing: Set only for the HashedNets baseline
            (`keras_ssn.baselines.hashed`): `(seed, position, total,
            rounds)`. All hashed weights, `total` entries together, are laid
            end to end; this weight's entries start at `position`, and entry
            `j` of that sequence reads bank entry `permutation(j) % size`
            with a random sign, from a permutation of `rounds` swap-or-not
            rounds keyed by `seed` (see `keras_ssn.hashing`).
        align_corners: How `"inter"` and `"warp"` weights resize their
            reduced templates (see `keras_ssn.resize.bilinear_axis`):
            `True` in every plan `convert()` makes; `False` (half-pixel
            centers) only in plans saved before, which load and generate as
            they were saved.
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
    ring: tuple = None
    align_corners: bool = False

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
    def template_offsets(self):
        """Where each template starts in the slice (`"combine"` mode).

        Each template reads `weight_size` entries from there on, wrapping
        around the slice's end.
        """
        if self.ring is None:
            return [
                (self.offset + k * self.weight_size) % self.size
                for k in range(self.templates)
            ]
        rotation, rows = self.ring
        return [
            (rotation + (self.ring_row + k) % rows * self.weight_size) % self.size
            for k in range(self.templates)
        ]

    @property
    def read_spans(self):
        """The stretches of the slice the layer reads: `[(begin, end), ...]`.

        Positions inside the slice, sorted and merged; a read that wraps
        around the slice's end is two stretches.
        """
        if self.mode == HASHED:
            reads = [(0, self.size)]
        elif self.mode == WARP:
            length = math.prod(self.template_shape)
            reads = [((self.offset + k * self.template_stride) % self.size, length)
                     for k in range(self.templates)]
        elif self.ring is not None:
            reads = [(offset, self.weight_size) for offset in self.template_offsets]
        else:
            reads = [(self.offset, self.read_length)]
        spans = sorted(span for start, length in reads
                       for span in _wrapped(start, length, self.size))
        merged = [spans[0]]
        for begin, end in spans[1:]:
            if begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((begin, end))
        return merged

    @property
    def ring_row(self):
        """The ring row of the first template (rows placement only)."""
        rotation, _ = self.ring
        return ((self.offset - rotation) % self.size) // self.weight_size

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
        for key in _TUPLE_FIELDS:
            if config[key] is not None:
                config[key] = list(config[key])
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["shape"] = tuple(config["shape"])
        for key in _TUPLE_FIELDS:
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(**config)


def _wrapped(start, length, size):
    """The stretches of a slice of `size` that `length` entries from `start` cover."""
    if length >= size:
        return [(0, size)]
    if start + length <= size:
        return [(start, start + length)]
    return [(start, size), (0, start + length - size)]


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
        rematerialize: Whether a train step generates each weight where its
            layer uses it and again for its backward pass (less memory, one
            more generation pass), or generates every weight at the start
            of the forward pass and keeps it (see `keras_ssn.remat`).
    """

    budget: int
    bank_size: int
    unshared_params: int
    groups: tuple
    weights: dict
    unshared_layers: tuple = ()
    rematerialize: bool = True

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
            "rematerialize": self.rematerialize,
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
                rematerialize=bool(config.get("rematerialize", True)),
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
                if spec.hashing is not None and len(spec.hashing) != 4:
                    raise DamagedPlanError(f"'{path}' names a hash of another version")
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


def shared_rows(specs):
    """Sets of layers that mix rows of one ring (rows placement).

    The combining layers of one size take their templates from the same
    rows (see `WeightSpec.ring`).

    Returns:
        Lists of indexes into `specs`.
    """
    units = {}
    for i, spec in enumerate(specs):
        if spec.ring is not None and spec.mode == COMBINE:
            units.setdefault((spec.ring, spec.weight_size), []).append(i)
    return list(units.values())


def mixes_every_row(specs):
    """Whether one `(layers, rows) @ (rows, weight_size)` matmul is worth it.

    Mixing every row for every layer reads the ring once instead of each
    layer's templates; it is used where it costs at most twice the flops of
    mixing only the rows each layer reads, as at low budgets, where the
    layers' templates are many more than the rows.
    """
    _, rows = specs[0].ring
    return len(specs) >= 2 and len(specs) * rows <= 2 * sum(s.templates for s in specs)
