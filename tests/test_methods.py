"""Every weight-generation method: combination, upsampling and placement."""


import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import mlp
from conftest import read_positions
from conftest import sample_input

import keras_ssn
from keras_ssn.generation import UPSAMPLE
from keras_ssn.layers import GENERATION_PARAM_NAMES
from keras_ssn.methods import upsampling
from keras_ssn.plan import SharedWeight
from keras_ssn.planner import plan_sharing
from keras_ssn.planner import split_proportionally
from keras_ssn.tiled_rows import copied_entries

SHARES = ["wavg", "emb", "avg"]
UPSAMPLES = ["inter", "repeat", "mask", "scale", "wavg"]
# Low budgets upsample, so every upsample method matters there; high budgets
# only combine, so only the share method does. A layer either combines or
# upsamples, so each share method meets one upsample method at low budgets.
COMBINATIONS = [("wavg", u, 0.05) for u in UPSAMPLES] + [
    ("emb", "inter", 0.05), ("avg", "mask", 0.05)] + [
    (s, "inter", 3.0) for s in SHARES
]


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("share,upsample,fraction", COMBINATIONS)
def test_every_combination_is_exact_trains_saves_and_materializes(
    share, upsample, fraction, tmp_path
):
    model = MODELS["residual_cnn"]()
    small = keras_ssn.convert(model, fraction, share=share, upsample=upsample, seed=0)
    assert keras_ssn.count_trainable(small) == round(
        fraction * keras_ssn.count_trainable(model))
    plan = small.sharing_plan
    if fraction < 1:
        assert any(s.mode == UPSAMPLE for s in plan.weights.values())
    else:
        assert all(s.templates >= 2 for s in plan.weights.values())
    x = sample_input(small, 8)
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    before = to_numpy(small.bank.vector())
    small.fit(x, np.zeros((8, 5)), epochs=1, verbose=0)
    assert not np.array_equal(before, to_numpy(small.bank.vector()))
    expected = to_numpy(small(x))
    small.save(str(tmp_path / "m.keras"))
    loaded = keras.models.load_model(str(tmp_path / "m.keras"))
    np.testing.assert_array_equal(to_numpy(loaded(x)), expected)
    plain = keras_ssn.materialize(loaded)
    assert keras_ssn.count_trainable(plain) == keras_ssn.count_trainable(model)
    np.testing.assert_allclose(to_numpy(plain(x)), expected, rtol=1e-5, atol=1e-5)


def random_weights(seed):
    rng = np.random.default_rng(seed)
    shapes = [tuple(int(d) for d in rng.integers(2, 40, size=rng.integers(2, 4)))
              for _ in range(rng.integers(2, 6))]
    return [SharedWeight(f"layer_{i}", shape, 0.05) for i, shape in enumerate(shapes)]


@pytest.mark.parametrize("share", SHARES)
@pytest.mark.parametrize("upsample", UPSAMPLES)
@pytest.mark.parametrize("placement", ["auto", "consecutive", "sliding", "rows"])
def test_plans_spend_the_budget_exactly_and_read_every_entry(share, upsample, placement):
    for seed in range(6):
        weights = random_weights(seed)
        full = sum(w.size for w in weights)
        group_ids = [i % 2 for i in range(len(weights))]
        for fraction in (0.3, 0.8, 2.5):
            budget = 100 + round(fraction * full)
            try:
                plan = plan_sharing(weights, group_ids, 100, budget, share=share,
                                    upsample=upsample, placement=placement)
            except keras_ssn.BudgetError as error:
                assert budget < error.smallest
                continue
            total = plan.bank_size + plan.coefficient_params + plan.unshared_params
            assert total == budget
            read = np.zeros(plan.bank_size, bool)
            for spec in plan.weights.values():
                read[spec.start + read_positions(spec)] = True
            assert read.all()


def test_sliding_placement_spreads_reads_evenly():
    weights = [SharedWeight(f"dense_{i}", (30, 10), 0.05) for i in range(3)]
    budget = 500  # a 500-entry slice, 900 entries read

    def offsets(placement):
        plan = plan_sharing(weights, [0, 0, 0], 0, budget, placement=placement)
        return [plan.weights[w.path].offset for w in weights]

    assert offsets("consecutive") == [0, 300, 100]
    assert offsets("sliding") == [0, 166, 333]


def one_layer_model(units=64, inputs=32):
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(units, use_bias=False)]
    )


