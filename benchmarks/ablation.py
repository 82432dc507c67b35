"""Ablation of the SSN method options on one benchmark task.

Trains a task's reference model (by default MNIST-1D with the quickstart's
1-D CNN, 108,426 parameters; see `benchmarks/tasks.py`) under each budget
with one option changed at a time from `convert()`'s defaults, from the
defaults with one group (`--base single`) or from the paper's settings
(`--base paper`: one group, `upsample="inter"`): every `share`, every
`upsample`, every grouping (auto, single, type, shape, 2 random groups, 2
learned groups), every placement, every template rule and template caps
of 1, 2, 4 and 8. Each run is repeated over
seeds; the script prints a Markdown table of the task's metric (mean ±
standard deviation) and writes every run to a JSON file.

    python -m benchmarks.ablation [--task mnist1d_cnn] [--base defaults|single|paper]
        [--budgets 0.1 0.01] [--seeds 0 1 2] [--epochs N]
        [--options share upsample groups placement templates max_templates]
        [--out ablation.json]
"""

import argparse
import inspect
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.accuracy import PAPER_SETTINGS  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

VALUES = {
    "share": ("wavg", "emb", "avg"),
    "upsample": ("inter", "repeat", "mask", "wavg"),
    "groups": ("auto", "single", "type", "shape", 2, "learned"),
    "placement": ("auto", "consecutive", "sliding", "rows"),
    "templates": ("auto", "fit", "fewest"),
    "max_templates": (1, 2, 4, 8),
}
LEARNED_GROUPS = 2
# The settings every run starts from: `convert()`'s defaults, the defaults
# with one group, or the paper's settings.
_CONVERT_DEFAULTS = {
    option: inspect.signature(keras_ssn.convert).parameters[option].default
    for option in VALUES
}
BASES = {"defaults": _CONVERT_DEFAULTS,
         "single": dict(_CONVERT_DEFAULTS, groups="single"),
         "paper": dict(_CONVERT_DEFAULTS, **PAPER_SETTINGS)}


def convert(task, model, budget, base, option, value, data, seed, pretrain_epochs):
    """Converts `model` with one option of `base` changed; learns groups if asked."""
    options = dict(BASES[base])
    if option in options:
        options[option] = value
    if options["groups"] == "learned":
        options["groups"] = keras_ssn.learn_groups(
            model,
            task.training_data(data, pretrain_epochs, seed),
            LEARNED_GROUPS,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            budget=budget,
            seed=seed,
            verbose=0,
        )
    return keras_ssn.convert(model, budget, seed=seed, **options)


def run(task, budget, base, option, value, data, seed, epochs, pretrain_epochs):
    """Trains the task's model at one budget with one option of `base` changed."""
    keras.utils.set_random_seed(seed)
    model = task.build(1.0)
    record = {"budget": budget, "option": option, "value": str(value), "seed": seed}
    try:
        small = convert(task, model, budget, base, option, value, data, seed,
                        pretrain_epochs)
    except ValueError as error:
        record["error"] = str(error)
        return record
    start = time.perf_counter()
    record.update(
        metric=task.train(small, data, epochs, seed),
        seconds=time.perf_counter() - start,
        trainable=keras_ssn.count_trainable(small),
        groups=len(small.sharing_plan.groups),
    )
    return record


def variants(options, base):
    """`("base", base)`, then every other value of each option in `options`."""
    return [("base", base)] + [(option, value) for option in options
                               for value in VALUES[option] if value != BASES[base][option]]


def table(records, reference, reference_count):
    """Markdown table: one row per option value, one column per budget."""
    budgets = sorted({r["budget"] for r in records}, reverse=True)
    lines = [
        "| option | " + " | ".join(f"{b:g} budget" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
        f"| full model ({reference_count:,}) | "
        + " | ".join([_cell(reference)] * len(budgets)) + " |",
    ]
    keys = []
    for r in records:
        key = (r["option"], r["value"])
        if key not in keys:
            keys.append(key)
    for option, value in keys:
        cells = []
        for budget in budgets:
            runs = [r for r in records if (r["option"], r["value"], r["budget"])
                    == (option, value, budget)]
            cells.append(_cell(runs))
        label = f"{option}={value}"
        if option == "base":
            label = value + ": " + ", ".join(f"{k}={v}" for k, v in BASES[value].items())
        if option == "groups" and value == "2":
            label = "groups=2 (random)"
        if option == "groups" and value == "learned":
            label = f"groups=learn_groups(..., {LEARNED_GROUPS})"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(runs):
    errors = [r for r in runs if "error" in r]
    if errors:
        return "does not fit: " + errors[0]["error"].split(". ")[-1].rstrip(".")
    values = np.array([r["metric"] for r in runs])
    return f"{values.mean():.3f} ± {values.std():.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d_cnn", choices=list(TASKS))
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs; the task's full count by default")
    parser.add_argument("--pretrain-epochs", type=int, default=None,
                        help="learn_groups pretraining; 15%% of --epochs by default")
    parser.add_argument("--options", nargs="+", default=list(VALUES),
                        choices=list(VALUES), help="options to vary")
    parser.add_argument("--base", default="defaults", choices=list(BASES),
                        help="vary options from convert()'s defaults, the defaults with one "
                             "group, or the paper's settings")
    parser.add_argument("--out", default="ablation.json")
    args = parser.parse_args(argv)
    task = TASKS[args.task]
    epochs = args.epochs or task.epochs
    pretrain_epochs = args.pretrain_epochs or max(1, round(0.15 * epochs))

    data = task.load()
    start = time.perf_counter()
    reference = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        reference_model = task.build(1.0)
        metric = task.train(reference_model, data, epochs, seed)
        reference.append({"metric": metric, "seed": seed})
        print(json.dumps({"model": "full", **reference[-1]}), flush=True)
    records = []
    for budget in args.budgets:
        for option, value in variants(args.options, args.base):
            for seed in args.seeds:
                record = run(task, budget, args.base, option, value, data, seed, epochs,
                             pretrain_epochs)
                records.append(record)
                print(json.dumps(record), flush=True)
    reference_count = keras_ssn.count_trainable(reference_model)
    with open(args.out, "w") as f:
        json.dump({"task": task.name, "metric": task.metric, "base": BASES[args.base],
                   "reference": reference,
                   "reference_count": reference_count, "runs": records,
                   "epochs": epochs, "seeds": args.seeds,
                   "backend": keras.backend.backend(),
                   "minutes": (time.perf_counter() - start) / 60}, f, indent=1)
    print(f"\n{task.name}, {task.metric}\n")
    print(table(records, reference, reference_count))
    print(f"\n{(time.perf_counter() - start) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
