"""tf.distribute.MirroredStrategy trains a model converted inside its scope."""

import keras
import pytest
from conftest import run_script


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.distribute")
def test_mirrored_strategy_matches_one_device_and_refuses_an_outside_bank():
    report = run_script("tests/scripts/mirrored_strategy.py")
    assert report["replicas"] == 2
    assert report["bank_is_mirrored"] == "MirroredVariable"
    assert report["moved"] > 1e-3  # training changed the bank
    assert report["max_diff"] < 1e-5  # 2 replicas = one device on the same batches
    assert report["outside_error"].startswith("Model 'sequential_")
    assert ("was converted outside the scope of the active MirroredStrategy"
            in report["outside_error"])
