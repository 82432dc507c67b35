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


def compiled_linear_map(apply, input_size):
    """A linear map of 1-D tensors and its transpose, each compiled with XLA.

    Args:
        apply: Function `(x, fixed) -> y`, linear in the 1-D float32 tensor
            `x` (of `input_size` entries) for every value of `fixed` (a list
            of tensors it also reads).
        input_size: Length of `x`.

    Returns:
        `(forward, transpose)`: `forward(x, fixed)` is `apply(x, fixed)`,
        and `transpose(y, fixed)` is the transpose of `apply(., fixed)`
        applied to `y`, a tensor shaped like `apply`'s output.
    """
    if keras.backend.backend() == "jax":
        import jax

        def transpose(y, fixed):
            zeros = jax.numpy.zeros((input_size,), "float32")
            return jax.linear_transpose(lambda x: apply(x, fixed), zeros)(y)[0]

        return jax.jit(apply), jax.jit(transpose)
    import tensorflow as tf  # only on the TensorFlow backend

    def transpose(y, fixed):
        x = tf.zeros((input_size,), "float32")
        with tf.GradientTape() as tape:
            tape.watch(x)
            output = apply(x, fixed)
        return tape.gradient(output, x, output_gradients=y)

    return (tf.function(apply, jit_compile=True, reduce_retracing=True),
            tf.function(transpose, jit_compile=True, reduce_retracing=True))
