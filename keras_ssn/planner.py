"""The planner: turns a parameter budget into a `SharingPlan`.

All budget arithmetic lives here. `plan_sharing` splits a budget into a bank,
one slice per parameter group and, per shared layer, the templates it reads
and the learned parameters that mix or upsample them, so that the converted
model has exactly the budget's trainable count and every bank entry is read
(Plummer et al., ICLR 2022, Section 3).
"""

import functools
import math

from keras_ssn.budget import budget_error
from keras_ssn.mapping import FixedGrouping
from keras_ssn.methods import EmbeddedAverage
from keras_ssn.methods import combination
from keras_ssn.methods import upsampling
from keras_ssn.placement import is_upsampled
from keras_ssn.placement import place_templates
from keras_ssn.plan import generation_params
from keras_ssn.plan import SharingPlan
from keras_ssn.tiled_rows import spread_rows

_MAX_SETTLE_ROUNDS = 1000
_MAX_FIT_ROUNDS = 8


def plan_sharing(
    weights,
    grouping,
    unshared_params,
    budget,
    templates="auto",
    max_templates=8,
    share="wavg",
    upsample="repeat",
    placement="auto",
    unshared_layers=(),
):
    """Splits `budget` into a bank, groups and per-layer generation specs.

    The bank takes whatever the budget leaves after unshared parameters and
    learned generation parameters (coefficients, embeddings, maps, masks), so
    the converted model has exactly `budget` trainable parameters. Groups get
    bank slices in proportion to the full-size weight count of their layers,
    then entries move between slices where a tiled weight's rows would
    repeat (`keras_ssn.tiled_rows`).
    Every bank entry is read by at least one layer.

    Args:
        weights: List of `SharedWeight`, one per shared layer.
        grouping: A `FixedGrouping` or `AutoGrouping`
            (`keras_ssn.mapping`), or a list of group ids, one per weight.
            The first of its candidates for the budget that spends it
            exactly is used.
        unshared_params: Trainable parameters outside the bank.
        budget: Exact trainable parameter count to reach.
        templates: How many templates a layer starts from, a key of
            `TEMPLATE_COUNTS`: `"auto"`, `"fit"` or `"fewest"`. Layers
            then get more, largest first, until their group reads every
            entry of its slice.
        max_templates: Largest number of templates one layer may combine.
        share: Template combination method.
        upsample: Upsampling method.
        placement: `"consecutive"` (each layer reads on from where the
            previous one stopped, wrapping around the slice), `"sliding"`
            (read windows spread evenly over the slice, so every entry is
            read about equally often), `"rows"` (layers of one size mix
            rows of one ring cut from the slice; see `placement.place_in_rows`) or
            `"auto"` (per group, `"rows"` where it reads the slice's entries
            at most half as often, else `"consecutive"`; see `placement.place_group`).
        unshared_layers: Report entries for layers left unshared.

    Returns:
        A `SharingPlan`.

    Raises:
        BudgetError: No candidate spends `budget`; it names the exact
            smallest and largest budgets some candidate spends.
    """
    if not hasattr(grouping, "candidates"):
        grouping = FixedGrouping(grouping)
    settlers = {}

    def settle(group_ids, candidate):
        """Template counts and slice sizes that spend `candidate`, or `None`."""
        key = tuple(group_ids)
        if key not in settlers:
            members = _group_members(group_ids)
            settlers[key] = (members, functools.partial(
                _settle, weights, members, [sum(weights[i].size for i in m) for m in members],
                max_templates, share, upsample, TEMPLATE_COUNTS[templates],
            ))
        members, settle_members = settlers[key]
        available = candidate - unshared_params
        if available < len(members):
            return None
        try:
            return settle_members(available)
        except ValueError:
            return None

    def first_fitting(candidate):
        for group_ids in grouping.candidates(candidate - unshared_params):
            result = settle(group_ids, candidate)
            if result is not None:
                return group_ids, result
        return None

    found = first_fitting(budget)
    if found is None:
        raise _budget_error(
            budget, grouping, first_fitting, weights, unshared_params,
            max_templates, share, upsample, templates,
        )
    group_ids, (templates, sizes) = found
    members = _group_members(group_ids)
    groups, specs = place_templates(
        weights, members, sizes, templates, share, upsample, placement
    )
    plan = SharingPlan(
        budget=int(budget),
        bank_size=sum(sizes),
        unshared_params=int(unshared_params),
        groups=tuple(groups),
        weights=specs,
        unshared_layers=tuple(unshared_layers),
    )
    total = plan.bank_size + plan.coefficient_params + plan.unshared_params
    if total != budget:
        raise RuntimeError(
            f"internal error: the plan holds {total} parameters, not the budget "
            f"{budget}. Please report it with the model and options."
        )
    return plan


