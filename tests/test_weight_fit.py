"""`convert(init="weights")`: the bank fitted to what a model learned."""

import keras
import numpy as np
import pytest

import keras_ssn
from conftest import MODELS
from conftest import sample_input
from test_layer_families import Classifier
from test_layer_families import attention_model
from test_layer_families import conv_family_model
from test_layer_families import recurrent_model


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def relative_difference(model, other, x):
    expected = numpy(model(x, training=False))
    return np.abs(numpy(other(x, training=False)) - expected).max() / np.abs(expected).max()


FAMILIES = {
    "dense": MODELS["mlp"],
    "convolution": MODELS["residual_cnn"],
    "embedding_conv1d_einsum": MODELS["sequence"],
    "conv2d_depthwise_transposed_separable": lambda: conv_family_model(2),
    "recurrent": recurrent_model,
    "attention": attention_model,
}


@pytest.mark.parametrize("budget", [1.0, 4.0])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_from_100_percent_up_the_converted_model_computes_what_the_model_computes(
        family, budget):
    keras.utils.set_random_seed(0)
    model = FAMILIES[family]()
    x = sample_input(model)

    small = keras_ssn.convert(model, budget, seed=0, init="weights")

    assert keras_ssn.count_trainable(small) == round(budget * keras_ssn.count_trainable(model))
    assert relative_difference(model, small, x) <= 1e-5
    assert relative_difference(model, keras_ssn.convert(model, budget, seed=0), x) > 0.1


@pytest.mark.parametrize("options", [
    dict(share="wavg", upsample="repeat"), dict(share="emb", upsample="mask"),
    dict(share="avg", upsample="inter"), dict(share="wavg", upsample="wavg"),
    dict(templates="fit", placement="sliding"), dict(groups="single", placement="rows"),
])
def test_every_generation_method_and_placement_is_fitted_exactly_at_twice_the_size(options):
    keras.utils.set_random_seed(0)
    model = MODELS["mlp"]()
    x = sample_input(model)
    small = keras_ssn.convert(model, 2.0, seed=0, init="weights", **options)
    assert relative_difference(model, small, x) <= 1e-5


def weights_error(model, small):
    """Relative error of the generated kernels against the model's, in total."""
    plain = keras_ssn.materialize(small)
    kernels = [(a, b) for a, b in zip(model.weights, plain.weights) if len(a.shape) == 2]
    return sum(np.linalg.norm(numpy(a) - numpy(b)) / np.linalg.norm(numpy(a))
               for a, b in kernels) / len(kernels)


@pytest.mark.parametrize("options", [dict(), dict(upsample="inter"), dict(upsample="mask")])
def test_below_100_percent_the_fit_is_the_closest_the_plan_allows(options):
    # Kernels of rank 4: far more structure than the bank needs to hold.
    keras.utils.set_random_seed(0)
    model = MODELS["mlp"]()
    rng = np.random.default_rng(0)
    for layer in model.layers:
        rows, cols = layer.kernel.shape
        layer.kernel.assign(rng.normal(size=(rows, 4)) @ rng.normal(size=(4, cols)) / rows)

    fitted = keras_ssn.convert(
        model, 0.5, seed=0, init=keras_ssn.FitWeights(keep_norms=False), **options)
    drawn = keras_ssn.convert(model, 0.5, seed=0, **options)
    more_rounds = keras_ssn.convert(
        model, 0.5, seed=0, init=keras_ssn.FitWeights(rounds=6, keep_norms=False), **options)

    # Least squares from the drawn bank is never worse than a zero bank
    # (error 1); a drawn bank is about sqrt(2) away.
    assert weights_error(model, fitted) < 1.0 < weights_error(model, drawn)
    assert weights_error(model, more_rounds) <= weights_error(model, fitted) + 1e-6


def kernel_norms(model):
    return np.array([np.linalg.norm(numpy(w)) for w in model.weights if len(w.shape) >= 2])


@pytest.mark.parametrize("options", [dict(), dict(share="avg"), dict(groups="type")])
def test_kept_norms_give_each_group_the_norm_of_the_weights_it_replaces(options):
    keras.utils.set_random_seed(0)
    model = MODELS["residual_cnn"]()
    small = keras_ssn.convert(model, 0.1, seed=0, init="weights", **options)
    shrunk = keras_ssn.convert(
        model, 0.1, seed=0, init=keras_ssn.FitWeights(keep_norms=False), **options)
    groups = {}
    for path, spec in small.sharing_plan.weights.items():
        groups.setdefault(spec.group, []).append(path)
    want, have, least = (kernel_norms(m) for m in (
        model, keras_ssn.materialize(small), keras_ssn.materialize(shrunk)))
    # Every kernel of the model is shared here; in weight order.
    assert len(want) == len(small.sharing_plan.weights)
    np.testing.assert_allclose(np.sum(have**2), np.sum(want**2), rtol=1e-4)
    assert np.sum(least**2) < 0.5 * np.sum(want**2)


