"""`search_allocation()`: picks how a model spends its budget by short training.

Neural Parameter Allocation Search (Plummer et al., ICLR 2022, Section 3)
decides from a short stretch of training how a budget is spent. This search
compares candidate `convert()` options (which layers share a group, and so
how many bank entries each group gets; how a layer spends its slice on a
weight larger than it) by successive halving (Jamieson and Talwalkar, AISTATS
2016): every candidate trains on the same batches for a short rung, the
better half by a held-out objective trains on for twice as many steps, until
one is left. The one left is returned already trained, so its training goes
on from there, and the search costs only the steps of the candidates it
drops.
"""

import math
import time

import keras
import numpy as np

from keras_ssn.convert import convert
from keras_ssn.budget import BudgetError

# What the search compares unless told otherwise: the default options, one
# group for every layer, and the two upsample methods that learn a value per
# copy of a tiled slice (`docs/results.md` measures each on its own).
CANDIDATES = {
    "auto": {},
    "single": {"groups": "single"},
    "mask": {"upsample": "mask"},
    "scale": {"upsample": "scale"},
}


class AllocationSearch:
    """What `search_allocation()` found.

    Attributes:
        name: The winning candidate's name.
        options: The `convert()` options it was built with (besides the
            budget and seed): `convert(model, budget, seed=seed, **options)`
            rebuilds it untrained.
        model: The winning converted model, compiled with the search's
            optimizer, loss and metrics and trained for `model_steps`
            steps: go on training it with `fit()`.
        model_steps: Steps `model` has trained.
        steps: Steps the search spent on candidates it dropped: its cost,
            on top of `model`'s own training.
        seconds: Wall time of the whole search, compilation included.
        trials: One dict per candidate and rung: `"candidate"`, `"rung"`,
            `"steps"` (trained so far) and the objective's value.
        skipped: Candidate name to the reason it was not tried (an option
            that cannot spend the budget, for one).
    """

    def __init__(self, name, options, model, model_steps, steps, seconds, trials,
                 skipped):
        self.name = name
        self.options = options
        self.model = model
        self.model_steps = model_steps
        self.steps = steps
        self.seconds = seconds
        self.trials = trials
        self.skipped = skipped

    def __repr__(self):
        return (
            f"<AllocationSearch {self.name!r} options={self.options} "
            f"model_steps={self.model_steps} steps={self.steps} "
            f"seconds={self.seconds:.1f}>"
        )


def search_allocation(
    model,
    data,
    budget,
    *,
    loss,
    steps,
    candidates=None,
    optimizer="adam",
    metrics=None,
    objective="val_loss",
    batch_size=32,
    validation_data=None,
    validation_split=0.1,
    seed=0,
    verbose=1,
    **convert_options,
):
    """Searches `convert()` options for `model` at `budget` by short training.

    The search spends `steps` train steps on the candidates it drops; the
    winner trains on top of that and is returned ready to train on. To
    count the search in a training run of `N` steps, give it a share of
    them (the paper's pretraining takes 10-15%: `steps=N // 7`) and train
    the winner for `N - steps - result.model_steps` more.

    Args:
        model: A built Keras model, as `convert()` takes it.
        data: `(x, y)`: arrays (or nested structures of arrays) with one
            example per row.
        budget: The budget, as `convert()` takes it.
        loss: The loss, as `compile()` takes it.
        steps: Train steps the search may spend on dropped candidates.
        candidates: Dict from a name to `convert()` options, or a list of
            option dicts (named by their position); defaults to
            `CANDIDATES`. At least two must spend the budget.
        optimizer: A name or a `keras.optimizers.Optimizer`; every candidate
            trains with a fresh copy of it.
        metrics: Metrics, as `compile()` takes them.
        objective: `"val_loss"`, or `"val_"` and a metric's name, computed
            on the held-out data; lower is better for losses and errors
            (names that contain `"loss"` or `"error"`), higher otherwise.
        batch_size: Examples per train step.
        validation_data: `(x, y)` held out to compare candidates; without
            it, the last `validation_split` of `data` is held out and the
            search trains on the rest.
        validation_split: Fraction of `data` held out without
            `validation_data`.
        seed: Seed of every candidate's conversion and of the batch order;
            the same seed gives the same search.
        verbose: `0` silent, `1` one line per candidate and rung.
        **convert_options: Options of `convert()` every candidate shares
            (`exclude=`, `rematerialize=`, ...); a candidate's own options
            take precedence.

    Returns:
        An `AllocationSearch`.

    Raises:
        ValueError: Bad `data`, `steps`, `candidates`, `objective` or split;
            fewer than two candidates spend the budget (the reasons are in
            the message).
        TypeError: `data` is not an `(x, y)` tuple.
    """
    start = time.perf_counter()
    named = _named_candidates(candidates)
    (x, y), (x_val, y_val) = _split(data, validation_data, validation_split)
    models, skipped = {}, {}
    for name, options in named.items():
        try:
            keras.utils.set_random_seed(seed)
            models[name] = convert(model, budget, seed=seed, **{**convert_options, **options})
        except (BudgetError, ValueError) as error:
            skipped[name] = str(error)
    if len(models) < 2:
        raise ValueError(
            f"search_allocation needs at least two candidates that spend the "
            f"budget; {len(models)} did ({sorted(models)}). Not tried: {skipped}."
        )
    first = rung_steps(len(models), steps)
    order = _batch_order(_rows(x), batch_size, first << _rungs(len(models)), seed)
    higher_is_better = _higher_is_better(objective)
    trials, trained = [], 0
    alive = list(models)
    for name in alive:
        keras.utils.set_random_seed(seed)
        models[name].compile(optimizer=_fresh(optimizer), loss=loss, metrics=metrics)
    rung = 0
    while len(alive) > 1:
        target = first << rung
        scores = {}
        for name in alive:
            keras.utils.set_random_seed(seed + rung)
            rows = order[trained * batch_size: target * batch_size]
            models[name].fit(_take(x, rows), _take(y, rows), batch_size=batch_size,
                             epochs=1, shuffle=False, verbose=0)
            scores[name] = _evaluate(models[name], x_val, y_val, objective, batch_size)
            trials.append({"candidate": name, "rung": rung, "steps": target,
                           objective: scores[name]})
            if verbose:
                print(f"search_allocation: {name!r} rung {rung}, {target} steps: "
                      f"{objective} {scores[name]:.4f}", flush=True)
        ranked = sorted(alive, key=lambda n: -scores[n] if higher_is_better else scores[n])
        alive = ranked[: math.ceil(len(alive) / 2)]
        trained, rung = target, rung + 1
    winner = alive[0]
    return AllocationSearch(
        name=winner,
        options={**convert_options, **named[winner]},
        model=models[winner],
        model_steps=trained,
        steps=first * dropped_steps(len(models)),
        seconds=time.perf_counter() - start,
        trials=trials,
        skipped=skipped,
    )


