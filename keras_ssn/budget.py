"""Budgets: what a user asks for, and the exact range a plan can spend.

`resolve_budget` turns the `budget` argument of `convert()` into an exact
parameter count. When no plan spends a count exactly, planners raise a
`BudgetError` that names the smallest and largest budgets that do; both are
exact boundaries (found by `feasible_range`): the named budget converts, one
parameter past it does not.
"""

import math

import numpy as np

# Budgets tried, spread log-uniformly over the candidate range, when looking
# for one that a plan can spend before bisecting for the boundaries.
_PROBES = 64
# How far from a budget inside the feasible range to look for the nearest
# budgets that work, when it falls in a gap.
_NEAREST_SEARCH = 4096


class BudgetError(ValueError):
    """A budget that no plan spends exactly.

    Attributes:
        budget: The parameter count asked for.
        smallest: The smallest budget that works with the same model and
            options (it converts; one parameter less does not), or `None`
            when no budget works.
        largest: The largest budget that works (it converts; one parameter
            more does not), or `None` when there is no upper limit.
        nearest: For a budget inside `[smallest, largest]` that still does
            not work, the closest budgets below and above that do (`None`
            where none was found nearby); otherwise `None`.
        options: Text naming the options the range holds for.
        advice: Dict with an optional sentence for each side, `"below"` and
            `"above"`, saying what moves that boundary.
    """

    def __init__(
        self, budget, smallest=None, largest=None, nearest=None, options="",
        requested=None, original=None, advice=None,
    ):
        self.budget = budget
        self.smallest = smallest
        self.largest = largest
        self.nearest = nearest
        self.options = options
        self.advice = dict(advice or {})
        self._requested = budget if requested is None else requested
        self._original = original
        super().__init__(self._message())

    def restated(self, requested, original):
        """This error quoting the `budget` argument the user passed.

        Args:
            requested: The `budget` given to `convert()`: an int count or a
                float fraction of the model.
            original: The model's trainable parameter count.
        """
        return BudgetError(
            self.budget, self.smallest, self.largest, self.nearest,
            self.options, requested, original, self.advice,
        )

    def _message(self):
        options = f" with {self.options}" if self.options else ""
        if self.smallest is None:
            return (
                f"No budget can be spent exactly{options} for this model; try "
                "other options or other groups."
            )
        asked = f"budget={self._requested!r}"
        if self._is_fraction():
            asked += f" ({self.budget:,} of the model's {self._original:,} parameters)"
        if self.budget < self.smallest:
            return (
                f"{asked} is below {self._name(self.smallest)}, the smallest "
                f"budget this model can train under{options}."
                f"{self._advice('below')}{self._int_hint()}"
            )
        if self.largest is not None and self.budget > self.largest:
            return (
                f"{asked} is above {self._name(self.largest)}, the largest "
                f"budget this model can train under{options}.{self._advice('above')}"
            )
        closest = " and ".join(
            self._name(b) for b in self.nearest or () if b is not None
        )
        return (
            f"{asked} cannot be split exactly into bank slices and generation "
            f"parameters{options}, although most budgets from "
            f"{self._name(self.smallest)} to {self._name(self.largest)} can; "
            f"the closest that can: {closest or 'none nearby'}."
        )

    def _advice(self, side):
        advice = self.advice.get(side)
        return f" {advice}" if advice else ""

    def _is_fraction(self):
        return self._original is not None and isinstance(
            self._requested, (float, np.floating)
        )

    def _name(self, count):
        if self._is_fraction():
            fraction = f"{count / self._original:.4g}"
            if fraction.isdigit():
                fraction += ".0"  # a float: an int budget is a count
            return f"{count:,} (budget={fraction})"
        return f"{count:,}"

    def _int_hint(self):
        """Asks whether a small int budget was meant as a fraction."""
        if self._original is None or self._is_fraction():
            return ""
        count = round(float(self._requested) * self._original)
        if count < self.smallest or (self.largest is not None and count > self.largest):
            return ""
        return (
            f" An int budget is an exact parameter count: did you mean "
            f"budget={float(self._requested)!r} ({float(self._requested):.0%} "
            f"of the model's {self._original:,} parameters)?"
        )


