"""XLA's compiled cost of a converted model's train step (JAX backend).

Most tests here hold properties of generation ahead of the forward pass
(`rematerialize=False`): how the bank is read and its gradient gathered;
`tests/test_remat.py` holds those of the default, rematerialized generation.
"""

import importlib

import keras
import numpy as np
import pytest

import keras_ssn
from benchmarks.cost import batch
from benchmarks.cost import compile_for_training
from benchmarks.cost import compiled_step_cost
from benchmarks.cost import dense_stack

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="XLA's step analysis needs JAX"
)
WIDTH = 64
WEIGHT_BYTES = WIDTH * WIDTH * 4


def step_temp_bytes(depth, bank_copies):
    """Temp bytes of a depth-`depth` stack whose bank holds `bank_copies` weights."""
    model = dense_stack(depth, WIDTH)
    shared = depth * WIDTH * WIDTH + WIDTH * 10
    unshared = keras_ssn.count_trainable(model) - shared
    small = keras_ssn.convert(
        model, unshared + bank_copies * WIDTH * WIDTH + 2 * (depth + 1),
        max_templates=2, seed=0, rematerialize=False,
    )
    assert small.sharing_plan.bank_size >= (bank_copies - 1) * WIDTH * WIDTH
    x, y = batch(small, 32)
    return compiled_step_cost(compile_for_training(small), x, y)["temp_bytes"]


def test_temp_bytes_grow_with_the_weights_read_not_with_layers_times_bank():
    # Every layer reads two templates (2 weights' worth) of an 8-weight bank.
    # Were each layer's gradient a bank-sized buffer, every added layer would
    # add 8 weights' worth of temp bytes (measured: 8.0); what a layer needs
    # is the gradient of its 2 templates, its weight and the weight's
    # gradient (measured: 3.6).
    shallow = step_temp_bytes(4, 8)
    deep = step_temp_bytes(16, 8)
    per_layer = (deep - shallow) / 12
    assert per_layer <= 6 * WEIGHT_BYTES, per_layer / WEIGHT_BYTES


def test_temp_bytes_do_not_grow_with_the_bank_at_a_fixed_depth():
    # Same depth, twice the bank: the layers read as much as before
    # (measured: 1.11 times, the larger bank held in pieces; with
    # bank-sized gradients per layer, 1.95 times).
    assert step_temp_bytes(16, 16) <= 1.1 * step_temp_bytes(16, 8) + WEIGHT_BYTES


def four_copies_step(extra):
    """4 x Dense(64) whose bank holds 4 copies and `extra` entries.

    Returns:
        The entries read twice, the slice's size and XLA's figures.
    """
    model = dense_stack(4, WIDTH)
    shared = 4 * WIDTH * WIDTH + WIDTH * 10
    unshared = keras_ssn.count_trainable(model) - shared
    small = keras_ssn.convert(model, unshared + 4 * shared + extra, seed=0,
                              rematerialize=False)
    (group,) = small.sharing_plan.groups
    specs = [small.sharing_plan.weights[p] for p in group.weights]
    reads = sum(spec.read_length for spec in specs)
    x, y = batch(small, 32)
    step = compiled_step_cost(compile_for_training(small), x, y)
    return reads - specs[0].size, specs[0].size, step


def test_a_reading_that_goes_round_into_the_start_adds_no_gradient_buffer():
    # 20 entries pay the 5 layers' 4 coefficients: every layer reads 4
    # templates, the slice once, each a piece of the bank. With 2000 entries
    # more, the classifier reads a fifth template that goes round into the
    # slice's start, joining two pieces (measured: 1.082x the bytes, 100,868
    # temp bytes). Were the second pass a `split` of its own, its gradient
    # would be a second slice-sized buffer (measured: 2.93x the bytes,
    # 642,564 temp bytes, more than the slice's 280,300).
    once_overlap, _, once = four_copies_step(20)
    round_overlap, size, round_again = four_copies_step(2000)
    assert once_overlap == 0 and round_overlap > 0
    assert round_again["bytes_accessed"] <= 1.10 * once["bytes_accessed"]
    assert round_again["temp_bytes"] <= 0.5 * 4 * size