def dropped_steps(count):
    """Steps of dropped candidates, in first rungs, for `count` candidates.

    Each rung keeps the better half (rounded up) and doubles the steps, so a
    candidate dropped after rung `r` has trained `2**r` first rungs.
    """
    total, rung = 0, 0
    while count > 1:
        kept = math.ceil(count / 2)
        total += (count - kept) << rung
        count, rung = kept, rung + 1
    return total


def rung_steps(count, steps):
    """Steps of the first rung that keep the dropped candidates within `steps`.

    Raises:
        ValueError: `steps` is not a positive int, or too few for one step
            per first rung.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive int; received {steps!r}.")
    first = int(steps) // dropped_steps(count)
    if first < 1:
        raise ValueError(
            f"steps={steps} is too few to compare {count} candidates: successive "
            f"halving needs at least {dropped_steps(count)} steps for them."
        )
    return first


def _rungs(count):
    rungs = 0
    while count > 1:
        count, rungs = math.ceil(count / 2), rungs + 1
    return rungs - 1


def _named_candidates(candidates):
    if candidates is None:
        return dict(CANDIDATES)
    if isinstance(candidates, dict):
        named = dict(candidates)
    elif isinstance(candidates, (list, tuple)):
        named = {str(i): options for i, options in enumerate(candidates)}
    else:
        raise ValueError(
            f"candidates must be a dict of name to convert() options or a list "
            f"of option dicts; received {candidates!r}."
        )
    for name, options in named.items():
        if not isinstance(options, dict) or {"budget", "seed"} & set(options):
            raise ValueError(
                f"Candidate {name!r} must be a dict of convert() options other "
                f"than budget and seed; received {options!r}."
            )
    return named


def _split(data, validation_data, validation_split):
    x, y = _pair(data, "data")
    if validation_data is not None:
        return (x, y), _pair(validation_data, "validation_data")
    if not 0 < validation_split < 1:
        raise ValueError(
            f"validation_split must be between 0 and 1 without validation_data; "
            f"received {validation_split!r}."
        )
    rows = _rows(x)
    held_out = int(rows * validation_split)
    if held_out < 1 or held_out == rows:
        raise ValueError(
            f"validation_split={validation_split} of {rows} examples leaves no "
            f"held-out or no training example; pass validation_data."
        )
    train, val = np.arange(rows - held_out), np.arange(rows - held_out, rows)
    return (_take(x, train), _take(y, train)), (_take(x, val), _take(y, val))


def _pair(data, name):
    if not isinstance(data, tuple) or len(data) != 2:
        raise TypeError(f"{name} must be a tuple (x, y) of arrays; received {type(data)}.")
    rows = {_rows(part) for part in data}
    if len(rows) != 1:
        raise ValueError(f"{name}'s x and y hold different numbers of rows: {sorted(rows)}.")
    return data


def _rows(structure):
    counts = {len(a) for a in keras.tree.flatten(structure)}
    if len(counts) != 1:
        raise ValueError(f"Arrays of one input hold different numbers of rows: {counts}.")
    return counts.pop()


def _take(structure, rows):
    return keras.tree.map_structure(lambda array: np.asarray(array)[rows], structure)


def _batch_order(rows, batch_size, steps, seed):
    """Row indices for `steps` batches: shuffled epochs, one after another."""
    rng = np.random.default_rng(seed)
    needed = steps * batch_size
    epochs = [rng.permutation(rows) for _ in range(-(-needed // rows))]
    return np.concatenate(epochs)[:needed]


def _higher_is_better(objective):
    if not isinstance(objective, str) or not objective.startswith("val_"):
        raise ValueError(
            f"objective must be 'val_loss' or 'val_' and a metric's name; "
            f"received {objective!r}."
        )
    return not any(word in objective for word in ("loss", "error"))


def _evaluate(model, x, y, objective, batch_size):
    values = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    name = objective[len("val_"):]
    if name not in values:
        raise ValueError(
            f"objective={objective!r} names no value evaluate() returns; it "
            f"returns {sorted('val_' + k for k in values)}. Pass the metric in "
            f"`metrics`."
        )
    return float(values[name])


def _fresh(optimizer):
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer.__class__.from_config(optimizer.get_config())
    return keras.optimizers.get(optimizer)