def resolve_budget(budget, original):
    """Turns an int or fractional budget into an exact parameter count.

    Args:
        budget: `int`: the exact trainable parameter count. `float`: a
            fraction of `original`.
        original: The model's trainable parameter count.

    Raises:
        TypeError: `budget` is neither an int nor a float.
        ValueError: `budget` is not positive, not finite, or rounds to 0, or
            the model has no trainable parameters.
    """
    if original == 0:
        raise ValueError(
            "The model has no trainable parameters: it is frozen "
            "(`model.trainable = False`; `keras.distillation.Distiller` "
            "freezes its teacher). Set `model.trainable = True` before "
            "converting it."
        )
    if isinstance(budget, bool) or not isinstance(
        budget, (int, float, np.integer, np.floating)
    ):
        raise TypeError(
            "budget must be an int (the exact trainable parameter count) or a "
            f"float (a fraction of the model's {original:,} trainable "
            f"parameters); received budget={budget!r}."
        )
    if isinstance(budget, (int, np.integer)):
        if budget < 1:
            raise ValueError(
                f"budget must be a positive parameter count; received budget={budget}."
            )
        return int(budget)
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(
            "A float budget is a positive, finite fraction of the model's "
            f"{original:,} trainable parameters; received budget={budget}."
        )
    target = round(float(budget) * original)
    if target < 1:
        raise ValueError(
            f"budget={budget} of {original:,} parameters rounds to {target}; "
            "use a larger fraction."
        )
    return target


def feasible_range(spends, below, above):
    """The exact smallest and largest budgets that `spends`.

    Args:
        spends: Callable taking a budget and returning whether a plan spends
            it exactly.
        below: A budget known not to work, below every one that does.
        above: A budget known not to work, above every one that does.

    Returns:
        `(smallest, largest)`: `spends(smallest)` and `spends(largest)` hold,
        `spends(smallest - 1)` and `spends(largest + 1)` do not. `(None,
        None)` when no probed budget works.
    """
    works = _probe(spends, below, above)
    if works is None:
        return None, None
    return _bisect(spends, below, works), _bisect(spends, above, works)


def nearest_feasible(spends, budget, smallest, largest):
    """The closest budgets below and above `budget` that `spends`.

    Looks at most `_NEAREST_SEARCH` parameters away on each side; a side
    where none was found is `None`.
    """
    lower = upper = None
    for step in range(1, _NEAREST_SEARCH + 1):
        if lower is None and budget - step >= smallest and spends(budget - step):
            lower = budget - step
        if upper is None and budget + step <= largest and spends(budget + step):
            upper = budget + step
        if lower is not None and upper is not None:
            break
    return lower, upper


def budget_error(budget, spends, below, above, options, advice=None):
    """The `BudgetError` for a `budget` that `spends` rejects.

    Args:
        budget: The rejected parameter count.
        spends: Callable taking a budget and returning whether it works.
        below: A budget known not to work, below every one that does.
        above: A budget known not to work, above every one that does.
        options: Text naming the options the range holds for, such as
            `"share='wavg', upsample='repeat', max_templates=8"`.
        advice: As in `BudgetError`.
    """
    smallest, largest = feasible_range(spends, below, above)
    nearest = None
    if smallest is not None and smallest < budget < largest:
        nearest = nearest_feasible(spends, budget, smallest, largest)
    return BudgetError(budget, smallest, largest, nearest, options, advice=advice)


def _probe(spends, below, above):
    """Some budget strictly between `below` and `above` that works, or `None`."""
    low, high = below + 1, above - 1
    if low > high:
        return None
    candidates = np.unique(
        np.round(np.geomspace(low, high, _PROBES)).astype(np.int64)
    ).tolist()
    for candidate in [high] + candidates[::-1]:
        if spends(candidate):
            return candidate
    return None


def _bisect(spends, fails, works):
    """A working budget next to a failing one, between `fails` and `works`.

    Keeps `spends(works)` true and `spends(fails)` false while halving the
    distance, so the result works and its neighbour on the side of `fails`
    does not.
    """
    while abs(works - fails) > 1:
        middle = (works + fails) // 2
        if spends(middle):
            works = middle
        else:
            fails = middle
    return works
