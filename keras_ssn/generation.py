"""Weight generation for one layer: read bank entries, then shape them.

Generating a weight is two steps: *read* the entries the layer's `WeightSpec`
names from its group's slice (`read`), then *shape* them into the weight with
the spec's generation method (`shape_weight`; see `keras_ssn.methods`). The
model generates every layer of a group at once (`keras_ssn.engine`), reading
the group's slice in one piece; `generate_weight` does both steps for one
layer alone, for a layer called outside its model and for `materialize()`.

Every function here uses static shapes and `keras.ops` only, so generation
compiles under XLA and runs on every backend.
"""

import math

from keras import ops

from keras_ssn import hashing
from keras_ssn.resize import upsample_template

# How a layer's weight relates to its group's slice (see `WeightSpec.mode`).
COMBINE = "combine"  # mixes `templates` full-size templates
UPSAMPLE = "upsample"  # enlarges entries of a slice smaller than the weight
WARP = "warp"  # resizes reduced templates read from the whole bank, then mixes
HASHED = "hashed"  # the HashedNets baseline: each entry a signed random bank entry
LOW_RANK = "low rank"  # the low-rank baseline: a product of two factors read whole


def read_window(bank, start, size, offset, length):
    """Reads `length` entries of a bank slice, wrapping around its end.

    Args:
        bank: 1-D tensor, the whole bank.
        start: First entry of the slice.
        size: Length of the slice.
        offset: Position inside the slice where reading begins.
        length: Number of entries to read.

    Returns:
        1-D tensor of `length` entries.
    """
    head = bank[start + offset : start + size]
    if length <= size - offset:
        return head[:length]
    pieces = [head]
    rest = length - (size - offset)
    full_cycles, tail = divmod(rest, size)
    segment = bank[start : start + size]
    if full_cycles:
        pieces.append(ops.tile(segment, (full_cycles,)))
    if tail:
        pieces.append(segment[:tail])
    return ops.concatenate(pieces, axis=0)


class SlicePieces:
    """A stretch of the bank held as 1-D pieces laid end to end, read in place.

    Reading a window slices only the pieces it covers and joins those
    slices, so its gradient reaches those pieces alone: no gradient the size
    of the whole stretch is made per read.

    Args:
        pieces: List of 1-D tensors.
        zero: Optional exact zero, shape `(1,)`, added to every entry read
            through a copy (a part of a piece, or several pieces joined);
            a whole piece is read as it is.
    """

    def __init__(self, pieces, zero=None):
        self.pieces = list(pieces)
        self.zero = zero
        self.starts = [0]
        for piece in self.pieces:
            self.starts.append(self.starts[-1] + piece.shape[0])
        self.size = self.starts[-1]

    def entries(self, begin, end):
        """Entries `begin` to `end - 1` (`0 <= begin < end <= size`), one tensor."""
        return self._copied(self._parts(begin, end))

    def _parts(self, begin, end):
        parts = []
        for piece, low, high in zip(self.pieces, self.starts, self.starts[1:]):
            if low < end and begin < high:
                part = piece if (begin <= low and high <= end) else (
                    piece[max(begin, low) - low : min(end, high) - low])
                parts.append(part)
        return parts

    def _copied(self, parts):
        """`parts` joined; a copy (with `zero` added) unless one whole piece.

        The zero goes into each part before they are joined, so that no
        join of untied parts exists for XLA to share between generations.
        """
        if len(parts) == 1 and any(parts[0] is piece for piece in self.pieces):
            return parts[0]
        if self.zero is not None:
            parts = [part + self.zero for part in parts]
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)

    def stretch(self, start, size):
        """Entries `start` to `start + size - 1` as a `SlicePieces`."""
        if (start, size) == (0, self.size):
            return self
        parts = []
        for piece, low, high in zip(self.pieces, self.starts, self.starts[1:]):
            if low < start + size and start < high:
                begin, end = max(start, low), min(start + size, high)
                parts.append(piece if (begin, end) == (low, high) else
                             piece[begin - low : end - low])
        return SlicePieces(parts, self.zero)

    def window(self, offset, length):
        """`length` entries from `offset` on, wrapping around the end."""
        return self._copied(self._window_parts(offset, length))

    def windows(self, reads):
        """Windows `(offset, length)` laid end to end, as one tensor."""
        return self._copied(
            [part for offset, length in reads for part in self._window_parts(offset, length)]
        )

    def _window_parts(self, offset, length):
        if offset + length <= self.size:
            return self._parts(offset, offset + length)
        parts = self._parts(offset, self.size)
        full_cycles, tail = divmod(length - (self.size - offset), self.size)
        if full_cycles:
            whole = self._parts(0, self.size)
            if self.zero is not None:
                whole = [part + self.zero for part in whole]
            whole = whole[0] if len(whole) == 1 else ops.concatenate(whole, axis=0)
            parts.append(ops.tile(whole, (full_cycles,)))
        if tail:
            parts.extend(self._parts(0, tail))
        return parts


