"""One entry point for every benchmark: accuracy against budget, step time, latency.

    python -m benchmarks.run --quick   # 14m41s measured on 2 CPU cores (TensorFlow)
    python -m benchmarks.run --full    # the full benchmark of docs/results.md

`--quick` trains every task once (seed 0, few epochs) at 1% and 400%
budgets and times a few steps: it shows that everything runs and gives
rough figures. `--full` is the benchmark `docs/results.md` reports: 1%,
10%, 50% and 400% budgets, seeds 0-2, each task's full epoch count and
longer timings. Results go to `--out` (default
`benchmarks/results/<quick|full>/`): `accuracy.json`, `step_time.json`,
`latency.json`, one PNG per task under `plots/`, and `report.md` with the
tables, which is also printed.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from benchmarks import accuracy  # noqa: E402
from benchmarks import latency  # noqa: E402
from benchmarks import step_time  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

SETTINGS = {
    "quick": {
        "accuracy": ["--quick", "--budgets", "0.01", "4", "--seeds", "0"],
        "step_time": ["--steps", "10", "--warmup", "3"],
        "latency": ["--calls", "10"],
    },
    "full": {
        "accuracy": ["--budgets", "0.01", "0.1", "0.5", "4", "--seeds", "0", "1", "2",
                     "--methods", "plain", *accuracy.ALL_METHODS],
        "step_time": ["--steps", "30"],
        "latency": ["--calls", "50"],
    },
}


def report(accuracy_results, step_results, latency_results, minutes):
    """Markdown with every table of the run."""
    lines = [f"Backend {keras.backend.backend()}, Keras {keras.__version__}, "
             f"{os.cpu_count()} CPUs, {minutes:.1f} minutes.", ""]
    for name, task_results in accuracy_results["tasks"].items():
        lines += [accuracy.table(TASKS[name], task_results["runs"]),
                  f"\n({task_results['epochs']} epochs; cells: mean ± std over seeds "
                  f"{accuracy_results['seeds']} (trainable count))", ""]
    lines += ["Train-step time (XLA), ratio to the plain model: "
              + ", ".join(f"{label} {ratio:.3f}"
                          for label, ratio in step_results["ratio_to_plain"].items()),
              ""]
    for batch, ratios in latency_results["ratio_to_plain"].items():
        lines.append(f"Inference latency, {batch}, ratio to the plain model: "
                     + ", ".join(f"{label} {ratio:.3f}" for label, ratio in ratios.items()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    settings = SETTINGS["quick" if args.quick else "full"]
    out = args.out or os.path.join("benchmarks", "results",
                                   "quick" if args.quick else "full")
    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()

    accuracy_results = accuracy.main(
        settings["accuracy"] + ["--tasks", *args.tasks,
                                "--out", os.path.join(out, "accuracy.json"),
                                "--plots", os.path.join(out, "plots")])
    step_results = step_time.main(settings["step_time"])
    latency_results = latency.main(settings["latency"])
    for name, result in (("step_time", step_results), ("latency", latency_results)):
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(result, f, indent=2)

    text = report(accuracy_results, step_results, latency_results,
                  (time.perf_counter() - start) / 60)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
