import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import sample_input

import keras_ssn
from keras_ssn.generation import UPSAMPLE
from keras_ssn.generation import read_window
from keras_ssn.generation import upsample_template
from keras_ssn.planner import split_proportionally


def test_read_window_wraps_around_the_slice():
    bank = np.arange(20, dtype="float32")
    window = keras.ops.convert_to_numpy(read_window(bank, 5, 6, 4, 15))
    expected = 5 + (4 + np.arange(15)) % 6
    np.testing.assert_array_equal(window, expected)


def test_upsample_template_matches_bilinear_resize():
    template = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    ours = keras.ops.convert_to_numpy(upsample_template(template, (20, 13)))
    resized = keras.ops.image.resize(
        template[..., None], (20, 13), interpolation="bilinear", antialias=False
    )
    np.testing.assert_allclose(
        ours, keras.ops.convert_to_numpy(resized)[..., 0], atol=1e-5
    )


def test_split_proportionally_is_exact():
    parts = split_proportionally(1001, [3, 1, 7, 7])
    assert sum(parts) == 1001 and min(parts) >= 1
    assert split_proportionally(4, [1000, 1, 1, 1]) == [1, 1, 1, 1]


def test_repeat_tiles_the_group_slice():
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(16, use_bias=False)])
    small = keras_ssn.convert(model, 100, upsample="repeat")
    (spec,) = small.sharing_plan.weights.values()
    bank = keras.ops.convert_to_numpy(small.bank.vector())
    kernel = keras.ops.convert_to_numpy(small.layers[0].kernel).reshape(-1)
    np.testing.assert_allclose(kernel, spec.scale * np.resize(bank, 256), rtol=1e-6)
