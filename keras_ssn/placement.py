"""Placement: where each layer of a group reads the group's slice of the bank.

Given each group's slice size and each layer's template count (the
planner's budget arithmetic), `place_templates` walks every slice and gives
each layer its `WeightSpec`: the offset where its reads begin, its
templates' shape and the scale that gives its weight its initializer's
spread. `placement=` picks how (Plummer et al., ICLR 2022, Section 3.1):
layers read on from one another (`"consecutive"`), spread evenly
(`"sliding"`) or mix rows of one ring cut from the slice (`"rows"`).
"""

import dataclasses
import math

from keras_ssn.generation import COMBINE
from keras_ssn.methods import EmbeddedAverage
from keras_ssn.methods import combination
from keras_ssn.methods import upsampling
from keras_ssn.plan import GroupSlice
from keras_ssn.plan import mixes_every_row
from keras_ssn.plan import shared_rows
from keras_ssn.plan import WeightSpec

PLACEMENTS = ("auto", "consecutive", "sliding", "rows")


def is_upsampled(weight, templates, slice_size):
    return templates == 1 and weight.size > slice_size


def place_templates(weights, members, sizes, templates, share, upsample, placement):
    """Walks each group's slice and gives every layer its read window."""
    groups = []
    specs = {}
    start = 0
    map_start = 0
    for g, member in enumerate(members):
        size = sizes[g]
        stddev = group_stddev([weights[i] for i in member])
        coefficient_map = None
        mixing = [
            templates[i] for i in member
            if not is_upsampled(weights[i], templates[i], size) and templates[i] >= 2
        ]
        if isinstance(combination(share), EmbeddedAverage) and mixing:
            coefficient_map = (map_start, *EmbeddedAverage.map_shape(mixing))
            map_start += coefficient_map[1] * coefficient_map[2]
        layer_specs = []
        for i in member:
            weight = weights[i]
            if is_upsampled(weight, templates[i], size):
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
                    align_corners=template_shape is not None and upsample == "inter",
                    coefficient_map=(
                        coefficient_map if templates[i] >= 2 and template_shape is None
                        else None
                    ),
                )
            )
        layer_specs = place_group(layer_specs, size, placement)
        for i, spec in zip(member, layer_specs):
            specs[weights[i].path] = spec
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


def place_group(specs, size, placement):
    """Sets where each layer of one group reads its slice.

    `"auto"` places the group in rows (`place_in_rows`) when its layers of
    some size read the rows at least twice over and one matmul over the
    rows generates them all (see `mixes_every_row`): the step then reads
    the slice once instead of every layer's templates, at most half as
    many entries. Layers of a size that would take bare rows (one template
    each, so two could take the same row) then read on from each other
    instead. Otherwise it places the group consecutively.
    """
    if placement == "rows":
        return place_in_rows(specs, size)
    if placement == "auto":
        in_rows = place_in_rows(specs, size, shares_rows=_mixes_rows)
        if any(
            _rows_pay_off([in_rows[i] for i in unit]) for unit in shared_rows(in_rows)
        ):
            return in_rows
        placement = "consecutive"
    offsets = _read_offsets([s.read_length for s in specs], size, placement)
    return [
        dataclasses.replace(spec, offset=offset) for spec, offset in zip(specs, offsets)
    ]


def _mixes_rows(unit):
    """Whether a unit's layers would each mix rows, none take a bare row.

    A layer with one template takes a whole row as its weight, and two such
    layers of one ring could take the same row.
    """
    return len(unit) == 1 or min(spec.templates for spec in unit) >= 2


def _rows_pay_off(unit):
    """Whether layers that share rows read them twice over, all in one matmul."""
    _, rows = unit[0].ring
    return sum(spec.templates for spec in unit) >= 2 * rows and mixes_every_row(unit)


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


def place_in_rows(specs, size, shares_rows=None):
    """`placement="rows"`: layers of one size mix rows of one ring.

    The combining layers of each weight size form a unit, and every
    upsampling layer is a unit of its own; so is each layer of a combining
    unit whose specs `shares_rows` rejects. Units read the slice one after
    the other, as with consecutive placement; inside a unit of size `d`,
    the slice (rotated to where the unit starts) is cut into
    `ceil(size / d)` rows of `d` entries, and each layer takes its templates
    from the next rows, going round the ring (see `WeightSpec.ring`). A unit
    that reads more than the slice covers every row, and one that reads
    less covers the same entries that consecutive placement would, so every
    entry is read.

    Returns:
        The specs with their `offset` and `ring` set.
    """
    units = {}
    for i, spec in enumerate(specs):
        key = ("rows", spec.weight_size) if spec.mode == COMBINE else ("own", i)
        units.setdefault(key, []).append(i)
    if shares_rows is not None:
        units = _split_units(units, specs, shares_rows)
    placed = list(specs)
    before = 0
    for (kind, weight_size), members in units.items():
        rotation = before % size
        if kind == "own":
            placed[members[0]] = dataclasses.replace(specs[members[0]], offset=rotation)
        else:
            rows = math.ceil(size / weight_size)
            row = 0
            for i in members:
                placed[i] = dataclasses.replace(
                    specs[i],
                    offset=(rotation + row * weight_size) % size,
                    ring=(rotation, rows),
                )
                row = (row + specs[i].templates) % rows
        before += sum(specs[i].read_length for i in members)
    return placed


def _split_units(units, specs, shares_rows):
    """The units, each combining one that may not share rows split per layer."""
    split = {}
    for (kind, key), members in units.items():
        if kind == "rows" and not shares_rows([specs[i] for i in members]):
            split.update({("own", i): [i] for i in members})
        else:
            split[(kind, key)] = members
    return split


def _upsampled_template(weight, size, upsample):
    """The entries a layer upsamples from, and the std it keeps of the bank."""
    rows, cols = math.prod(weight.shape[:-1]), weight.shape[-1]
    return upsampling(upsample).template_shape(rows, cols, size)


def group_stddev(weights):
    total = sum(w.size for w in weights)
    variance = sum(w.size * w.stddev**2 for w in weights) / total
    return float(math.sqrt(variance)) or 1.0