def _budget_error(budget, grouping, first_fitting, weights, unshared_params,
                  max_templates, share, upsample, templates):
    """The `BudgetError` naming the exact range of budgets `grouping` spends."""
    largest = max(
        largest_budget(weights, _group_members(group_ids), unshared_params,
                       max_templates, share)
        for group_ids in grouping.every_candidate()
    )
    return budget_error(
        budget,
        lambda candidate: first_fitting(candidate) is not None,
        below=unshared_params + grouping.fewest_groups - 1,
        above=largest + 1,
        options=(
            f"{grouping.describe()}, share={share!r}, upsample={upsample!r}, "
            f"templates={templates!r}, max_templates={max_templates}"
        ),
        advice={
            "below": (
                f"The weights that layers keep ({unshared_params:,}: biases, "
                "normalization layers, excluded and unsupported layers) "
                "count toward every budget; excluding fewer layers lowers "
                "the minimum. A group's slice must also hold at least as "
                "many entries as a weight it upsamples has output units "
                "(upsample='repeat', 'mask' or 'scale'; 2 for 'inter'; "
                "embedding tables aside), or some "
                "output units would be copies of each other and never "
                "learn apart; upsample='wavg' has no such minimum."
            ),
            "above": (
                f"A larger max_templates (now {max_templates}) lets each "
                "layer mix more templates and so read a larger bank."
            ),
        },
    )


def largest_budget(weights, members, unshared_params, max_templates, share="wavg"):
    """The largest budget whose bank every layer can still read in full.

    Args:
        weights: List of `SharedWeight`.
        members: Positions in `weights` of each group's layers.
        unshared_params: Trainable parameters outside the bank.
        max_templates: Largest number of templates per layer.
        share: Combination method.
    """
    full = sum(w.size for w in weights)
    total = unshared_params + max_templates * full
    for member in members:
        total += _combination_params(
            [max_templates] * len(member), share
        )
    return total


