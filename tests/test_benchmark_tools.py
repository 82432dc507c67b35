"""The benchmark scripts' bookkeeping: merging result files, choosing ablation runs,
recording training curves."""

import argparse
import dataclasses
import inspect
import json

import keras
import numpy as np
import pytest

import keras_ssn
from benchmarks import ablation
from benchmarks import curves
from benchmarks import accuracy
from benchmarks.accuracy import PAPER_SETTINGS
from benchmarks.accuracy import combine
from benchmarks.architectures import cnn1d
from benchmarks.tasks import TASKS
from benchmarks.tasks import train_classifier


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
                        ("placement", "auto"), ("placement", "sliding"),
                        ("placement", "rows")]
    assert ablation.variants(["placement"], "defaults") == [
        ("base", "defaults"), ("placement", "consecutive"), ("placement", "sliding"),
        ("placement", "rows")]
    assert ablation.variants(["max_templates"], "defaults") == [
        ("base", "defaults"), ("max_templates", 1), ("max_templates", 2), ("max_templates", 4)]
    # The paper base is the benchmark's ssn_paper method; the other base is convert()'s defaults.
    assert {k: ablation.BASES["paper"][k] for k in PAPER_SETTINGS} == PAPER_SETTINGS
    defaults = inspect.signature(keras_ssn.convert).parameters
    for option, value in ablation.BASES["defaults"].items():
        assert defaults[option].default == value


def test_a_training_curve_records_every_epoch_and_leaves_the_result_unchanged():
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(n, 40, 1)).astype("float32"), rng.integers(0, 10, n))
            for n in (128, 64)]

    def train(**kwargs):
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        return train_classifier(cnn1d(0.25), data, 2, seed=0, **kwargs)

    curve = {}
    accuracy = train()
    assert train(curve=curve) == accuracy
    assert len(curve["loss"]) == len(curve["test_accuracy"]) == 2
    assert curve["test_accuracy"][-1] == pytest.approx(accuracy, abs=1e-6)


def test_curves_runs_a_method_budget_seed_triple_and_rejects_others(tmp_path):
    out = tmp_path / "curves.json"
    curves.main(["--task", "mnist1d_cnn", "--runs", "ssn:0.01:0", "--epochs", "1",
                 "--out", str(out)])
    (record,) = json.loads(out.read_text())["runs"]
    assert (record["method"], record["budget"], record["seed"]) == ("ssn", 0.01, 0)
    assert record["trainable"] == round(0.01 * keras_ssn.count_trainable(cnn1d()))
    assert len(record["test_accuracy"]) == 1
    assert record["test_accuracy"][0] == pytest.approx(record["metric"], abs=1e-6)
    with pytest.raises(argparse.ArgumentTypeError, match="method:budget:seed"):
        curves.parse_run("ssn:0.1")
    with pytest.raises(argparse.ArgumentTypeError, match="integer as seed"):
        curves.parse_run("ssn:0.1:x")


def test_a_learning_rate_given_to_the_accuracy_benchmark_reaches_training_and_the_record():
    received = []

    def train(model, data, epochs, seed, **options):
        received.append(options)
        return 0.5

    task = dataclasses.replace(TASKS["mnist1d_cnn"], load=lambda: None, train=train)
    records = accuracy.run_task(task, [0.1], [0], 1, ["plain", "ssn"], log=lambda line: None,
                                learning_rate=0.01)
    assert received == [{"learning_rate": 0.01}] * 2
    assert [(r["method"], r["learning_rate"]) for r in records] == [
        ("plain", 0.01), ("ssn", 0.01)]
    assert accuracy.run_task(task, [0.1], [0], 1, ["plain"], log=lambda line: None)[0].get(
        "learning_rate") is None
