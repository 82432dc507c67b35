"""Shared variants of the recurrent cells and of the RNN layers that own them.

`SimpleRNN`, `LSTM` and `GRU` build their cell from their own arguments, so
the shared RNN layer carries its cell's specs in its config and turns the
cell into a shared cell as soon as it exists. The cell generates both its
input `kernel` and its `recurrent_kernel` from the bank; the bias stays its
own. With calibration data, the input kernel is fitted on its products
with the layer's input sequences (see `SharedRNNMixin.call`). Inside `Bidirectional`, each direction is such a layer.
"""

import keras
from keras import ops

from keras_ssn import calibration
from keras_ssn.keras_internals import in_symbolic_scope
from keras_ssn.layers.container import SharedContainerMixin
from keras_ssn.layers.variants import shared_variant


def _shared_cell(base_class):
    return shared_variant(
        base_class,
        ("kernel", "recurrent_kernel"),
        attribute_prefixes={"recurrent_kernel": "recurrent"},
    )


SharedSimpleRNNCell = _shared_cell(keras.layers.SimpleRNNCell)
SharedLSTMCell = _shared_cell(keras.layers.LSTMCell)
SharedGRUCell = _shared_cell(keras.layers.GRUCell)


class SharedRNNMixin(SharedContainerMixin):
    """An RNN layer whose cell generates its kernels from the bank."""

    part_attributes = {"cell": "cell"}

    def __init__(self, *args, sharing=None, **kwargs):
        super().__init__(*args, sharing=sharing, **kwargs)
        self._share_parts()

    def call(self, sequences, initial_state=None, mask=None, training=False):
        # The signature of `RNN.call`: Keras passes `mask` and `training` by it.
        if calibration.is_recording() and not in_symbolic_scope():
            # The input kernel multiplies every step of `sequences`. The
            # recurrent kernel is left to the fit on its weights: fitted on
            # each step's previous output instead, the MNIST-1D GRU at 10%
            # started from a model that fine-tuning could not move from
            # chance (`docs/results.md`).
            calibration.record(self.cell, "kernel", ops.matmul, sequences)
        return super().call(sequences, initial_state=initial_state, mask=mask,
                            training=training)


def _shared_rnn(base_class):
    cls = type(
        f"Shared{base_class.__name__}",
        (SharedRNNMixin, base_class),
        {
            "__doc__": f"`{base_class.__name__}` whose cell generates its "
            "kernels from the model's weight bank.",
            "__module__": __name__,
            "base_class": base_class,
        },
    )
    return keras.saving.register_keras_serializable(package="keras_ssn")(cls)


SharedSimpleRNN = _shared_rnn(keras.layers.SimpleRNN)
SharedLSTM = _shared_rnn(keras.layers.LSTM)
SharedGRU = _shared_rnn(keras.layers.GRU)

CELL_CLASSES = (SharedSimpleRNNCell, SharedLSTMCell, SharedGRUCell)
RNN_CLASSES = (SharedSimpleRNN, SharedLSTM, SharedGRU)
