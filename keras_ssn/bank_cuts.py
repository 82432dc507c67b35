"""Where the bank is cut into pieces (`WeightBank(pieces=)`).

A bank held in pieces gives every layer's gradient only the pieces it
read, lets the optimizer update a piece once its last reader has its
gradient, and lets a window that is a whole piece be read without a copy.
`bank_pieces` says where to cut for a plan; the engine
(`keras_ssn.engine`) and the rematerialized recipes (`keras_ssn.remat`)
read the pieces.
"""

import numpy as np

from keras_ssn.reading import is_end_to_end


def bank_pieces(plan):
    """Sizes of the pieces a bank for `plan` is best held in (`WeightBank(pieces=)`).

    When the plan rematerializes its weights (`plan.rematerialize`), each
    layer generates its weight from the pieces it reads, so the bank is cut
    wherever a layer's reads start or stop, and at every template of a
    weight whose templates no larger template overlaps (`_read_edges`): a
    layer's gradient then reaches only the pieces it read, the optimizer
    can update a piece as soon as the last layer that reads it has its
    gradient, and those weights mix whole pieces.

    Otherwise a group whose layers read its slice end to end, at most twice
    over, is cut wherever a window starts or stops (see `read_end_to_end`):
    a window of the first pass is then a piece of its own, read without a
    copy and trained without a concatenation, and a window that goes round
    joins whole pieces. Groups read otherwise (rows, sliding, hashed, or
    round the slice more than twice) are left together in one piece, which
    one `split` cuts into their slices (holding each in a variable of its
    own costs more: measured on 2 x LSTM(256) at 1%, 0.997x the plain
    step's bytes instead of 0.920x).

    Returns:
        List of positive sizes adding up to `plan.bank_size`.
    """
    edges = {0, plan.bank_size}
    for group in plan.groups:
        specs = [plan.weights[p] for p in group.weights]
        if plan.rematerialize:
            cuts = _read_edges(specs)
        else:
            cuts = slice_cuts(specs, group.size)
        if cuts:
            edges.update((group.start, group.start + group.size))
            edges.update(group.start + cut for cut in cuts)
    edges = sorted(edges)
    return [high - low for low, high in zip(edges[:-1], edges[1:])]


def _read_edges(specs):
    """Where a group's rematerialized layers start and stop reading its slice.

    Every weight's reads (`WeightSpec.read_spans`), and where each of its
    templates starts and stops (`WeightSpec.window_spans`) for a weight
    whose templates no larger template overlaps: those templates are then
    whole pieces, read without a copy, each with a gradient of its own. A
    template that overlaps a larger one would cut it into small pieces
    (ResNet50V2 at 10%, its convolutions of many sizes mixing templates of
    one slice: 192 pieces instead of 49, 2.7x the bytes accessed), so only
    that weight's reads are cut out.
    """
    whole = _whole_template_readers(specs)
    return [
        edge
        for index, spec in enumerate(specs)
        for span in (spec.window_spans if index in whole else spec.read_spans)
        for edge in span
    ]


def _whole_template_readers(specs):
    """Indices of the specs whose templates no larger template overlaps."""
    spans = sorted(
        (begin, end, spec.weight_size, index)
        for index, spec in enumerate(specs)
        for begin, end in spec.window_spans
    )
    smaller = set()
    for i, (begin, end, size, index) in enumerate(spans):
        for other_begin, _, other_size, other in spans[i + 1 :]:
            if other_begin >= end:
                break
            if other_size < size:
                smaller.add(other)
            elif size < other_size:
                smaller.add(index)
    return set(range(len(specs))) - smaller


def slice_cuts(specs, size):
    """Where a group's windows, read end to end, start and stop in its slice.

    Args:
        specs: `WeightSpec`s of all the group's weights.
        size: The group's slice size.

    Returns:
        Sorted positions inside the slice; empty where the layers do not
        read it end to end, or go round it more than twice.
    """
    lengths = [s.read_length for s in specs if s.read_length]
    if not lengths or not is_end_to_end(specs) or sum(lengths) > 2 * size:
        return []
    return sorted({b % size for b in np.cumsum(lengths).tolist()} - {0})
