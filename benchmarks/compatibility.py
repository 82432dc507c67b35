"""Run the whole contract of `convert()` on every model of `benchmarks.model_zoo`.

Every `keras_hub` backbone, every `keras.applications` function and every
`keras_cv` backbone, tiny (see `benchmarks/model_zoo.py`), is converted at
`--budget` (or, when its tiny config cannot train under that, at the smallest
budget the `BudgetError` names) and put through
`keras_ssn.checks.check_conversion` on its sample inputs: the trainable count,
one `fit` step under XLA, `.keras` save and load, `keras_ssn.clone_model`, SavedModel
export (TensorFlow, one input) and `materialize()`. Each model runs in its own
process (a crash or a leak stays with its model). The plain model's own
results (Keras's `clone_model`, rebuilding from its config, save and load:
`python -m benchmarks.model_zoo`) are read from `--plain`, so that a failure
plain Keras shares is told apart.

    python -m benchmarks.compatibility [--family hub applications keras_cv]
        [--names NAME ...] [--budget 0.1] [--plain FILE.json] [--out FILE.json]
        [--table docs/compatibility.md] [--merge OTHER.json ...]

`--table` rewrites the table between the markers in that file from every
record in `--out`. `--merge` runs nothing: it replaces `--out`'s records by
those of the other files (a rerun of some models) and writes `--out`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CHECKS = ("budget", "fit", "save_load", "clone", "export", "materialize")
BEGIN = "<!-- compatibility table: begin (python -m benchmarks.compatibility) -->"
END = "<!-- compatibility table: end -->"
FAMILY_TITLES = {"hub": "keras_hub backbones", "applications": "keras.applications",
                 "keras_cv": "keras_cv backbones"}


def run(family, name, budget):
    """Converts and checks one model; a JSON-able record."""
    import keras

    import keras_ssn
    from benchmarks import model_zoo
    from keras_ssn.checks import check_conversion

    if family == "keras_cv":
        model_zoo._keras_cv()
    record = {"family": family, "name": name, "backend": keras.backend.backend()}
    start = time.perf_counter()
    try:
        model = model_zoo.build(family, name)
        x = model_zoo.inputs(family, name, model)
        record["params"] = keras_ssn.count_trainable(model)
        record["budget"] = budget
        try:
            keras_ssn.convert(model, budget, seed=0)
        except keras_ssn.BudgetError as error:
            record["budget"] = budget = error.smallest
        with tempfile.TemporaryDirectory() as directory:
            result = check_conversion(model, budget, directory, inputs=x)
        plan = result["model"].sharing_plan
        record["checks"] = result["checks"]
        record["skipped"] = result["skipped"]
        record["shared_weights"] = len(plan.weights)
        record["kept_classes"] = sorted({e["class_name"] for e in plan.unshared_layers})
    except Exception as error:  # a finding: record it and go on
        record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        record["traceback"] = traceback.format_exc(limit=-4)
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def run_in_subprocess(family, name, budget, timeout):
    command = [sys.executable, "-m", "benchmarks.compatibility", "--one", family, name,
               "--budget", str(budget)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"family": family, "name": name, "error": f"timed out after {timeout} s"}
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"family": family, "name": name,
                "error": f"process exited with {done.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def cell(record, check):
    if check in record.get("checks", ()):
        return "yes"
    if check in record.get("skipped", {}):
        return "—"
    return "**no**"


def plain_cell(plain):
    if plain is None:
        return "not run"
    parts = []
    for key, label in (("clone", "clone_model"), ("save_load", "save/load")):
        if plain.get(key) is False:
            parts.append(f"{label} fails")
    return ", ".join(parts) or "all work"


def row(record, plain):
    """One model's table row."""
    params, budget = record.get("params"), record.get("budget")
    cells = [cell(record, c) if "error" not in record else "**no**" for c in CHECKS]
    return "| " + " | ".join([
        record["name"],
        f"{params:,}" if isinstance(params, int) else "",
        "" if budget is None else f"{budget:,}" if isinstance(budget, int) else f"{budget:g}",
        *cells,
        plain_cell(plain),
        ", ".join(record.get("kept_classes", [])),
        record.get("error", "").replace("|", "/"),
    ]) + " |"


def table(records, plain):
    """Markdown: totals, then one row per model."""
    lines = []
    for family, title in FAMILY_TITLES.items():
        rows = [r for r in records if r["family"] == family]
        if not rows:
            continue
        passed = [r for r in rows if "error" not in r]
        whole = [r for r in passed if all(c in r["checks"] or c in r["skipped"]
                                          for c in CHECKS)]
        lines += [f"### {title}: {len(whole)} of {len(rows)} pass every check that the plain model passes", "",
                  "| model | params | budget | " + " | ".join(CHECKS)
                  + " | plain Keras | kept | error |",
                  "|---" * (len(CHECKS) + 6) + "|"]
        for r in rows:
            lines.append(row(r, plain.get((family, r["name"]))))
        lines.append("")
    return "\n".join(lines)


def write_table(path, records, plain):
    with open(path) as f:
        text = f.read()
    start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
    with open(path, "w") as f:
        f.write(text[:start] + "\n" + table(records, plain) + "\n" + text[stop:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", nargs="+", default=["hub", "applications", "keras_cv"])
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--plain", default="benchmarks/results/model_zoo_tf.json")
    parser.add_argument("--out", default="benchmarks/results/compatibility_tf.json")
    parser.add_argument("--table")
    parser.add_argument("--merge", nargs="*", default=[],
                        help="JSON files of other runs whose records replace --out's")
    parser.add_argument("--timeout", type=int, default=900)
    parser.add_argument("--one", nargs=2, metavar=("FAMILY", "NAME"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run(*args.one, args.budget)), flush=True)
        return
    from benchmarks import model_zoo

    records = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            records = json.load(f)["records"]
    for path in args.merge:
        with open(path) as f:
            newer = json.load(f)["records"]
        keys = {(r["family"], r["name"]) for r in newer}
        records = [r for r in records if (r["family"], r["name"]) not in keys] + newer
    for family in ([] if args.merge else args.family):
        for name in args.names or list(model_zoo.REGISTRIES[family]):
            record = run_in_subprocess(family, name, args.budget, args.timeout)
            records = [r for r in records if (r["family"], r["name"]) != (family, name)]
            records.append(record)
            print(json.dumps({k: v for k, v in record.items() if k != "traceback"}),
                  flush=True)
            with open(args.out, "w") as f:
                json.dump({"records": records}, f, indent=1)
    if args.merge:
        with open(args.out, "w") as f:
            json.dump({"records": records}, f, indent=1)
    if args.table:
        plain = {}
        if os.path.exists(args.plain):
            with open(args.plain) as f:
                plain = {(r["family"], r["name"]): r for r in json.load(f)}
        order = {(f, n): i for i, (f, n) in enumerate(
            (f, n) for f in FAMILY_TITLES for n in model_zoo.REGISTRIES.get(f, {}))}
        records.sort(key=lambda r: order.get((r["family"], r["name"]), len(order)))
        write_table(args.table, records, plain)


if __name__ == "__main__":
    main()
