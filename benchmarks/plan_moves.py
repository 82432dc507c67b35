"""What moving entries between slices does to plans, and what it costs.

The planner settles slice sizes in proportion to the groups' full-size
weights, then moves a few entries between slices where a tiled weight's rows
would repeat needlessly (`keras_ssn.tiled_rows.spread_rows`). For each model
and budget this prints one JSON line: the slices before and after the moves,
how many entries moved, the entries in needlessly copied rows before and
after (`copied_entries`), the seconds the moves took and the seconds of the
whole `convert()` (one run each, so the seconds vary with the machine).

Models: the five tasks of docs/results.md at 1%, 10% and 50%; ResNet50 at
64 x 64 x 3 (10 classes) at 1%; a 64 -> 1024 -> 2048 trunk with 16 (at 1%)
or 32 (at 5%) `Dense(5)` heads, each head in a group of its own.

    python -m benchmarks.plan_moves [--out plan_moves.json]
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_ssn  # noqa: E402
from keras_ssn import planner  # noqa: E402
from keras_ssn import tiled_rows  # noqa: E402


def heads_model(count):
    """A two-layer trunk with `count` `Dense(5)` heads, and their groups."""
    inputs = keras.Input((64,))
    x = keras.layers.Dense(1024, name="trunk_1")(inputs)
    x = keras.layers.Dense(2048, name="trunk_2")(x)
    heads = [keras.layers.Dense(5, name=f"head_{i}")(x) for i in range(count)]
    groups = {"trunk_1": 0, "trunk_2": 0}
    groups.update({f"head_{i}": i + 1 for i in range(count)})
    return keras.Model(inputs, heads), groups


def cases():
    """`(name, build, budget, groups)` for every model and budget measured."""
    from benchmarks.tasks import TASKS

    for task in TASKS:
        for budget in (0.01, 0.1, 0.5):
            yield task, lambda task=task: TASKS[task].build(1.0), budget, "auto"
    yield "resnet50", lambda: keras.applications.ResNet50(
        weights=None, input_shape=(64, 64, 3), classes=10), 0.01, "auto"
    for count, budget in ((16, 0.01), (32, 0.05)):
        model, groups = heads_model(count)
        yield f"trunk_{count}_heads", lambda model=model: model, budget, groups


def measure(build, budget, groups):
    """Converts once, recording each call of the planner's moves."""
    calls = []
    spread_rows = planner.spread_rows

    def recorded(weights, owner, templates, sizes, upsample, allowed):
        start = time.perf_counter()
        moved = spread_rows(weights, owner, templates, sizes, upsample, allowed)
        calls.append(dict(
            seconds=time.perf_counter() - start,
            before=list(sizes), after=list(moved),
            copied_before=tiled_rows.copied_entries(weights, owner, templates, sizes, upsample),
            copied_after=tiled_rows.copied_entries(weights, owner, templates, moved, upsample),
        ))
        return moved

    model = build()
    planner.spread_rows = recorded
    try:
        start = time.perf_counter()
        converted = keras_ssn.convert(model, budget, groups=groups, seed=0)
        seconds = time.perf_counter() - start
    finally:
        planner.spread_rows = spread_rows
    final = calls[-1]  # the plan convert() kept (the budget search tries others)
    return dict(
        slices_before=final["before"],
        slices=[g.size for g in converted.sharing_plan.groups],
        moved=sum(abs(a - b) for a, b in zip(final["before"], final["after"])) // 2,
        copied_before=final["copied_before"],
        copied_after=final["copied_after"],
        move_seconds=round(sum(c["seconds"] for c in calls), 3),
        convert_seconds=round(seconds, 3),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="Also write the lines to this JSON file.")
    args = parser.parse_args()
    rows = []
    for name, build, budget, groups in cases():
        row = dict(model=name, budget=budget, **measure(build, budget, groups))
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
