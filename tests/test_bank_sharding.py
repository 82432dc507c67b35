"""The bank's layout: pieces, sharding over any device count, one stored vector."""

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


def test_a_bank_in_pieces_holds_the_same_entries():
    bank = WeightBank(10, initializer=keras.initializers.RandomNormal(seed=3),
                      pieces=[3, 5, 2])
    assert [(v.name, tuple(v.shape)) for v in bank.weights] == [
        ("piece_0", (3,)), ("piece_1", (5,)), ("piece_2", (2,))]
    whole = WeightBank(10, initializer=keras.initializers.RandomNormal(seed=3))
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bank.vector()), keras.ops.convert_to_numpy(whole.vector())
    )
    again = WeightBank.from_config(bank.get_config())
    assert [tuple(v.shape) for v in again.weights] == [(3,), (5,), (2,)]


@pytest.mark.parametrize("pieces, shards, message", [
    ([3, 5], 1, "pieces must be positive sizes adding up to the bank size \\(10\\); "
                "got 2 pieces adding up to 8"),
    ([10, 0], 1, "pieces must be positive sizes"),
    ([5, 5], 2, "A bank sharded over 2 devices is held as one sharded variable"),
])
def test_pieces_must_add_up_to_an_unsharded_bank(pieces, shards, message):
    with pytest.raises(ValueError, match=message):
        WeightBank(10, pieces=pieces, shards=shards)


def test_the_entries_are_stored_as_one_vector_whatever_the_pieces():
    bank = WeightBank(10, initializer=keras.initializers.RandomNormal(seed=3),
                      pieces=[3, 5, 2])
    entries = keras.ops.convert_to_numpy(bank.vector())
    store = {}
    bank.save_own_variables(store)
    assert list(store) == ["0"]
    np.testing.assert_array_equal(store["0"], entries)
    other = WeightBank(10, pieces=[6, 4])
    other.load_own_variables(store)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other.vector()), entries)
    # A sharded bank's file holds the entries in two vectors.
    other = WeightBank(10, pieces=[6, 4])
    other.load_own_variables({"0": entries[:8], "1": entries[8:]})
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other.vector()), entries)
    with pytest.raises(ValueError, match="has 10 entries, but the file holds 8"):
        other.load_own_variables({"0": entries[:8]})


def test_a_range_of_entries_joins_only_the_pieces_that_hold_it():
    bank = WeightBank(10, initializer=keras.initializers.RandomNormal(seed=3),
                      pieces=[3, 5, 2])
    entries = keras.ops.convert_to_numpy(bank.vector())
    for (start, stop), (first, length) in {(4, 6): (3, 5), (2, 9): (0, 10),
                                           (8, 10): (8, 2)}.items():
        at, held = bank.entries_holding(start, stop)
        assert (at, held.shape[0]) == (first, length)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(held),
                                      entries[first:first + length])
