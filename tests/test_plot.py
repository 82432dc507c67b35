"""`plot_sharing()` draws every read window of every shared weight."""

import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn.plot import read_windows
from keras_ssn.plot import template_shades



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
    budget_parts = [g.size for g in plan.groups] + [
        plan.coefficient_params, plan.unshared_params]
    smallest = plan.budget / 200
    assert [p.get_width() for p in budget_axis.patches] == pytest.approx([
        max(size, smallest) if size else 0 for size in budget_parts])
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        f"group {g.index} slice: {g.size:,}" for g in plan.groups] + [
        f"coefficients: {plan.coefficient_params:,}",
        f"own weights: {plan.unshared_params:,}"]


@pytest.mark.parametrize("name,budget", [("residual_cnn", 0.1), ("nested", 3.0), ("mlp", 0.02)])
def test_the_picture_gives_each_template_and_group_one_colour(name, budget):
    small = keras_ssn.convert(MODELS[name](), budget, seed=0)
    plan = small.sharing_plan
    figure = keras_ssn.plot_sharing(small)
    bank, reads, budget_axis = figure.axes
    group_colors = [p.get_facecolor() for p in bank.patches]
    assert len(set(group_colors)) == len(plan.groups)
    assert [p.get_facecolor() for p in budget_axis.patches[:len(plan.groups)]] == group_colors
    assert budget_axis.patches[len(plan.groups)].get_facecolor() not in group_colors
    patches = iter(reads.patches)
    for spec in plan.weights.values():
        shades = template_shades(group_colors[spec.group], spec.templates)
        drawn = [next(patches).get_facecolor()[:3] for _ in read_windows(spec)[0]]
        expected = [shades[k] for _, _, k in read_windows(spec)[0]]
        np.testing.assert_allclose(drawn, expected)
        assert len(set(drawn)) == spec.templates
    numbers = {t.get_text() for t in reads.texts}
    most = max(s.templates for s in plan.weights.values())
    assert numbers <= {str(k + 1) for k in range(most)}


def test_the_legend_sits_below_the_budget_axis_and_its_tick_labels():
    small = keras_ssn.convert(MODELS["residual_cnn"](), 0.1, seed=0)
    figure = keras_ssn.plot_sharing(small)
    figure.draw_without_rendering()
    budget_axis = figure.axes[2]
    legend = figure.legends[0].get_window_extent()
    for label in budget_axis.get_xticklabels():
        extent = label.get_window_extent()
        assert legend.y1 < extent.y0, label.get_text()


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
