import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import backend_independent
from conftest import mlp
from conftest import residual_cnn

import keras_ssn
from keras_ssn.generation import UPSAMPLE


def bank_coverage(plan):
    """For each group, whether every entry of its slice is read by some layer."""
    covered = []
    for group in plan.groups:
        hit = np.zeros(group.size, bool)
        for path in group.weights:
            spec = plan.weights[path]
            reads = (spec.offset + np.arange(spec.read_length)) % group.size
            hit[reads] = True
        covered.append(bool(hit.all()))
    return covered


# 1.5%: at 1% the MLP's bank (114 entries) is smaller than its first layer's
# 256 output units, which tiling would make copies of each other.
@backend_independent  # plan arithmetic
@pytest.mark.parametrize("fraction", [0.015, 0.1, 0.5, 2.0, 4.0])
def test_fractional_budget_is_exact(model_name, fraction):
    model = MODELS[model_name]()
    original = keras_ssn.count_trainable(model)
    small = keras_ssn.convert(model, fraction, seed=0)
    expected = round(fraction * original)
    assert keras_ssn.count_trainable(small) == expected
    assert sum(int(np.prod(v.shape)) for v in small.trainable_weights) == expected
    assert all(bank_coverage(small.sharing_plan))


@backend_independent  # plan arithmetic
def test_odd_integer_budgets_are_exact():
    model = residual_cnn()
    original = keras_ssn.count_trainable(model)
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 1)
    smallest = info.value.smallest
    for budget in [smallest, smallest + 1, 97, 331, 1001, 2047, original - 3,
                   original, original + 7, 3 * original + 1, 7 * original - 5]:
        if budget < smallest:
            continue
        small = keras_ssn.convert(model, budget, seed=1)
        assert keras_ssn.count_trainable(small) == budget
        assert all(bank_coverage(small.sharing_plan)), budget


def test_model_summary_reports_the_budget_as_trainable_params():
    small = keras_ssn.convert(mlp(), 777)
    lines = []
    small.summary(print_fn=lambda line, **kwargs: lines.append(line))
    text = "\n".join(lines)
    assert "777" in text.split("Trainable params")[1].splitlines()[0]


def test_convert_does_not_mutate_the_input(model_name):
    model = MODELS[model_name]()
    before = [w.copy() for w in model.get_weights()]
    classes = [type(layer) for layer in model._flatten_layers()]
    count = keras_ssn.count_trainable(model)
    small = keras_ssn.convert(model, 0.1)
    small.get_weights()
    assert [type(layer) for layer in model._flatten_layers()] == classes
    assert keras_ssn.count_trainable(model) == count
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not any(isinstance(l, keras_ssn.SharedDense) for l in model._flatten_layers())


def test_low_budget_upsamples_and_high_budget_combines():
    low = keras_ssn.convert(mlp(), 0.05).sharing_plan
    high = keras_ssn.convert(mlp(), 3.0).sharing_plan
    for spec in low.weights.values():
        assert (spec.mode == UPSAMPLE) == (spec.weight_size > spec.size)
    assert sum(spec.mode == UPSAMPLE for spec in low.weights.values()) == 2
    assert all(s.templates >= 2 for s in high.weights.values())
    assert high.coefficient_params == sum(s.templates for s in high.weights.values())


@backend_independent  # plan arithmetic
@pytest.mark.parametrize("groups", ["auto", "type"])
def test_smallest_budget_is_feasible_and_named_when_too_small(groups):
    model = residual_cnn()
    plan = keras_ssn.convert(model, 0.5, groups=groups).sharing_plan
    assert len(plan.groups) == 2  # convolutions, and the dense layer
    # The convolutions tile their slice: it needs at least their 48 output
    # channels. With "auto", a budget this small gives the dense layer's
    # family no slice of its own, so 48 entries are enough. With "type",
    # the dense layer's group needs its 5 output units, and slices are in
    # proportion to the groups' full-size weights.
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, plan.unshared_params + 1, groups=groups)
    smallest = info.value.smallest
    if groups == "auto":
        assert smallest == plan.unshared_params + 48
    tiny = keras_ssn.convert(model, smallest, groups=groups)
    assert keras_ssn.count_trainable(tiny) == smallest
    assert all(s.size >= s.shape[-1] for s in tiny.sharing_plan.weights.values())
    with pytest.raises(keras_ssn.BudgetError, match=f"below {smallest:,}, the smallest") as info:
        keras_ssn.convert(model, smallest - 1, groups=groups)
    assert info.value.smallest == smallest


