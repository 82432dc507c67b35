"""keras_hub backbones that Keras's `clone_model` cannot copy, and the weights
they keep under other names: one decoder LLM, one mixture of experts, one
encoder-decoder and one ViT through the whole contract. `python -m
benchmarks.compatibility` runs every backbone."""

import math

import keras
import numpy as np
import pytest

import keras_ssn
from keras_ssn.checks import check_conversion

keras_hub = pytest.importorskip("keras_hub")


def tokens(batch=2, length=5, vocabulary=10, seed=0):
    ids = np.random.default_rng(seed).integers(1, vocabulary, (batch, length))
    return {"token_ids": ids.astype("int32"),
            "padding_mask": np.ones((batch, length), "int32")}


def vectors(model):
    """Trainable parameters in weights of at most one dimension (scales, biases)."""
    return sum(math.prod(v.shape) for v in model.trainable_weights if len(v.shape) <= 1)


def test_a_decoder_llm_that_clone_model_cannot_copy(tmp_path):
    backbone = keras_hub.models.LlamaBackbone(
        vocabulary_size=10, num_layers=1, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=8, intermediate_dim=16)
    with pytest.raises(AttributeError, match="rope_scaling_factor"):
        keras.models.clone_model(backbone)  # Keras's own limit, not keras_ssn's

    result = check_conversion(backbone, 0.5, str(tmp_path), inputs=tokens())

    # keras_ssn.clone_model copies a converted backbone from its config.
    assert result["checks"] == ["budget", "fit", "save_load", "clone", "materialize"]
    assert "clone" not in result["skipped"]
    small = result["model"]
    assert type(small).__name__ == "SharedLlamaBackbone"
    assert isinstance(small, keras_hub.models.LlamaBackbone)
    # Four attention projections and three feedforward kernels in its one
    # layer, and the untied embedding's two tables.
    assert len(small.sharing_plan.weights) == 7 + 2
    assert "token_embedding/reverse_embeddings" in small.sharing_plan.weights
    # LlamaLayerNorm has no shared variant; its scale is a vector, kept
    # without a warning.
    reasons = {e["reason"] for e in small.sharing_plan.unshared_layers}
    assert reasons == {"its own weights are per-channel vectors (scales, offsets, a "
                       "class token), kept as they are"}


def test_mixture_of_experts_kernels_are_shared(tmp_path):
    backbone = keras_hub.models.MixtralBackbone(
        vocabulary_size=10, num_layers=1, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=8, intermediate_dim=16, num_experts=4, top_k=2, sliding_window=2)
    result = check_conversion(backbone, 0.5, str(tmp_path), inputs=tokens())
    small = result["model"]
    plan = small.sharing_plan
    experts = "transformer_layer_0/_sparse_moe_block/expert_bank"
    for name in ("gate", "intermediate", "output"):
        assert plan.weights[f"{experts}/expert_feedforward_{name}_dense"].shape[0] == 4
    # What the model keeps is its normalization scales (24), so the smallest
    # budget is theirs plus the bank the plan needs: 40 of 1,944 parameters.
    assert plan.unshared_params == vectors(backbone) == 24
    with pytest.raises(keras_ssn.BudgetError) as error:
        keras_ssn.convert(backbone, vectors(backbone) + 1)
    assert keras_ssn.count_trainable(backbone) == 1944
    assert error.value.smallest == 40


def test_an_encoder_decoder_with_dict_inputs_and_outputs(tmp_path):
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=10, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    encoder, decoder = tokens(seed=1), tokens(length=4, seed=2)
    inputs = {"encoder_token_ids": encoder["token_ids"],
              "encoder_padding_mask": encoder["padding_mask"],
              "decoder_token_ids": decoder["token_ids"],
              "decoder_padding_mask": decoder["padding_mask"]}
    result = check_conversion(backbone, 0.5, str(tmp_path), inputs=inputs)
    assert "save_load" in result["checks"] and "materialize" in result["checks"]
    outputs = result["model"](inputs)
    assert sorted(outputs) == ["decoder_sequence_output", "encoder_sequence_output"]
    plan = result["model"].sharing_plan
    assert "encoder_position_embedding/embeddings" in plan.weights


def test_a_vision_transformer(tmp_path):
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=(4, 4), num_layers=1, num_heads=2,
        hidden_dim=8, mlp_dim=16)
    with pytest.raises(keras_ssn.BudgetError) as error:
        keras_ssn.convert(backbone, 0.1)
    result = check_conversion(backbone, error.value.smallest, str(tmp_path))
    assert result["checks"][:3] == ["budget", "fit", "save_load"]
    assert "materialize" in result["checks"]
    kept = {e["path"]: e["reason"] for e in result["model"].sharing_plan.unshared_layers}
    assert kept["vit_patching_and_embedding"].startswith("its own weights are per-channel")


def test_untied_reversible_embeddings_generate_both_tables():
    inputs = keras.Input((5,), dtype="int32")
    embedding = keras.layers.ReversibleEmbedding(20, 8, tie_weights=False)
    outputs = embedding(keras.layers.Dense(8)(embedding(inputs)), reverse=True)
    model = keras.Model(inputs, outputs)
    small = keras_ssn.convert(model, 0.5, seed=0)
    assert {"reversible_embedding/embeddings",
            "reversible_embedding/reverse_embeddings"} <= set(small.sharing_plan.weights)
    layer = small.get_layer("reversible_embedding")
    assert not layer.tie_weights and layer.reverse_embeddings.shape == (8, 20)
    x = np.random.default_rng(0).integers(0, 20, (2, 5))
    plain = keras_ssn.materialize(small)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(plain(x)),
                               keras.ops.convert_to_numpy(small(x)), atol=1e-6)