def step_cost(depth, bank_copies, placement, templates="fewest"):
    """XLA's figures for a depth-`depth` stack whose bank holds `bank_copies` weights."""
    model = dense_stack(depth, WIDTH)
    shared = depth * WIDTH * WIDTH + WIDTH * 10
    unshared = keras_ssn.count_trainable(model) - shared
    small = keras_ssn.convert(
        model, unshared + bank_copies * WIDTH * WIDTH + 8 * (depth + 1),
        placement=placement, templates=templates, seed=0, rematerialize=False,
    )
    x, y = batch(small, 32)
    return compiled_step_cost(compile_for_training(small), x, y)


def test_the_defaults_read_a_low_budget_bank_once():
    # 16 layers share a bank of 3 weights and each mixes 3 templates: with
    # consecutive placement every layer reads its own 3 templates; the
    # defaults place the layers in rows, and one matmul reads the 3 rows
    # once for all layers (measured: 0.54 times the bytes of consecutive
    # placement, 1.13 times the plain step's).
    consecutive = step_cost(16, 3, "consecutive", "fit")
    defaults = step_cost(16, 3, "auto", "auto")
    plain = compiled_step_cost(
        compile_for_training(dense_stack(16, WIDTH)), *batch(dense_stack(16, WIDTH), 32)
    )
    assert defaults["bytes_accessed"] <= 0.6 * consecutive["bytes_accessed"]
    assert defaults["bytes_accessed"] <= 1.25 * plain["bytes_accessed"]
    assert defaults["temp_bytes"] <= consecutive["temp_bytes"]


def test_a_step_at_the_models_size_reads_each_weight_once():
    # At 100% the defaults give each layer one window of the bank, held in a
    # piece of its own (measured: 1.015x the plain step's flops, 1.10x its
    # bytes); the paper's rule gives each of the 16 layers 8 templates.
    plain_model = dense_stack(16, WIDTH)
    plain = compiled_step_cost(compile_for_training(plain_model), *batch(plain_model, 32))
    costs = {}
    for templates in ("auto", "fit"):
        small = keras_ssn.convert(dense_stack(16, WIDTH), 1.0, templates=templates, seed=0)
        costs[templates] = compiled_step_cost(compile_for_training(small), *batch(small, 32))
    assert costs["auto"]["flops"] <= 1.05 * plain["flops"]
    assert costs["auto"]["bytes_accessed"] <= 1.5 * plain["bytes_accessed"]
    assert costs["fit"]["bytes_accessed"] >= 3 * costs["auto"]["bytes_accessed"]


def step_with_bank(budget, pieces):
    """XLA's figures for 16 x Dense(64) at `budget`, its bank held as `pieces` says."""
    convert_module = importlib.import_module("keras_ssn.convert")
    original = convert_module.bank_pieces
    if pieces == "one":
        convert_module.bank_pieces = lambda plan: [plan.bank_size]
    try:
        small = keras_ssn.convert(dense_stack(16, WIDTH), budget, seed=0)
    finally:
        convert_module.bank_pieces = original
    return compiled_step_cost(compile_for_training(small), *batch(small, 32))


def test_a_bank_held_in_pieces_is_read_and_trained_without_copies():
    # Cut where the layers' reading cuts it, the bank's pieces are the
    # layers' templates: no window is copied out of the bank and no gradient
    # concatenated into it (measured, against the bank in one variable: at
    # 100% 1.10x the plain step's bytes against 1.31x and 4 temp bytes
    # against 481,540; at 400% 3.06x against 4.44x, 32,772 temp bytes
    # against 1,425,856).
    plain_model = dense_stack(16, WIDTH)
    plain = compiled_step_cost(compile_for_training(plain_model), *batch(plain_model, 32))
    at_size = step_with_bank(1.0, "pieces")
    assert at_size["bytes_accessed"] <= 1.15 * plain["bytes_accessed"]
    assert at_size["temp_bytes"] <= WEIGHT_BYTES
    pieces, one = step_with_bank(4.0, "pieces"), step_with_bank(4.0, "one")
    assert pieces["bytes_accessed"] <= 0.75 * one["bytes_accessed"]
    assert pieces["temp_bytes"] <= 0.1 * one["temp_bytes"]