def tie(pieces, parameters, spec, zero):
    """What `spec`'s weight is generated from, tied to `zero`.

    Generation from tied inputs is an expression of its own, which XLA
    cannot merge with another generation of the same weight (see
    `keras_ssn.remat`). A weight that mixes whole templates with learned
    coefficients (`(1, K) @ (K, n)`) is tied through its coefficients and
    through any entries read by a copy: the templates it reads as whole
    pieces go into the matmul as they are. Any other weight is tied
    through every piece.

    Args:
        pieces: The 1-D tensors holding the group's slice.
        parameters: The layer's generation parameters, or `None`.
        spec: The layer's `WeightSpec`.
        zero: `None` (no tie), or an exact zero of shape `(1,)`.

    Returns:
        `(entries, parameters)`: a `SlicePieces` and the parameters.
    """
    if zero is None:
        return SlicePieces(pieces), parameters
    if spec.mode == COMBINE and parameters is not None:
        return SlicePieces(pieces, zero), parameters + zero
    tied = None if parameters is None else parameters + zero
    return SlicePieces([piece + zero for piece in pieces]), tied


def read(group_slice, spec):
    """The entries one layer reads from its group's slice.

    Args:
        group_slice: The group's slice of the bank: a 1-D tensor, or a
            `SlicePieces`.
        spec: The layer's `WeightSpec`.

    Returns:
        `spec.read_length` entries for `"upsample"` specs and for
        `"combine"` specs with one template; a list of the templates, each
        `(weight size,)`, for `"combine"` specs with several (mixed as
        they are, never stacked: see `Combination.combine`); the signed
        entries of the weight for `"hashed"`; the stacked reduced templates
        `(templates, template size)` for `"warp"`.
    """
    if not isinstance(group_slice, SlicePieces):
        group_slice = SlicePieces([group_slice])
    if spec.mode == HASHED:
        index, sign = hashed_read([spec])
        return ops.take(group_slice.entries(0, spec.size), index, axis=0) * sign
    if spec.mode == LOW_RANK:
        return group_slice.entries(0, spec.size)
    if spec.mode == WARP:
        size = math.prod(spec.template_shape)
        reads = [((spec.offset + k * spec.template_stride) % spec.size, size)
                 for k in range(spec.templates)]
        return ops.reshape(group_slice.windows(reads), (spec.templates, size))
    if spec.mode == COMBINE and (spec.templates > 1 or spec.ring is not None):
        windows = [group_slice.window(offset, spec.weight_size)
                   for offset in spec.template_offsets]
        return windows if spec.templates > 1 else windows[0]
    return group_slice.window(spec.offset, spec.read_length)


