"""`summary()`: what a converted model shares and where its budget goes."""

import dataclasses
import io
import math
import shutil

import rich.console
import rich.table

from keras_ssn.layer_paths import own_variables
from keras_ssn.layer_paths import walk_layers
from keras_ssn.layers import is_generation_param
from keras_ssn.layers import is_shared
from keras_ssn.models import BankOwnerMixin


@dataclasses.dataclass(frozen=True)
class WeightEntry:
    """One shared weight: its shape, how it is generated, what it reads."""

    path: str
    shape: tuple
    mode: str
    method: str
    templates: int
    coefficients: int
    bank_share: float


@dataclasses.dataclass(frozen=True)
class GroupEntry:
    """One parameter group.

    Attributes:
        index: Group index.
        weights: Paths of the weights in the group.
        params: Bank entries the group owns.
        bank_range: `(start, stop)` of its slice in the bank.
        entries: `WeightEntry` per weight.
        coefficient_map_params: Entries of the group's coefficient map
            (`share="emb"`), 0 otherwise.
    """

    index: int
    weights: tuple
    params: int
    bank_range: tuple
    entries: tuple
    coefficient_map_params: int = 0


# Above this many shared weights, `summary()` shows one row per kind of
# weight in each group unless asked to expand.
COMPACT_ABOVE = 40

LEGEND = (
    "Generation: combine = the weight mixes K template windows of its group's "
    "slice (wavg/emb/avg: how; direct: K = 1, the window itself); upsample = "
    "the slice is smaller than the weight and is enlarged (repeat/inter/mask/"
    "scale/wavg). Templates: K, the number of windows a weight mixes. Coeffs: learned "
    "generation parameters. Reads: the share of its group's slice the weight reads."
)


@dataclasses.dataclass(frozen=True, repr=False)
class SharingReport:
    """What `summary()` returns."""

    budget: int
    bank_size: int
    coefficient_params: int
    unshared_params: int
    groups: list
    unshared_layers: list

    def __repr__(self):
        weights = sum(len(g.entries) for g in self.groups)
        return (
            f"SharingReport(budget={self.budget:,}, bank={self.bank_size:,}, "
            f"coefficients={self.coefficient_params:,}, "
            f"own weights={self.unshared_params:,}, groups={len(self.groups)}, "
            f"shared weights={weights}, "
            f"layers with own weights={len(self.unshared_layers)})"
        )


def summary(model, print_fn=None, line_length=None, expand=None):
    """Prints and returns the sharing report of a converted model.

    Shows each parameter group with its bank slice (and coefficient map, for
    `share="emb"`) and the weights generated from it, and for each weight
    its shape, whether it combines templates (down-sampling) or upsamples
    its group's slice and with which method, its number of templates, its
    learned generation parameters and the fraction of its group's slice it
    reads. A legend explains the columns. Then lists the layers that keep
    their own weights (shared layers with their biases and other weights
    they keep), and how the budget splits. Every weight and layer
    path is printed whole on one line, ready to copy into `groups=` and
    `exclude=` (the report grows wider than `line_length` where a path
    needs it).

    Args:
        model: A model returned by `keras_ssn.convert()`.
        print_fn: Optional function that receives the report as a string
            instead of it being printed.
        line_length: Width of the report in characters; the terminal's width
            by default. Wider where the longest path needs more.
        expand: `True` lists every shared weight; `False` shows one row per
            kind of weight (shape, generation and templates) in each group,
            with the number of weights and their paths. By default, models
            with more than 40 shared weights get the compact view.

    Returns:
        A `SharingReport`.

    Raises:
        TypeError: `model` was not made by `keras_ssn.convert()`.
    """
    if not isinstance(model, BankOwnerMixin):
        raise TypeError(
            "summary() expects a model made by keras_ssn.convert(); received "
            f"{type(model).__name__}."
        )
    report = build_report(model.sharing_plan, model)
    width = line_length or shutil.get_terminal_size((120, 24)).columns
    if expand is None:
        expand = sum(len(g.entries) for g in report.groups) <= COMPACT_ABOVE
    text = render(report, model.name, width=width, expand=expand)
    if print_fn is None:
        print(text)
    else:
        print_fn(text)
    return report


def build_report(plan, model=None):
    """The `SharingReport` of a plan; with `model`, its shared layers' own weights too."""
    groups = []
    for group in plan.groups:
        entries = []
        for path in group.weights:
            spec = plan.weights[path]
            entries.append(
                WeightEntry(
                    path=path,
                    shape=spec.shape,
                    mode=spec.mode,
                    method=_method(spec),
                    templates=spec.templates,
                    coefficients=spec.num_coefficients,
                    bank_share=min(1.0, spec.read_length / group.size),
                )
            )
        groups.append(
            GroupEntry(
                index=group.index,
                weights=group.weights,
                params=group.size,
                bank_range=(group.start, group.start + group.size),
                entries=tuple(entries),
                coefficient_map_params=group.coefficient_map_size,
            )
        )
    return SharingReport(
        budget=plan.budget,
        bank_size=plan.bank_size,
        coefficient_params=plan.coefficient_params,
        unshared_params=plan.unshared_params,
        groups=groups,
        unshared_layers=[dict(e) for e in plan.unshared_layers]
        + ([] if model is None else kept_weights(model)),
    )


