"""Starting from a trained model: `convert(init="weights")`, fine-tuning, distillation.

For each classification task (see `benchmarks.tasks`) and seed, trains the
plain model for the task's schedule (the teacher), then at each budget:

- `fitted`: the metric right after `convert(model, budget, init="weights")`,
  before any training (and `fitted_shrunk`: the same with
  `FitWeights(keep_norms=False)`);
- `finetune`: the fitted model fine-tuned with labels for a quarter of the
  schedule;
- `distil`: the fitted model trained for a quarter of the schedule with
  Keras's `keras.distillation.Distiller` (teacher = the trained model,
  `LogitsDistillation(temperature=3)`, `student_loss_weight=0.5`);
- `random_distil`: a converted model with a drawn bank (`init="random"`)
  distilled for the same quarter schedule;
- `low_rank`, `low_rank_distil`: `keras_ssn.baselines.low_rank(model,
  budget)` (truncated SVDs of the trained weights at the same count),
  fine-tuned with labels or distilled for the same quarter schedule (not
  below the budget that gives every weight rank 1: `low_rank_smallest`);
- `width_distil`: the same architecture with its width scaled to the
  budget (as `benchmarks.accuracy`'s `width`), distilled from the teacher
  for the whole schedule;
- `fitted_data`, `finetune_data`, `distil_data`: `fitted`, `finetune` and
  `distil` with calibration data, `FitWeights(data=x)` with `CALIBRATION`
  training inputs drawn with the seed (the activation-aware fit), and its
  seconds, `fit_data_seconds`. `--calibrated-only` runs just these and
  `fitted` (the same teacher's fit without data).

Budgets of 100% and up are growth: `finetune` there is the grown model
fine-tuned for a quarter schedule, against `plain_more`, the plain model
trained for the same extra quarter (same optimizer, fresh state). The
fit's seconds are recorded too.

    python -m benchmarks.pretrained [--tasks mnist1d_cnn digits_wrn]
        [--budgets 0.5 0.1 0.01 4] [--seeds 0] [--quick] [--finetune-learning-rate 3e-3]
        [--calibrated-only] [--out pretrained.json]
    python -m benchmarks.pretrained --table benchmarks/results/pretrained.json [more.json ...]
        [--over-seeds]

`--table` merges the records of one task, seed and budget across files.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.accuracy import matched_scale  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

BUDGETS = (0.5, 0.1, 0.01, 4.0)
CALIBRATION = 512
LEARNING_RATE = 3e-3
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def accuracy(model, data):
    """Test accuracy of `model`, compiled here for evaluation only."""
    (_, _), (x_test, y_test) = data
    model.compile(loss=LOSS, metrics=["accuracy"])
    return float(model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1])


def distil(teacher, student, data, epochs, seed, learning_rate=LEARNING_RATE):
    """Trains `student` with Keras's Distiller; returns its test accuracy."""
    (x_train, y_train), _ = data
    keras.utils.set_random_seed(seed)
    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=3.0),
        student_loss_weight=0.5)
    distiller.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=LOSS,
                      jit_compile=True)
    distiller.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=0)
    teacher.trainable = True  # the Distiller froze it
    return accuracy(student, data)


def copy_of(converted):
    """A converted model's copy with its values (`keras_ssn.clone_model` + weights)."""
    copy = keras_ssn.clone_model(converted)
    copy.set_weights(converted.get_weights())
    return copy


def run_budget(task, data, teacher, budget, seed, epochs, quarter, rate=LEARNING_RATE):
    """The records of one budget; `rate` is the quarter schedule's learning rate."""
    record = {"budget": budget, "finetune_learning_rate": rate}
    started = time.perf_counter()
    fitted = keras_ssn.convert(teacher, budget, seed=seed, init="weights")
    record["fit_seconds"] = time.perf_counter() - started
    record["fitted"] = accuracy(fitted, data)
    record["fitted_shrunk"] = accuracy(keras_ssn.convert(
        teacher, budget, seed=seed, init=keras_ssn.FitWeights(keep_norms=False)), data)
    tuned = copy_of(fitted)
    record["finetune"] = task.train(tuned, data, quarter, seed, learning_rate=rate)
    if budget < 1:
        record["distil"] = distil(teacher, fitted, data, quarter, seed, rate)
        drawn = keras_ssn.convert(teacher, budget, seed=seed)
        record["random_distil"] = distil(teacher, drawn, data, quarter, seed, rate)
        try:
            record["low_rank"] = task.train(keras_ssn.baselines.low_rank(teacher, budget),
                                            data, quarter, seed, learning_rate=rate)
            record["low_rank_distil"] = distil(
                teacher, keras_ssn.baselines.low_rank(teacher, budget), data, quarter, seed,
                rate)
        except keras_ssn.BudgetError as error:  # below rank 1 for every weight
            record["low_rank_smallest"] = error.smallest
        target = round(budget * keras_ssn.count_trainable(teacher))
        keras.utils.set_random_seed(seed)
        narrow = task.build(matched_scale(task, "width", target))
        record["width_params"] = keras_ssn.count_trainable(narrow)
        record["width_distil"] = distil(teacher, narrow, data, epochs, seed)
    return record


