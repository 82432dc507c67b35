"""The generation engine: each shared weight generated once per forward pass."""

import dataclasses

import keras
import numpy as np
import pytest
from conftest import MODELS
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from conftest import sample_input

import keras_ssn
from benchmarks.architectures import wide_resnet
from keras_ssn import bank_cuts
from keras_ssn import engine
from keras_ssn import generation
from keras_ssn import reading

PLACEMENTS = ["auto", "consecutive", "sliding", "rows"]


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def count_generation(monkeypatch):
    """Counts the calls of the one-layer-alone generation path."""
    calls = []
    original = generation.generate_weight

    def counting(bank, spec, parameters=None, bank_start=0):
        calls.append(spec)
        return original(bank, spec, parameters, bank_start)

    monkeypatch.setattr(generation, "generate_weight", counting)
    return calls


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("budget", [0.05, 1.0, 3.0])
def test_group_generation_equals_generating_each_layer_alone(
    model_name, budget, placement
):
    small = keras_ssn.convert(MODELS[model_name](), budget, placement=placement, seed=0)
    owners = small.weight_owners()
    assert sorted(owners) == sorted(small.sharing_plan.weights)
    generated = engine.generate_groups(small.bank, small.sharing_plan, owners)
    assert len(generated) == len(owners)
    for path, (layer, name) in owners.items():
        np.testing.assert_allclose(
            to_numpy(generated.get(layer, name)),
            to_numpy(layer.generate_weight(name)),
            rtol=1e-6, atol=1e-7, err_msg=path,
        )


def test_consecutive_groups_are_read_end_to_end_and_sliding_ones_are_not():
    model = MODELS["residual_cnn"]()
    for budget in (0.05, 3.0):
        consecutive = keras_ssn.convert(model, budget, groups="single",
                                        placement="consecutive").sharing_plan
        sliding = keras_ssn.convert(model, budget, groups="single",
                                    placement="sliding").sharing_plan
        for plan, expected in ((consecutive, True), (sliding, False)):
            (group,) = plan.groups
            specs = [plan.weights[p] for p in group.weights]
            assert reading.is_end_to_end(specs) is expected


def test_a_bank_is_held_in_the_pieces_its_layers_read():
    # At 100% every layer reads one window of its group's slice, end to end:
    # each window is a piece of the bank.
    small = keras_ssn.convert(MODELS["mlp"](), 1.0, placement="consecutive", seed=0)
    plan = small.sharing_plan
    windows = [plan.weights[p].read_length for g in plan.groups for p in g.weights]
    assert [piece.shape[0] for piece in small.bank.pieces] == windows
    assert bank_cuts.bank_pieces(plan) == windows
    # Generated ahead (`rematerialize=False`), rows placement reads its
    # groups' slices whole: one piece, cut by one split. Rematerialized, each
    # layer reads its own rows: a piece per row.
    rows = keras_ssn.convert(MODELS["mlp"](), 1.0, placement="rows", seed=0).sharing_plan
    kept = dataclasses.replace(rows, rematerialize=False)
    assert bank_cuts.bank_pieces(kept) == [kept.bank_size]
    rows_read = sorted({(s.start + b, s.start + e) for s in rows.weights.values()
                        for b, e in s.read_spans})
    assert len(bank_cuts.bank_pieces(rows)) >= len(rows_read)


