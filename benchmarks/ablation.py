"""Ablation of the SSN method options on MNIST-1D with a 1-D CNN.

Trains the quickstart's 1-D CNN (108,426 parameters) under each budget with
one option changed at a time from the defaults (share="wavg",
upsample="inter", groups="single", placement="consecutive"): every `share`,
every `upsample`, every grouping (single, type, shape, 2 random groups, 2
learned groups) and the sliding placement. Each run is repeated over seeds;
the script prints a Markdown table of test accuracy (mean ± standard
deviation) and writes every run to a JSON file.

    python -m benchmarks.ablation [--budgets 0.1 0.01] [--seeds 0 1 2]
        [--epochs 20] [--out ablation.json]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from examples.quickstart import build_cnn  # noqa: E402
from examples.quickstart import load_mnist1d  # noqa: E402
from examples.quickstart import train  # noqa: E402

DEFAULTS = {"share": "wavg", "upsample": "inter", "groups": "single",
            "placement": "consecutive"}
VARIANTS = (
    [("share", value) for value in ("wavg", "emb", "avg")]
    + [("upsample", value) for value in ("repeat", "mask", "wavg")]
    + [("groups", value) for value in ("type", "shape", 2, "learned")]
    + [("placement", "sliding")]
)
LEARNED_GROUPS = 2


def convert(model, budget, option, value, data, seed, epochs):
    """Converts `model` with one option changed; learns groups if asked."""
    options = dict(DEFAULTS, **{option: value})
    if options["groups"] == "learned":
        (x_train, y_train), _ = data
        options["groups"] = keras_ssn.learn_groups(
            model,
            (x_train, y_train),
            LEARNED_GROUPS,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            budget=budget,
            epochs=epochs,
            seed=seed,
            verbose=0,
        )
    return keras_ssn.convert(model, budget, seed=seed, **options)


def run(budget, option, value, data, seed, epochs, pretrain_epochs):
    keras.utils.set_random_seed(seed)
    model = build_cnn()
    record = {"budget": budget, "option": option, "value": str(value), "seed": seed}
    try:
        small = convert(model, budget, option, value, data, seed, pretrain_epochs)
    except ValueError as error:
        record["error"] = str(error)
        return record
    accuracy, seconds = train(small, data, epochs, seed)
    record.update(
        accuracy=float(accuracy),
        seconds_per_epoch=seconds,
        trainable=keras_ssn.count_trainable(small),
        groups=len(small.sharing_plan.groups),
    )
    return record


def table(records, reference):
    """Markdown table: one row per option value, one column per budget."""
    budgets = sorted({r["budget"] for r in records}, reverse=True)
    lines = [
        "| option | " + " | ".join(f"{b:g} budget" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
        "| full model (108,426) | " + " | ".join([_cell(reference)] * len(budgets))
        + " |",
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
    accuracies = np.array([r["accuracy"] for r in runs])
    return f"{accuracies.mean():.3f} ± {accuracies.std():.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.01])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--pretrain-epochs", type=int, default=3,
                        help="learn_groups pretraining, 15%% of --epochs")
    parser.add_argument("--out", default="ablation.json")
    args = parser.parse_args()

    data = load_mnist1d()
    start = time.perf_counter()
    reference = []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        accuracy, _ = train(build_cnn(), data, args.epochs, seed)
        reference.append({"accuracy": float(accuracy), "seed": seed})
        print(json.dumps({"model": "full", **reference[-1]}), flush=True)
    records = []
    for budget in args.budgets:
        for option, value in VARIANTS:
            for seed in args.seeds:
                record = run(budget, option, value, data, seed, args.epochs,
                             args.pretrain_epochs)
                records.append(record)
                print(json.dumps(record), flush=True)
    with open(args.out, "w") as f:
        json.dump({"reference": reference, "runs": records,
                   "epochs": args.epochs, "seeds": args.seeds,
                   "backend": keras.backend.backend(),
                   "minutes": (time.perf_counter() - start) / 60}, f, indent=1)
    print()
    print(table(records, reference))
    print(f"\n{(time.perf_counter() - start) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