def test_a_trained_model_keeps_most_of_its_accuracy_at_half_the_parameters():
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = (x[order] / 16).astype("float32"), y[order]
    model = MODELS["mlp"]()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("adam", loss, metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=30, batch_size=64, verbose=0)

    def accuracy(m):
        m.compile("adam", loss, metrics=["accuracy"])
        return m.evaluate(x[1400:], y[1400:], verbose=0)[1]

    assert accuracy(model) >= 0.95
    assert accuracy(keras_ssn.convert(model, 0.5, seed=0, init="weights")) >= 0.8
    assert accuracy(keras_ssn.convert(model, 0.5, seed=0)) <= 0.3


def test_a_fitted_model_saves_loads_trains_and_materializes(tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS["residual_cnn"]()
    x = sample_input(model)
    small = keras_ssn.convert(model, 4.0, seed=0, init="weights")
    small.save(tmp_path / "fitted.keras")
    loaded = keras.models.load_model(tmp_path / "fitted.keras")
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(small(x)))
    assert relative_difference(model, keras_ssn.materialize(small), x) <= 1e-5
    small.compile("adam", "mse", jit_compile=True)
    small.fit(x, numpy(model(x)), epochs=1, verbose=0)


def test_the_input_model_is_left_as_it_was():
    model = MODELS["mlp"]()
    before = [numpy(v) for v in model.weights]
    keras_ssn.convert(model, 0.5, seed=0, init="weights")
    for value, variable in zip(before, model.weights):
        np.testing.assert_array_equal(value, numpy(variable))


def test_verbose_prints_one_line_per_fit(capsys):
    keras_ssn.convert(MODELS["mlp"](), 0.5, seed=0,
                      init=keras_ssn.FitWeights(rounds=2, verbose=True))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "fit round 1/2, bank", "fit round 1/2, coefficients",
        "fit round 2/2, bank", "fit round 2/2, coefficients", "fit norms kept"]


@pytest.mark.parametrize("init, message", [
    ("pretrained", r"`init` must be one of \('random', 'weights'\) or a keras_ssn.FitWeights"),
    (None, r"`init` must be one of"),
])
def test_an_unknown_init_is_refused(init, message):
    with pytest.raises(ValueError, match=message):
        keras_ssn.convert(MODELS["mlp"](), 0.5, init=init)


@pytest.mark.parametrize("arguments, message", [
    (dict(rounds=0), "`rounds` must be a positive integer; received 0"),
    (dict(iterations=2.5), "`iterations` must be a positive integer; received 2.5"),
    (dict(tolerance=-1.0), "`tolerance` must be at least 0; received -1.0"),
    (dict(damping=-0.5), "`damping` must be at least 0; received -0.5"),
    (dict(batch_size=0), "`batch_size` must be a positive integer; received 0"),
])
def test_fit_options_are_checked(arguments, message):
    with pytest.raises(ValueError, match=message):
        keras_ssn.FitWeights(**arguments)


