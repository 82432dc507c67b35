"""Accuracy against budget: SSN against the baselines, at equal trainable counts.

For each task (see `benchmarks.tasks`) and budget (a fraction of the
reference model's trainable count), trains:

- `ssn`: `keras_ssn.convert(model, budget)` with the default options;
- `ssn_consecutive`: the defaults with `placement="consecutive"` (only
  with `--methods`);
- `ssn_fit`, `ssn_fewest`: the defaults with `templates="fit"` (every
  layer mixes as many copies of its weight as its group's slice holds, at
  every budget) or `templates="fewest"` (one window per layer below 100%;
  only with `--methods`);
- `ssn_mask`, `ssn_scale`: the defaults with `upsample="mask"` (each
  copy of a tiled slice scaled by its own learned value) or
  `upsample="scale"` (each tiled weight by one learned value; only with
  `--methods`);
- `ssn_single`: one parameter group for all layers (`groups="single"`;
  only with `--methods`);
- `ssn_paper`: the paper's settings, one group, `upsample="inter"` and
  `placement="consecutive"` (only with `--methods`);
- `ssn_sliding`: one group with `placement="sliding"` (only with
  `--methods`);
- `ssn_rows`: one group with `placement="rows"` (layers of one size mix
  rows of one ring; only with `--methods`);
- `ssn_type`, `ssn_shape`: the defaults with one parameter group per layer
  family (`groups="type"`) or per family and weight shape
  (`groups="shape"`) instead of one group (only with `--methods`);
- `width`: the same architecture with every channel count scaled, the scale
  searched so that the trainable count is the closest the architecture
  allows to the budget (above 1.0 the model is wider, so it also costs more
  at inference, unlike SSN after `materialize()`);
- `hashed`: `keras_ssn.baselines.hashed(model, budget)` (budgets up to 1.0:
  hashing cannot use more parameters than the model has);
- `albert`: for tasks with a transformer, one block's layers called by every
  block, its width searched like `width`;

plus the reference model itself (`plain`). Each run records the target
count, the count the method reached, the metric and the seconds it took.

    python -m benchmarks.accuracy [--tasks mnist1d_cnn ...] [--budgets 0.01 0.1 0.5 4]
        [--seeds 0 1 2] [--quick | --epochs N] [--learning-rate LR] [--methods plain ssn ...]
        [--out accuracy.json] [--plots docs/plots]
    python -m benchmarks.accuracy --combine a.json b.json [--plots docs/plots]
"""

import argparse
import functools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

BUDGETS = (0.01, 0.1, 0.5, 4.0)
METHODS = ("ssn", "width", "hashed", "albert")
ALL_METHODS = (
    "ssn", "ssn_consecutive", "ssn_fit", "ssn_fewest", "ssn_mask", "ssn_scale", "ssn_init_weights",
    "ssn_single", "ssn_paper",
    "ssn_sliding", "ssn_rows", "ssn_type", "ssn_shape",
) + METHODS[1:]
PAPER_SETTINGS = {"groups": "single", "upsample": "inter", "placement": "consecutive",
                  "templates": "fit"}
# `convert()` options of the SSN methods other than the defaults, as they
# were run: the variants other than `ssn_fewest` with `templates="fit"`,
# all with `placement="consecutive"`.
_AS_RUN = {"placement": "consecutive"}
SSN_SETTINGS = {"ssn": {}, "ssn_consecutive": _AS_RUN,
                "ssn_fit": {"templates": "fit", **_AS_RUN},
                "ssn_fewest": {"templates": "fewest", **_AS_RUN},
                "ssn_mask": {"upsample": "mask"},
                "ssn_scale": {"upsample": "scale"},
                "ssn_init_weights": {"init": "weights"},
                "ssn_single": {"groups": "single", "templates": "fit", **_AS_RUN},
                "ssn_paper": PAPER_SETTINGS,
                "ssn_sliding": {"groups": "single", "placement": "sliding",
                                "templates": "fit"},
                "ssn_rows": {"groups": "single", "placement": "rows", "templates": "fit"},
                "ssn_type": {"groups": "type", "templates": "fit", **_AS_RUN},
                "ssn_shape": {"groups": "shape", "templates": "fit", **_AS_RUN}}


