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


def check_distribution_scope(model):
    """Raises when a TensorFlow strategy is active but the bank was made outside it.

    `tf.distribute` strategies mirror only variables created inside their
    scope; a bank made outside lives on one device, and training it from
    inside the scope fails deep in TensorFlow with a bare `AssertionError`.

    Raises:
        ValueError: naming the model and the fix.
    """
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf  # only on the TensorFlow backend

    if not tf.distribute.has_strategy():
        return
    strategy = tf.distribute.get_strategy()
    if not strategy.extended.variable_created_in_scope(model.bank.weights[0].value):
        raise ValueError(
            f"Model '{model.name}' was converted outside the scope of the active "
            f"{type(strategy).__name__}, so its weight bank is not mirrored across "
            "its devices. Call keras_ssn.convert() inside `with strategy.scope():` "
            "(as Keras asks for models and optimizers)."
        )
