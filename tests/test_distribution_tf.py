"""tf.distribute.MirroredStrategy trains a model converted inside its scope."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_mirrored_strategy_matches_one_device_and_refuses_an_outside_bank():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scripts" / "mirrored_strategy.py")],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["bank_is_mirrored"] == "MirroredVariable"
    assert report["moved"] > 1e-3  # training changed the bank
    assert report["max_diff"] < 1e-5  # 2 replicas = one device on the same batches
    assert report["outside_error"].startswith("Model 'sequential_")
    assert ("was converted outside the scope of the active MirroredStrategy"
            in report["outside_error"])
