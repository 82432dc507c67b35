"""Generated weights start with the spread their layer's initializer gives."""

import keras
import numpy as np
import pytest

import keras_ssn
from keras_ssn.initial_scale import initial_stddev
from keras_ssn.layers import is_shared

I = keras.initializers


@pytest.mark.parametrize("initializer", [
    I.GlorotUniform(seed=1), I.GlorotNormal(seed=2), I.HeNormal(seed=3),
    I.HeUniform(seed=4), I.LecunNormal(seed=5),
    I.VarianceScaling(2.5, "fan_out", "untruncated_normal", seed=6),
    I.RandomNormal(stddev=0.3, seed=7), I.TruncatedNormal(stddev=0.3, seed=8),
    I.RandomUniform(-0.2, 0.6, seed=9), I.Orthogonal(gain=1.5, seed=10),
])
@pytest.mark.parametrize("shape", [(96, 160), (160, 96), (3, 3, 16, 32)])
def test_closed_form_matches_what_the_initializer_draws(initializer, shape):
    drawn = np.std(keras.ops.convert_to_numpy(initializer(shape)))
    np.testing.assert_allclose(initial_stddev(initializer, shape), drawn, rtol=0.03)


def test_constant_initializers_get_glorots_std():
    for initializer in (I.Zeros(), I.Ones(), I.Constant(0.5), "zeros"):
        assert initial_stddev(initializer, (30, 70)) == pytest.approx(np.sqrt(2 / 100))


class Seeded(keras.initializers.Initializer):
    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        return keras.random.normal(shape, stddev=0.7, seed=self.seed, dtype=dtype)

    def get_config(self):
        return {"seed": self.seed}


def test_other_initializers_are_sampled_reproducibly():
    first = initial_stddev(Seeded(seed=None), (50, 60))
    assert first == initial_stddev(Seeded(seed=123), (50, 60))
    assert first == pytest.approx(0.7, rel=0.03)


def build():
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])


def test_same_architecture_same_model_and_weights_only_checkpoints_restore_it(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    a, b = keras_ssn.convert(build(), 20, seed=1), keras_ssn.convert(build(), 20, seed=1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(b(x)))
    a.save_weights(str(tmp_path / "a.weights.h5"))
    c = keras_ssn.convert(build(), 20)  # another seed, the same scales
    c.load_weights(str(tmp_path / "a.weights.h5"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(c(x)))
    scales = [[s.scale for s in m.sharing_plan.weights.values()] for m in (a, c)]
    assert scales[0] == scales[1]


def depthwise_model(**options):
    return keras.Sequential([
        keras.Input((8, 8, 4)),
        keras.layers.DepthwiseConv2D(3, depthwise_initializer=I.RandomNormal(stddev=0.5),
                                     name="depthwise", **options),
        keras.layers.SeparableConv2D(6, 3, pointwise_initializer=I.RandomNormal(stddev=0.2),
                                     name="separable"),
        keras.layers.Flatten(),
        keras.layers.Dense(2, name="head"),
    ])


def test_depthwise_and_separable_weights_keep_initializer_regularizer_and_constraint():
    plan = keras_ssn.convert(depthwise_model(), 0.5).sharing_plan
    assert plan.weights["depthwise/kernel"].scale == pytest.approx(
        0.5 / plan.groups[0].stddev)
    assert plan.weights["separable/pointwise_kernel"].scale == pytest.approx(
        0.2 / plan.groups[0].stddev)

    small = keras_ssn.convert(
        depthwise_model(depthwise_regularizer=keras.regularizers.L2(0.5)), 0.5)
    kernel = keras.ops.convert_to_numpy(small.get_layer("depthwise").kernel)
    (loss,) = small.losses
    np.testing.assert_allclose(float(loss), 0.5 * np.sum(kernel**2), rtol=1e-5)

    small = keras_ssn.convert(
        depthwise_model(depthwise_constraint=keras.constraints.NonNeg()), 0.5)
    assert not is_shared(small.get_layer("depthwise"))
    (entry,) = [e for e in small.sharing_plan.unshared_layers if e["path"] == "depthwise"]
    assert "constraint" in entry["reason"]


@pytest.mark.parametrize("initializer", ["glorot_uniform", "he_normal"])
def test_einsum_kernels_count_fans_along_the_equations_axes(initializer):
    """EinsumDense gives a variance-scaling initializer the equation's input
    and output axes: a (64, 4, 16) attention query kernel has fans 64 and
    64, not 256 and 1024 as for a convolution kernel of that shape."""
    inputs = keras.Input((6, 64))
    attention = keras.layers.MultiHeadAttention(4, 16, kernel_initializer=initializer)
    model = keras.Model(inputs, attention(inputs, inputs))
    small = keras_ssn.convert(model, 0.5, seed=0)
    expected = {"glorot_uniform": np.sqrt(2 / 128), "he_normal": np.sqrt(2 / 64)}[initializer]
    for path, spec in small.sharing_plan.weights.items():
        weight = keras.ops.convert_to_numpy(model.get_layer(attention.name).__getattribute__(
            "_" + path.split("/")[1] + "_dense").kernel)
        assert spec.scale * small.sharing_plan.groups[spec.group].stddev == pytest.approx(
            expected), path
        np.testing.assert_allclose(np.std(weight), expected, rtol=0.1)
