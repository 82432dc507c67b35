import pytest
from conftest import MODELS

import keras_ssn


def test_summary_lists_groups_layers_and_budget(capsys):
    small = keras_ssn.convert(MODELS["nested"](), 0.1, groups="single")
    report = keras_ssn.summary(small)
    out = capsys.readouterr().out
    assert len(report.groups) == 1
    assert report.groups[0].weights == (
        "stem/kernel", "inner/block/expand/kernel", "inner/block/project/kernel",
        "inner/inner_dense/kernel", "head/kernel",
    )
    assert report.groups[0].params == report.bank_size
    assert (report.bank_size + report.coefficient_params + report.unshared_params
            == report.budget == keras_ssn.count_trainable(small))
    for path in report.groups[0].weights:
        assert path in out
    assert f"{report.budget:,}" in out


def test_summary_accepts_print_fn():
    small = keras_ssn.convert(MODELS["mlp"](), 0.1)
    lines = []
    keras_ssn.summary(small, print_fn=lines.append)
    assert "Weight sharing" in lines[0]


@pytest.mark.parametrize(
    "groups, expected",
    [("single", 1), ("type", 3), ("shape", 4), (2, 2), (4, 4)],
)
def test_group_strategies(groups, expected):
    small = keras_ssn.convert(MODELS["sequence"](), 0.3, groups=groups, seed=4)
    plan = small.sharing_plan
    assert len(plan.groups) == expected
    assert all(group.weights for group in plan.groups)
    assert keras_ssn.count_trainable(small) == round(
        0.3 * keras_ssn.count_trainable(MODELS["sequence"]()))


def test_random_groups_are_reproducible_with_a_seed():
    model = MODELS["sequence"]()
    first = keras_ssn.convert(model, 0.3, groups=3, seed=11).sharing_plan
    second = keras_ssn.convert(model, 0.3, groups=3, seed=11).sharing_plan
    assert [g.weights for g in first.groups] == [g.weights for g in second.groups]


def test_explicit_groups_split_the_bank_by_full_size():
    model = MODELS["mlp"]()
    mapping = {"hidden_1": "a", "hidden_2": "b", "logits": "b"}
    plan = keras_ssn.convert(model, 0.2, groups=mapping).sharing_plan
    sizes = [g.size for g in plan.groups]
    assert [g.weights for g in plan.groups] == [
        ("hidden_1/kernel",), ("hidden_2/kernel", "logits/kernel")]
    full = [64 * 256, 256 * 128 + 128 * 10]
    assert abs(sizes[0] / sum(sizes) - full[0] / sum(full)) < 1e-3