def split_proportionally(total, weights):
    """Splits the integer `total` in proportion to `weights`, each part ≥ 1.

    Where every exact share is a whole number of at least 1 (a bank that
    holds the weights a whole number of times, as at a 100% budget), the
    parts are those shares. Otherwise it uses the largest-remainder method
    on exact integers, so the parts always add up to `total`.
    """
    denominator = sum(weights)
    shares = [total * w // denominator for w in weights]
    if sum(shares) == total and min(shares) >= 1:
        return shares
    spare = total - len(weights)
    parts = [spare * w // denominator for w in weights]
    remainders = [spare * w % denominator for w in weights]
    left = spare - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[:left]:
        parts[i] += 1
    return [p + 1 for p in parts]


def _group_members(group_ids):
    index = {}
    members = []
    for position, group_id in enumerate(group_ids):
        if group_id not in index:
            index[group_id] = len(members)
            members.append([])
        members[index[group_id]].append(position)
    return members


def _group_of(members, count):
    owner = [0] * count
    for g, m in enumerate(members):
        for i in m:
            owner[i] = g
    return owner


# A template rule takes a layer's weight size, its group's slice size, how
# many whole copies of all shared weights the budget holds (`copies`, 0
# below a 100% budget) and the cap, and returns the layer's first count.


def fewest_templates(weight_size, slice_size, copies, max_templates):
    """One template per copy of the shared weights the budget holds.

    Every layer starts from the same count: one below a 100% budget (a
    layer's weight is one window of its group's slice), the budget's whole
    multiple above it. A train step then reads about what the plain model's
    reads (see `docs/results.md`).
    """
    return max(1, min(max_templates, copies))


def fitting_templates(weight_size, slice_size, copies, max_templates):
    """The paper's code: as many full copies of the layer's weight as fit.

    In a group of many layers each then mixes up to `max_templates`
    templates at any budget, and a train step reads that many times its
    weight.
    """
    return max(1, min(max_templates, slice_size // weight_size))


def auto_templates(weight_size, slice_size, copies, max_templates):
    """`fitting_templates` below a 100% budget, `fewest_templates` from it up.

    Below 100%, mixing every copy that fits trains better than one window
    per layer; from 100% up, the fewest templates train as well or better
    and cost far less (`docs/results.md`, "Template rule").
    """
    rule = fitting_templates if copies < 1 else fewest_templates
    return rule(weight_size, slice_size, copies, max_templates)


# The rules `plan_sharing(templates=...)` takes for a layer's first count
# of templates, by name.
TEMPLATE_COUNTS = {
    "auto": auto_templates, "fit": fitting_templates, "fewest": fewest_templates,
}


def _settle(weights, members, full_sizes, max_templates, share, upsample, count,
            available):
    """Template counts and slice sizes that spend `available` exactly.

    `count` is a rule of `TEMPLATE_COUNTS`.
    """
    estimate = split_proportionally(available, full_sizes)
    copies = available // sum(full_sizes)
    owner = _group_of(members, len(weights))
    templates = [
        count(w.size, estimate[g], copies, max_templates) for w, g in zip(weights, owner)
    ]
    settle = functools.partial(
        _settle_templates, weights, members, full_sizes, available=available,
        max_templates=max_templates, share=share, upsample=upsample,
    )
    sizes = settle(templates=templates)
    for _ in range(_MAX_FIT_ROUNDS):
        # The first templates came from an estimate of the slices; where the
        # settled slice holds fewer copies, a layer's templates would
        # overlap. Settle again from the copies that fit.
        fitting = [
            min(k, max(1, sizes[owner[i]] // weights[i].size))
            for i, k in enumerate(templates)
        ]
        if fitting == templates:
            break
        try:
            fitted_sizes = settle(templates=fitting)
        except ValueError:
            break  # keep the overlapping plan, the only one that fits
        templates, sizes = fitting, fitted_sizes
    learned = _generation_total(weights, members, templates, sizes, share, upsample)

    def allowed(trial):
        if _generation_total(weights, members, templates, trial, share, upsample) != learned:
            return False
        try:
            if _add_templates(weights, members, list(templates), trial, max_templates):
                return False  # some entries of a slice would go unread
            _check_distinct_columns(weights, owner, templates, trial, upsample)
        except ValueError:
            return False  # more entries than max_templates can read, or equal output units
        return True

    sizes = spread_rows(weights, owner, templates, sizes, upsample, allowed)
    _check_distinct_columns(weights, owner, templates, sizes, upsample)
    return templates, sizes


def _check_distinct_columns(weights, owner, templates, sizes, upsample):
    """Raises `ValueError` where an upsampled weight's output units come out equal.

    See `Upsampling.repeats_columns`: a slice smaller than a weight's
    columns (`"repeat"`, `"mask"`) or its template's (`"inter"`) makes some
    output units copies of each other, and those never learn apart. Lookup
    tables are exempt: their columns are the dimensions of one vector.
    """
    method = upsampling(upsample)
    for weight, g, k in zip(weights, owner, templates):
        if weight.lookup or not is_upsampled(weight, k, sizes[g]):
            continue
        rows, cols = method.output_view(weight.shape, weight.columns)
        if method.repeats_columns(rows, cols, sizes[g]):
            raise ValueError(
                f"{weight.path}: a slice of {sizes[g]} entries would repeat "
                f"its output units with upsample={upsample!r}."
            )


def _settle_templates(
    weights, members, full_sizes, *, templates, available, max_templates, share,
    upsample,
):
    """Finds slice sizes and template counts that fit the budget exactly.

    The learned generation parameters depend on the slice sizes (a smaller
    slice upsamples more layers, and adding templates adds coefficients),
    and the slices get what those parameters leave, so this iterates to a
    fixed point. `templates` is updated in place, only ever upward, and every
    group's slice ends up read in full.

    Returns:
        The list of group slice sizes.
    """
    sizes = split_proportionally(available, full_sizes)
    for _ in range(_MAX_SETTLE_ROUNDS):
        learned = _generation_total(weights, members, templates, sizes, share, upsample)
        bank = available - learned
        if bank < len(members):
            raise ValueError(
                f"The learned generation parameters (template coefficients, "
                f"embeddings or masks: {learned}) leave no room for the bank "
                f"within this budget. Use a larger budget, a smaller "
                f"max_templates (now {max_templates}), or methods that "
                f"learn fewer (share='avg', upsample='inter' or 'repeat')."
            )
        settled = split_proportionally(bank, full_sizes)
        grown = _add_templates(weights, members, templates, settled, max_templates)
        if not grown and settled == sizes:
            return sizes
        sizes = settled
    raise ValueError(
        "Could not split this budget into bank slices and learned generation "
        "parameters exactly. Try a budget a few parameters larger or smaller."
    )


def _add_templates(weights, members, templates, sizes, max_templates):
    """Adds templates until each combining group reads its whole slice.

    Returns:
        Whether any layer got more templates.
    """
    grown = False
    for g, member in enumerate(members):
        if any(is_upsampled(weights[i], templates[i], sizes[g]) for i in member):
            continue  # an upsampled layer reads the whole slice
        reads = sum(templates[i] * weights[i].size for i in member)
        while reads < sizes[g]:
            growable = [i for i in member if templates[i] < max_templates]
            if not growable:
                raise ValueError(
                    f"The budget leaves more bank entries than the layers "
                    f"can read with max_templates={max_templates}, so some "
                    f"would never be used. Lower the budget, or raise "
                    f"max_templates to at least "
                    f"{_templates_needed(weights, member, sizes[g])}."
                )
            # Largest first; among equal sizes the one with fewest templates,
            # so that equal layers share the extra templates.
            i = max(growable, key=lambda j: (
                _fits_once(weights[j], templates[j] + 1, sizes[g]), weights[j].size,
                -templates[j]))
            templates[i] += 1
            reads += weights[i].size
            grown = True
    return grown


def _fits_once(weight, templates, slice_size):
    """Whether `templates` copies of `weight` fit in the slice without overlap.

    A layer whose templates overlap reads some entries twice; the planner
    grows the layers that still fit first, and lets one wrap only when no
    other layer of the group can read the rest.
    """
    return templates * weight.size <= slice_size


def _generation_total(weights, members, templates, sizes, share, upsample):
    """All learned generation parameters for the given slices and templates."""
    total = 0
    for g, member in enumerate(members):
        combining = []
        for i in member:
            if is_upsampled(weights[i], templates[i], sizes[g]):
                total += generation_params(
                    weights[i].shape, 1, sizes[g], share, upsample
                )
            else:
                combining.append(templates[i])
        total += _combination_params(combining, share)
    return total


def _combination_params(templates, share):
    """Coefficients of one group's combining layers, its map included."""
    method = combination(share)
    mixing = [k for k in templates if k >= 2]
    if isinstance(method, EmbeddedAverage):
        return method.group_parameter_count(mixing)
    return sum(method.parameter_count(k) for k in mixing)


def _templates_needed(weights, member, size):
    return math.ceil(size / sum(weights[i].size for i in member))
