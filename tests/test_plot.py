"""`plot_sharing()` draws every read window of every shared weight."""

import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn.plot import read_windows

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("name,budget", [("residual_cnn", 0.1), ("nested", 3.0), ("mlp", 0.02)])
def test_the_picture_shows_bank_reads_and_budget(name, budget, tmp_path):
    small = keras_ssn.convert(MODELS[name](), budget, seed=0)
    plan = small.sharing_plan
    figure = keras_ssn.plot_sharing(small, tmp_path / "sharing.png")
    assert (tmp_path / "sharing.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bank, reads, budget_axis = figure.axes
    assert [p.get_width() for p in bank.patches] == [g.size for g in plan.groups]
    windows = [read_windows(spec)[0] for spec in plan.weights.values()]
    assert len(reads.patches) == sum(len(w) for w in windows)
    labels = [t.get_text() for t in reads.get_yticklabels()]
    assert [label.split(" (")[0] for label in labels] == [
        p for g in plan.groups for p in g.weights]
    assert [p.get_width() for p in budget_axis.patches] == [
        plan.bank_size, plan.coefficient_params, plan.unshared_params]


def test_read_windows_cover_exactly_what_a_weight_reads():
    small = keras_ssn.convert(MODELS["nested"](), 3.0, seed=0)
    for spec in small.sharing_plan.weights.values():
        windows, coverage = read_windows(spec)
        read = np.zeros(spec.start + spec.size, int)
        for start, stop, _ in windows:
            assert spec.start <= start < stop <= spec.start + spec.size
            read[start:stop] += 1
        positions = spec.start + (spec.offset + np.arange(spec.read_length)) % spec.size
        expected = np.bincount(positions, minlength=spec.start + spec.size)
        np.testing.assert_array_equal(read, expected)
        assert coverage == spec.read_length / spec.size


def test_only_converted_models_are_drawn():
    with pytest.raises(TypeError, match="plot_sharing\\(\\) expects a model made by"):
        keras_ssn.plot_sharing(MODELS["mlp"]())
