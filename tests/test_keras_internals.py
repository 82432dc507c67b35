"""Keras's private API is used in `keras_ssn/keras_internals.py` only."""

import pathlib
import re

import keras_ssn

PRIVATE = re.compile(
    r"keras\.src|\._tracker|_flatten_layers|\.__dict__|_exclude_from_weight_decay"
    r"|_build_shapes_dict|\._layers\b"
)


def test_private_keras_api_lives_in_one_module():
    package = pathlib.Path(keras_ssn.__file__).parent
    uses = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        if path.name != "keras_internals.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert uses == []
