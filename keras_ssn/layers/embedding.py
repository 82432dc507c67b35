"""Shared variants of `Embedding` and `ReversibleEmbedding`: the table comes from the bank.

`ReversibleEmbedding` also reads its table, transposed, as the output
projection when `tie_weights=True`; an untied layer has a second table for
that, `reverse_embeddings`, of shape `(output_dim, input_dim)`, generated
from the bank too.
"""

import keras

from keras_ssn.layers.variants import generated_weight_property
from keras_ssn.layers.variants import shared_variant

SharedEmbedding = shared_variant(keras.layers.Embedding, ("embeddings",))
SharedEmbedding.lookup_tables = ("embeddings",)
# Some layers that hold an `Embedding` read its private `_embeddings` (the
# variable behind Keras's `embeddings` property; keras_hub's SAM3 geometry
# encoder does): it is the generated table too.
SharedEmbedding._embeddings = generated_weight_property("embeddings")


def reversible_variants(base_class, package="keras_ssn", module=None):
    """The tied and untied shared variants of a `ReversibleEmbedding` class.

    The tied variant is the one to register; its `variant_for(layer)` gives
    the untied one for a layer with `tie_weights=False`. The untied
    variant's `embeddings` is a lookup table only; the tied variant's is
    also the output projection, whose rows are output units.

    Args:
        base_class: Keras's or `keras_hub`'s `ReversibleEmbedding`.
        package: Package name for Keras serialization.
        module: The module the classes are defined in, for their `__module__`.

    Returns:
        `(tied, untied)` classes.
    """
    tied = shared_variant(base_class, ("embeddings",), package=package)
    untied = shared_variant(
        base_class, ("embeddings", "reverse_embeddings"), package=package,
        attribute_prefixes={"reverse_embeddings": "embeddings"},
        name=f"SharedUntied{base_class.__name__}",
    )
    untied.lookup_tables = ("embeddings",)
    for variant in (tied, untied):
        variant.variant_for = classmethod(
            lambda cls, layer: tied if getattr(layer, "tie_weights", True) else untied)
        if module is not None:
            variant.__module__ = module
    return tied, untied


SharedReversibleEmbedding, SharedUntiedReversibleEmbedding = reversible_variants(
    keras.layers.ReversibleEmbedding)
