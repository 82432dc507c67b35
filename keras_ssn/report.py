"""`summary()`: what a converted model shares and where its budget goes."""

import dataclasses
import io

import rich.console
import rich.table

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


@dataclasses.dataclass(frozen=True)
class SharingReport:
    """What `summary()` returns."""

    budget: int
    bank_size: int
    coefficient_params: int
    unshared_params: int
    groups: list
    unshared_layers: list


def summary(model, print_fn=None):
    """Prints and returns the sharing report of a converted model.

    Shows each parameter group with its bank slice (and coefficient map, for
    `share="emb"`) and the weights generated from it, and for each weight
    its shape, whether it combines templates (down-sampling) or upsamples
    its group's slice and with which method, its number of templates, its
    learned generation parameters and the fraction of its group's slice it
    reads. Then lists the layers that keep their own weights, and how the
    budget splits.

    Args:
        model: A model returned by `keras_ssn.convert()`.
        print_fn: Optional function that receives the report as a string
            instead of it being printed.

    Returns:
        A `SharingReport`.
    """
    if not isinstance(model, BankOwnerMixin):
        raise TypeError(
            "summary() expects a model made by keras_ssn.convert(); received "
            f"{type(model).__name__}."
        )
    report = build_report(model.sharing_plan)
    text = render(report, model.name)
    if print_fn is None:
        print(text)
    else:
        print_fn(text)
    return report


def build_report(plan):
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
        unshared_layers=[dict(e) for e in plan.unshared_layers],
    )


def _method(spec):
    """The generation method that applies to one weight."""
    if spec.mode == "upsample":
        return spec.upsample
    if spec.mode == "hashed":
        return "random hash"
    if spec.templates == 1 and spec.share != "softmax":
        return "direct"
    return spec.share


def render(report, name):
    """Renders a `SharingReport` as a plain-text table."""
    buffer = io.StringIO()
    console = rich.console.Console(file=buffer, width=140, color_system=None)
    table = rich.table.Table(title=f'Weight sharing: "{name}"')
    for column in ("Group", "Bank slice", "Weight", "Shape", "Generation",
                   "Templates", "Coeffs", "Reads"):
        table.add_column(column)
    for group in report.groups:
        for i, entry in enumerate(group.entries):
            first = i == 0
            table.add_row(
                str(group.index) if first else "",
                _slice_label(group) if first else "",
                entry.path,
                str(entry.shape),
                f"{entry.mode} ({entry.method})",
                str(entry.templates),
                str(entry.coefficients),
                f"{entry.bank_share:.0%}",
            )
    console.print(table)
    if report.unshared_layers:
        unshared = rich.table.Table(title="Layers with their own weights")
        for column in ("Layer", "Class", "Params", "Why"):
            unshared.add_column(column)
        for e in report.unshared_layers:
            unshared.add_row(e["path"], e["class_name"], f"{e['params']:,}", e["reason"])
        console.print(unshared)
    console.print(
        f"Budget: {report.budget:,} trainable = bank {report.bank_size:,} + "
        f"coefficients {report.coefficient_params:,} + own weights "
        f"{report.unshared_params:,}"
    )
    return buffer.getvalue().rstrip()


def _slice_label(group):
    start, stop = group.bank_range
    label = f"[{start}:{stop}] ({group.params:,})"
    if group.coefficient_map_params:
        label += f" + map {group.coefficient_map_params}"
    return label
