"""The benchmark scripts' bookkeeping: merging result files, choosing ablation runs."""

import inspect
import json

import keras_ssn
from benchmarks import ablation
from benchmarks.accuracy import PAPER_SETTINGS
from benchmarks.accuracy import combine


def write_results(path, task, runs):
    path.write_text(json.dumps({"tasks": {task: {"epochs": 1, "runs": runs}}}))
    return str(path)


def run(method, budget, seed, metric):
    return {"task": "mnist1d_cnn", "method": method, "budget": budget, "seed": seed,
            "trainable": 10, "metric": metric}


def test_combine_merges_files_and_a_later_run_replaces_an_earlier_one(tmp_path):
    first = write_results(tmp_path / "a.json", "mnist1d_cnn",
                          [run("ssn", 0.1, 0, 0.5), run("width", 0.1, 0, 0.6)])
    second = write_results(tmp_path / "b.json", "mnist1d_cnn",
                           [run("ssn", 0.1, 0, 0.9), run("ssn_paper", 0.1, 0, 0.7)])
    records = combine([first, second])["mnist1d_cnn"]
    by_method = {r["method"]: r["metric"] for r in records}
    assert by_method == {"ssn": 0.9, "width": 0.6, "ssn_paper": 0.7}


def test_ablation_varies_one_option_at_a_time_from_its_base():
    runs = ablation.variants(["upsample", "placement"], "paper")
    assert runs[0] == ("base", "paper")
    assert runs[1:] == [("upsample", "repeat"), ("upsample", "mask"), ("upsample", "wavg"),
                        ("placement", "sliding")]
    assert ablation.variants(["placement"], "defaults") == [
        ("base", "defaults"), ("placement", "sliding")]
    # The paper base is the benchmark's ssn_paper method; the other base is convert()'s defaults.
    assert {k: ablation.BASES["paper"][k] for k in PAPER_SETTINGS} == PAPER_SETTINGS
    defaults = inspect.signature(keras_ssn.convert).parameters
    for option, value in ablation.BASES["defaults"].items():
        assert defaults[option].default == value