def test_a_damping_that_is_not_a_number_is_refused():
    with pytest.raises(TypeError, match="`damping` must be a number; received 'a'"):
        keras_ssn.FitWeights(damping="a")


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    yield request.param
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"], indirect=True)
def test_distilling_a_fitted_student_with_keras_distiller(policy, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 64)).astype("float32")
    y = rng.integers(0, 10, 64)
    teacher = MODELS["mlp"]()
    teacher_weights = [numpy(w) for w in teacher.weights]
    student = keras_ssn.convert(teacher, 0.5, seed=0, init="weights")
    bank = numpy(student.bank.vector())

    distiller = keras.distillation.Distiller(
        teacher=teacher, student=student,
        distillation_losses=keras.distillation.LogitsDistillation(temperature=3.0))
    distiller.compile(optimizer="adam", jit_compile=True,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    distiller.fit(x, y, epochs=2, batch_size=16, verbose=0)

    assert not np.array_equal(numpy(student.bank.vector()), bank)
    for value, weight in zip(teacher_weights, teacher.weights):
        np.testing.assert_array_equal(value, numpy(weight))
    student.save(tmp_path / "student.keras")
    loaded = keras.models.load_model(tmp_path / "student.keras")
    assert type(loaded) is type(student)
    np.testing.assert_array_equal(numpy(loaded(x)), numpy(student(x)))


def subspace_data(samples=256, features=64, rank=6, seed=0):
    """Inputs on a `rank`-dimensional subspace of the `features` inputs."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(rank, features))
    return (rng.normal(size=(samples, rank)) @ basis).astype("float32")


def test_calibration_data_fits_the_outputs_on_that_data_rather_than_the_weights():
    keras.utils.set_random_seed(0)
    model = MODELS["mlp"]()
    x = subspace_data()

    on_weights = keras_ssn.convert(model, 0.1, seed=0, init="weights")
    on_data = keras_ssn.convert(model, 0.1, seed=0, init=keras_ssn.FitWeights(data=x))

    # The data spans 6 of the 64 input directions: what the plan holds goes
    # to those, so the outputs on such data come much closer, the kernels
    # themselves less so.
    assert relative_difference(model, on_data, x) < 0.5 * relative_difference(
        model, on_weights, x)
    assert weights_error(model, on_data) > weights_error(model, on_weights)


def subclassed_model():
    model = Classifier()
    model(np.zeros((2, 5, 4), "float32"))
    return model


@pytest.mark.parametrize("family", ["dense", "convolution", "attention", "subclassed"])
def test_calibration_data_keeps_the_fit_exact_from_100_percent_up(family):
    keras.utils.set_random_seed(0)
    model = subclassed_model() if family == "subclassed" else FAMILIES[family]()
    x = np.random.default_rng(0).normal(size=(16, 5, 4)).astype("float32")
    if family != "subclassed":
        x = sample_input(model, batch=16)
    grown = keras_ssn.convert(model, 2.0, seed=0, init=keras_ssn.FitWeights(data=x))
    assert relative_difference(model, grown, x[8:]) <= 1e-5


def test_verbose_names_the_weights_measured_on_their_outputs(capsys):
    keras.utils.set_random_seed(0)
    model = MODELS["sequence"]()  # Embedding, Conv1D, EinsumDense, Dense
    keras_ssn.convert(model, 0.5, seed=0, init=keras_ssn.FitWeights(
        data=sample_input(model, batch=8), rounds=1, verbose=True))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fit: inputs of 3 of 4 weights recorded")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "fit weights, round 1/1, bank", "fit weights, round 1/1, coefficients",
        "fit outputs, round 1/1, bank", "fit outputs, round 1/1, coefficients",
        "fit norms kept"]


def test_a_bank_in_one_piece_is_fitted():
    keras.utils.set_random_seed(0)
    model = MODELS["mlp"]()
    small = keras_ssn.convert(model, 0.02, seed=0, init=keras_ssn.FitWeights(keep_norms=False))
    assert len(small.bank.pieces) == 1
    assert weights_error(model, small) < 1.0


@pytest.mark.parametrize("data, error, message", [
    ("digits", TypeError, r"takes the model's inputs as arrays .* received a str holding"),
    ([[0.0] * 64] * 4, TypeError, r"received a list holding \['float'\]\. Turn Python lists "
                                  r"into arrays with `np.asarray\(x\)`"),
    ((np.zeros((4, 64), "float32"), np.zeros(4)), ValueError,
     r"model 'mlp' takes one input, but data is a tuple of 2\. Pass the inputs alone, "
     r"without labels"),
    ([np.zeros((4, 64)), np.zeros((3, 64))], ValueError,
     r"every input needs the same number of samples \(first dimension\); received \[3, 4\]"),
    (np.zeros((0, 64), "float32"), ValueError, "holds no samples"),
    (np.zeros((4, 63), "float32"), ValueError,
     r"(?s)could not be passed through model 'mlp': .* as `model\(data\)` takes them"),
])
def test_unusable_calibration_data_is_refused(data, error, message):
    with pytest.raises(error, match=message):
        keras_ssn.convert(MODELS["mlp"](), 0.5, init=keras_ssn.FitWeights(data=data))


def test_recurrent_layers_fit_their_input_kernels_on_the_input_sequences(capsys):
    keras.utils.set_random_seed(0)
    model = recurrent_model()  # 4 recurrent layers (2 in Bidirectional), 2 Dense
    x = sample_input(model, batch=16)
    small = keras_ssn.convert(model, 0.5, seed=0, init=keras_ssn.FitWeights(
        data=x, rounds=1, verbose=True))
    assert capsys.readouterr().out.startswith("fit: inputs of 6 of 10 weights recorded")
    # The recorded pass leaves each layer returning what it returned.
    assert small(x).shape == model(x).shape == (16, 3)


def test_calibration_data_that_measures_no_layer_is_refused():
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(100, 8),
                              keras.layers.GlobalAveragePooling1D()], name="bag")
    with pytest.raises(ValueError, match=r"none of model 'bag's shared layers applies its "
                                         r"weight with a matmul.*init=\"weights\""):
        keras_ssn.convert(model, 0.5, init=keras_ssn.FitWeights(
            data=np.zeros((2, 4), "int32")))
