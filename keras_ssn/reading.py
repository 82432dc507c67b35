"""Reading a group's windows from the bank pieces that hold its slice.

With consecutive placement a group's layers read its slice end to end,
going round it (`read_end_to_end`): where they read it at most twice over,
a window is a bank piece, read without a copy (a window that wraps joins two
pieces); otherwise static `split`s cut the slice into the windows, so the
gradient into the slice is one concatenation per pass. Hashed layers read
their entries with one gather; other reads slice the group's slice per
layer (`generation.read`).
"""

import bisect

import numpy as np
from keras import ops

from keras_ssn import generation
from keras_ssn.generation import COMBINE
from keras_ssn.generation import HASHED
from keras_ssn.generation import UPSAMPLE


def read_group(pieces, specs):
    """The entries each layer of a group reads, read together where possible.

    Args:
        pieces: 1-D tensors that laid end to end are the group's slice.
        specs: `WeightSpec`s of the layers to read for.
    """
    if not specs:
        return []
    if is_end_to_end(specs):
        return read_end_to_end(pieces, [s.read_length for s in specs])
    group_slice = join(pieces)
    if all(spec.mode == HASHED for spec in specs):
        return _read_hashed(group_slice, specs)
    return [generation.read(group_slice, spec) for spec in specs]


def is_end_to_end(specs):
    """Whether the layers' reads, laid end to end, are one tiling of the slice.

    True when every layer reads one contiguous window (combining or
    upsampling) and each starts where the previous one stopped, as with
    consecutive placement.
    """
    before = 0
    for spec in specs:
        if spec.ring is not None or spec.mode not in (COMBINE, UPSAMPLE):
            return False
        if spec.offset != before % spec.size:
            return False
        before += spec.read_length
    return True


def read_end_to_end(pieces, lengths, start=0):
    """Consecutive windows of a 1-D source read round and round, from `start`.

    The source is given as `pieces`, 1-D tensors laid end to end (one
    tensor, or the variables a bank is held in). Window `i` holds
    `lengths[i]` entries and starts where window `i - 1` stopped, wrapping
    around the end of the source. A window is a slice of the source cut by a
    `split`, or a concatenation of such slices where it wraps, so XLA reads
    only the entries each window holds, and the gradient into the source is
    a concatenation of the windows' gradients:

    - Where the windows read the source at most twice over (a group whose
      layers read its slice once, one of them going round into the start),
      the windows of the first pass are one `split` of the source, and a
      later window reads their pieces, or parts of one cut by one more
      `split`: one concatenation in all, a piece that two windows read
      carrying the sum of their gradients. Where `pieces` are already cut
      where windows start and stop (see `bank_pieces`), the windows read
      them as they are: no `split`, and no concatenation in the gradient.
    - Where they go round many times (layers that upsample from a small
      slice), each pass is its own `split` of the source, and the gradient
      is one concatenation per pass, summed; a piece read by many windows
      would instead sum all their gradients.

    Args:
        pieces: List of 1-D tensors, the source in order.
        lengths: Window lengths (a window of length 0 is empty).
        start: Where the first window starts.

    Returns:
        List of 1-D tensors, one per window.
    """
    if 0 in lengths:
        read = iter(read_end_to_end(pieces, [n for n in lengths if n], start))
        empty = ops.zeros((0,), dtype=pieces[0].dtype)
        return [next(read) if n else empty for n in lengths]
    if not lengths:
        return []
    size = sum(piece.shape[0] for piece in pieces)
    bounds = [start, *(start + np.cumsum(lengths)).tolist()]
    if bounds[-1] - start <= 2 * size:
        return _read_from_first_pass(pieces, bounds)
    return _read_pass_by_pass(join(pieces), bounds)


def _read_pass_by_pass(source, bounds):
    """`read_end_to_end`, with one `split` of `source` per pass."""
    size = source.shape[0]
    pieces = []  # (begin, end, tensor), in positions of the unrolled reading
    first = bounds[0] - bounds[0] % size
    while first < bounds[-1]:
        cuts = sorted({b - first for b in bounds if first < b < first + size})
        parts = ops.split(source, cuts) if cuts else [source]
        for low, high, part in zip([0, *cuts], [*cuts, size], parts):
            pieces.append((first + low, first + high, part))
        first += size
    return [
        join([part for begin, end, part in pieces if begin >= low and end <= high])
        for low, high in zip(bounds[:-1], bounds[1:])
    ]


def _read_from_first_pass(source_pieces, bounds):
    """`read_end_to_end`, later windows reusing the pieces of the first pass.

    The source is cut where the first pass's windows start and stop, and
    where its pieces already are cut.
    """
    edges = np.cumsum([0, *(piece.shape[0] for piece in source_pieces)]).tolist()
    size = edges[-1]
    cuts = sorted(set(_first_pass_cuts(bounds, size)) | set(edges[1:-1]))
    piece_starts, piece_stops = [0, *cuts], [*cuts, size]
    segments = []  # per window: (piece, begin, end) in positions of the source
    spans = [set() for _ in piece_starts]  # per piece: the spans read of it
    for low, high in zip(bounds[:-1], bounds[1:]):
        parts = []
        while low < high:
            turn, offset = divmod(low, size)
            index = bisect.bisect_right(piece_starts, offset) - 1
            stop = min(piece_stops[index], offset + high - low)
            parts.append((index, offset, stop))
            spans[index].add((offset, stop))
            low = turn * size + stop
        segments.append(parts)
    pieces = [
        _cut_piece(*piece)
        for piece in zip(cut_at(source_pieces, cuts), piece_starts, piece_stops, spans)
    ]
    return [
        join([pieces[index][(begin, end)] for index, begin, end in parts])
        for parts in segments
    ]


def cut_at(pieces, cuts):
    """The source held as `pieces`, each cut at the `cuts` inside it.

    `cuts` are positions in the source; one `split` per piece they fall in.
    """
    parts = []
    low = 0
    for piece in pieces:
        high = low + piece.shape[0]
        inner = [cut - low for cut in cuts if low < cut < high]
        parts.extend(ops.split(piece, inner) if inner else [piece])
        low = high
    return parts


def _cut_piece(piece, low, high, spans):
    """The parts of `piece` (`source[low:high]`) read as `spans`, by span.

    Returns:
        Dict mapping each `(begin, end)` span of `source` to its tensor.
    """
    cuts = sorted({b for span in spans for b in span} - {low, high})
    by_span = {(low, high): piece}
    if not cuts:
        return by_span
    edges = [low, *cuts, high]
    parts = ops.split(piece, [c - low for c in cuts])
    for begin, end in sorted(spans - {(low, high)}):
        by_span[(begin, end)] = join(parts[edges.index(begin) : edges.index(end)])
    return by_span


def join(parts):
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)


def _read_hashed(group_slice, specs):
    """Reads a hashed group with one hash and one gather over all its layers."""
    index, sign = generation.hashed_read(specs)
    signed = ops.take(group_slice, index, axis=0) * sign
    if len(specs) == 1:
        return [signed]
    return ops.split(signed, _boundaries([s.weight_size for s in specs]))


def _boundaries(lengths):
    """Split points between consecutive pieces of the given lengths."""
    return np.cumsum(lengths[:-1]).tolist()


def _first_pass_cuts(bounds, size):
    return sorted({b % size for b in bounds if b < bounds[0] + size} - {0})