def compiled(function):
    """`function` compiled as one program on JAX (each eager op is compiled
    on its own there), as it is elsewhere."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(function)
    return function


def gradient(function, x):
    """The gradient of the scalar `function(x)` at `x`, on the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        return compiled(jax.grad(function))(x)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        unconnected = tf.UnconnectedGradients.ZERO  # a loss that reads nothing
        return tape.gradient(y, x, unconnected_gradients=unconnected)
    pytest.skip("needs a JAX or TensorFlow gradient")


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 45), min_size=1, max_size=6),
    start=st.integers(0, 25),
    held_in=st.one_of(
        st.just("first pass"), st.sets(st.integers(1, 9), max_size=4)
    ),
)
def test_windows_read_end_to_end_go_round_the_source(lengths, start, held_in):
    # Up to 4.5 passes over a 10-entry source: both the reading that reuses
    # the first pass's pieces (at most twice over) and the pass-by-pass one;
    # a window of length 0 is empty. The source is held in pieces cut where
    # the first pass cuts it (as a bank is, see `bank_pieces`) or anywhere.
    source = np.arange(10, dtype="float32")
    positions = np.arange(start, start + sum(lengths)) % 10
    expected = np.split(source[positions], np.cumsum(lengths)[:-1])
    targets = [np.random.default_rng(n).normal(size=n).astype("float32")
               for n in lengths]
    if held_in == "first pass":
        bounds = start + np.cumsum([0, *lengths])
        held_in = {b % 10 for b in bounds if b < start + 10} - {0}
    cuts = sorted(held_in)

    def read(x):
        pieces = keras.ops.split(x, cuts) if cuts else [x]
        return reading.read_end_to_end(pieces, lengths, start)

    def loss(x):
        return sum(keras.ops.sum(w * t) for w, t in zip(read(x), targets))

    for window, want in zip(compiled(read)(keras.ops.convert_to_tensor(source)), expected):
        np.testing.assert_array_equal(to_numpy(window), want)
    # Every entry's gradient is the sum over the windows that read it.
    want = np.zeros(10, "float32")
    np.add.at(want, positions, np.concatenate(targets))
    np.testing.assert_allclose(
        to_numpy(gradient(loss, source)), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rematerialize", [False, True])
def test_a_model_call_generates_each_weight_once(monkeypatch, rematerialize):
    small = keras_ssn.convert(MODELS["nested"](), 0.2, seed=0, rematerialize=rematerialize)
    x = sample_input(small)
    expected = to_numpy(small(x))
    calls = count_generation(monkeypatch)
    np.testing.assert_array_equal(to_numpy(small(x)), expected)
    if rematerialize:
        # Each weight is generated where its layer uses it, once in a
        # forward pass.
        specs = list(small.sharing_plan.weights.values())
        assert len(calls) == len(specs)
        assert all(spec in specs for spec in calls)
    else:
        # Generated ahead, group by group: no layer generates on its own.
        assert calls == []
    np.testing.assert_allclose(
        small.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)


def test_a_layer_called_alone_generates_each_weight_once_per_call(monkeypatch):
    small = keras_ssn.convert(MODELS["mlp"](), 0.2, seed=0)
    hidden = small.get_layer("hidden_1")
    x = sample_input(small)
    inside = to_numpy(keras.ops.matmul(x, small.layers[0].kernel))
    calls = count_generation(monkeypatch)
    alone = to_numpy(hidden(x))
    assert len(calls) == 1
    np.testing.assert_allclose(
        alone, np.maximum(inside + to_numpy(hidden.bias), 0), rtol=1e-5, atol=1e-6
    )


def test_an_rnn_called_alone_generates_its_kernels_once_not_per_step(monkeypatch):
    model = keras.Sequential([keras.Input((12, 3)), keras.layers.LSTM(8),
                              keras.layers.Dense(2)])
    small = keras_ssn.convert(model, 0.5, seed=0)
    lstm = small.layers[0]
    x = np.random.default_rng(0).normal(size=(2, 12, 3)).astype("float32")
    calls = count_generation(monkeypatch)
    lstm(x)
    assert sorted(spec.shape for spec in calls) == [(3, 32), (8, 32)]


def test_regularizers_see_the_generated_weights():
    regularizer = keras.regularizers.L2(0.01)
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(5, kernel_regularizer=regularizer, name="a"),
        keras.layers.Dense(3, name="b"),
    ])
    small = keras_ssn.convert(model, 30, seed=0)
    x = np.ones((2, 6), "float32")
    small(x)
    (loss,) = small.losses
    kernel = to_numpy(small.get_layer("a").generate_weight("kernel"))
    np.testing.assert_allclose(float(loss), 0.01 * np.sum(kernel**2), rtol=1e-5)


def test_rows_placement_mixes_shared_rows_with_one_matmul():
    # 6 Dense(16 -> 16) weights at a budget of 2.5 of them: one ring of
    # ceil(size / 256) rows, every layer mixes rows of it.
    model = keras.Sequential(
        [keras.Input((16,))] + [keras.layers.Dense(16, use_bias=False) for _ in range(6)]
    )
    small = keras_ssn.convert(model, 640, placement="rows", templates="fit", seed=0)
    plan = small.sharing_plan
    (group,) = plan.groups
    specs = [plan.weights[p] for p in group.weights]
    rings = {spec.ring for spec in specs}
    assert rings == {(0, 3)} and group.size == 640 - 2 * 6
    assert engine.shared_rows(specs) == [list(range(6))]
    # Rows are 256 entries from the slice's start; the last one wraps.
    bank = to_numpy(small.bank.vector())
    rows = np.concatenate([bank, bank]) [: 3 * 256].reshape(3, 256)
    for layer, spec in zip(small.layers, specs):
        coefficients = to_numpy(layer.coefficients["kernel"])[0]
        used = [(spec.ring_row + k) % 3 for k in range(spec.templates)]
        expected = spec.scale * coefficients @ rows[used]
        np.testing.assert_allclose(
            to_numpy(layer.kernel).reshape(-1), expected, rtol=1e-5, atol=1e-6
        )


