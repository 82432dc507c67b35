import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn.search import dropped_steps
from keras_ssn.search import rung_steps

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def classes(count=320, seed=0):
    """Inputs of the conftest MLP and the class a fixed linear map gives them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(count, 64)).astype("float32")
    return x, np.argmax(x @ rng.normal(size=(64, 10)), axis=1).astype("int32")


def search(candidates=None, **options):
    return keras_ssn.search_allocation(
        MODELS["mlp"](), classes(), 0.1, loss=LOSS, steps=8, batch_size=16,
        candidates=candidates, verbose=0, **options)


@pytest.mark.parametrize("count,dropped", [(2, 1), (3, 3), (4, 4), (5, 8), (8, 12)])
def test_dropped_steps_count_first_rungs_of_every_dropped_candidate(count, dropped):
    # 5: two dropped after one rung, one after two, one after four.
    assert dropped_steps(count) == dropped


def test_rung_steps_keep_the_dropped_candidates_within_the_steps():
    assert rung_steps(4, 10) == 2
    with pytest.raises(ValueError, match="steps=3 is too few to compare 4 candidates: "
                                         "successive halving needs at least 4 steps"):
        rung_steps(4, 3)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        rung_steps(4, 2.5)


def test_the_search_halves_the_candidates_and_returns_the_trained_winner():
    result = search()
    # 4 candidates, 8 steps for the dropped ones: first rungs of 2 steps.
    assert [(t["candidate"], t["rung"], t["steps"]) for t in result.trials][:4] == [
        ("auto", 0, 2), ("single", 0, 2), ("mask", 0, 2), ("scale", 0, 2)]
    first = {t["candidate"]: t["val_loss"] for t in result.trials if t["rung"] == 0}
    kept = sorted(first, key=first.get)[:2]
    second = {t["candidate"]: t["val_loss"] for t in result.trials if t["rung"] == 1}
    assert sorted(second) == sorted(kept)
    assert result.name == min(second, key=second.get)
    assert result.options == keras_ssn.search.CANDIDATES[result.name]
    assert (result.steps, result.model_steps) == (8, 4)
    assert int(result.model.optimizer.iterations) == 4
    assert keras_ssn.count_trainable(result.model) == round(
        0.1 * keras_ssn.count_trainable(MODELS["mlp"]()))


def test_the_same_seed_gives_the_same_search():
    candidates = {"auto": {}, "single": {"groups": "single"}}
    first, again = search(candidates, seed=3), search(candidates, seed=3)
    assert first.trials == again.trials
    x, _ = classes()
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(first.model(x[:8])),
        keras.ops.convert_to_numpy(again.model(x[:8])))


def test_a_metric_objective_is_maximised_and_options_reach_every_candidate():
    result = search({"type": {"groups": "type"}, "single": {"groups": "single"}},
                    metrics=["accuracy"], objective="val_accuracy",
                    exclude="logits")
    scores = {t["candidate"]: t["val_accuracy"] for t in result.trials}
    assert result.name == max(scores, key=scores.get)
    assert result.options["exclude"] == "logits"
    assert "logits" not in {
        path.split("/")[0] for g in result.model.sharing_plan.groups for path in g.weights}


def test_a_candidate_that_cannot_spend_the_budget_is_skipped_with_its_reason():
    result = search({"auto": {}, "single": {"groups": "single"},
                     "no_layer": {"exclude": ".*"}})
    assert sorted(result.skipped) == ["no_layer"]
    assert "has no layer whose weight can be shared" in result.skipped["no_layer"]
    with pytest.raises(ValueError, match=r"needs at least two candidates that spend "
                                         r"the budget; 1 did \(\['auto'\]\)"):
        search({"auto": {}, "no_layer": {"exclude": ".*"}})


@pytest.mark.parametrize("arguments,error,message", [
    ({"objective": "accuracy"}, ValueError, "objective must be 'val_loss' or 'val_'"),
    ({"objective": "val_accuracy"}, ValueError,
     r"objective='val_accuracy' names no value evaluate\(\) returns"),
    ({"candidates": {"a": {"budget": 0.5}, "b": {}}}, ValueError,
     "Candidate 'a' must be a dict of convert\\(\\) options other than budget"),
    ({"candidates": "auto"}, ValueError, "candidates must be a dict"),
    ({"validation_split": 1.5}, ValueError, "validation_split must be between 0 and 1"),
])
def test_bad_arguments_are_refused(arguments, error, message):
    with pytest.raises(error, match=message):
        search(**arguments)


def test_data_must_be_a_pair_of_arrays_with_equal_rows():
    x, y = classes()
    with pytest.raises(TypeError, match=r"data must be a tuple \(x, y\)"):
        keras_ssn.search_allocation(MODELS["mlp"](), x, 0.1, loss=LOSS, steps=8)
    with pytest.raises(ValueError, match=r"x and y hold different numbers of rows: "
                                         r"\[300, 320\]"):
        keras_ssn.search_allocation(MODELS["mlp"](), (x, y[:300]), 0.1, loss=LOSS, steps=8)
