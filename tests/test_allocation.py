import math

import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import assert_converts

import keras_ssn
from keras_ssn.mapping import slice_weights

MLP_PATHS = ["hidden_1/kernel", "hidden_2/kernel", "logits/kernel"]
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def classes(count=256, seed=0):
    """Inputs of the conftest MLP and the class a fixed linear map gives them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 64)).astype("float32")
    return x, np.argmax(x @ rng.normal(size=(64, 10)), axis=1).astype("int32")


def test_slices_follow_entries_or_entries_times_root_sensitivity_per_entry():
    members, sizes = [[0], [1, 2]], [100, 150, 250]
    assert slice_weights(members, sizes) == [100, 400]
    # Sensitivity per entry 1 and 1/4: 100 * 1 against 400 * 1/2.
    assert slice_weights(members, sizes, [100.0, 60.0, 40.0]) == [2**39, 2**40]
    # A group the loss ignores is floored at 1% of the mean per entry.
    floored = slice_weights(members, sizes, [0.0, 60.0, 40.0])
    mean = 100.0 / 500
    assert floored[0] / floored[1] == pytest.approx(
        100 * math.sqrt(0.01 * mean) / (400 * math.sqrt(0.25)), rel=1e-9)


def test_an_allocation_moves_bank_entries_to_the_sensitive_group():
    model = MODELS["mlp"]()
    groups = {"hidden_1": 0, "hidden_2": 0, "logits": 1}
    allocation = keras_ssn.Allocation(
        {"hidden_1/kernel": 1.0, "hidden_2/kernel": 1.0, "logits/kernel": 100.0}, groups)
    by_size = keras_ssn.convert(model, 0.1, groups=groups, seed=0)
    by_sensitivity = keras_ssn.convert(model, 0.1, groups=allocation, seed=0)
    budget = round(0.1 * keras_ssn.count_trainable(model))
    assert keras_ssn.count_trainable(by_sensitivity) == budget
    # 49,152 and 1,280 entries: by size the logits get 2.5% of the bank; by
    # sensitivity sqrt(2 * 49152) against sqrt(100 * 1280), 53%.
    sizes = [g.size for g in by_size.sharing_plan.groups]
    shares = [g.size for g in by_sensitivity.sharing_plan.groups]
    assert sizes[1] / sum(sizes) == pytest.approx(1280 / 50432, abs=2e-3)
    assert shares[1] / sum(shares) == pytest.approx(
        math.sqrt(128000) / (math.sqrt(98304) + math.sqrt(128000)), abs=2e-3)


def test_auto_keeps_a_sensitive_small_family_as_its_own_group():
    model = MODELS["residual_cnn"]()
    paths = [w for w in keras_ssn.convert(model, 0.5, seed=0).sharing_plan.weights]
    classifier = f"{model.layers[-1].name}/kernel"
    assert paths[-1] == classifier
    # At 10% the classifier's 240 entries would get fewer than 32 bank
    # entries and join the convolutions' group; with this sensitivity
    # its share holds more.
    plain = keras_ssn.convert(model, 0.1, seed=0)
    sensitivity = {p: 1.0 for p in paths}
    sensitivity[classifier] = 1000.0
    searched = keras_ssn.convert(
        model, 0.1, seed=0, groups=keras_ssn.Allocation(sensitivity))
    assert len(plain.sharing_plan.groups) == 1
    assert [g.weights for g in searched.sharing_plan.groups] == [
        tuple(paths[:-1]), (classifier,)]
    assert searched.sharing_plan.groups[1].size >= 32


def test_search_allocation_measures_every_shareable_weight_and_leaves_the_model():
    model = MODELS["residual_cnn"]()
    before = [keras.ops.convert_to_numpy(v) for v in model.variables]
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(64, 8, 8, 3)).astype("float32"),
            rng.integers(0, 5, 64).astype("int32"))
    allocation = keras_ssn.search_allocation(model, data, loss=LOSS, batches=3,
                                             batch_size=16, seed=1)
    assert sorted(allocation.sensitivity) == sorted(
        keras_ssn.convert(model, 0.5, seed=0).sharing_plan.weights)
    assert all(v > 0 for v in allocation.sensitivity.values())
    assert (allocation.groups, allocation.batches) == ("auto", 3)
    # Batch normalization ran in training mode without updating the model.
    for old, variable in zip(before, model.variables):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(variable))
    again = keras_ssn.search_allocation(model, data, loss=LOSS, batches=3,
                                        batch_size=16, seed=1)
    assert again.sensitivity == allocation.sensitivity
    other = keras_ssn.search_allocation(model, data, loss=LOSS, batches=3,
                                        batch_size=16, seed=2)
    assert other.sensitivity != allocation.sensitivity


def test_a_model_converted_with_an_allocation_keeps_the_whole_contract(tmp_path):
    model = MODELS["mlp"]()
    allocation = keras_ssn.search_allocation(
        model, classes(), loss=LOSS, groups="type", batch_size=32)
    assert sorted(allocation.sensitivity) == MLP_PATHS
    assert keras_ssn.Allocation.from_config(allocation.get_config()).sensitivity == (
        allocation.sensitivity)
    small = assert_converts(model, 0.1, tmp_path, groups=allocation)
    assert len(small.sharing_plan.groups) == 1  # one dense family


def test_an_allocation_without_some_weight_is_refused():
    allocation = keras_ssn.Allocation({"hidden_1/kernel": 1.0, "hidden_2/kernel": 1.0})
    with pytest.raises(ValueError, match=r"no sensitivity for \['logits/kernel'\]: it "
                                         r"was searched on another model"):
        keras_ssn.convert(MODELS["mlp"](), 0.1, groups=allocation)


@pytest.mark.parametrize("sensitivity,groups,error,message", [
    ({"a": -1.0}, "auto", ValueError, "must be finite and non-negative"),
    ({"a": float("nan")}, "auto", ValueError, "must be finite and non-negative"),
    ({"a": 1.0}, keras_ssn.Allocation({"a": 1.0}), TypeError, "not another Allocation"),
])
def test_bad_allocations_are_refused(sensitivity, groups, error, message):
    with pytest.raises(error, match=message):
        keras_ssn.Allocation(sensitivity, groups)


def test_search_allocation_refuses_bad_data_and_counts():
    model = MODELS["mlp"]()
    x, y = classes()
    with pytest.raises(TypeError, match=r"data must be a tuple \(x, y\)"):
        keras_ssn.search_allocation(model, x, loss=LOSS)
    with pytest.raises(ValueError, match=r"x and y hold different numbers of rows: "
                                         r"\[200, 256\]"):
        keras_ssn.search_allocation(model, (x, y[:200]), loss=LOSS)
    with pytest.raises(ValueError, match="batches must be a positive int; received 0"):
        keras_ssn.search_allocation(model, (x, y), loss=LOSS, batches=0)
