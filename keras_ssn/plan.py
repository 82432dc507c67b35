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
from keras_ssn.weight_spec import WeightSpec
from keras_ssn.weight_spec import generation_params  # noqa: F401 (re-exported)


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
        lookup: Whether the weight is a lookup table (an embedding), whose
            rows are read whole by index: its columns are the dimensions of
            one vector, not output units (see
            `SharedWeightMixin.lookup_tables`).
        units: How many output units the weight's trailing axes hold (see
            `SharedWeightMixin.output_units`); its last axis when `None`.
    """

    path: str
    shape: tuple
    stddev: float
    lookup: bool = False
    units: int = None

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def columns(self):
        """The output units, the columns of the weight's `(inputs, units)` view."""
        return self.units or self.shape[-1]


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
