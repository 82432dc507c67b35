"""The inputs each shared layer applies its weight to, on calibration data.

An activation-aware fit (`keras_ssn.FitWeights(data=...)`) measures a
generated weight by the outputs it gives on the inputs its layer sees, not
by its entries: `||op(x, generated) - op(x, W)||` rather than
`||generated - W||`, where `op` is the layer's matmul, einsum or
convolution and `x` its inputs when the trained model runs on the data.

`layer_inputs` runs the converted model on the data with every shared
weight replaced by the trained weight it will be fitted to, so each layer
sees what it saw in the trained model, and collects `(op, x)` from every
layer that applies its weight with `SharedWeightMixin.apply_weight`
(`Dense`, `EinsumDense`, `Conv1D`/`Conv2D`/`Conv3D` and the layers built
from them, such as attention projections), and the input kernel of every
recurrent layer (`SimpleRNN`, `LSTM`, `GRU`), applied to each step of the
layer's input sequence.
"""

import contextlib
import threading
import time

import keras
import numpy as np
from keras import ops

from keras_ssn import engine

_RECORDERS = threading.local()


class Recorder:
    """Collects, per `(layer, weight name)`, the `(op, inputs)` of each call."""

    def __init__(self):
        self.calls = {}

    def record(self, layer, name, op, inputs):
        """Keeps `op` and a float32 copy of `inputs` for `layer`'s `name`."""
        inputs = ops.cast(ops.convert_to_tensor(inputs), "float32")
        self.calls.setdefault((id(layer), name), []).append((op, inputs))


@contextlib.contextmanager
def recording():
    """Makes shared layers report `(op, inputs)` to a new `Recorder` inside."""
    recorder = Recorder()
    previous = getattr(_RECORDERS, "active", None)
    _RECORDERS.active = recorder
    try:
        yield recorder
    finally:
        _RECORDERS.active = previous


def is_recording():
    """Whether a forward pass over calibration data is running."""
    return getattr(_RECORDERS, "active", None) is not None


def record(layer, name, op, inputs):
    """Reports one application of `layer`'s weight `name` to the active recorder."""
    recorder = getattr(_RECORDERS, "active", None)
    if recorder is not None:
        recorder.record(layer, name, op, inputs)


def layer_inputs(model, owners, targets, data, batch_size):
    """Each shared weight's applications on `data`, in the trained model.

    Args:
        model: The converted model.
        owners: List of `(layer, name)`, the shared weights to look for.
        targets: List of the trained weights (NumPy arrays), one per owner:
            the weights the layers compute with while the data passes.
        data: The model's inputs: an array, or a list, tuple or dict of
            arrays that share their first (batch) dimension.
        batch_size: Samples per forward pass.

    Returns:
        List with, per owner, the `(op, inputs)` of each application of its
        weight (empty for a layer that does not apply it with `apply_weight`).

    Raises:
        TypeError: `data` is not an array or a structure of arrays.
        ValueError: `data` is empty, its parts differ in length, or the
            model cannot be called on it.
    """
    samples = _sample_count(data)
    _check_structure(model, data)
    weights = engine.GeneratedWeights()
    for (layer, name), target in zip(owners, targets):
        weights.add(layer, name, ops.convert_to_tensor(target, "float32"))
    weights.add(model, None, None)  # the model reads these, generating none
    with engine.scope(weights), recording() as recorder:
        for start in range(0, samples, batch_size):
            batch = keras.tree.map_structure(lambda a: a[start : start + batch_size], data)
            try:
                model(batch, training=False)
            except Exception as error:  # noqa: BLE001 - restated with what to do
                raise ValueError(
                    "FitWeights(data=...) could not be passed through model "
                    f"'{model.name}': {type(error).__name__}: {error}. Pass a batch "
                    "of the model's inputs, as `model(data)` takes them."
                ) from error
    return [recorder.calls.get((id(layer), name), []) for layer, name in owners]


def calibration_calls(model, terms, fit):
    """Each term's `(op, inputs)` on `fit.data`, or `None` without data.

    Args:
        model: The converted model.
        terms: The terms of `fit_to_weights`.
        fit: A `FitWeights`.

    Raises:
        ValueError: `fit` has data but no shared layer of `model` applies its
            weight to its inputs in a way the fit can measure.
    """
    if fit.data is None:
        return None
    started = time.perf_counter()
    calls = layer_inputs(
        model, [(layer, name) for layer, name, _, _ in terms],
        [target for _, _, _, target in terms], fit.data, fit.batch_size)
    if not any(calls):
        raise ValueError(
            f"FitWeights(data=...): none of model '{model.name}'s shared layers "
            "applies its weight with a matmul, an einsum or a convolution "
            f"({sorted({type(layer).__name__ for layer, _, _, _ in terms})}), so the "
            "data cannot measure them; fit on the weights alone with "
            "`init=\"weights\"`."
        )
    if fit.verbose:
        print(f"fit: inputs of {sum(map(bool, calls))} of {len(terms)} weights "
              f"recorded ({time.perf_counter() - started:.1f} s)")
    return calls


def _check_structure(model, data):
    """A list or tuple for a model of one input: most likely `(inputs, labels)`."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) == 1 and isinstance(data, (list, tuple)):
        raise ValueError(
            f"FitWeights(data=...): model '{model.name}' takes one input, but data is a "
            f"{type(data).__name__} of {len(data)}. Pass the inputs alone, without "
            "labels: `FitWeights(data=x)`, not `(x, y)`."
        )


def _sample_count(data):
    arrays = keras.tree.flatten(data)
    if not arrays or not all(hasattr(a, "shape") and len(a.shape) > 0 for a in arrays):
        leaves = sorted({type(a).__name__ for a in arrays}) or ["nothing"]
        raise TypeError(
            "FitWeights(data=...) takes the model's inputs as arrays with a batch "
            "dimension (an array, or a list, tuple or dict of them, as `model(data)` "
            f"takes them); received a {type(data).__name__} holding {leaves}. Turn "
            "Python lists into arrays with `np.asarray(x)`; take one batch from a "
            "dataset first, e.g. `x, _ = next(iter(dataset))`."
        )
    counts = {int(np.shape(a)[0]) for a in arrays}
    if len(counts) != 1:
        raise ValueError(
            "FitWeights(data=...): every input needs the same number of samples "
            f"(first dimension); received {sorted(counts)}."
        )
    (count,) = counts
    if count == 0:
        raise ValueError("FitWeights(data=...) holds no samples; pass at least one.")
    return count
