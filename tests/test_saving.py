import zipfile

import h5py
import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import sample_input
from conftest import sample_targets

import keras_ssn


def h5_datasets(path):
    found = {}

    def visit(name, node):
        if isinstance(node, h5py.Dataset):
            found[name] = node.shape

    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f:
        with h5py.File(f) as h5:
            h5.visititems(visit)
    return found


@pytest.mark.parametrize("fraction", [0.1, 2.0])
def test_save_and_load_reproduces_outputs(model_name, fraction, tmp_path):
    model = MODELS[model_name]()
    small = keras_ssn.convert(model, fraction, seed=0)
    x = sample_input(small)
    expected = keras.ops.convert_to_numpy(small(x))
    path = str(tmp_path / "m.keras")
    small.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(small)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), expected)
    assert keras_ssn.count_trainable(loaded) == keras_ssn.count_trainable(small)
    assert loaded.sharing_plan == small.sharing_plan
    banks = {id(layer._bank_link.bank) for layer in loaded.shared_layers()}
    assert banks == {id(loaded.bank)}


@pytest.mark.parametrize("fraction", [0.1, 2.0])
@pytest.mark.parametrize("rematerialize", [False, True])
def test_bank_is_stored_once_under_the_model(fraction, rematerialize, tmp_path):
    # The bank is held in pieces (generated ahead: from 200% up; generated
    # where used: wherever a layer's reading starts or stops); it is still
    # stored as one vector.
    small = keras_ssn.convert(MODELS["nested"](), fraction, rematerialize=rematerialize)
    assert (len(small.bank.pieces) > 1) == (rematerialize or fraction > 1)
    path = str(tmp_path / "m.keras")
    small.save(path)
    datasets = h5_datasets(path)
    bank_shape = (small.sharing_plan.bank_size,)
    bank_entries = [name for name, shape in datasets.items() if shape == bank_shape]
    assert bank_entries == ["bank/vars/0"]


def test_training_resumes_from_a_checkpoint(tmp_path):
    model = MODELS["residual_cnn"]()
    small = keras_ssn.convert(model, 0.1, seed=0)
    small.compile(optimizer="adam", loss="mse", jit_compile=True)
    x, y = sample_input(small, 16), sample_targets(small, 16)
    path = str(tmp_path / "ckpt.keras")
    small.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False,
              callbacks=[keras.callbacks.ModelCheckpoint(path)])
    resumed = keras.models.load_model(path)
    assert resumed.optimizer.iterations.numpy() == 2
    resumed.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    small.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(resumed.bank.vector()), keras.ops.convert_to_numpy(small.bank.vector()), atol=1e-5
    )


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="SavedModel export needs the TensorFlow backend")
def test_export_serves_the_same_outputs(model_name, tmp_path):
    import tensorflow as tf

    small = keras_ssn.convert(MODELS[model_name](), 0.1, seed=0)
    x = sample_input(small)
    expected = keras.ops.convert_to_numpy(small(x))
    small.export(str(tmp_path / "saved"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    served = reloaded.serve(x)
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-6, atol=1e-6)
