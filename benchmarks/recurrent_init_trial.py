"""Trial: the GRU task with iid instead of orthogonal recurrent kernels.

Keras draws a `GRU`'s recurrent kernel orthogonal; a converted model's
recurrent kernels are generated from an i.i.d. bank. This trial asks whether
that is what holds SSN back on the recurrent task: it runs
`benchmarks.accuracy` with every `keras.layers.GRU` built in this process
given `recurrent_initializer=INIT` (default `"glorot_uniform"`), so the
narrower model (`--methods width`) starts from i.i.d. recurrent kernels too.
The other side, SSN whose bank is fitted to the freshly drawn model (its
orthogonal recurrent kernels), is `benchmarks.accuracy --methods
ssn_init_weights`.

    python -m benchmarks.recurrent_init_trial [--recurrent-initializer glorot_uniform] \\
        --tasks mnist1d_gru --budgets 0.01 0.1 --seeds 0 1 2 --methods width
"""

import argparse

import keras

from benchmarks import accuracy


def use_recurrent_initializer(initializer):
    """Makes every `keras.layers.GRU` built from here on draw its recurrent kernel so."""
    base = keras.layers.GRU

    class GRU(base):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("recurrent_initializer", initializer)
            super().__init__(*args, **kwargs)

    keras.layers.GRU = GRU


if __name__ == "__main__":
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--recurrent-initializer", default="glorot_uniform")
    known, rest = parser.parse_known_args()
    use_recurrent_initializer(known.recurrent_initializer)
    accuracy.main(rest)
