"""Files that lack or contradict the sharing plan are refused, not half-loaded."""

import json
import zipfile

import keras
import numpy as np
import pytest
from conftest import MODELS

import keras_ssn


def saved(model, tmp_path, edit):
    """Saves `model` and rewrites its config.json with `edit(config)`."""
    path = tmp_path / "model.keras"
    model.save(str(path))
    edited = tmp_path / "edited.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config["config"])
                data = json.dumps(config).encode()
            target.writestr(item, data)
    return str(edited)


def first_layer_with(config, key):
    return next(l for l in config["layers"] if key in l["config"])["config"]


def drop_plan(config):
    del config["sharing_plan"]


def edit_plan_templates(config):
    spec = next(iter(config["sharing_plan"]["weights"].values()))
    spec["templates"] += 1


def edit_plan_offset(config):
    spec = next(iter(config["sharing_plan"]["weights"].values()))
    spec["offset"] = (spec["offset"] + 1) % spec["size"]


def edit_layer_scale(config):
    spec = next(iter(first_layer_with(config, "sharing")["sharing"].values()))
    spec["scale"] *= 2


def edit_budget(config):
    config["sharing_plan"]["budget"] += 1


def drop_group_size(config):
    del config["sharing_plan"]["groups"][0]["size"]


@pytest.mark.parametrize("edit,detail", [
    (drop_plan, "needs its sharing_plan"),
    (edit_plan_templates, "damaged or was saved by another version"),
    (edit_plan_offset, "holds a spec whose offset differs from the model's plan"),
    (edit_layer_scale, "holds a spec whose scale differs from the model's plan"),
    (edit_budget, "add up to .* parameters, not its budget"),
    (drop_group_size, "sharing plan cannot be read .*'size'"),
])
@pytest.mark.parametrize("name", ["mlp", "residual_cnn"])
def test_a_damaged_file_raises_saying_so(name, edit, detail, tmp_path):
    model = keras_ssn.convert(MODELS[name](), 3.0, seed=0)
    with pytest.raises(ValueError, match=detail):
        keras.models.load_model(saved(model, tmp_path, edit))


def test_an_untouched_file_loads(tmp_path):
    model = keras_ssn.convert(MODELS["mlp"](), 3.0, seed=0)
    loaded = keras.models.load_model(saved(model, tmp_path, lambda config: None))
    x = np.ones((2,) + model.input_shape[1:], "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(model(x)))
