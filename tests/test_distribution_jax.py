"""keras.distribution on JAX: an all-reduce of the budget, a sharded bank, processes."""

import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import run_script

# Each test runs scripts that set up JAX and its devices in processes of their
# own, whatever the suite's backend: they run once, in the JAX half.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the scripts run on JAX; run in the JAX half"
)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_data_parallel_all_reduce_carries_the_budget_and_matches_one_device():
    report = run_script("tests/scripts/data_parallel_jax.py")
    assert report["devices"] == 2
    # Plain: XLA sums every weight's gradient, 5,508 parameters (plus the
    # loss). Converted at 0.2: the bank, coefficients and biases only,
    # 1,102 parameters, plus a few scalars (loss, metric counts).
    assert report["plain"]["trainable"] == 5508
    assert report["plain"]["all_reduce_bytes"] >= 4 * 5508
    assert report["converted"]["trainable"] == 1102
    assert 4 * 1102 <= report["converted"]["all_reduce_bytes"] <= 4 * 1102 + 16
    # Trained on 2 devices as on one (same batches, Adam, 3 epochs).
    assert report["moved"] > 1e-3
    assert report["bank_max_diff"] < 1e-5
    np.testing.assert_allclose(report["loss_two"], report["loss_one"], rtol=1e-5)
    np.testing.assert_allclose(report["mae_two"], report["mae_one"], rtol=1e-5)
    # evaluate() runs per device too, with the same loss and metric.
    np.testing.assert_allclose(report["evaluate_two"], report["evaluate_one"], rtol=1e-5)
    # An LSTM (a scan inside each device's step) trains and evaluates like one device.
    np.testing.assert_allclose(report["recurrent_two"], report["recurrent_one"], rtol=1e-5)
    # Batch normalization trains too (each device normalizes its own part).
    assert np.all(np.isfinite(report["batch_norm_loss"]))
    assert report["batch_norm_loss"][-1] < report["batch_norm_loss"][0]


def run_example(processes):
    return run_script(
        "examples/distributed.py", "--processes", str(processes), "--epochs", "2"
    )


def test_a_batch_that_does_not_split_over_the_processes_is_refused():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "distributed.py"), "--processes", "2",
         "--batch-size", "33"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "--batch-size 33 does not divide by 2 processes" in result.stderr


def test_two_processes_train_like_one():
    one = run_example(1)
    two = run_example(2)
    assert (one["processes"], one["devices"]) == (1, 1)
    assert (two["processes"], two["devices"]) == (2, 2)
    assert two["trainable"] == one["trainable"] == 8500
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(two["bank_abs_sum"], one["bank_abs_sum"], rtol=1e-5)
    assert two["test_accuracy"] == one["test_accuracy"]


def test_model_parallel_shards_the_bank_two_ways_like_one_device():
    report = run_script("tests/scripts/model_parallel_jax.py")
    # 967 bank entries: 966 split over the 2 devices, 1 on both.
    assert report["variables"] == {
        "weight_bank/entries": [[966], "P('model',)"],
        "weight_bank/entries_tail": [[1], "P(None,)"],
    }
    assert report["trainable"] == 1102
    np.testing.assert_allclose(report["loss_sharded"], report["loss_one"], rtol=1e-4)
    assert report["bank_max_diff"] < 1e-5
    assert report["reload_max_diff"] < 1e-5
    assert report["tail_error"].startswith(
        "The distribution's LayoutMap shards 'weight_bank/entries_tail'")
    assert "keras_ssn.bank_layouts(axis)" in report["tail_error"]
    assert report["too_small_error"].startswith(
        "The distribution's LayoutMap shards 'weight_bank/entries' over 2 devices, "
        "but this budget gives the bank only 1 entry.")
