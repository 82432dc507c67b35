"""What one train step costs: XLA's own figures, and measured memory and time.

For the plain model and its conversions, prints XLA's analysis of one
compiled JAX train step (`jax.jit(model.train_step).lower(state, data)
.compile()`: flops, bytes accessed, temp buffer bytes; no step runs, so the
figures do not depend on machine load) and, with `--timing`, each model's
peak host memory (RSS; also the peak before the first step, which building
and converting the model reach) and median step time under
`jit_compile=True`, each model in its own process.

    KERAS_BACKEND=jax python -m benchmarks.cost [--models dense64 wrn16_4]
        [--budgets 0.01 0.1 1 4] [--placement rows] [--templates fewest]
        [--dtype-policy mixed_bfloat16] [--timing] [--out FILE]

`--timing` also runs on TensorFlow (`KERAS_BACKEND=tensorflow`), whose
compiled step XLA does not expose; the XLA figures need JAX.
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
from benchmarks.architectures import wide_resnet  # noqa: E402


def dense_stack(depth=64, width=512, classes=10):
    """`depth` x `Dense(width, relu)`, then `Dense(classes)`."""
    return keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
        + [keras.layers.Dense(classes)],
        name=f"dense{depth}",
    )


def lstm_model(vocabulary=64, length=32, units=256, classes=10):
    """A 2-layer LSTM classifier over token ids."""
    return keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            keras.layers.Embedding(vocabulary, units),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.LSTM(units),
            keras.layers.Dense(classes),
        ],
        name="lstm2",
    )


def mlp(depth=24, width=1024, classes=10):
    """`depth` x `Dense(width, relu)` on `width` inputs, then `Dense(classes)`."""
    return dense_stack(depth, width, classes)


def gpt2_lm(vocabulary=8000, layers=8, width=512, length=128):
    """A keras-hub GPT-2 backbone (built from its config) with a `Dense` head."""
    import keras_hub

    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=vocabulary, num_layers=layers, num_heads=8, hidden_dim=width,
        intermediate_dim=4 * width, max_sequence_length=length,
    )
    token_ids = keras.Input((length,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((length,), dtype="int32", name="padding_mask")
    hidden = backbone({"token_ids": token_ids, "padding_mask": padding_mask})
    logits = keras.layers.Dense(vocabulary, name="head")(hidden)
    return keras.Model([token_ids, padding_mask], logits, name="gpt2_lm")


def _resnet50v2():
    return keras.applications.ResNet50V2(
        weights=None, input_shape=(64, 64, 3), classes=10
    )


# name: (builder, batch size, input shape (int inputs: their vocabulary))
MODELS = {
    "dense64": (dense_stack, 32, (512,)),
    "wrn16_4": (lambda: wide_resnet(16, 4, classes=10), 128, (32, 32, 3)),
    "wrn28_10": (lambda: wide_resnet(28, 10, classes=100), 128, (32, 32, 3)),
    "resnet50v2": (_resnet50v2, 8, (64, 64, 3)),
    "lstm2": (lstm_model, 32, (32,)),
    "mlp24": (mlp, 32, (1024,)),
    "gpt2": (gpt2_lm, 8, (128,)),
}


def batch(model, size, seed=0):
    """A random `(x, y)` batch for `model`.

    Integer inputs get token ids (a padding mask, all ones); a model with
    several inputs gets a list. Targets are class ids, one per output
    position (one per example for a classifier, one per token for a
    language model).
    """
    rng = np.random.default_rng(seed)
    inputs = []
    for spec in model.inputs:
        shape = (size,) + tuple(spec.shape[1:])
        if "mask" in spec.name:
            inputs.append(np.ones(shape, "int32"))
        elif "int" in str(spec.dtype):
            inputs.append(rng.integers(0, 2, shape).astype("int32"))
        else:
            inputs.append(rng.normal(size=shape).astype("float32"))
    x = inputs[0] if len(inputs) == 1 else inputs
    output = model.outputs[0].shape
    targets = rng.integers(0, output[-1], (size,) + tuple(output[1:-1]))
    return x, targets.astype("int32")


def compile_for_training(model):
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def compiled_step(model, x, y, donate=False):
    """`model`'s JAX train step on `(x, y)`, compiled by XLA, and its state.

    With `donate`, the state is donated to the step (`donate_argnums=0`), as
    Keras's trainer does, so XLA updates it in place: what its memory
    analysis calls aliased.

    Returns:
        `(compiled, state)`: the `jax.stages.Compiled` step and the
        `(trainable, non_trainable, optimizer, metrics)` variable values it
        was compiled for.
    """
    import jax

    model._symbolic_build(data_batch=(x, y))
    model.optimizer.build(model.trainable_variables)
    state = tuple(
        [v.value for v in variables]
        for variables in (
            model.trainable_variables,
            model.non_trainable_variables,
            model.optimizer.variables,
            model.metrics_variables,
        )
    )
    step = jax.jit(model.train_step, donate_argnums=0 if donate else ())
    return step.lower(state, (x, y)).compile(), state


def compiled_step_cost(model, x, y):
    """XLA's cost and memory analysis of `model`'s compiled JAX train step.

    Args:
        model: A compiled model (JAX backend).
        x: An input batch.
        y: A target batch.

    Returns:
        Dict with `flops`, `bytes_accessed` and `temp_bytes` (XLA's temporary
        buffers, in bytes) of the step, and `optimizer_bytes_accessed`: the
        bytes accessed by the optimizer's update alone (the variables'
        values standing in for their gradients).
    """
    import jax

    compiled, state = compiled_step(model, x, y)
    cost = _cost(compiled)
    trainable, _, optimizer_state, _ = state
    update = jax.jit(model.optimizer.stateless_apply).lower(
        optimizer_state, trainable, trainable
    ).compile()
    return {
        "flops": float(cost["flops"]),
        "bytes_accessed": float(cost["bytes accessed"]),
        "temp_bytes": int(compiled.memory_analysis().temp_size_in_bytes),
        "optimizer_bytes_accessed": float(_cost(update)["bytes accessed"]),
    }


def _cost(compiled):
    cost = compiled.cost_analysis()
    return cost[0] if isinstance(cost, (list, tuple)) else cost


def build(name, budget, options=None, dtype_policy=None):
    """The plain model (`budget` None) or its conversion with `options`, compiled.

    `dtype_policy` (e.g. "mixed_bfloat16") is set before building, since
    `keras.backend.clear_session()` resets it.
    """
    keras.utils.set_random_seed(0)
    if dtype_policy is not None:
        keras.config.set_dtype_policy(dtype_policy)
    model = MODELS[name][0]()
    if budget is not None:
        model = keras_ssn.convert(model, budget, seed=0, **(options or {}))
    return compile_for_training(model)


def xla_figures(name, budgets, options=None, dtype_policy=None,
                measure=None, ratios=("flops", "bytes_accessed")):
    """XLA figures of the plain model and each conversion, with ratios.

    Args:
        measure: `measure(model, x, y)` returns a dict of figures;
            `compiled_step_cost` by default.
        ratios: Figures also given as a ratio to the plain model's
            (`"<figure>_ratio"`).
    """
    measure = measure or compiled_step_cost
    records = {}
    for budget in [None, *budgets]:
        model = build(name, budget, options, dtype_policy)
        x, y = batch(model, MODELS[name][1])
        label = "plain" if budget is None else f"ssn_{budget:g}"
        records[label] = {"trainable": keras_ssn.count_trainable(model),
                          **measure(model, x, y)}
        keras.backend.clear_session()
    plain = records["plain"]
    for record in records.values():
        for key in ratios:
            record[f"{key}_ratio"] = record[key] / plain[key]
    return records


def time_one(name, label, steps=20, warmup=3, options=None, dtype_policy=None):
    """Median step time and peak RSS of one model, in this process.

    `peak_rss_before_training_bytes` is the peak reached while building
    (and converting) the model, before its first step.
    """
    budget = None if label == "plain" else float(label.removeprefix("ssn_"))
    model = build(name, budget, options, dtype_policy)
    before_training = _peak_rss_bytes()
    x, y = batch(model, MODELS[name][1])
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(np.asarray(model.train_on_batch(x, y)))
        times.append(time.perf_counter() - start)
    return {
        "median_step_seconds": float(np.median(times)),
        "peak_rss_bytes": _peak_rss_bytes(),
        "peak_rss_before_training_bytes": before_training,
    }


def _peak_rss_bytes():
    """This process's peak RSS since it started (`VmHWM` on Linux).

    `ru_maxrss` is not used where `VmHWM` exists: on Linux a child process
    starts with its parent's peak, which would hide a smaller one.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timing(name, budgets, steps, options=None, dtype_policy=None, backend=None):
    """Runs `time_one` for every model in a fresh process of its own.

    `backend` (`"tensorflow"`, `"jax"`) sets `KERAS_BACKEND` for those
    processes; this process's backend by default.
    """
    env = dict(os.environ, KERAS_BACKEND=backend or keras.backend.backend())
    records = {}
    for label in ["plain"] + [f"ssn_{b:g}" for b in budgets]:
        command = [sys.executable, "-m", "benchmarks.cost", "--time-only", label,
                   "--models", name, "--steps", str(steps)]
        for option, value in (options or {}).items():
            command += [f"--{option}", str(value).lower()]
        if dtype_policy is not None:
            command += ["--dtype-policy", dtype_policy]
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                env=env)
        records[label] = json.loads(output.stdout.strip().splitlines()[-1])
    plain = records["plain"]["median_step_seconds"]
    for record in records.values():
        record["step_ratio"] = record["median_step_seconds"] / plain
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        default=["dense64", "wrn16_4"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.01, 0.1, 1.0, 4.0])
    parser.add_argument("--timing", action="store_true",
                        help="also peak RSS and step time, one process per model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--placement", help="convert()'s placement for the SSN models")
    parser.add_argument("--templates", help="convert()'s templates for the SSN models")
    parser.add_argument("--rematerialize", choices=["true", "false"],
                        help="convert()'s rematerialize for the SSN models")
    parser.add_argument("--dtype-policy",
                        help="Keras dtype policy to build every model under")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--time-only", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = convert_options(args)
    if args.time_only:
        print(json.dumps(
            time_one(args.models[0], args.time_only, args.steps, options=options,
                     dtype_policy=args.dtype_policy)
        ))
        return None
    result = {"backend": keras.backend.backend(), "keras": keras.__version__,
              "options": options, "dtype_policy": args.dtype_policy or "float32",
              "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "models": {}}
    for name in args.models:
        entry = {"batch": MODELS[name][1]}
        if keras.backend.backend() == "jax":
            entry["xla"] = xla_figures(name, args.budgets, options, args.dtype_policy)
        if args.timing:
            entry["timing"] = timing(
                name, args.budgets, args.steps, options, args.dtype_policy
            )
        result["models"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(result, file, indent=2)
    print(table(result))
    return result


def convert_options(args):
    """The `convert()` options named on the command line, as `convert()` takes them."""
    options = {option: getattr(args, option) for option in ("placement", "templates")
               if getattr(args, option, None) is not None}
    if getattr(args, "rematerialize", None) is not None:
        options["rematerialize"] = args.rematerialize == "true"
    return options


def table(result):
    """A Markdown table of the figures in `result`."""
    lines = ["| model | budget | trainable | flops × plain | bytes × plain | temp MB |"
             " step × plain | peak RSS GB | before training |", "|---" * 9 + "|"]
    for name, entry in result["models"].items():
        xla = entry.get("xla", {})
        timed = entry.get("timing", {})
        for label in xla or timed:
            x = xla.get(label, {})
            t = timed.get(label, {})
            lines.append(
                f"| {name} | {label.removeprefix('ssn_')} | {x.get('trainable', '')} | "
                f"{_fmt(x.get('flops_ratio'))} | {_fmt(x.get('bytes_accessed_ratio'))} | "
                f"{_fmt(x.get('temp_bytes', 0) / 1e6 if x else None, 1)} | "
                f"{_fmt(t.get('step_ratio'))} | "
                f"{_fmt(t.get('peak_rss_bytes', 0) / 1e9 if t else None, 2)} | "
                f"{_fmt(t.get('peak_rss_before_training_bytes', 0) / 1e9 if t else None, 2)} |"
            )
    return "\n".join(lines)


def _fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
