"""How one shared weight is generated from the bank: `WeightSpec`.

A `WeightSpec` is plain data, part of a `keras_ssn.plan.SharingPlan`: where
the weight's group slice lies in the bank, which of its entries the weight
reads and how it turns them into the weight (see `keras_ssn.generation`).
"""

import dataclasses
import math

from keras_ssn.generation import COMBINE
from keras_ssn.generation import HASHED
from keras_ssn.generation import LOW_RANK
from keras_ssn.generation import UPSAMPLE
from keras_ssn.generation import WARP
from keras_ssn.methods import combination
from keras_ssn.methods import upsampling

_TUPLE_FIELDS = ("template_shape", "coefficient_map", "hashing", "ring", "factors")


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
        factors: Set only for the low-rank baseline
            (`keras_ssn.baselines.low_rank`): `(rank, extra)`. The weight's
            slice (its own group) holds `U` `(rows, rank)` and `V` `(rank,
            cols)` of its 2-D view, then `extra` entries added to the first
            `extra` entries of `U @ V`; `size = rank * (rows + cols) +
            extra`.
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
    factors: tuple = None

    @property
    def mode(self):
        if self.hashing is not None:
            return HASHED
        if self.factors is not None:
            return LOW_RANK
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
        if self.mode in (HASHED, LOW_RANK):
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
        if self.mode in (HASHED, LOW_RANK):
            return self.size  # the whole slice
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
        spans = self.window_spans
        merged = [spans[0]]
        for begin, end in spans[1:]:
            if begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((begin, end))
        return merged

    @property
    def window_spans(self):
        """The stretches of the slice the layer reads, one per window.

        Like `read_spans`, but not merged: a weight that mixes several
        templates (`"combine"` mode) reads each as a window of its own, so
        its spans start and stop where its templates do (a bank cut there
        holds each template in whole pieces; see
        `keras_ssn.bank_cuts.bank_pieces`). Sorted; a read that wraps around
        the slice's end is two stretches.
        """
        if self.mode in (HASHED, LOW_RANK):
            reads = [(0, self.size)]
        elif self.mode == WARP:
            length = math.prod(self.template_shape)
            reads = [((self.offset + k * self.template_stride) % self.size, length)
                     for k in range(self.templates)]
        elif self.mode == COMBINE:
            reads = [(offset, self.weight_size) for offset in self.template_offsets]
        else:
            reads = [(self.offset, self.read_length)]
        return sorted(span for start, length in reads
                      for span in _wrapped(start, length, self.size))

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


def generation_params(shape, templates, slice_size, share, upsample, embedding_dim=0):
    """Learned parameters one layer owns to generate its weight.

    Args:
        shape: Shape of the weight.
        templates: Templates the layer combines (1 when upsampling).
        slice_size: Entries in its group's bank slice.
        share: Combination method (a name in `keras_ssn.methods.COMBINATIONS`,
            `"hashed"` or `"low rank"`).
        upsample: Upsampling method (a name in `keras_ssn.methods.UPSAMPLINGS`).
        embedding_dim: Layer embedding size, for `share="emb"`.

    Returns:
        The count the method asks for: template coefficients, a layer
        embedding, mask values or piece mixes; 0 for parameter-free methods.
    """
    if share in (HASHED, LOW_RANK):
        return 0
    size = math.prod(shape)
    if templates == 1 and size > slice_size and share != "softmax":
        return upsampling(upsample).parameter_count(size, slice_size)
    return combination(share).parameter_count(templates, embedding_dim)
