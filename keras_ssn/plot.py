"""`plot_sharing()`: a picture of which layer reads which part of the bank."""

import numpy as np

from keras_ssn.generation import COMBINE
from keras_ssn.generation import UPSAMPLE
from keras_ssn.models import BankOwnerMixin


def plot_sharing(model, path=None):
    """Draws how a converted model shares its bank, and where its budget went.

    Three panels, all on the bank's axis (entry index, 0 to the bank size):

    - the bank, cut into its parameter groups' slices;
    - one row per shared weight (in the plan's order), showing the entries
      it reads: each of its templates when it combines them (`combine`), or
      the part of its group's slice it tiles or resizes (`upsample`), with
      how many times its reads cover the slice when they wrap around;
    - the budget: each group's bank slice, learned generation parameters
      (coefficients) and the weights that layers keep, with a legend of
      their exact counts.

    Colours are the groups' throughout; a weight's templates are shades of
    its group's colour, numbered from 1.

    Args:
        model: A model returned by `keras_ssn.convert()`.
        path: Optional file to save the figure to (any format matplotlib
            writes: `.png`, `.svg`, `.pdf`).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        TypeError: `model` was not made by `keras_ssn.convert()`.
    """
    if not isinstance(model, BankOwnerMixin):
        raise TypeError(
            "plot_sharing() expects a model made by keras_ssn.convert(); "
            f"received {type(model).__name__}."
        )
    from matplotlib.figure import Figure  # imported here: keras_ssn starts faster

    plan = model.sharing_plan
    paths = [p for group in plan.groups for p in group.weights]
    height = 2.2 + 0.22 * len(paths)
    figure = Figure(figsize=(10, height), layout="constrained")
    bank_axis, reads_axis, budget_axis = figure.subplots(
        3, 1, height_ratios=[0.6, max(1.0, 0.22 * len(paths)), 0.6]
    )
    colors = [f"C{g.index % 10}" for g in plan.groups]
    _draw_bank(bank_axis, plan, colors)
    _draw_reads(reads_axis, plan, paths, colors)
    _draw_budget(budget_axis, plan, colors)
    figure.legend(loc="outside lower center", ncol=min(4, len(plan.groups) + 2),
                  fontsize=8, frameon=False)
    figure.suptitle(f'Weight sharing: "{model.name}"')
    if path is not None:
        figure.savefig(path)
    return figure


def read_windows(spec):
    """`(start, stop, template)` bank ranges a weight reads, and its coverage.

    Ranges are absolute bank indices inside the group's slice, split where
    the reads wrap around the slice's end. `coverage` is how many times the
    reads cover the slice (more than 1 when a weight tiles its slice).
    """
    coverage = spec.read_length / spec.size
    if spec.mode not in (COMBINE, UPSAMPLE) or coverage >= 1:
        return [(spec.start, spec.start + spec.size, 0)], coverage
    if spec.mode == UPSAMPLE:
        pieces = [(spec.offset, spec.read_length, 0)]
    else:
        pieces = [
            (offset, spec.weight_size, k)
            for k, offset in enumerate(spec.template_offsets)
        ]
    windows = []
    for first, length, template in pieces:
        first %= spec.size
        stop = first + length
        windows.append((spec.start + first, spec.start + min(stop, spec.size), template))
        if stop > spec.size:
            windows.append((spec.start, spec.start + stop - spec.size, template))
    return windows, coverage


def _draw_bank(axis, plan, colors):
    for group, color in zip(plan.groups, colors):
        axis.barh(0, group.size, left=group.start, color=color, edgecolor="white")
        axis.text(group.start + group.size / 2, 0, f"group {group.index}: {group.size:,}",
                  ha="center", va="center", fontsize=7, clip_on=True)
    axis.set_xlim(0, plan.bank_size)
    axis.set_yticks([])
    axis.set_title(f"Bank: {plan.bank_size:,} entries", fontsize=9, loc="left")


def template_shades(color, templates):
    """One shade of `color` per template: the first full, later ones lighter."""
    from matplotlib.colors import to_rgb

    rgb = np.array(to_rgb(color))
    lightening = np.linspace(0, 0.65, templates) if templates > 1 else [0.0]
    return [tuple(rgb + (1 - rgb) * amount) for amount in lightening]


def _draw_reads(axis, plan, paths, colors):
    for row, path in enumerate(paths):
        spec = plan.weights[path]
        windows, _ = read_windows(spec)
        shades = template_shades(colors[spec.group], spec.templates)
        for start, stop, template in windows:
            axis.barh(row, stop - start, left=start, height=0.7, color=shades[template],
                      edgecolor="white", linewidth=0.3)
            if spec.templates > 1 and stop - start > plan.bank_size / 60:
                axis.text((start + stop) / 2, row, str(template + 1), ha="center",
                          va="center", fontsize=7, color=_ink(shades[template]))
    axis.set_yticks(range(len(paths)), [_label(p, plan.weights[p]) for p in paths],
                    fontsize=7)
    axis.set_ylim(len(paths) - 0.5, -0.5)
    axis.set_xlim(0, plan.bank_size)
    axis.set_title(
        "Entries each weight reads. combine: the weight mixes K templates, windows "
        "of its group's slice (one shade and number each; a window that runs past "
        "the slice's end goes on at its start); upsample: the slice is smaller than "
        "the weight and is tiled or resized to it (×n: read n times over); white: "
        "entries the weight does not read",
        fontsize=8, loc="left", wrap=True,
    )


def _ink(shade):
    """Black on light shades, white on dark ones."""
    red, green, blue = shade[:3]
    return "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"


def _label(path, spec):
    _, coverage = read_windows(spec)
    label = f"{path} ({spec.mode}, K={spec.templates}"
    if coverage > 1:
        label += f", slice ×{coverage:.2f}"
    return label + ")"


def _draw_budget(axis, plan, colors):
    """The budget as one bar: bank (per group), coefficients, own weights.

    A part too small to see (a few coefficients) is drawn 0.5% of the bar
    wide; the legend gives every part's exact count.
    """
    smallest = plan.budget / 200
    parts = [(f"group {g.index} slice: {g.size:,}", g.size, color, None)
             for g, color in zip(plan.groups, colors)]
    parts += [(f"coefficients: {plan.coefficient_params:,}", plan.coefficient_params,
               "black", None),
              (f"own weights: {plan.unshared_params:,}", plan.unshared_params,
               "0.85", "//")]
    left = 0
    for label, size, color, hatch in parts:
        width = max(size, smallest) if size else 0
        axis.barh(0, width, left=left, color=color, hatch=hatch, edgecolor="white",
                  linewidth=0.3, label=label)
        left += width
    axis.set_xlim(0, left)
    axis.set_yticks([])
    axis.set_title(f"Budget: {plan.budget:,} trainable parameters = bank "
                   f"{plan.bank_size:,} + coefficients {plan.coefficient_params:,} "
                   f"+ own weights {plan.unshared_params:,}", fontsize=9, loc="left",
                   wrap=True)