def kept_weights(model):
    """One report entry per shared layer that keeps trainable weights of its own.

    A shared layer generates the weights its plan names and keeps the rest
    (biases, a GPT-OSS expert block's expert biases), which count toward
    the budget.
    """
    entries = []
    for path, layer in walk_layers(model.converted_model()):
        if not is_shared(layer):
            continue
        kept = [v for v in own_variables(layer)
                if v.trainable and not is_generation_param(v)]
        if kept:
            entries.append({
                "path": path,
                "class_name": type(layer).base_class.__name__,
                "params": sum(math.prod(v.shape) for v in kept),
                "reason": f"shared; keeps its {', '.join(v.name for v in kept)}",
            })
    return entries


def _method(spec):
    """The generation method that applies to one weight."""
    if spec.mode == "upsample":
        return spec.upsample
    if spec.mode == "hashed":
        return "random hash"
    if spec.mode == "low rank":
        return f"rank {spec.factors[0]}"
    if spec.templates == 1 and spec.share != "softmax":
        return "direct"
    return spec.share


# Characters a report needs besides its path column: at the least (the
# columns that do not wrap, the borders, two narrow columns that wrap), and
# to show every column unwrapped. A report grows past its width only where
# the longest path would not fit beside the least, and then to the ample.
_LEAST_OTHER_COLUMNS = 35
_AMPLE_OTHER_COLUMNS = 65


def report_width(width, longest):
    """The report's width: `width`, or more where a path of `longest` needs it."""
    if longest + _LEAST_OTHER_COLUMNS <= width:
        return width
    return longest + _AMPLE_OTHER_COLUMNS


def render(report, name, width=120, expand=True):
    """Renders a `SharingReport` as plain text `width` characters wide.

    Every weight and layer path stays whole on one line, ready to copy:
    path columns are at least as wide as the longest path, and the report
    grows wider than `width` where that needs more room.
    """
    longest = max(
        [len(e.path) for g in report.groups for e in g.entries]
        + [len(e["path"]) for e in report.unshared_layers]
    )
    buffer = io.StringIO()
    console = rich.console.Console(
        file=buffer, width=report_width(width, longest), color_system=None
    )
    console.print(f'Weight sharing: "{name}"')
    for group in report.groups:
        table = rich.table.Table(title=_group_title(group), title_justify="left",
                                 expand=True)
        # `width` is the least a flexible (ratio) column gets: no path folds.
        table.add_column("Weight" if expand else "Weights", overflow="fold", ratio=4,
                         width=longest)
        table.add_column("Shape", overflow="fold", ratio=2)
        table.add_column("Generation", overflow="fold", ratio=2)
        for column in ("K", "Coeffs", "Reads"):
            table.add_column(column, no_wrap=True)
        for row in (_rows(group) if expand else _compact_rows(group)):
            table.add_row(*row)
        console.print(table)
    console.print(LEGEND)
    if not expand:
        console.print(
            "Compact view: one row per kind of weight in each group; "
            "summary(model, expand=True) lists every weight."
        )
    if report.unshared_layers:
        unshared = rich.table.Table(title="Layers with their own weights",
                                    title_justify="left", expand=True)
        unshared.add_column("Layer" if expand else "Layers", overflow="fold", ratio=3,
                            width=longest)
        unshared.add_column("Class", no_wrap=True)
        unshared.add_column("Params", no_wrap=True)
        unshared.add_column("Why", overflow="fold", ratio=3)
        for row in (_unshared_rows(report) if expand
                    else _compact_unshared_rows(report)):
            unshared.add_row(*row)
        console.print(unshared)
    console.print(
        f"Budget: {report.budget:,} trainable = bank {report.bank_size:,} + "
        f"coefficients {report.coefficient_params:,} + own weights "
        f"{report.unshared_params:,}"
    )
    return buffer.getvalue().rstrip()


def _group_title(group):
    start, stop = group.bank_range
    title = f"Group {group.index}: bank entries [{start:,}:{stop:,}] ({group.params:,})"
    if group.coefficient_map_params:
        title += f" + coefficient map {group.coefficient_map_params:,}"
    return title


def _unshared_rows(report):
    for e in report.unshared_layers:
        yield e["path"], e["class_name"], f"{e['params']:,}", e["reason"]


def _compact_unshared_rows(report):
    """One row per class and reason."""
    kinds = _grouped(report.unshared_layers, lambda e: (e["class_name"], e["reason"]))
    for (class_name, reason), same in kinds.items():
        yield (
            _listing([e["path"] for e in same]),
            class_name,
            f"{sum(e['params'] for e in same):,}",
            reason,
        )


def _grouped(items, key):
    """Dict from `key(item)` to the items with that key, in first-seen order."""
    groups = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _listing(paths):
    if len(paths) == 1:
        return paths[0]
    return f"{len(paths)}: " + ", ".join(paths)


def _rows(group):
    for entry in group.entries:
        yield (
            entry.path,
            str(entry.shape),
            f"{entry.mode} ({entry.method})",
            str(entry.templates),
            str(entry.coefficients),
            f"{entry.bank_share:.0%}",
        )


def _kind(entry):
    return entry.shape, entry.mode, entry.method, entry.templates


def _compact_rows(group):
    """One row per kind of weight: count, paths, and the range of reads.

    Kinds come in the order of their first weight in the group.
    """
    for kind, same in _grouped(group.entries, _kind).items():
        shape, mode, method, templates = kind
        shares = [e.bank_share for e in same]
        reads = (f"{min(shares):.0%}" if min(shares) == max(shares)
                 else f"{min(shares):.0%}-{max(shares):.0%}")
        yield (
            _listing([e.path for e in same]),
            str(shape),
            f"{mode} ({method})",
            str(templates),
            str(sum(e.coefficients for e in same)),
            reads,
        )
