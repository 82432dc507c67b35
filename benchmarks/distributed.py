"""What a data-parallel train step sends between devices: all-reduce bytes.

Compiles one JAX train step under `keras.distribution.DataParallel` on
`--devices` devices (host CPU devices by default, made with
`--xla_force_host_platform_device_count`; no step runs) and adds up the
bytes of every all-reduce in XLA's compiled module, for the plain model and
its conversions. The physical minimum of a data-parallel step is 4 bytes per
trainable parameter (the gradient, float32), plus a few scalars (loss,
metrics).

    python -m benchmarks.distributed [--models wrn16_4 char_lm]
        [--budgets 0.01 0.1 1 4] [--devices 2] [--out FILE]
"""

import argparse
import json
import os
import re
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _force_devices(argv):
    count = 2
    if "--devices" in argv:
        count = int(argv[argv.index("--devices") + 1])
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={count}".strip()
        )


if __name__ == "__main__":
    _force_devices(sys.argv)

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks import architectures  # noqa: E402
from benchmarks.cost import compiled_step  # noqa: E402
from benchmarks.step_breakdown import array_bytes  # noqa: E402
from benchmarks.tasks import CHAR_LENGTH  # noqa: E402
from benchmarks.tasks import VOCABULARY  # noqa: E402


def dense_model():
    """A 16 -> 64 -> 64 -> 4 Dense model (5,508 parameters)."""
    return keras.Sequential([
        keras.Input((16,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(4),
    ])


# name: (builder, batch size, input shape, classes)
MODELS = {
    "dense": (dense_model, 32, (16,), 4),
    "wrn16_4": (lambda: architectures.wide_resnet(16, 4, classes=10), 128, (32, 32, 3), 10),
    "char_lm": (lambda: architectures.char_transformer(VOCABULARY, CHAR_LENGTH), 32,
                (CHAR_LENGTH,), VOCABULARY),
}


def all_reduce_bytes(hlo_text):
    """Bytes that the all-reduces of a compiled HLO module sum across devices."""
    total = 0
    for line in hlo_text.splitlines():
        if not re.search(r"\ball-reduce(-start)?\(", line):
            continue
        total += array_bytes(line.split("=", 1)[1].split(" all-reduce")[0])
    return total


def batch(name, size, seed=0):
    """A random batch for `MODELS[name]`."""
    _, _, shape, classes = MODELS[name]
    rng = np.random.default_rng(seed)
    if name == "char_lm":
        x = rng.integers(0, VOCABULARY, (size, *shape)).astype("int32")
        return x, rng.integers(0, classes, (size, *shape)).astype("int32")
    x = rng.normal(size=(size, *shape)).astype("float32")
    if name == "dense":
        return x, rng.normal(size=(size, classes)).astype("float32")
    return x, rng.integers(0, classes, size).astype("int32")


def compiled_step_text(model, x, y):
    """The compiled HLO of `model`'s train step on the active distribution's devices."""
    distribution = keras.distribution.distribution()
    placed = [
        jax.device_put(a, distribution.get_data_layout(a.shape).backend_layout)
        for a in (x, y)
    ]
    compiled, _ = compiled_step(model, *placed)
    return compiled.as_text()


def measure(name, budget, devices):
    """All-reduce bytes of one train step of the plain model or a conversion."""
    keras.backend.clear_session()  # also clears the distribution
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    keras.utils.set_random_seed(0)
    model = MODELS[name][0]()
    if budget is not None:
        model = keras_ssn.convert(model, budget, seed=0)
    loss = ("mse" if name == "dense"
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer="adam", loss=loss, jit_compile=True)
    x, y = batch(name, MODELS[name][1])
    trainable = keras_ssn.count_trainable(model)
    sent = all_reduce_bytes(compiled_step_text(model, x, y))
    return {"trainable": trainable, "all_reduce_bytes": sent,
            "ratio_to_minimum": sent / (4 * trainable)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        default=["wrn16_4", "char_lm"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.01, 0.1, 1, 4])
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    devices = keras.distribution.list_devices()[: args.devices]
    result = {"devices": len(devices), "platform": devices[0].split(":")[0],
              "keras": keras.__version__, "jax": jax.__version__, "models": {}}
    for name in args.models:
        records = {}
        for budget in [None, *args.budgets]:
            label = "plain" if budget is None else f"{budget:g}"
            records[label] = measure(name, budget, devices)
            print(json.dumps({name: {label: records[label]}}), flush=True)
        result["models"][name] = records
    if args.out:
        with open(args.out, "w") as file:
            json.dump(result, file, indent=2)
    print(table(result))
    return result


def table(result):
    """A Markdown table of `main`'s result."""
    lines = ["| model | budget | trainable | all-reduce bytes per step | × 4 B × trainable |",
             "|---|---|---|---|---|"]
    for name, records in result["models"].items():
        for label, record in records.items():
            lines.append(
                f"| {name} | {label} | {record['trainable']:,} | "
                f"{record['all_reduce_bytes']:,} | {record['ratio_to_minimum']:.3f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
