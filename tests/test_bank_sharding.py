"""The bank's layout for sharding: exact size, any device count."""

import keras
import numpy as np
import pytest

import keras_ssn
from keras_ssn import WeightBank


@pytest.mark.parametrize("size, shards, head, tail", [(10, 1, 10, 0), (10, 4, 8, 2),
                                                      (12, 4, 12, 0), (7, 7, 7, 0)])
def test_a_sharded_bank_keeps_every_entry_in_two_variables(size, shards, head, tail):
    bank = WeightBank(size, initializer=keras.initializers.RandomNormal(seed=3),
                      shards=shards)
    assert [tuple(v.shape) for v in bank.weights] == [(head,)] + ([(tail,)] if tail else [])
    assert sum(int(np.prod(v.shape)) for v in bank.trainable_weights) == size
    whole = WeightBank(size, initializer=keras.initializers.RandomNormal(seed=3))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bank.vector()), keras.ops.convert_to_numpy(whole.vector())
    )
    again = WeightBank.from_config(bank.get_config())
    assert [tuple(v.shape) for v in again.weights] == [tuple(v.shape) for v in bank.weights]


def test_shards_must_fit_the_bank():
    with pytest.raises(ValueError, match="shards must be between 1 and the bank size"):
        WeightBank(3, shards=4)


def test_bank_layouts_name_the_sharded_entries_only():
    assert keras_ssn.bank_layouts("model") == {"(.*/)?weight_bank/entries": ("model",)}
