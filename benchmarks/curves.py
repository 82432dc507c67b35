"""Training curves: loss and test accuracy after every epoch of chosen runs.

The accuracy benchmark records only the accuracy after the last epoch. This
reruns single runs of it (same model, seed and recipe, so the same final
figure) and records every epoch, to tell a late spike from a run that never
learned:

    python -m benchmarks.curves --task digits_wrn --runs ssn:0.1:0 plain:1:0
        [--epochs N] [--out curves.json]

Each run is `method:budget:seed`, as in `benchmarks.accuracy`. Classifier
tasks only: the language model trains on one stream of windows.
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from benchmarks.accuracy import ALL_METHODS  # noqa: E402
from benchmarks.accuracy import run  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402
from benchmarks.tasks import train_classifier  # noqa: E402

CLASSIFIER_TASKS = [name for name, task in TASKS.items() if task.train is train_classifier]


def parse_run(text):
    """`"method:budget:seed"` as `(method, budget, seed)`."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] not in ("plain", *ALL_METHODS):
        raise argparse.ArgumentTypeError(
            f"Expected method:budget:seed with a method among plain, "
            f"{', '.join(ALL_METHODS)}; got {text!r}.")
    try:
        return parts[0], float(parts[1]), int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Expected a number as budget and an integer as seed; got {text!r}.")


def curve(task, data, method, budget, seed, epochs):
    """One run of `benchmarks.accuracy.run`, with the per-epoch loss and accuracy."""
    history = {}
    record = run(task, data, method, budget, seed, epochs, curve=history)
    if record is None:
        raise ValueError(f"{method} does not apply to {task.name} at budget {budget}.")
    return {**record, **history}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=CLASSIFIER_TASKS)
    parser.add_argument("--runs", nargs="+", required=True, type=parse_run,
                        metavar="METHOD:BUDGET:SEED")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs, instead of the task's full count")
    parser.add_argument("--out", default="curves.json")
    args = parser.parse_args(argv)
    task = TASKS[args.task]
    data = task.load()
    epochs = args.epochs or task.epochs
    results = {"backend": keras.backend.backend(), "epochs": epochs, "runs": []}
    for method, budget, seed in args.runs:
        record = curve(task, data, method, budget, seed, epochs)
        results["runs"].append(record)
        print(json.dumps(record), flush=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
