"""Inference latency: the plain model, SSN models, and SSN models after `materialize()`.

`materialize()` turns a converted model back into the original architecture
with the generated weights, so its latency should equal the plain model's;
the unmaterialized SSN model generates every weight in each call. Each
model runs `predict_on_batch` under XLA; the script reports the median over
`--calls` calls after warm-up, per batch size, as JSON.

    python -m benchmarks.latency [--model resnet] [--budgets 0.1 4.0]
        [--batches 1 64] [--calls 50]
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.step_time import MODELS  # noqa: E402
from benchmarks.step_time import batch_of  # noqa: E402


def models_to_time(name, budgets):
    """The plain model and, per budget, the SSN model and its materialized copy."""
    keras.utils.set_random_seed(0)
    plain = MODELS[name]()
    models = {"plain": plain}
    for budget in budgets:
        shared = keras_ssn.convert(plain, budget, seed=0)
        models[f"ssn_{budget:g}"] = shared
        models[f"materialized_{budget:g}"] = keras_ssn.materialize(shared)
    for model in models.values():
        model.compile(jit_compile=True)
    return models


def median_latency(models, x, warmup, calls):
    """Median seconds per `predict_on_batch(x)`, models interleaved call by call."""
    for model in models.values():
        for _ in range(warmup):
            np.asarray(model.predict_on_batch(x))
    times = {name: [] for name in models}
    for _ in range(calls):
        for name, model in models.items():
            start = time.perf_counter()
            np.asarray(model.predict_on_batch(x))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 4.0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)
    models = models_to_time(args.model, args.budgets)
    result = {"backend": keras.backend.backend(), "model": args.model,
              "calls": args.calls, "median_seconds": {}, "ratio_to_plain": {}}
    for size in args.batches:
        x, _ = batch_of(args.model, size)
        medians = median_latency(models, x, args.warmup, args.calls)
        result["median_seconds"][f"batch_{size}"] = medians
        result["ratio_to_plain"][f"batch_{size}"] = {
            name: seconds / medians["plain"] for name, seconds in medians.items()
            if name != "plain"}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
