"""Trial: the tiling read in a shuffled order, against plain tiling.

`upsample="repeat"` makes each row of a tiled weight the previous row
shifted by `cols` entries of its slice. This trial asks whether that shift
structure is what holds the recurrent task back: it registers, for this
process only, an upsampling `"shuffle"` whose weight entry `k` takes entry
`order[k]` of the tiling (`order` a permutation drawn with
`numpy.random.default_rng([weight_size, offset])`, as hashing reads its
table), and runs `benchmarks.accuracy` with the method `ssn_shuffle`
(`convert(model, budget, upsample="shuffle")`). The library does not offer
it: it lost to plain tiling (docs/results.md).

    python -m benchmarks.shuffle_trial --tasks mnist1d_gru --budgets 0.01 0.1 0.5 \\
        --seeds 0 1 2 --methods ssn_shuffle --out shuffle.json
"""

import functools
import sys

import numpy as np
from keras import ops

from benchmarks import accuracy
from keras_ssn import methods


class Shuffle(methods.Repeat):
    """The tiling, read through a fixed permutation of the weight's entries."""

    name = "shuffle"

    def distinct_rows(self, rows, cols, slice_size):
        return rows

    def upsample(self, window, spec, parameters):
        order = ops.convert_to_tensor(shuffled_order(spec.weight_size, spec.offset))
        return ops.reshape(ops.take(window, order, axis=0), spec.matrix_shape)


@functools.lru_cache(maxsize=256)
def shuffled_order(weight_size, offset):
    return np.random.default_rng([weight_size, offset]).permutation(weight_size).astype("int32")


def register():
    """Makes `upsample="shuffle"` and the method `ssn_shuffle` known in this process."""
    convert_module = sys.modules["keras_ssn.convert"]
    methods.UPSAMPLINGS[Shuffle.name] = Shuffle()
    convert_module.UPSAMPLE_METHODS = (*convert_module.UPSAMPLE_METHODS, Shuffle.name)
    accuracy.SSN_SETTINGS["ssn_shuffle"] = {"upsample": Shuffle.name}
    accuracy.ALL_METHODS = (*accuracy.ALL_METHODS, "ssn_shuffle")


if __name__ == "__main__":
    register()
    accuracy.main()
