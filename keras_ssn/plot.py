"""`plot_sharing()`: a picture of which layer reads which part of the bank."""

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
    - the budget: bank entries, learned generation parameters
      (coefficients) and the weights that layers keep.

    Needs matplotlib (`pip install matplotlib`).

    Args:
        model: A model returned by `keras_ssn.convert()`.
        path: Optional file to save the figure to (any format matplotlib
            writes: `.png`, `.svg`, `.pdf`).

    Returns:
        The `matplotlib.figure.Figure`.

    Raises:
        TypeError: `model` was not made by `keras_ssn.convert()`.
        ImportError: matplotlib is not installed.
    """
    if not isinstance(model, BankOwnerMixin):
        raise TypeError(
            "plot_sharing() expects a model made by keras_ssn.convert(); "
            f"received {type(model).__name__}."
        )
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "plot_sharing() needs matplotlib: pip install matplotlib"
        ) from error
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
    _draw_budget(budget_axis, plan)
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
        axis.text(group.start + group.size / 2, 0, f"group {group.index}\n{group.size:,}",
                  ha="center", va="center", fontsize=8)
    axis.set_xlim(0, plan.bank_size)
    axis.set_yticks([])
    axis.set_title(f"Bank: {plan.bank_size:,} entries", fontsize=9, loc="left")


def _draw_reads(axis, plan, paths, colors):
    for row, path in enumerate(paths):
        spec = plan.weights[path]
        windows, _ = read_windows(spec)
        for start, stop, template in windows:
            axis.barh(row, stop - start, left=start, height=0.7,
                      color=colors[spec.group], alpha=0.9 if template % 2 == 0 else 0.55,
                      edgecolor="white", linewidth=0.3)
    axis.set_yticks(range(len(paths)), [_label(p, plan.weights[p]) for p in paths],
                    fontsize=7)
    axis.set_ylim(len(paths) - 0.5, -0.5)
    axis.set_xlim(0, plan.bank_size)
    axis.set_title("Entries each weight reads (shades: its templates)", fontsize=9, loc="left")


def _label(path, spec):
    _, coverage = read_windows(spec)
    label = f"{path} ({spec.mode}, K={spec.templates}"
    if coverage > 1:
        label += f", ×{coverage:.2f}"
    return label + ")"


def _draw_budget(axis, plan):
    parts = [("bank", plan.bank_size, "C7"),
             ("coefficients", plan.coefficient_params, "C1"),
             ("own weights", plan.unshared_params, "C2")]
    left = 0
    for name, size, color in parts:
        axis.barh(0, size, left=left, color=color, label=f"{name}: {size:,}")
        left += size
    axis.set_xlim(0, plan.budget)
    axis.set_yticks([])
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8,
                frameon=False)
    axis.set_title(f"Budget: {plan.budget:,} trainable parameters", fontsize=9, loc="left")