def bytes_relative_to_plain(budget, dtype_policy):
    """A step's bytes accessed under `dtype_policy`, relative to the plain model's."""
    costs = []
    for convert in (False, True):
        keras.config.set_dtype_policy(dtype_policy)
        model = dense_stack(16, WIDTH)
        if convert:
            model = keras_ssn.convert(model, budget, seed=0)
        costs.append(compiled_step_cost(compile_for_training(model), *batch(model, 32)))
        keras.backend.clear_session()
    return costs[1]["bytes_accessed"] / costs[0]["bytes_accessed"]


@pytest.mark.parametrize("budget", [0.05, 4.0])
def test_mixed_precision_generation_adds_no_pass_over_the_weights(budget):
    # The plain model casts each float32 kernel to bfloat16 once per step;
    # XLA fuses the converted model's cast into generation (the slice is
    # read, scaled and cast in one pass), so relative to the plain model a
    # mixed-precision step costs no more than a float32 one (measured:
    # 0.775 against 0.884 at 5%, 3.875 against 4.435 at 400%).
    try:
        mixed = bytes_relative_to_plain(budget, "mixed_bfloat16")
    finally:
        keras.config.set_dtype_policy("float32")
    assert mixed <= bytes_relative_to_plain(budget, "float32")


def test_the_step_breakdown_adds_up_to_xlas_bytes_accessed():
    from benchmarks.cost import compiled_step
    from benchmarks.step_breakdown import bytes_by_kind

    small = compile_for_training(keras_ssn.convert(dense_stack(4, WIDTH), 2.0, seed=0))
    compiled, _ = compiled_step(small, *batch(small, 32))
    by_kind = bytes_by_kind(compiled.as_text())
    accessed = compiled_step_cost(small, *batch(small, 32))["bytes_accessed"]
    assert abs(sum(by_kind.values()) - accessed) <= 0.05 * accessed
    assert any(kind.startswith("dot") for kind in by_kind)


def test_the_step_breakdown_counts_an_in_place_update_as_its_update():
    # A buffer of 64 K entries updated in place 4 times with 4 K entries
    # each: XLA counts each update's reads and writes, not the buffer's
    # (counting the whole buffer for each update: 1.52 MB too many).
    import jax

    from benchmarks.step_breakdown import bytes_by_kind

    def fill(scales, pieces):
        buffer = jax.numpy.zeros((65536,))
        for i, (scale, piece) in enumerate(zip(scales, pieces)):
            buffer = jax.lax.dynamic_update_slice(buffer, scale * piece, (i * 4096,))
        return buffer

    compiled = jax.jit(fill).lower(
        [1.0] * 4, [jax.numpy.ones((4096,))] * 4).compile()
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    by_kind = bytes_by_kind(compiled.as_text())
    assert any("dynamic-update-slice" in kind for kind in by_kind)
    assert abs(sum(by_kind.values()) - analysis["bytes accessed"]) <= 4096


def test_step_memory_donates_the_state_as_keras_does():
    """`benchmarks.memory` compiles the step with its state donated: XLA
    updates every variable in place (aliased), and the peak counts the
    state and the batch once."""
    from benchmarks.memory import step_memory

    for model in (dense_stack(2, WIDTH), keras_ssn.convert(dense_stack(2, WIDTH), 0.5, seed=0)):
        model = compile_for_training(model)
        x, y = batch(model, 8)
        figures = step_memory(model, x, y)
        state = sum(
            int(np.prod(v.shape)) * 4
            for v in model.trainable_variables + model.non_trainable_variables
            + model.optimizer.variables + model.metrics_variables
        )
        assert figures["aliased"] == state
        assert figures["arguments"] == state + x.nbytes + y.nbytes
        assert figures["peak"] == (figures["arguments"] + figures["outputs"]
                                   - figures["aliased"] + figures["temp"])
