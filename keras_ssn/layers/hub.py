"""Shared variants of `keras_hub`'s own layers.

`convert()` imports this module when `keras_hub` is imported, and
`load_model()` imports it through the `module` of the saved class, so
`keras_hub` stays an optional dependency. Other `keras_hub` layers that hold
Keras layers (transformer blocks, attention) have their sublayers shared one
by one.

- `ReversibleEmbedding` (older models) shares its `embeddings`, also read,
  transposed, as the output projection when `tie_weights=True`; an untied
  layer shares its `reverse_embeddings` too (see `layers.embedding`).
- `PositionEmbedding` shares its table, which it creates as `embeddings`
  and reads as `position_embeddings`.
- The experts of a mixture-of-experts block (Mixtral, Qwen-MoE, Qwen3-MoE,
  Qwen3.5-MoE, GPT-OSS) keep every expert's kernels in one tensor of shape
  `(experts, input, output)`; each tensor is one shared weight, generated
  whole. Their biases (GPT-OSS) stay their own.
"""

import importlib

from keras_hub.layers import PositionEmbedding
from keras_hub.layers import ReversibleEmbedding

from keras_ssn.layers import register_shared_layer
from keras_ssn.layers.embedding import reversible_variants
from keras_ssn.layers.variants import shared_variant

PACKAGE = "keras_ssn_hub"

SharedHubReversibleEmbedding, SharedHubUntiedReversibleEmbedding = (
    reversible_variants(ReversibleEmbedding, package=PACKAGE, module=__name__))
register_shared_layer(SharedHubReversibleEmbedding, family="embedding")
register_shared_layer(SharedHubUntiedReversibleEmbedding, family="embedding",
                      default=False)

SharedPositionEmbedding = shared_variant(
    PositionEmbedding, weights=("embeddings",), package=PACKAGE,
    weight_attributes={"embeddings": "position_embeddings"},
    attribute_prefixes={"embeddings": ""},
)
SharedPositionEmbedding.__module__ = __name__
SharedPositionEmbedding.lookup_tables = ("embeddings",)
register_shared_layer(SharedPositionEmbedding, family="embedding")

_GATE = "expert_feedforward_gate_dense"
_INTERMEDIATE = "expert_feedforward_intermediate_dense"
_OUTPUT = "expert_feedforward_output_dense"

# Module, class and the weights it reads as `self._<name>` or `self.<name>`.
EXPERT_LAYERS = {
    "MixtralMoeExperts": (
        "keras_hub.src.models.mixtral.mixtral_decoder", (_GATE, _INTERMEDIATE, _OUTPUT)),
    "QwenMoeExperts": (
        "keras_hub.src.models.qwen_moe.qwen_moe_decoder", (_GATE, _OUTPUT)),
    "Qwen3MoeExperts": (
        "keras_hub.src.models.qwen3_moe.qwen3_moe_decoder", (_GATE, _OUTPUT)),
    "Qwen3_5MoeExperts": (
        "keras_hub.src.models.qwen3_5_moe.qwen3_5_moe_decoder", (_GATE, _OUTPUT)),
    "GptOssExperts": (
        "keras_hub.src.models.gpt_oss.gpt_oss_decoder", ("gate_up_proj", "down_proj")),
}


def _expert_variant(class_name, module_name, weights):
    try:
        base_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        return None  # another keras_hub version: the layer stays unshared
    attributes = {name: f"_{name}" for name in weights if name.startswith("expert_")}
    shared = shared_variant(
        base_class, weights=weights, package=PACKAGE, weight_attributes=attributes,
        attribute_prefixes={name: "kernel" for name in weights},
    )
    shared.__module__ = __name__
    register_shared_layer(shared, family="dense")
    return shared


SHARED_EXPERT_LAYERS = {
    name: shared for name, (module, weights) in EXPERT_LAYERS.items()
    if (shared := _expert_variant(name, module, weights)) is not None
}
globals().update({shared.__name__: shared for shared in SHARED_EXPERT_LAYERS.values()})