@pytest.mark.parametrize("budget,copies,run", [(300, 7, 1), (100, 24, 2)])
def test_mask_multiplies_each_copy_of_the_slice(budget, copies, run):
    # 2048 kernel entries: 7 copies of a 293-entry slice get a value each;
    # 24 copies of an 88-entry slice get 12 values, each scaling 2 copies.
    small = keras_ssn.convert(one_layer_model(), budget, upsample="mask", seed=0)
    layer = small.layers[0]
    spec = layer.sharing["kernel"]
    values = layer.coefficients["kernel"].shape[0]
    assert -(-2048 // spec.size) == copies and values == -(-copies // run)
    assert values <= 16 and spec.size + values == budget
    mask = np.linspace(0.5, 2.0, values).astype("float32")
    layer.coefficients["kernel"].assign(mask)
    bank = to_numpy(small.bank.vector())
    expected = np.resize(bank, 2048) * np.repeat(mask, run * spec.size)[:2048]
    np.testing.assert_allclose(
        to_numpy(layer.kernel).reshape(-1), spec.scale * expected, rtol=1e-6)


def test_scale_multiplies_the_whole_tiling_by_one_value():
    small = keras_ssn.convert(one_layer_model(), 100, upsample="scale", seed=0)
    layer = small.layers[0]
    spec = layer.sharing["kernel"]
    assert layer.coefficients["kernel"].shape == (1,) and spec.size == 99
    assert layer.coefficients["kernel"].path.endswith("upsample_scale")
    layer.coefficients["kernel"].assign([1.5])
    bank = to_numpy(small.bank.vector())
    np.testing.assert_allclose(
        to_numpy(layer.kernel).reshape(-1), spec.scale * 1.5 * np.resize(bank, 2048), rtol=1e-6)


@pytest.mark.parametrize("upsample", ["repeat", "mask", "scale"])
def test_tiled_rows_come_round_after_the_slice_over_its_gcd_with_the_columns(upsample):
    method = upsampling(upsample)
    assert method.distinct_rows(64, 256, 512) == 2
    assert method.distinct_rows(64, 192, 336) == 7  # 336 / gcd(336, 192) = 336 / 48
    assert method.distinct_rows(64, 192, 377) == 64  # 377 rows before one comes round
    assert upsampling("inter").distinct_rows(64, 256, 512) == 64


def test_the_planner_moves_entries_between_slices_so_that_tiled_rows_stay_apart():
    # In proportion, 544 entries split 512 / 32: the 64 x 256 kernel would
    # have 2 distinct rows (512 / gcd(512, 256)) where its slice could keep
    # all 64 apart, and the 64 x 16 one 2 (32 / 16) where it could keep 32:
    # 62 * 256 + 30 * 16 entries copy rows needlessly. 511 and 33 entries
    # share no factor with 256 and 16.
    weights = [SharedWeight("a/kernel", (64, 256), 0.1), SharedWeight("b/kernel", (64, 16), 0.1)]
    assert copied_entries(weights, [0, 1], [1, 1], [512, 32], "repeat") == 16_352
    plan = plan_sharing(weights, [0, 1], 0, 544)
    assert [g.size for g in plan.groups] == [511, 33] and plan.bank_size == 544
    assert copied_entries(weights, [0, 1], [1, 1], [511, 33], "repeat") == 0
    assert {s.mode for s in plan.weights.values()} == {UPSAMPLE}
    # Resizing does not repeat rows, so nothing moves.
    assert [g.size for g in plan_sharing(weights, [0, 1], 0, 544, upsample="inter").groups] == [
        512, 32]


def test_moving_entries_repairs_divisibility_and_does_not_reallocate():
    # Sixteen 2048 x 5 heads in groups of their own get 104 or 105 entries
    # each in proportion; a slice smaller than the rows keeps as many rows
    # apart as it has entries wherever it shares no factor with 5, so
    # growing a head gains nothing, and the 1,024 x 2,048 trunk keeps its
    # slice. A head's slice of 105 (21 distinct rows) moves by one entry.
    weights = [SharedWeight("trunk/kernel", (1024, 2048), 0.03)] + [
        SharedWeight(f"head_{i}/kernel", (2048, 5), 0.03) for i in range(16)]
    proportional = split_proportionally(22_800, [w.size for w in weights])
    assert proportional[0] == 21_133 and proportional[1:3] == [105, 105]
    sizes = [g.size for g in plan_sharing(weights, list(range(17)), 0, 22_800).groups]
    assert sum(sizes) == 22_800 and abs(sizes[0] - proportional[0]) <= 8
    for size, settled in zip(sizes[1:], proportional[1:]):
        assert size % 5 != 0 and abs(size - settled) == (settled % 5 == 0)
    assert copied_entries(weights, list(range(17)), [1] * 17, sizes, "repeat") == 0


def test_a_move_that_max_templates_cannot_read_is_skipped_not_fatal():
    # Moving entries into the first group would leave it more than one
    # template per layer can read (max_templates=1); the planner skips that
    # move instead of refusing the budget, and keeps the proportional slices.
    model = keras.Sequential([
        keras.Input((64,)), keras.layers.Dense(256, name="big"),
        keras.layers.Dense(2, name="mid"), keras.layers.Dense(5, name="small")])
    groups = {"big/kernel": 0, "mid/kernel": 0, "small/kernel": 1}
    small = keras_ssn.convert(model, 16145, groups=groups, max_templates=1, seed=0)
    assert keras_ssn.count_trainable(small) == 16145
    assert [g.size for g in small.sharing_plan.groups] == [15872, 10]


def test_wavg_upsampling_mixes_the_two_halves_of_the_slice():
    small = keras_ssn.convert(one_layer_model(), 300, upsample="wavg", seed=0)
    layer = small.layers[0]
    spec = layer.sharing["kernel"]
    half = -(-spec.size // 2)
    mixes = to_numpy(layer.coefficients["kernel"])
    assert mixes.shape == (-(-2048 // half), 2)
    np.testing.assert_allclose(np.linalg.norm(mixes, axis=1), 1.0, rtol=1e-5)
    bank = to_numpy(small.bank.vector())
    pieces = np.resize(bank, 2 * half).reshape(2, half)
    expected = (mixes @ pieces).reshape(-1)[:2048]
    np.testing.assert_allclose(
        to_numpy(layer.kernel).reshape(-1), spec.scale * expected, rtol=1e-5,
        atol=1e-7)


def test_emb_projects_layer_embeddings_through_a_shared_group_map():
    small = keras_ssn.convert(mlp(), 3.0, share="emb", templates="fit", seed=0)
    plan = small.sharing_plan
    (group,) = plan.groups
    start, dim, templates = group.coefficient_map
    assert dim == 4 and templates == 8
    assert tuple(small.bank.coefficient_maps.shape) == (dim * templates,)
    assert plan.coefficient_params == 3 * dim + dim * templates
    maps = to_numpy(small.bank.coefficient_maps).reshape(dim, templates)
    np.testing.assert_allclose(maps @ maps.T, np.eye(dim), atol=1e-5)
    bank = to_numpy(small.bank.vector())
    for layer in small.layers:
        spec = layer.sharing["kernel"]
        assert spec.coefficient_map == group.coefficient_map
        embedding = to_numpy(layer.coefficients["kernel"])
        assert embedding.shape == (1, dim)
        coefficients = embedding @ maps[:, : spec.templates]
        window = bank[spec.start + (spec.offset + np.arange(spec.read_length))
                      % spec.size]
        expected = coefficients @ window.reshape(spec.templates, -1)
        np.testing.assert_allclose(
            to_numpy(layer.kernel).reshape(-1), spec.scale * expected[0],
            rtol=1e-4, atol=1e-6)


def test_emb_map_is_one_variable_saved_once(tmp_path):
    small = keras_ssn.convert(mlp(), 2.0, share="emb", groups="type", seed=0)
    path = str(tmp_path / "m.keras")
    small.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded.bank.coefficient_maps),
                                  to_numpy(small.bank.coefficient_maps))
    maps = [v for v in loaded.trainable_variables if v.name == "coefficient_maps"]
    assert len(maps) == 1


def test_too_small_budget_for_learned_upsampling_names_the_smallest():
    model = MODELS["residual_cnn"]()
    with pytest.raises(keras_ssn.BudgetError, match="the smallest budget") as info:
        keras_ssn.convert(model, 0.01, upsample="wavg")
    smallest = info.value.smallest
    fits = keras_ssn.convert(model, smallest, upsample="wavg")
    assert keras_ssn.count_trainable(fits) == smallest


def test_weight_decay_skips_every_generation_parameter():
    for options in ({"share": "emb", "fraction": 3.0},
                    {"upsample": "mask", "fraction": 0.05},
                    {"upsample": "wavg", "fraction": 0.05}):
        options = dict(options)
        small = keras_ssn.convert(mlp(), options.pop("fraction"), seed=0, **options)
        small.compile(optimizer=keras.optimizers.AdamW(weight_decay=0.1), loss="mse")
        learned = [v for v in small.trainable_variables
                   if v.name.endswith(GENERATION_PARAM_NAMES)]
        assert learned
        assert not any(small.optimizer._use_weight_decay(v) for v in learned)
        assert all(small.optimizer._use_weight_decay(p) for p in small.bank.pieces)


def test_summary_names_each_layers_method():
    small = keras_ssn.convert(MODELS["nested"](), 0.3, groups="type", share="emb",
                              upsample="mask", templates="fit")
    lines = []
    # A fixed width: the legend wraps to the terminal's, which may split a name.
    report = keras_ssn.summary(small, print_fn=lines.append, line_length=120)
    methods = {e.method for g in report.groups for e in g.entries}
    assert methods <= {"emb", "mask", "direct"} and "emb" in methods
    assert "upsample (mask)" in lines[0] and "combine (emb)" in lines[0]
    assert report.groups[0].coefficient_map_params > 0


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="placement must be one of"):
        keras_ssn.convert(mlp(), 0.1, placement="random")
    with pytest.raises(ValueError, match="upsample must be one of"):
        keras_ssn.convert(mlp(), 0.1, upsample="nearest")


@pytest.mark.parametrize("option", ["share", "upsample", "placement"])
@pytest.mark.parametrize("value", [None, 3, ("rows",)])
def test_an_option_that_is_not_a_string_raises_a_type_error(option, value):
    with pytest.raises(TypeError, match=f"{option} must be one of .*; received"):
        keras_ssn.convert(mlp(), 0.1, **{option: value})
