"""Train-step time and memory of converted models against the plain model, under XLA.

Builds one model, converts it at each budget, compiles every model with
`jit_compile=True`, warms up (compilation excluded), then times train steps.
By default all models live in one process and are timed in interleaved
rounds, so that machine noise hits them alike. With `--separate` each model
runs in its own process, which also gives each model's peak host memory and,
on a JAX GPU, its peak device memory. Prints JSON: per-model median step
time, the SSN/plain ratio, trainable counts, trainable and optimizer-state
bytes.

    python -m benchmarks.step_time [--model resnet|wrn28_10] [--budgets 0.1 4.0]
        [--batch 64] [--steps 30] [--dtype-policy mixed_bfloat16] [--separate]
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.architectures import resnet  # noqa: E402
from benchmarks.architectures import wide_resnet  # noqa: E402

MODELS = {
    "resnet": lambda: resnet(classes=10),
    "wrn28_10": lambda: wide_resnet(28, 10, classes=100),
    "wrn16_2": lambda: wide_resnet(16, 2, classes=100),
}
CLASSES = {"resnet": 10, "wrn28_10": 100, "wrn16_2": 100}


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def time_steps(models, x, y, warmup, steps):
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            start = time.perf_counter()
            loss = model.train_on_batch(x, y)
            float(np.asarray(loss))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def build(name, budget):
    """The plain model (`budget` None) or its conversion at `budget`."""
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    if budget is not None:
        model = keras_ssn.convert(model, budget, seed=0)
    return compiled(model)


def memory(model):
    """Trainable and optimizer-state bytes of a built, compiled model."""
    def nbytes(variables):
        return int(sum(np.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables))

    model.optimizer.build(model.trainable_variables)
    return {
        "trainable_bytes": nbytes(model.trainable_variables),
        "optimizer_state_bytes": nbytes(model.optimizer.variables),
    }


def peak_memory():
    """Peak host memory of this process and, on a JAX GPU, peak device memory."""
    peaks = {"peak_host_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            peaks["peak_device_bytes"] = device.memory_stats()["peak_bytes_in_use"]
            peaks["device"] = device.device_kind
    return peaks


def batch_of(name, size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, CLASSES[name], size)
    return x, y


def run_one(args, label):
    """Times one model in this process; returns its JSON record."""
    budget = None if label == "plain" else float(label.removeprefix("ssn_"))
    model = build(args.model, budget)
    x, y = batch_of(args.model, args.batch)
    median = time_steps({label: model}, x, y, args.warmup, args.steps)[label]
    return {"median_step_seconds": median,
            "trainable": keras_ssn.count_trainable(model),
            **memory(model), **peak_memory()}


def run_separately(args, labels):
    """Runs every model in a fresh process, so memory peaks are its own."""
    records = {}
    for label in labels:
        command = [sys.executable, "-m", "benchmarks.step_time", "--only", label,
                   *_forwarded(args)]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        records[label] = json.loads(output.stdout.strip().splitlines()[-1])
    return records


def _forwarded(args):
    return ["--model", args.model, "--batch", str(args.batch), "--warmup",
            str(args.warmup), "--steps", str(args.steps), "--dtype-policy",
            args.dtype_policy]


def run_together(args, labels):
    models = {}
    for label in labels:
        budget = None if label == "plain" else float(label.removeprefix("ssn_"))
        models[label] = build(args.model, budget)
    x, y = batch_of(args.model, args.batch)
    medians = time_steps(models, x, y, args.warmup, args.steps)
    return {label: {"median_step_seconds": medians[label],
                    "trainable": keras_ssn.count_trainable(models[label]),
                    **memory(models[label])} for label in labels}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 4.0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--dtype-policy", default="float32")
    parser.add_argument("--separate", action="store_true",
                        help="one process per model; adds peak memory figures")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    keras.config.set_dtype_policy(args.dtype_policy)

    if args.only:
        print(json.dumps(run_one(args, args.only)))
        return None
    labels = ["plain"] + [f"ssn_{b:g}" for b in args.budgets]
    run = run_separately if args.separate else run_together
    records = run(args, labels)
    plain = records["plain"]["median_step_seconds"]
    result = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "model": args.model,
        "batch": args.batch,
        "steps": args.steps,
        "dtype_policy": args.dtype_policy,
        "separate_processes": args.separate,
        "models": records,
        "ratio_to_plain": {
            label: r["median_step_seconds"] / plain
            for label, r in records.items() if label != "plain"
        },
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
