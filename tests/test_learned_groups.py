import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MODELS
from conftest import sample_input
from conftest import sample_targets

import keras_ssn
from keras_ssn import BudgetError
from keras_ssn.generation import WARP
from keras_ssn.plan import SharedWeight
from keras_ssn.single_group_plans import plan_warped


def data_arrays(model, count=32):
    return sample_input(model, count), sample_targets(model, count)


def test_learn_groups_from_arrays_gives_a_usable_mapping(tmp_path):
    model = MODELS["nested"]()
    mapping = keras_ssn.learn_groups(
        model, data_arrays(model), 2, loss="mse", batch_size=8, seed=0, verbose=0
    )
    paths = ["stem/kernel", "inner/block/expand/kernel", "inner/block/project/kernel",
             "inner/inner_dense/kernel", "head/kernel"]
    assert sorted(mapping) == sorted(paths)
    assert set(mapping.values()) == {0, 1}
    small = keras_ssn.convert(model, 0.1, groups=mapping)
    assert keras_ssn.count_trainable(small) == round(
        0.1 * keras_ssn.count_trainable(model))
    grouped = {path: g.index for g in small.sharing_plan.groups for path in g.weights}
    same = [(a, b) for a in paths for b in paths if mapping[a] == mapping[b]]
    assert all(grouped[a] == grouped[b] for a, b in same)
    small.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    assert [g.weights for g in loaded.sharing_plan.groups] == [
        g.weights for g in small.sharing_plan.groups]


def test_learn_groups_accepts_a_dataset_and_a_generator():
    model = MODELS["mlp"]()
    x, y = data_arrays(model)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    from_dataset = keras_ssn.learn_groups(model, dataset, 2, loss="mse", verbose=0)

    def batches():
        while True:
            for i in range(0, 32, 8):
                yield x[i:i + 8], y[i:i + 8]

    from_generator = keras_ssn.learn_groups(
        model, batches(), 3, loss="mse", steps_per_epoch=4, verbose=0)
    assert sorted(from_dataset) == sorted(from_generator) == [
        "hidden_1/kernel", "hidden_2/kernel", "logits/kernel"]
    assert sorted(set(from_generator.values())) == [0, 1, 2]


def test_pretraining_model_mixes_the_whole_bank_with_softmax(monkeypatch):
    from keras_ssn import learned_groups

    model = MODELS["mlp"]()
    seen = {}
    original_fit = learned_groups._fit

    def spy(pretrain, *args):
        seen["model"] = pretrain
        original_fit(pretrain, *args)

    monkeypatch.setattr(learned_groups, "_fit", spy)
    keras_ssn.learn_groups(model, data_arrays(model), 2, loss="mse",
                           budget=0.2, verbose=0)
    pretrain = seen["model"]
    plan = pretrain.sharing_plan
    assert keras_ssn.count_trainable(pretrain) == round(
        0.2 * keras_ssn.count_trainable(model))
    assert {spec.mode for spec in plan.weights.values()} == {WARP}
    assert {spec.templates for spec in plan.weights.values()} == {4}
    assert {spec.share for spec in plan.weights.values()} == {"softmax"}


@pytest.mark.parametrize("num_groups, error", [(0, ValueError), (9, ValueError),
                                                (1.5, TypeError)])
def test_learn_groups_rejects_bad_group_counts(num_groups, error):
    model = MODELS["mlp"]()
    with pytest.raises(error, match="num_groups"):
        keras_ssn.learn_groups(model, data_arrays(model), num_groups, loss="mse")


def warped_reads(plan):
    read = np.zeros(plan.bank_size, bool)
    for spec in plan.weights.values():
        template = int(np.prod(spec.template_shape))
        for k in range(spec.templates):
            start = spec.offset + k * spec.template_stride
            read[(start + np.arange(template)) % spec.size] = True
    return read


@pytest.mark.parametrize("seed", range(5))
def test_the_pretraining_plan_reads_every_bank_entry(seed):
    rng = np.random.default_rng(seed)
    # Small layers next to large ones: chunks longer than most weights.
    shapes = [(int(rng.integers(2, 9)), int(rng.integers(2, 9))) for _ in range(4)]
    shapes += [(int(rng.integers(20, 60)), int(rng.integers(20, 60)))]
    weights = [SharedWeight(f"layer_{i}/kernel", s, 0.1) for i, s in enumerate(shapes)]
    full = sum(w.size for w in weights)
    for fraction in (0.05, 0.2, 0.6):
        budget = 7 + 4 * len(weights) + max(4, round(fraction * full))
        plan = plan_warped(weights, 7, budget)
        assert plan.bank_size + plan.coefficient_params + 7 == budget
        assert warped_reads(plan).all()


def test_a_pretraining_bank_too_large_to_read_names_the_exact_largest_budget():
    weights = [SharedWeight("a/kernel", (3, 4), 0.1), SharedWeight("b/kernel", (5, 2), 0.1)]
    with pytest.raises(BudgetError) as caught:
        plan_warped(weights, 0, 10_000)
    largest = caught.value.largest
    assert warped_reads(plan_warped(weights, 0, largest)).all()
    with pytest.raises(BudgetError):
        plan_warped(weights, 0, largest + 1)