def calibration_data(data, seed):
    """`CALIBRATION` training inputs, drawn with `seed`."""
    (x_train, _), _ = data
    order = np.random.default_rng(seed).permutation(len(x_train))
    return x_train[order[:CALIBRATION]]


def fitted_only(teacher, budget, seed, data):
    """`fitted` and `fit_seconds` alone: the fit without data, on the same teacher."""
    started = time.perf_counter()
    fitted = keras_ssn.convert(teacher, budget, seed=seed, init="weights")
    return {"fit_seconds": time.perf_counter() - started, "fitted": accuracy(fitted, data)}


def run_calibrated(task, data, teacher, budget, seed, quarter, rate=LEARNING_RATE):
    """The records of one budget that start from the activation-aware fit."""
    fit = keras_ssn.FitWeights(data=calibration_data(data, seed))
    record = {"budget": budget, "finetune_learning_rate": rate}
    started = time.perf_counter()
    fitted = keras_ssn.convert(teacher, budget, seed=seed, init=fit)
    record["fit_data_seconds"] = time.perf_counter() - started
    record["fitted_data"] = accuracy(fitted, data)
    tuned = copy_of(fitted)  # the same fit, not run twice
    record["finetune_data"] = task.train(tuned, data, quarter, seed, learning_rate=rate)
    if budget < 1:
        record["distil_data"] = distil(teacher, fitted, data, quarter, seed, rate)
    return record