@backend_independent  # plan arithmetic
def test_budget_above_what_templates_can_read_names_the_largest():
    model = mlp()
    with pytest.raises(keras_ssn.BudgetError, match=r"^budget=20.0 \(") as info:
        keras_ssn.convert(model, 20.0, max_templates=2)
    largest = info.value.largest
    assert f"above {largest:,} (budget=" in str(info.value)
    assert keras_ssn.count_trainable(
        keras_ssn.convert(model, largest, max_templates=2)) == largest
    with pytest.raises(keras_ssn.BudgetError):
        keras_ssn.convert(model, largest + 1, max_templates=2)


def three_dense():
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(256, name="a"),
        keras.layers.Dense(128, name="b"),
        keras.layers.Dense(10, name="c"),
    ])


@backend_independent  # plan arithmetic
@pytest.mark.parametrize("options", [
    {"groups": {"a": 0, "b": 0, "c": 1}, "max_templates": 2},
    {"groups": {"a": 0, "b": 1, "c": 2}, "max_templates": 8},
])
def test_named_budgets_are_exact_boundaries(options):
    model = three_dense()
    with pytest.raises(keras_ssn.BudgetError) as above:
        keras_ssn.convert(model, 10**9, **options)
    with pytest.raises(keras_ssn.BudgetError) as below:
        keras_ssn.convert(model, 1, **options)
    largest, smallest = above.value.largest, below.value.smallest
    assert (smallest, largest) == (below.value.smallest, below.value.largest)
    for budget in (smallest, largest):
        assert keras_ssn.count_trainable(keras_ssn.convert(model, budget, **options)) == budget
    for budget in (smallest - 1, largest + 1):
        with pytest.raises(keras_ssn.BudgetError):
            keras_ssn.convert(model, budget, **options)


def test_budget_errors_say_what_moves_the_boundary():
    model = three_dense()
    with pytest.raises(keras_ssn.BudgetError, match="A larger max_templates \\(now 8\\)"):
        keras_ssn.convert(model, 10.0)
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 0.02, exclude="a")
    assert "The weights that layers keep (16,778: biases" in str(info.value)
    assert "or some output units would be copies of each other" in str(info.value)
    assert info.value.smallest == 16_778 + 128  # b's 128 output units
    with pytest.raises(ValueError, match="min_size is a number of weight entries"):
        keras_ssn.convert(model, 0.5, min_size=-1)


def test_small_int_budget_asks_whether_a_fraction_was_meant():
    model = three_dense()
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 1)
    assert str(info.value).startswith("budget=1 is below ")
    assert str(info.value).endswith(
        "An int budget is an exact parameter count: did you mean budget=1.0 "
        "(100% of the model's 50,826 parameters)?"
    )
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 10**6)
    assert "did you mean" not in str(info.value)
    assert str(info.value).startswith("budget=1000000 is above ")


def test_generated_weights_start_with_the_layers_own_scale():
    model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(256),
                              keras.layers.Dense(64)])
    for fraction in (0.1, 2.0):
        small = keras_ssn.convert(model, fraction, seed=3)
        for layer, original in zip(small.layers, model.layers):
            generated = keras.ops.convert_to_numpy(layer.generate_weight())
            expected = np.std(keras.ops.convert_to_numpy(original.kernel))
            assert 0.6 < np.std(generated) / expected < 1.4


@backend_independent  # plan arithmetic
@pytest.mark.parametrize("upsample", ["wavg", "mask"])
def test_auto_groups_spend_every_budget_one_group_can(upsample):
    """Where a family's own group would cost more learned parameters than the
    budget leaves, "auto" merges it instead of refusing the budget."""
    model = keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(100, 16),
                              keras.layers.LSTM(16), keras.layers.Dense(4)])
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 10, upsample=upsample)
    smallest = info.value.smallest
    single = keras_ssn.convert(model, smallest, upsample=upsample, groups="single")
    for budget in (smallest, smallest + 50, smallest + 100):
        small = keras_ssn.convert(model, budget, upsample=upsample)
        assert keras_ssn.count_trainable(small) == budget
    assert keras_ssn.count_trainable(single) == smallest
    with pytest.raises(keras_ssn.BudgetError):
        keras_ssn.convert(model, smallest - 1, upsample=upsample)


def test_a_whole_budget_fraction_in_a_message_reads_as_a_fraction():
    # An int budget is a parameter count, so the largest fraction of a
    # baseline capped at the model's size reads 1.0, not 1.
    with pytest.raises(keras_ssn.BudgetError, match=r"\(budget=1\.0\)"):
        keras_ssn.baselines.hashed(mlp(), 5.0)
