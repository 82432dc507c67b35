"""Windows read out of the bank, whose gradient is written into the bank's in place.

A converted model's forward pass reads its layers' windows (runs of
consecutive entries, going round a group's slice) out of the one bank
vector. Differentiated as it is written (slices or `split`s), the gradient
of those reads is a concatenation of the windows' gradients: a second copy
of every gradient entry, which XLA's CPU compiler cannot fuse with the
computations that produce the entries once the concatenation has more than
a few operands (`FUSED_CONCATENATION_OPERANDS`).

`read_windows` gives the reads a gradient of its own (Plummer et al., ICLR
2022, Section 3.2: the gradient reaches each group's slice as one
accumulation): the bank's gradient is one buffer, filled in one fused pass
from the largest windows' gradients and completed by `slice_update`s for the
others, a window that reads entries read before adding its gradient to
theirs. Compiled by XLA, each update happens in place, fused with the
computation of the window's gradient, so every gradient entry is written
once, where it belongs.

Every function here uses static shapes and `keras.ops` only. The in-place
updates pay off only where XLA compiles them (see
`keras_ssn.backends.updates_in_place`); elsewhere `keras_ssn.engine` reads
the bank with `split`s.
"""

import bisect

from keras import ops

# XLA's CPU compiler fuses the computations that produce a concatenation's
# operands into it for at most this many operands (jaxlib 0.10.2: a
# concatenation of 8 scaled vectors compiles to one fused loop, one of 9
# copies every operand).
FUSED_CONCATENATION_OPERANDS = 8


def window_spans(start, size, lengths, offset=0):
    """Bank spans of consecutive windows read round a slice, end to end.

    Window `i` holds `lengths[i]` entries and starts in the slice where
    window `i - 1` stopped, going round the slice's end as often as needed.

    Args:
        start: Position of the slice's first entry in the bank.
        size: Number of entries in the slice.
        lengths: Number of entries in each window.
        offset: Where the first window starts, inside the slice.

    Returns:
        List, one per window, of `(begin, end)` bank positions that the
        window reads one after the other (several where it goes round).
    """
    windows, position = [], offset
    for length in lengths:
        spans, stop = [], position + length
        while position < stop:
            turn, inside = divmod(position, size)
            end = min(size, inside + stop - position)
            spans.append((start + inside, start + end))
            position = turn * size + end
        windows.append(spans)
    return windows


def read_windows(vector, windows):
    """Reads windows of a 1-D tensor; their gradient is written into its in place.

    Args:
        vector: 1-D tensor, such as the bank's entries.
        windows: For each window, the `(begin, end)` spans of `vector` it
            reads one after the other (an empty sequence reads nothing).
            Spans of different windows may overlap.

    Returns:
        List of 1-D tensors, one per window.
    """
    windows = [tuple(spans) for spans in windows]
    size = vector.shape[0]

    @ops.custom_gradient
    def read(vector):
        def gradient(*args, upstream=None):
            # JAX passes the windows' gradients as one list, TensorFlow one
            # by one (None for a window the loss does not depend on).
            if upstream is None:
                upstream = args[0] if isinstance(args[0], (list, tuple)) else args
            upstream = [
                ops.zeros((_length(spans),), dtype=vector.dtype) if g is None else g
                for spans, g in zip(windows, upstream)
            ]
            return assemble_gradient(size, windows, upstream)

        return [_read(vector, spans) for spans in windows], gradient

    return read(vector)


def _length(spans):
    return sum(end - begin for begin, end in spans)


def _read(vector, spans):
    if not spans:
        return ops.zeros((0,), dtype=vector.dtype)
    parts = [vector[begin:end] for begin, end in spans]
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)


def assemble_gradient(size, windows, gradients):
    """The gradient of a vector of `size` entries that `windows` read.

    Entries read by several windows get the sum of their gradients, added in
    window order; entries no window reads get zero.

    Args:
        size: Number of entries of the vector.
        windows: As for `read_windows`.
        gradients: The gradient of each window, 1-D.

    Returns:
        1-D tensor of `size` entries.
    """
    first, later = _first_and_later_reads(windows, gradients)
    filled = _largest_fill(first, size)
    gradient = ops.concatenate(_with_zero_gaps(filled, size, gradients), axis=0)
    filled_begins = {begin for begin, _, _ in filled}
    for begin, _, piece in first:
        if begin not in filled_begins:
            gradient = ops.slice_update(gradient, (begin,), piece)
    for begin, end, piece in later:
        read_before = ops.slice(gradient, (begin,), (end - begin,))
        gradient = ops.slice_update(gradient, (begin,), read_before + piece)
    return gradient


