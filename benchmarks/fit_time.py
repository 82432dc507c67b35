"""How long `convert(init="weights")` takes on a large model, and how close it gets.

Converts `keras.applications.ResNet50V2(weights=None)` (25.6 M parameters;
no download, so its weights are its random initial ones, which no plan can
compress: the errors below 100% are a worst case) at each budget, once with
the fit and once without, each budget in its own process, and prints one
JSON line per budget: the seconds of each conversion, the fit's relative
weight error, the largest output difference relative to the largest output
on two random images, and the process's peak RSS.

    python -m benchmarks.fit_time [--budgets 0.5 1 4] [--calibration 16] [--out fit_time.json]

With `--calibration N`, each budget's conversion fits with
`FitWeights(data=...)` on N random images instead (its time, output
difference and peak RSS; no conversion without the fit).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def weight_error(model, fitted, paths):
    """The fit's error: root mean square of each shared weight's relative error."""
    import keras
    import numpy as np

    import keras_ssn
    from keras_ssn.layer_paths import walk_layers

    plain = dict(walk_layers(keras_ssn.materialize(fitted)))
    squares = []
    for path, layer in walk_layers(model):
        for weight, generated in zip(layer.weights, plain[path].weights):
            if f"{path}/{weight.name}" in paths:
                a, b = (keras.ops.convert_to_numpy(w).astype("float64")
                        for w in (weight, generated))
                squares.append((np.linalg.norm(b - a) / np.linalg.norm(a)) ** 2)
    return float(np.mean(squares) ** 0.5)


def measure(budget, calibration=0):
    import keras
    import numpy as np

    import keras_ssn

    model = keras.applications.ResNet50V2(weights=None)
    images = np.random.default_rng(1).normal(size=(calibration, 224, 224, 3))
    init = keras_ssn.FitWeights(data=images.astype("float32"), batch_size=8) if calibration \
        else "weights"
    started = time.perf_counter()
    fitted = keras_ssn.convert(model, budget, seed=0, init=init)
    fit_seconds = time.perf_counter() - started
    record = {"budget": budget, "calibration": calibration,
              "seconds_with_fit": round(fit_seconds, 1)}
    if not calibration:
        started = time.perf_counter()
        keras_ssn.convert(model, budget, seed=0)
        record["seconds_without"] = round(time.perf_counter() - started, 1)
    x = np.random.default_rng(0).normal(size=(2, 224, 224, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))
    difference = np.abs(keras.ops.convert_to_numpy(fitted(x)) - expected).max()
    return {
        **record, "params": keras_ssn.count_trainable(model),
        "weight_error": weight_error(model, fitted, set(fitted.sharing_plan.weights)),
        "output_difference": float(difference / np.abs(expected).max()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "backend": keras.backend.backend(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="+", type=float, default=[0.5, 1.0, 4.0])
    parser.add_argument("--calibration", type=int, default=0,
                        help="random images for FitWeights(data=...) (the activation-aware "
                        "fit alone, in its own process); 0: the fit without data")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results/fit_time.json")
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.calibration)), flush=True)
        return
    records = []
    for budget in args.budgets:
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.fit_time", "--one", str(budget),
             "--calibration", str(args.calibration)],
            capture_output=True, text=True, check=True).stdout
        records.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(records[-1]), flush=True)
    with open(args.out, "w") as f:
        json.dump(records, f, indent=1)


if __name__ == "__main__":
    main()