def run_task(name, budgets, seed, quick=False, rate=LEARNING_RATE, calibrated_only=False):
    task = TASKS[name]
    data = task.load()
    epochs = task.quick_epochs if quick else task.epochs
    quarter = max(1, epochs // 4)
    keras.utils.set_random_seed(seed)
    teacher = task.build(1.0)
    plain = task.train(teacher, data, epochs, seed)
    result = {"task": name, "seed": seed, "epochs": epochs, "quarter": quarter,
              "plain": plain, "budgets": []}
    if not calibrated_only:
        more = keras.models.clone_model(teacher)
        more.set_weights(teacher.get_weights())
        result["plain_more"] = task.train(more, data, quarter, seed, learning_rate=rate)
    for budget in budgets:
        record = fitted_only(teacher, budget, seed, data) if calibrated_only else run_budget(
            task, data, teacher, budget, seed, epochs, quarter, rate)
        record.update(run_calibrated(task, data, teacher, budget, seed, quarter, rate))
        result["budgets"].append(record)
        print(json.dumps({"task": name, "seed": seed, **result["budgets"][-1]}), flush=True)
    return result


ROWS = (
    ("fitted", "(a) right after `init=\"weights\"`"),
    ("fitted_shrunk", "(a) the same, `keep_norms=False`"),
    ("finetune", "(b) fitted, then labels, a quarter schedule"),
    ("distil", "(b) fitted, then the Distiller, a quarter schedule"),
    ("random_distil", "drawn bank, the Distiller, a quarter schedule"),
    ("low_rank", "(d) low rank, then labels, a quarter schedule"),
    ("low_rank_distil", "(d) low rank, then the Distiller, a quarter schedule"),
    ("width_distil", "(e) narrower model, the Distiller, the whole schedule"),
    ("fitted_data", "(a) right after `FitWeights(data=x)`"),
    ("finetune_data", "(b) fitted with data, then labels, a quarter schedule"),
    ("distil_data", "(b) fitted with data, then the Distiller, a quarter schedule"),
)


def merged(results):
    """The results of each task and seed, their budgets' records merged."""
    tasks = {}
    for result in results:
        key = (result["task"], result["seed"])
        if key not in tasks:
            tasks[key] = {**result, "budgets": []}
        elif tasks[key]["epochs"] != result["epochs"]:
            raise ValueError(f"{key}: runs of {tasks[key]['epochs']} and "
                             f"{result['epochs']} epochs cannot share a table.")
        else:
            tasks[key].update({k: v for k, v in result.items() if k != "budgets"})
        budgets = {b["budget"]: b for b in tasks[key]["budgets"]}
        for record in result["budgets"]:
            budgets.setdefault(record["budget"], {}).update(record)
        tasks[key]["budgets"] = sorted(budgets.values(), key=_budget_order)
    return list(tasks.values())


def _budget_order(record):
    # Compression budgets from the largest down, then growth.
    return (record["budget"] >= 1, -record["budget"] if record["budget"] < 1 else 0)


def table(results):
    """Markdown tables, one per task, of the records in `results`."""
    lines = []
    for result in merged(results):
        budgets = result["budgets"]
        more = result.get("plain_more")
        more = "n/a" if more is None else f"{more:.3f}"
        lines += [f"### {result['task']} (seed {result['seed']}, {result['epochs']} epochs; "
                  f"plain model {result['plain']:.3f}; trained a quarter more "
                  f"{more})", "",
                  "| | " + " | ".join(f"{b['budget']:g}" for b in budgets) + " |",
                  "|---" * (len(budgets) + 1) + "|"]
        for key, label in ROWS:
            cells = [f"{b[key]:.3f}" if key in b else "n/a" for b in budgets]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        for key, label in (("fit_seconds", "fit seconds"),
                           ("fit_data_seconds", "fit seconds, with data")):
            lines.append(f"| {label} | " + " | ".join(
                f"{b[key]:.1f}" if key in b else "n/a" for b in budgets) + " |")
        lines.append("")
    return "\n".join(lines)


def seed_table(results):
    """Markdown tables, one per task, of each row's mean ± std over the seeds.

    Only cells that every seed of the task has are shown.
    """
    tasks = {}
    for result in merged(results):
        tasks.setdefault(result["task"], []).append(result)
    lines = []
    for task, runs in tasks.items():
        budgets = sorted({b["budget"] for r in runs for b in r["budgets"]},
                         key=lambda b: _budget_order({"budget": b}))
        plain = [r["plain"] for r in runs]
        lines += [f"### {task} (seeds {', '.join(str(r['seed']) for r in runs)}; plain model "
                  f"{np.mean(plain):.3f} ± {np.std(plain):.3f})", "",
                  "| | " + " | ".join(f"{b:g}" for b in budgets) + " |",
                  "|---" * (len(budgets) + 1) + "|"]
        for key, label in ROWS:
            cells = [_mean_std(runs, budget, key) for budget in budgets]
            if any(cell != "n/a" for cell in cells):
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _mean_std(runs, budget, key):
    values = [b[key] for r in runs for b in r["budgets"] if b["budget"] == budget and key in b]
    if len(values) < len(runs):
        return "n/a"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["mnist1d_cnn", "digits_wrn"])
    parser.add_argument("--budgets", nargs="+", type=float, default=list(BUDGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--quick", action="store_true",
                        help="each task's quick schedule instead of its full one")
    parser.add_argument("--out", default="benchmarks/results/pretrained.json")
    parser.add_argument("--finetune-learning-rate", type=float, default=LEARNING_RATE,
                        help="Adam's rate for the quarter schedules (the teacher and the "
                        "narrower model use the task's 3e-3)")
    parser.add_argument("--calibrated-only", action="store_true",
                        help="only the records that start from the fit with data")
    parser.add_argument("--table", nargs="+",
                        help="print the tables of these JSON files and stop")
    parser.add_argument("--over-seeds", action="store_true",
                        help="with --table: each row's mean ± std over the seeds")
    args = parser.parse_args()
    if args.table:
        results = []
        for path in args.table:
            with open(path) as f:
                results += json.load(f)
        print(seed_table(results) if args.over_seeds else table(results))
        return
    results = []
    for name in args.tasks:
        if TASKS[name].metric != "test accuracy":
            raise SystemExit(f"{name}: only classification tasks are run here.")
        for seed in args.seeds:
            results.append(run_task(name, args.budgets, seed, args.quick,
                                    args.finetune_learning_rate, args.calibrated_only))
            with open(args.out, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