def test_rows_placement_saves_loads_and_materializes(tmp_path):
    small = keras_ssn.convert(MODELS["residual_cnn"](), 0.1, placement="rows", seed=0)
    assert any(spec.ring for spec in small.sharing_plan.weights.values())
    x = sample_input(small)
    path = str(tmp_path / "rows.keras")
    small.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.sharing_plan == small.sharing_plan
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(small(x)))
    plain = keras_ssn.materialize(small)
    np.testing.assert_allclose(
        to_numpy(plain(x)), to_numpy(small(x)), rtol=1e-5, atol=1e-5
    )


def equal_stack(depth=16, width=64):
    return keras.Sequential(
        [keras.Input((width,))]
        + [keras.layers.Dense(width, use_bias=False) for _ in range(depth)]
    )


def test_auto_placement_mixes_a_low_budget_stack_of_equal_layers_in_rows():
    # 16 Dense(64 -> 64) share 3 weights' worth and each mixes 3 templates:
    # one (16, 3) @ (3, 4096) matmul over a ring of 3 rows generates them all.
    small = keras_ssn.convert(equal_stack(), 3 * 4096 + 16 * 3, seed=0)
    plan = small.sharing_plan
    specs = list(plan.weights.values())
    assert [spec.templates for spec in specs] == [3] * 16
    assert {spec.ring for spec in specs} == {(0, 3)}
    assert engine.shared_rows(specs) == [list(range(16))]
    assert engine.mixes_every_row(specs)
    rows = keras_ssn.convert(equal_stack(), 3 * 4096 + 16 * 3, placement="rows", seed=0)
    assert list(rows.sharing_plan.weights.values()) == specs


@pytest.mark.parametrize(
    "depth, budget", [(16, 0.05), (16, 0.1), (16, 1.0), (16, 4.0), (2, 1.0)]
)
def test_auto_placement_is_consecutive_where_rows_would_not_pay_off(depth, budget):
    # At 5% every layer upsamples one window; at 10% each reads one
    # template, which in rows would be a bare row (16 layers, 2 rows); from
    # 100% up each layer mixes its own whole copies, which rows placement
    # would read once anyway (2 layers: one (2, 2) @ (2, 4096) matmul would
    # be possible, but it would read no fewer entries).
    auto = keras_ssn.convert(equal_stack(depth), budget, seed=0).sharing_plan
    consecutive = keras_ssn.convert(
        equal_stack(depth), budget, placement="consecutive", seed=0
    ).sharing_plan
    if depth == 2:
        rows = keras_ssn.convert(equal_stack(depth), budget, placement="rows", seed=0)
        assert engine.mixes_every_row(list(rows.sharing_plan.weights.values()))
    assert list(auto.weights.values()) == list(consecutive.weights.values())
    assert all(spec.ring is None for spec in auto.weights.values())


def test_auto_placement_never_gives_two_layers_the_same_bare_row():
    # WRN-16-4 at 10%: one group is placed in rows for its convolutions that
    # mix 7 templates each; three others of one size read one template each
    # from a slice of 2 rows, so in rows two of them would be one weight.
    plan = keras_ssn.convert(wide_resnet(16, 4, classes=10), 0.1, seed=0).sharing_plan
    specs = list(plan.weights.values())
    assert any(spec.ring is not None for spec in specs)
    bare = [(spec.ring, spec.weight_size, tuple(spec.template_offsets))
            for spec in specs if spec.ring is not None and spec.templates == 1]
    assert len(bare) == len(set(bare))
    rows = keras_ssn.convert(
        wide_resnet(16, 4, classes=10), 0.1, placement="rows", seed=0
    ).sharing_plan
    bare_rows = [(spec.ring, spec.weight_size, tuple(spec.template_offsets))
                 for spec in rows.weights.values() if spec.templates == 1 and spec.ring]
    assert len(bare_rows) > len(set(bare_rows))  # what "auto" avoids
