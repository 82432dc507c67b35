"""Peak memory of a train step against the budget.

For the plain model and its conversions, prints XLA's memory analysis of
one compiled JAX train step, the state donated as Keras's trainer does
(`jax.jit(model.train_step, donate_argnums=0).lower(state, data).compile()`;
no step runs, so the figures do not depend on the machine): arguments
(variables, optimizer state, the batch), temp buffers and the peak,
`arguments + outputs - aliased + temp`, with flops and bytes accessed. With
`--rss`, also the peak RSS of 20 `train_on_batch` steps on TensorFlow
(`jit_compile=True`), each model in its own process.

    KERAS_BACKEND=jax python -m benchmarks.memory [--models mlp24 gpt2 wrn16_4]
        [--budgets 0.1 0.5 1 4] [--rss] [--out FILE] [--plot FILE]

Models (`benchmarks.cost.MODELS`): `mlp24` (24 x Dense(1024) + Dense(10),
batch 32), `gpt2` (a keras-hub GPT-2 backbone, 8 layers, 512 wide,
vocabulary 8,000, with a Dense head; batch 8 x 128 tokens), `wrn16_4`
(32x32x3, batch 128), `resnet50v2` (64x64x3, batch 8), `lstm2`
(2 x LSTM(256), batch 32).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from benchmarks.cost import MODELS  # noqa: E402
from benchmarks.cost import compiled_step  # noqa: E402
from benchmarks.cost import convert_options  # noqa: E402
from benchmarks.cost import timing  # noqa: E402
from benchmarks.cost import xla_figures  # noqa: E402

MB = 1e6


def step_memory(model, x, y):
    """XLA's memory and cost figures of `model`'s donated JAX train step.

    Returns:
        Dict of `arguments`, `outputs`, `aliased`, `temp` and `peak` bytes
        (peak = arguments + outputs - aliased + temp), `flops` and
        `bytes_accessed`.
    """
    compiled, _ = compiled_step(model, x, y, donate=True)
    memory = compiled.memory_analysis()
    figures = {
        "arguments": memory.argument_size_in_bytes,
        "outputs": memory.output_size_in_bytes,
        "aliased": memory.alias_size_in_bytes,
        "temp": memory.temp_size_in_bytes,
    }
    figures["peak"] = (figures["arguments"] + figures["outputs"] - figures["aliased"]
                       + figures["temp"])
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    figures["flops"] = float(cost["flops"])
    figures["bytes_accessed"] = float(cost["bytes accessed"])
    return figures


def table(result):
    """A Markdown table of `result["models"]`."""
    lines = ["| model | budget | trainable | arguments MB | temp MB | peak MB | peak × plain |"
             " flops × plain | bytes × plain | TF peak RSS MB |", "|---" * 10 + "|"]
    for name, entry in result["models"].items():
        rss = entry.get("rss", {})
        for label, r in entry["xla"].items():
            peak_rss = rss.get(label, {}).get("peak_rss_bytes")
            lines.append(
                f"| {name} | {label.removeprefix('ssn_')} | {r['trainable']:,} | "
                f"{r['arguments'] / MB:,.1f} | {r['temp'] / MB:,.1f} | {r['peak'] / MB:,.1f} | "
                f"{r['peak_ratio']:.3f} | {r['flops_ratio']:.3f} | "
                f"{r['bytes_accessed_ratio']:.3f} | "
                f"{'' if peak_rss is None else f'{peak_rss / MB:,.0f}'} |"
            )
    return "\n".join(lines)


def plot(result, path, baseline=None):
    """Peak memory against the budget, one panel per model; the plain model as a line.

    `baseline`, another run's result (other `convert()` options), is drawn
    as a second curve labelled with its options.
    """
    from matplotlib.figure import Figure

    names = list(result["models"])
    figure = Figure(figsize=(4 * len(names), 3.2), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for axis, name in zip(axes, names):
        records = result["models"][name]["xla"]
        budgets = [float(label.removeprefix("ssn_")) for label in records if label != "plain"]
        peaks = [records[f"ssn_{b:g}"]["peak"] / MB for b in budgets]
        axis.plot(budgets, peaks, "o-", label=_label(result))
        if baseline is not None and name in baseline["models"]:
            other = baseline["models"][name]["xla"]
            axis.plot(budgets, [other[f"ssn_{b:g}"]["peak"] / MB for b in budgets], "s:",
                      label=_label(baseline))
        axis.axhline(records["plain"]["peak"] / MB, color="0.4", linestyle="--",
                     label="plain model")
        axis.set_xscale("log")
        axis.set_xticks(budgets, [f"{b:g}" for b in budgets])
        axis.set_xlabel("budget (fraction of the model's parameters)")
        axis.set_ylabel("peak MB (XLA, JAX train step)")
        axis.set_title(name, fontsize=10)
        axis.legend(fontsize=8)
    figure.savefig(path)


def _label(result):
    options = result.get("options") or {}
    return "SSN" + "".join(f", {k}={v}" for k, v in options.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS),
                        default=["mlp24", "gpt2", "wrn16_4", "resnet50v2", "lstm2"])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 0.5, 1.0, 4.0])
    parser.add_argument("--rss", action="store_true",
                        help="also the peak RSS of 20 steps on TensorFlow, one process each")
    parser.add_argument("--templates", help="convert()'s templates for the SSN models")
    parser.add_argument("--placement", help="convert()'s placement for the SSN models")
    parser.add_argument("--rematerialize", choices=["true", "false"],
                        help="convert()'s rematerialize (default: convert()'s default)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--plot", help="also draw peak memory against the budget here")
    parser.add_argument("--baseline",
                        help="a JSON written by another run, drawn in the plot too")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        sys.exit("XLA's memory analysis needs the JAX backend: KERAS_BACKEND=jax")
    options = convert_options(args)
    result = {"keras": keras.__version__, "options": options, "models": {}}
    for name in args.models:
        figures = xla_figures(name, args.budgets, options, measure=step_memory,
                              ratios=("peak", "flops", "bytes_accessed"))
        entry = {"batch": MODELS[name][1], "xla": figures}
        if args.rss:
            entry["rss"] = timing(name, args.budgets, steps=20, options=options,
                                  backend="tensorflow")
        result["models"][name] = entry
        print(json.dumps({name: entry}), flush=True)
    if args.out:
        with open(args.out, "w") as file:
            json.dump(result, file, indent=2)
    if args.plot:
        baseline = None
        if args.baseline:
            with open(args.baseline) as file:
                baseline = json.load(file)
        plot(result, args.plot, baseline)
    print(table(result))
    return result


if __name__ == "__main__":
    main()