def _first_and_later_reads(windows, gradients):
    """Pieces of the windows' gradients, by whether an earlier window read them.

    Returns:
        `(first, later)`: lists of `(begin, end, gradient piece)`. The
        `first` pieces are disjoint; `later` ones are in window order.
    """
    first, later, read = [], [], []  # `read`: sorted disjoint spans read so far
    for spans, window_gradient in zip(windows, gradients):
        position = 0
        for begin, end in spans:
            for low, high, before in _split_by_reads(begin, end, read):
                piece = ops.slice(window_gradient, (position + low - begin,), (high - low,))
                (later if before else first).append((low, high, piece))
            _mark_read(read, begin, end)
            position += end - begin
    return first, later


def _split_by_reads(begin, end, read):
    """`[begin, end)` cut into `(low, high, read before)` by the spans read."""
    parts, position = [], begin
    for low, high in read[max(0, bisect.bisect_right(read, (begin,)) - 1) :]:
        if low >= end:
            break
        if high <= position:
            continue
        if low > position:
            parts.append((position, low, False))
        parts.append((max(low, position), min(high, end), True))
        position = min(high, end)
    if position < end:
        parts.append((position, end, False))
    return parts


def _mark_read(read, begin, end):
    """Adds `[begin, end)` to the sorted disjoint spans `read`, merging."""
    index = bisect.bisect_left(read, (begin,))
    if index and read[index - 1][1] >= begin:
        index -= 1
    stop = index
    while stop < len(read) and read[stop][0] <= end:
        begin, end = min(begin, read[stop][0]), max(end, read[stop][1])
        stop += 1
    read[index:stop] = [(begin, end)]


def _largest_fill(pieces, size, limit=FUSED_CONCATENATION_OPERANDS):
    """The disjoint pieces that fill the most entries in one fused concatenation.

    The concatenation's operands are the chosen pieces and a zero-filled gap
    before, between or after them wherever they do not touch; there may be
    at most `limit` of them.

    Args:
        pieces: Disjoint `(begin, end, tensor)`.
        size: Length of the concatenation.
        limit: Most operands the concatenation may have.

    Returns:
        The chosen pieces, by position: the best choice among the
        `4 * limit` largest pieces (a dynamic program over them in order).
    """
    largest = sorted(pieces, key=lambda piece: piece[0] - piece[1])[: 4 * limit]
    pieces = sorted(largest, key=lambda piece: piece[0])
    # best[i][k]: (entries, previous) of the best choice ending with piece i
    # whose operands up to piece i are k.
    best = [dict() for _ in pieces]
    for i, (begin, end, _) in enumerate(pieces):
        operands = 1 + (begin > 0)
        if operands <= limit:
            best[i][operands] = (end - begin, None)
        for j in range(i):
            gap = begin > pieces[j][1]
            for count, (entries, _) in best[j].items():
                operands = count + 1 + gap
                if operands <= limit and entries + end - begin > best[i].get(operands, (0,))[0]:
                    best[i][operands] = (entries + end - begin, (j, count))
    choice, most = None, 0
    for i, (_, end, _) in enumerate(pieces):
        for count, (entries, _) in best[i].items():
            if count + (end < size) <= limit and entries > most:
                choice, most = (i, count), entries
    chosen = []
    while choice is not None:
        i, count = choice
        chosen.append(pieces[i])
        choice = best[i][count][1]
    return chosen[::-1]


def _with_zero_gaps(pieces, size, gradients):
    """The pieces' tensors, with zeros wherever they leave a gap in `[0, size)`."""
    dtype = gradients[0].dtype if gradients else "float32"
    parts, position = [], 0
    for begin, end, piece in pieces:
        if begin > position:
            parts.append(ops.zeros((begin - position,), dtype=dtype))
        parts.append(piece)
        position = end
    if position < size:
        parts.append(ops.zeros((size - position,), dtype=dtype))
    return parts
