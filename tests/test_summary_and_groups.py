import keras
import pytest
from conftest import MODELS

import keras_ssn
from keras_ssn.mapping import assign_groups
from keras_ssn.report import report_width


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
    [("auto", 3), ("single", 1), ("type", 3), ("shape", 4), (2, 2), (4, 4)],
)
def test_group_strategies(groups, expected):
    small = keras_ssn.convert(MODELS["sequence"](), 0.3, groups=groups, seed=4)
    plan = small.sharing_plan
    assert len(plan.groups) == expected
    assert all(group.weights for group in plan.groups)
    assert keras_ssn.count_trainable(small) == round(
        0.3 * keras_ssn.count_trainable(MODELS["sequence"]()))


def test_auto_groups_join_a_starved_family_to_the_largest():
    """Families of 900 (dense), 90 (conv) and 10 (embedding) entries: a
    family's slice is bank_entries * its share, and under 32 entries it
    joins the dense group."""
    families = ["dense", "conv", "dense", "embedding"]
    shapes = [(30, 10), (9, 10), (60, 10), (2, 5)]
    paths = ["a", "b", "c", "d"]

    def groups(bank_entries):
        grouping = assign_groups(paths, families, shapes, "auto")
        return grouping.candidates(bank_entries)[0]

    assert groups(3200) == ["dense", "conv", "dense", "embedding"]  # 32 entries: its own
    assert groups(3199) == ["dense", "conv", "dense", "dense"]  # 31.99: joins
    assert groups(356) == ["dense", "conv", "dense", "dense"]  # conv 32.04
    assert groups(355) == ["dense", "dense", "dense", "dense"]  # conv 31.95
    assert groups(-5) == ["dense"] * 4


def test_auto_groups_follow_the_budget():
    model = MODELS["residual_cnn"]()
    low = keras_ssn.convert(model, 0.05).sharing_plan
    high = keras_ssn.convert(model, 0.5).sharing_plan
    assert len(low.groups) == 1 and len(high.groups) == 2
    assert [g.weights for g in high.groups] == [
        g.weights for g in keras_ssn.convert(model, 0.5, groups="type").sharing_plan.groups]
    assert min(g.size for g in high.groups) >= 32


def test_random_groups_are_reproducible_with_a_seed():
    model = MODELS["sequence"]()
    first = keras_ssn.convert(model, 0.3, groups=3, seed=11).sharing_plan
    second = keras_ssn.convert(model, 0.3, groups=3, seed=11).sharing_plan
    assert [g.weights for g in first.groups] == [g.weights for g in second.groups]


def test_random_groups_without_a_seed_are_the_same_on_every_call():
    """A budget a BudgetError names works when passed back, seed or not."""
    model = keras.Sequential(
        [keras.Input((12,))]
        + [keras.layers.Dense(units) for units in (24, 16, 24, 8, 20, 12, 4)]
    )
    options = dict(groups=4, upsample="mask", templates="fewest")
    with pytest.raises(keras_ssn.BudgetError) as info:
        keras_ssn.convert(model, 10, **options)
    smallest = info.value.smallest
    plans = [keras_ssn.convert(model, smallest, **options).sharing_plan for _ in range(3)]
    assert {tuple(tuple(g.weights) for g in plan.groups) for plan in plans} == {
        tuple(tuple(g.weights) for g in keras_ssn.convert(
            model, smallest, seed=0, **options).sharing_plan.groups)}
    assert all(keras_ssn.count_trainable(keras_ssn.convert(model, smallest, **options))
               == smallest for _ in range(3))


def test_explicit_groups_split_the_bank_by_full_size():
    model = MODELS["mlp"]()
    mapping = {"hidden_1": "a", "hidden_2": "b", "logits": "b"}
    plan = keras_ssn.convert(model, 0.2, groups=mapping).sharing_plan
    sizes = [g.size for g in plan.groups]
    assert [g.weights for g in plan.groups] == [
        ("hidden_1/kernel",), ("hidden_2/kernel", "logits/kernel")]
    full = [64 * 256, 256 * 128 + 128 * 10]
    assert abs(sizes[0] / sum(sizes) - full[0] / sum(full)) < 1e-3


def long_named_model():
    import keras
    inputs = keras.Input((8,))
    x = inputs
    for i in range(3):
        x = keras.layers.Dense(8, name=f"a_rather_long_layer_name_that_would_not_fit_{i}")(x)
    return keras.Model(inputs, x, name="long_names")


def test_summary_never_cuts_paths_and_explains_its_columns():
    small = keras_ssn.convert(long_named_model(), 0.5)
    for width in (60, 100):
        lines = []
        keras_ssn.summary(small, print_fn=lines.append, line_length=width)
        text = lines[0]
        assert "…" not in text
        longest = max(len(p) for p in small.sharing_plan.weights)
        assert max(len(line) for line in text.splitlines()) == report_width(width, longest)
        assert "Generation: combine = the weight mixes K template windows" in " ".join(
            text.split())
    lines = []
    keras_ssn.summary(small, print_fn=lines.append, line_length=200)
    for path in small.sharing_plan.weights:
        assert path in lines[0]


def deep_stack(depth):
    import keras
    return keras.Sequential([keras.Input((8,))]
                            + [keras.layers.Dense(8, name=f"d{i}") for i in range(depth)])


def test_summary_of_a_big_model_is_compact_unless_expanded():
    small = keras_ssn.convert(deep_stack(45), 0.5)
    compact, expanded = [], []
    report = keras_ssn.summary(small, print_fn=compact.append, line_length=120)
    keras_ssn.summary(small, print_fn=expanded.append, line_length=120, expand=True)
    assert "Compact view" in compact[0] and "Compact view" not in expanded[0]
    kinds = {(e.shape, e.mode, e.method, e.templates) for e in report.groups[0].entries}
    assert compact[0].count("combine (") == len(kinds) < 45
    assert expanded[0].count("combine (") == 45
    assert repr(report) == (
        f"SharingReport(budget={report.budget:,}, bank={report.bank_size:,}, "
        f"coefficients={report.coefficient_params:,}, own weights={report.unshared_params:,}, "
        "groups=1, shared weights=45, layers with own weights=45)"
    )


@pytest.mark.parametrize("expand", [True, False])
def test_summary_keeps_every_path_whole_on_one_line(expand):
    """Paths longer than a narrow report's columns are not folded, so each
    can be copied into `exclude=` or `groups=`."""
    long_name = "transformer_layer_0_feedforward_intermediate_dense_projection"
    block = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, name=long_name),
                              keras.layers.LayerNormalization(name=long_name + "_norm"),
                              keras.layers.Dense(16, name=long_name + "_output")],
                             name="encoder_block_with_a_long_name")
    model = keras.Sequential([keras.Input((16,)), block, keras.layers.Dense(4)])
    small = keras_ssn.convert(model, 0.5, seed=0)
    lines = []
    keras_ssn.summary(small, print_fn=lambda text: lines.extend(text.splitlines()),
                      line_length=60, expand=expand)
    paths = list(small.sharing_plan.weights) + [
        e["path"] for e in small.sharing_plan.unshared_layers]
    assert max(len(p) for p in paths) > 60
    for path in paths:
        assert any(path in line for line in lines), path
    short = keras_ssn.convert(keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(2)]), 0.5, seed=0)
    lines = []
    keras_ssn.summary(short, print_fn=lambda text: lines.extend(text.splitlines()),
                      line_length=60, expand=expand)
    assert max(len(line) for line in lines) == 60  # short paths: the width asked for