def match_width(build, target, low=1e-3, high=16.0, iterations=20):
    """Width multiplier whose model's trainable count is closest to `target`.

    Counts grow with the multiplier in steps (channel counts are rounded),
    so this bisects for the first multiplier at or above `target` and
    compares it with the largest one below.

    Args:
        build: `build(scale)` returns a model.
        target: Trainable count to match.
        low: Smallest multiplier tried.
        high: Largest multiplier tried.
        iterations: Bisection steps.

    Returns:
        `(scale, count)`.
    """
    def count(scale):
        keras.backend.clear_session()
        return keras_ssn.count_trainable(build(scale))

    below, above = (low, count(low)), (high, count(high))
    for _ in range(iterations):
        middle = (below[0] * above[0]) ** 0.5
        point = (middle, count(middle))
        if point[1] >= target:
            above = point
        else:
            below = point
    return min(below, above, key=lambda point: abs(point[1] - target))


@functools.lru_cache(maxsize=None)
def reference_count(task):
    return keras_ssn.count_trainable(task.build(1.0))


def width_builder(task, method):
    """The `build(scale)` a width-searched method trains, or None if the task has none."""
    return {"width": task.build, "albert": task.build_albert}[method]


@functools.lru_cache(maxsize=None)
def matched_scale(task, method, target):
    """The width multiplier of `method`'s builder closest to `target` parameters."""
    scale, _ = match_width(width_builder(task, method), target)
    return scale


def build_method(task, method, budget, seed):
    """The model `method` trains at `budget`, or None where it does not apply."""
    keras.utils.set_random_seed(seed)
    if method in ("width", "albert"):
        if width_builder(task, method) is None:
            return None
        scale = matched_scale(task, method, round(budget * reference_count(task)))
        keras.utils.set_random_seed(seed)
        return width_builder(task, method)(scale)
    reference = task.build(1.0)
    if method == "plain":
        return reference
    if method in SSN_SETTINGS:
        return keras_ssn.convert(reference, budget, seed=seed, **SSN_SETTINGS[method])
    if method == "hashed":
        return keras_ssn.baselines.hashed(reference, budget, seed=seed) \
            if budget <= 1 else None
    raise ValueError(f"Unknown method {method!r}; expected plain or one of {ALL_METHODS}.")


def run(task, data, method, budget, seed, epochs, **train_options):
    """Trains one method at one budget and seed; returns a JSON-able record.

    `train_options` go to `task.train` (for example `curve=` of
    `benchmarks.tasks.train_classifier`). Returns None where the method does
    not apply.
    """
    keras.backend.clear_session()
    record = {"task": task.name, "method": method, "budget": budget, "seed": seed}
    record["target"] = round(budget * reference_count(task))
    try:
        model = build_method(task, method, budget, seed)
    except ValueError as error:
        record["error"] = str(error)
        return record
    if model is None:
        return None
    start = time.perf_counter()
    record["trainable"] = keras_ssn.count_trainable(model)
    record["metric"] = task.train(model, data, epochs, seed, **train_options)
    record["seconds"] = time.perf_counter() - start
    return record


def run_task(task, budgets, seeds, epochs, methods=("plain",) + METHODS,
             log=functools.partial(print, flush=True), **train_options):
    """The given methods (the reference model as `"plain"`) of one task.

    `train_options` go to `task.train` (`learning_rate=`, for example).

    Returns:
        The list of records, one per run.
    """
    data = task.load()
    records = []
    plan = [("plain", 1.0)] if "plain" in methods else []
    plan += [(m, b) for b in budgets for m in ALL_METHODS if m in methods]
    for method, budget in plan:
        for seed in seeds:
            record = run(task, data, method, budget, seed, epochs, **train_options)
            if record is not None:
                record.update(train_options)
                records.append(record)
                log(json.dumps(record))
    return records


