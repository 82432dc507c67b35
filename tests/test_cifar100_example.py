"""The CIFAR-100 WRN example runs its recipe on `tfds.testing.mock_data`."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from examples import cifar100_wrn  # noqa: E402
from keras_ssn.layer_paths import count_trainable  # noqa: E402


def test_two_steps_on_mock_data_at_the_budget():
    model, history, test_accuracy = cifar100_wrn.main(
        ["--mock", "--depth", "10", "--width", "1", "--budget", "0.1",
         "--epochs", "1", "--steps", "2", "--batch", "4", "--verbose", "0"])
    plain = cifar100_wrn.wide_resnet(10, 1, classes=100)
    assert count_trainable(model) == round(0.1 * count_trainable(plain))
    assert model.optimizer.iterations.numpy() == 2
    assert np.isfinite(history.history["loss"][0])
    assert 0.0 <= test_accuracy <= 1.0
    # SGD with Nesterov, decay on the bank but not on the coefficients.
    assert model.optimizer.nesterov
    assert model.optimizer.weight_decay == pytest.approx(5e-4)
    decayed = [v.path for v in model.trainable_variables
               if model.optimizer._use_weight_decay(v)]
    assert all(piece.path in decayed for piece in model.bank.pieces)
    assert not any("coefficients" in path for path in decayed)


def test_cutout_zeroes_one_square_clipped_at_the_edges():
    sides = set()
    for _ in range(20):
        erased = np.asarray(cifar100_wrn.cutout(np.ones((32, 32, 3), "float32")))
        rows = np.flatnonzero((erased == 0).any(axis=(1, 2)))
        columns = np.flatnonzero((erased == 0).any(axis=(0, 2)))
        assert (erased == 0).sum() == 3 * len(rows) * len(columns)
        assert np.all(np.diff(rows) == 1) and np.all(np.diff(columns) == 1)
        assert 8 <= len(rows) <= 16 and 8 <= len(columns) <= 16
        sides.update((len(rows), len(columns)))
    assert 16 in sides