def shape_weight(window, spec, parameters=None):
    """Turns the entries a layer read into its weight.

    Args:
        window: What `read` returns for `spec`.
        spec: The layer's `WeightSpec`.
        parameters: The layer's learned generation parameters, or `None`:
            template coefficients `(1, templates)` (already projected from
            the layer embedding for `share="emb"`), the mask `(values,)`, or
            the piece mixes `(chunks, 2)`.

    Returns:
        Tensor of shape `spec.shape`, in the bank's dtype.
    """
    if spec.mode == UPSAMPLE:
        matrix = spec.upsampling.upsample(window, spec, parameters) * spec.scale
    elif spec.mode == HASHED:
        matrix = window * spec.scale
    elif spec.mode == LOW_RANK:
        matrix = low_rank_product(window, spec) * spec.scale
    else:
        matrix = spec.combination.combine(_templates(window, spec), parameters, spec.scale)
    return ops.reshape(matrix, spec.shape)


def _templates(window, spec):
    """The templates a combining layer mixes: a list, or `(templates, weight size)`."""
    if isinstance(window, list):
        return window
    if spec.mode == WARP:
        return ops.stack(
            [
                ops.reshape(
                    upsample_template(
                        ops.reshape(window[k], spec.template_shape), spec.matrix_shape,
                        spec.align_corners,
                    ),
                    (-1,),
                )
                for k in range(spec.templates)
            ]
        )
    return ops.reshape(window, (spec.templates, spec.weight_size))


def low_rank_product(window, spec):
    """`U @ V` plus the correction entries of a low-rank spec, flat.

    The window holds `U` `(rows, rank)`, then `V` `(rank, cols)`, then
    `extra` entries added to the product's first `extra` entries (see
    `WeightSpec.factors`).
    """
    rows, cols = spec.matrix_shape
    rank, extra = spec.factors
    u = ops.reshape(window[: rows * rank], (rows, rank))
    v = ops.reshape(window[rows * rank : rank * (rows + cols)], (rank, cols))
    product = ops.reshape(ops.matmul(u, v), (-1,))
    if not extra:
        return product
    correction = ops.pad(window[rank * (rows + cols) :], [(0, rows * cols - extra)])
    return product + correction


def generate_weight(bank, spec, parameters=None, bank_start=0):
    """Generates one layer's weight from the bank, in the bank's dtype.

    Args:
        bank: The whole bank or a stretch of it that holds the layer's group
            slice: a 1-D tensor, or a `SlicePieces`.
        spec: The layer's `WeightSpec`.
        parameters: As for `shape_weight`.
        bank_start: Position in the bank of `bank`'s first entry.

    Returns:
        Tensor of shape `spec.shape`.
    """
    if not isinstance(bank, SlicePieces):
        bank = SlicePieces([bank])
    group_slice = bank.stretch(spec.start - bank_start, spec.size)
    return shape_weight(read(group_slice, spec), spec, parameters)


def embedded_coefficients(embedding, coefficient_maps, spec):
    """The paper's Emb: a layer embedding projected by its group's linear map.

    Args:
        embedding: The layer's embedding, shape `(1, embedding_dim)`.
        coefficient_maps: 1-D tensor holding every group's map.
        spec: The layer's `WeightSpec`; `spec.coefficient_map` is the
            `(start, embedding_dim, group_templates)` of its group's map.

    Returns:
        Coefficients of shape `(1, spec.templates)`.
    """
    start, rows, cols = spec.coefficient_map
    projection = ops.reshape(coefficient_maps[start : start + rows * cols], (rows, cols))
    return ops.matmul(embedding, projection[:, : spec.templates])


def hashed_read(specs):
    """Bank positions and signs of hashed weights' entries (see `hashing`).

    Args:
        specs: `WeightSpec`s of weights hashed together (one group).

    Returns:
        `(index, sign)`: int32 positions in the group's slice and float32
        signs of every entry of the weights, one weight after the other.
    """
    seed, _, total, rounds = specs[0].hashing
    positions = ops.concatenate([
        ops.arange(s.hashing[1], s.hashing[1] + s.weight_size, dtype="int32")
        for s in specs
    ])
    return hashing.hashed_reads(seed, total, rounds, positions, specs[0].size)
