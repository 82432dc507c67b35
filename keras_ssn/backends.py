"""The Keras backends keras_ssn runs on."""

import keras

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def check_backend():
    """Raises unless Keras runs on a supported backend.

    Raises:
        RuntimeError: Keras runs on another backend (such as `"torch"`),
            where generation, saving and materializing are untested.
    """
    backend = keras.backend.backend()
    if backend not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"keras_ssn runs on the TensorFlow and JAX backends; Keras is "
            f"running on {backend!r}. Set KERAS_BACKEND=jax or "
            "KERAS_BACKEND=tensorflow before importing keras."
        )
