"""Run `check_conversion` on `keras.applications` models built with `weights=None`.

The test suite checks one application (MobileNetV2); these models take
minutes each to compile on a CPU, so the rest are checked here. For each
model the script prints which checks passed (budget, fit under XLA, save and
load, SavedModel export on TensorFlow, materialize) or the first error, and
writes JSON.

    python -m benchmarks.compatibility [--budget 0.1] [--models ResNet50 ...]
        [--out compatibility.json]
"""

import argparse
import json
import os
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from keras_ssn.checks import check_conversion  # noqa: E402
from keras_ssn.layer_paths import count_trainable  # noqa: E402

APPLICATIONS = {
    "ResNet50": {},
    "MobileNetV2": {"alpha": 0.35},
    "MobileNetV3Small": {"alpha": 0.75},
    "EfficientNetB0": {},
    "DenseNet121": {},
    "ConvNeXtTiny": {},
    "Xception": {},
}
INPUT_SHAPE = {"Xception": (71, 71, 3)}


def run(name, budget):
    model = getattr(keras.applications, name)(
        weights=None, input_shape=INPUT_SHAPE.get(name, (32, 32, 3)), classes=5,
        **APPLICATIONS[name],
    )
    record = {"model": name, "params": count_trainable(model), "budget": budget}
    start = time.perf_counter()
    try:
        result = check_conversion(model, budget)
        record["checks"] = result["checks"]
        plan = result["model"].sharing_plan
        record["shared_weights"] = len(plan.weights)
        record["unshared"] = sorted({e["class_name"] for e in plan.unshared_layers})
    except Exception as error:  # report, then go on with the next model
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc(limit=3)
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--models", nargs="+", default=list(APPLICATIONS))
    parser.add_argument("--out", default="compatibility.json")
    args = parser.parse_args()
    records = []
    for name in args.models:
        records.append(run(name, args.budget))
        print(json.dumps({k: v for k, v in records[-1].items() if k != "traceback"}),
              flush=True)
    with open(args.out, "w") as f:
        json.dump({"backend": keras.backend.backend(), "records": records}, f, indent=1)


if __name__ == "__main__":
    main()