def table(task, records):
    """Markdown table: one row per method, one column per budget, mean ± std."""
    budgets = sorted({r["budget"] for r in records if r["method"] != "plain"})
    plain = [r for r in records if r["method"] == "plain"]
    lines = [
        f"{task.name}: {task.metric} ({'higher' if task.higher_is_better else 'lower'}"
        f" is better), reference model {plain[0]['trainable']:,} parameters"
        if plain else task.name,
        "",
        "| method | " + " | ".join(f"{b:g}× budget" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    if plain:
        lines.append("| plain | " + " | ".join([_cell(plain)] * len(budgets)) + " |")
    for method in ALL_METHODS:
        cells = [_cell([r for r in records
                        if r["method"] == method and r["budget"] == b]) for b in budgets]
        if any(cell != "n/a" for cell in cells):
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(runs):
    if not runs:
        return "n/a"
    if any("error" in r for r in runs):
        return "does not fit"
    values = np.array([r["metric"] for r in runs])
    counts = sorted({r["trainable"] for r in runs})
    return f"{values.mean():.3f} ± {values.std():.3f} ({counts[0]:,})"


def plot(task, records, directory):
    """Saves `<directory>/<task>.png`: the metric against the budget, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(5.5, 4))
    plain = [r["metric"] for r in records if r["method"] == "plain"]
    if plain:
        axes.axhline(np.mean(plain), color="black", linestyle="--", label="plain (1×)")
    for method in ALL_METHODS:
        points = {}
        for r in records:
            if r["method"] == method and "metric" in r:
                points.setdefault(r["budget"], []).append(r["metric"])
        if points:
            budgets = sorted(points)
            axes.errorbar(budgets, [np.mean(points[b]) for b in budgets],
                          yerr=[np.std(points[b]) for b in budgets],
                          marker="o", capsize=3, label=method)
    axes.set_xscale("log")
    axes.set_xlabel("budget (fraction of the reference model's parameters)")
    axes.set_ylabel(task.metric)
    axes.set_title(task.name)
    axes.legend()
    figure.tight_layout()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{task.name}.png")
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def combine(paths):
    """Records of several result files, by task; a later run replaces an earlier one.

    Args:
        paths: JSON files written by `main`.

    Returns:
        Dict from task name to its list of records, one per (method, budget,
        seed). Runs with another learning rate than the task's own (a
        `learning_rate` in the record) are left out: the tables compare one
        schedule.
    """
    by_task = {}
    for path in paths:
        with open(path) as f:
            results = json.load(f)
        for name, task_results in results["tasks"].items():
            runs = by_task.setdefault(name, {})
            for r in task_results["runs"]:
                if "learning_rate" not in r:
                    runs[(r["method"], r["budget"], r["seed"])] = r
    return {name: list(runs.values()) for name, runs in by_task.items()}


def print_combined(paths, plots=None):
    """Prints the tables (and writes the plots) of runs saved in several files."""
    for name, records in combine(paths).items():
        print("\n" + table(TASKS[name], records) + "\n")
        if plots:
            print("plot:", plot(TASKS[name], records, plots))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true",
                        help="each task's quick epoch count instead of its full one")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs of every task, instead of its own count")
    parser.add_argument("--methods", nargs="+", default=["plain", *METHODS],
                        choices=["plain", *ALL_METHODS])
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam's learning rate for every run, instead of the task's own "
                             "(recorded as `learning_rate` in each record)")
    parser.add_argument("--out", default="accuracy.json")
    parser.add_argument("--plots", default=None, help="folder for one PNG per task")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="train nothing: print the tables (and --plots) of these "
                             "result files together")
    args = parser.parse_args(argv)
    if args.combine:
        return print_combined(args.combine, args.plots)
    start = time.perf_counter()
    results = {"backend": keras.backend.backend(), "quick": args.quick,
               "seeds": args.seeds, "budgets": args.budgets, "tasks": {}}
    for name in args.tasks:
        task = TASKS[name]
        epochs = args.epochs or (task.quick_epochs if args.quick else task.epochs)
        options = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
        records = run_task(task, args.budgets, args.seeds, epochs, args.methods, **options)
        results["tasks"][name] = {"epochs": epochs, "runs": records}
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print("\n" + table(task, records) + "\n", flush=True)
        if args.plots:
            print("plot:", plot(task, records, args.plots), flush=True)
    results["minutes"] = (time.perf_counter() - start) / 60
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"{results['minutes']:.1f} minutes")
    return results


if __name__ == "__main__":
    main()
