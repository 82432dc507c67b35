"""Tiny versions of the models a Keras user brings, built from constructor
arguments only (no presets, no downloads), with sample inputs for each.

Three families:

* ``HUB_BACKBONES``: every ``keras_hub.models.*Backbone`` class (keras_hub
  0.32.0), with the constructor kwargs of keras_hub's own unit test for that
  backbone (``self.init_kwargs`` in
  ``keras_hub/src/models/<family>/<name>_backbone_test.py``, read at the
  keras-hub commit whose backbone sources equal the installed 0.32.0 ones).
  Where the test's model is not tiny the kwargs are shrunk; each such place
  says so in a comment. Sub-models (vision/text encoders, VAEs, ...) are
  built tiny in ``_<name>_kwargs()`` functions; those registry entries are
  callables that return fresh kwargs.
* ``APPLICATIONS``: every model builder in ``keras.applications``, with
  ``weights=None``, ``classes=5`` and the smallest ``input_shape`` it takes.
* ``KERAS_CV_BACKBONES``: the backbone base classes keras_cv 0.9.0 exports
  (its ``*Backbone`` aliases such as ``ResNet50Backbone`` build from presets,
  so they are left out), with tiny constructor kwargs.

Builders: ``hub_backbone(name)``, ``application(name)``,
``keras_cv_backbone(name)``; inputs: ``hub_inputs``, ``application_inputs``,
``keras_cv_inputs`` (``(name, model, batch=2, seed=0)``, numpy arrays from
``np.random.default_rng(seed)``, shaped as ``model.input``). ``build(family,
name)`` and ``inputs(family, name, model)`` dispatch on the family.

Run as a script, it checks for each model what plain Keras can do with it:
build, forward pass, ``clone_model(recursive=True)`` + ``set_weights``,
``deserialize_keras_object(serialize_keras_object(m))`` + ``set_weights``, and
``save`` + ``load_model``, each compared with the original's outputs:

    python -m benchmarks.model_zoo [--family hub|applications|keras_cv]
        [--names NAME ...] [--out FILE.json]
"""

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras  # noqa: E402

FAMILIES = ("hub", "applications", "keras_cv")

# ---------------------------------------------------------------------------
# keras_hub backbones
# ---------------------------------------------------------------------------


def _hub_src(module, name):
    """A class from ``keras_hub.src.models.<module>``."""
    import importlib

    return getattr(
        importlib.import_module(f"keras_hub.src.models.{module}"), name
    )


def _hub(name):
    import keras_hub

    return getattr(keras_hub.models, name)


def _tiny_resnet(**overrides):
    """A 4-stage basic-block ResNet with 16-64 filters (P2..P5 outputs).

    Stands in for the ResNet18/50-sized image encoders (64-512 filters) of
    the BASNet, DeepLabV3 and RetinaNet tests. ResNetBackbone requires 64
    filters in the first stage (and the stem, for basic blocks).
    """
    kwargs = {
        "input_conv_filters": [64],
        "input_conv_kernel_sizes": [7],
        "stackwise_num_filters": [64, 16, 32, 64],
        "stackwise_num_blocks": [1, 1, 1, 1],
        "stackwise_num_strides": [1, 2, 2, 2],
        "block_type": "basic_block",
        "use_pre_activation": False,
    }
    kwargs.update(overrides)
    return _hub("ResNetBackbone")(**kwargs)


def _basnet_kwargs():
    # Test: ResNet18-like encoder (64..512 filters) and the default
    # projection_filters=64 (50M parameters: 512-filter heads). The
    # prediction module feeds its projection to the encoder's first block,
    # so projection_filters must equal the stem's filters; with bottleneck
    # blocks (projection shortcuts) the stem can have 8 filters, and so the
    # projection. The last stage's 64 channels set the width of the two
    # extra encoder stages.
    return {
        "image_encoder": _tiny_resnet(
            input_conv_filters=[8],
            stackwise_num_filters=[64, 16, 16, 16],
            block_type="bottleneck_block",
        ),
        "num_classes": 1,
        "projection_filters": 8,
    }


def _blip2_kwargs():
    vision_encoder = _hub_src(
        "blip2.blip2_vision_encoder", "BLIP2VisionEncoder"
    )(
        image_size=32,
        patch_size=4,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        use_patch_bias=True,
        use_class_token=True,
        use_mha_bias=True,
        use_mlp_bias=True,
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        initializer_range=0.02,
        dtype="float32",
    )
    qformer = _hub_src("blip2.blip2_qformer", "BLIP2QFormer")(
        num_query_tokens=2,
        num_layers=2,
        num_heads=2,
        hidden_dim=4,
        intermediate_dim=8,
        vision_dim=8,
        cross_attention_frequency=1,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        dtype="float32",
    )
    language_model = _hub_src("blip2.blip2_custom_opt", "BLIP2CustomOPT")(
        vocabulary_size=14,
        num_layers=2,
        num_heads=2,
        hidden_dim=4,
        intermediate_dim=8,
        num_query_tokens=2,
        qformer_hidden_dim=4,
        max_sequence_length=10,
        dropout=0.0,
        language_projection=None,
        dtype="float32",
    )
    return {
        "vision_encoder": vision_encoder,
        "qformer": qformer,
        "language_model": language_model,
    }


def _clip_like_kwargs(module, prefix, with_projection=True):
    # Test: CLIPVisionEncoder(16, 64, 2, 2, 128) on 224x224 images and
    # CLIPTextEncoder(64, 64, 64, 2, 2, 128) on 77 tokens, projection 64;
    # shrunk to 32x32 images, patch 8, hidden 16, 16 tokens.
    vision_cls = _hub_src(
        f"{module}.{module}_vision_encoder", f"{prefix}VisionEncoder"
    )
    text_cls = _hub_src(f"{module}.{module}_text_encoder", f"{prefix}TextEncoder")
    kwargs = {
        "vision_encoder": vision_cls(
            8, 16, 2, 2, 32, image_shape=(32, 32, 3), name="vision_encoder"
        ),
        "text_encoder": text_cls(
            64, 16, 16, 2, 2, 32, max_sequence_length=16, name="text_encoder"
        ),
    }
    if with_projection:
        kwargs["projection_dim"] = 16
    return kwargs


def _clip_kwargs():
    return _clip_like_kwargs("clip", "CLIP")


def _metaclip_2_kwargs():
    return _clip_like_kwargs("metaclip_2", "MetaCLIP2")


def _siglip_kwargs():
    return _clip_like_kwargs("siglip", "SigLIP", with_projection=False)


def _hgnetv2_dfine_encoder():
    return _hub("HGNetV2Backbone")(
        stem_channels=[3, 8, 8],
        stackwise_stage_filters=[
            [8, 8, 16, 1, 1, 3],
            [16, 8, 32, 1, 1, 3],
        ],
        apply_downsample=[False, True],
        use_lightweight_conv_block=[False, False],
        depths=[1, 1],
        hidden_sizes=[16, 32],
        embedding_size=8,
        use_learnable_affine_block=True,
        hidden_act="relu",
        image_shape=(None, None, 3),
        out_features=["stage1", "stage2"],
    )


def _d_fine_kwargs():
    return {
        "backbone": _hgnetv2_dfine_encoder(),
        "decoder_in_channels": [16, 16],
        "encoder_hidden_dim": 16,
        "num_denoising": 10,
        "num_labels": 4,
        "hidden_dim": 16,
        "learn_initial_query": False,
        "num_queries": 10,
        "anchor_image_size": (32, 32),
        "feat_strides": [4, 8],
        "num_feature_levels": 2,
        "encoder_in_channels": [16, 32],
        "encode_proj_layers": [1],
        "num_attention_heads": 2,
        "encoder_ffn_dim": 32,
        "num_encoder_layers": 1,
        "hidden_expansion": 0.5,
        "depth_multiplier": 0.5,
        "eval_idx": -1,
        "num_decoder_layers": 3,
        "decoder_attention_heads": 2,
        "decoder_ffn_dim": 32,
        "decoder_n_points": [2, 2],
        "lqe_hidden_dim": 16,
        "num_lqe_layers": 2,
        "out_features": ["stage1", "stage2"],
        "image_shape": (None, None, 3),
        "seed": 0,
    }


def _deeplab_v3_kwargs():
    # Test: ResNet encoder with 64 filters in 3 stages of 2 blocks; shrunk
    # to 64, 16, 32 filters in 3 stages of 1 block.
    return {
        "image_encoder": _tiny_resnet(
            stackwise_num_filters=[64, 16, 32],
            stackwise_num_blocks=[1, 1, 1],
            stackwise_num_strides=[1, 2, 2],
        ),
        "low_level_feature_key": "P2",
        "spatial_pyramid_pooling_key": "P4",
        "dilation_rates": [6, 12, 18],
        "upsampling_size": 4,
        "projection_filters": 8,
        "image_shape": (96, 96, 3),
    }


def _depth_anything_kwargs():
    image_encoder = _hub("DINOV2Backbone")(
        14,
        4,
        16,
        2,
        16 * 4,
        1.0,
        0,
        image_shape=(126, 126, 3),
        apply_layernorm=True,
        name="image_encoder",
    )
    # Test: neck_hidden_dims [16, 32, 64, 128], fusion_hidden_dim 128;
    # shrunk to 8..32 and 16.
    return {
        "image_encoder": image_encoder,
        "reassemble_factors": [4, 2, 1, 0.5],
        "neck_hidden_dims": [8, 16, 16, 32],
        "fusion_hidden_dim": 16,
        "head_hidden_dim": 16,
        "head_in_index": -1,
        "feature_keys": ["stage1", "stage2", "stage3", "stage4"],
    }


def _vae():
    # As the test (its group norms take 32 groups: 32 filters at least).
    return _hub_src("vae.vae_backbone", "VAEBackbone")(
        [32, 32, 32, 32],
        [1, 1, 1, 1],
        [32, 32, 32, 32],
        [1, 1, 1, 1],
        sampler_method="mode",  # deterministic
        name="vae",
    )


def _gemma3_kwargs():
    vision_encoder = _hub_src(
        "gemma3.gemma3_vision_encoder", "Gemma3VisionEncoder"
    )(
        image_size=16,
        patch_size=4,
        pool_size=2,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        output_dim=8,
    )
    return {
        "vocabulary_size": 256,
        "image_size": 16,
        "num_layers": 6,
        "num_query_heads": 2,
        "num_key_value_heads": 1,
        "hidden_dim": 8,
        "intermediate_dim": 16,
        "head_dim": 4,
        "query_head_dim_normalize": True,
        "use_query_key_norm": True,
        "use_post_ffw_norm": True,
        "use_post_attention_norm": True,
        "final_logit_soft_cap": None,
        "attention_logit_soft_cap": None,
        "use_sliding_window_attention": True,
        "sliding_window_size": 1024,
        "vision_encoder": vision_encoder,
    }


def _gemma3n_kwargs():
    convert = _hub_src(
        "mobilenetv5.mobilenetv5_builder", "convert_arch_def_to_stackwise"
    )
    vision_encoder = _hub("MobileNetV5Backbone")(
        **convert([["er_r1_k3_s1_e1_c8"]]),
        num_features=4,
        image_shape=(32, 32, 3),
        use_msfa=False,
    )
    audio_encoder = _hub_src(
        "gemma3n.gemma3n_audio_encoder", "Gemma3nAudioEncoder"
    )(
        hidden_size=4,
        input_feat_size=16,
        sscp_conv_channel_size=[2, 4],
        sscp_conv_kernel_size=[(1, 1), (1, 1)],
        sscp_conv_stride_size=[(2, 2), (2, 2)],
        sscp_conv_group_norm_eps=1e-5,
        num_hidden_layers=1,
        rms_norm_eps=1e-6,
        gradient_clipping=1.0,
        residual_weight=0.5,
        num_attention_heads=1,
        attention_chunk_size=2,
        num_attention_context_right=1,
        num_attention_context_left=1,
        attention_logit_cap=50.0,
        conv_kernel_size=3,
        reduction_factor=1,
    )
    return {
        "text_vocab_size": 10,
        "text_hidden_size": 4,
        "num_hidden_layers": 1,
        "pad_token_id": 0,
        "num_attention_heads": 1,
        "num_key_value_heads": 1,
        "head_dim": 4,
        "intermediate_size": [8],
        "hidden_activation": "gelu_approximate",
        "layer_types": ["full_attention"],
        "sliding_window": 4,
        "rope_theta": 10000.0,
        "max_position_embeddings": 8,
        "vocab_size_per_layer_input": 10,
        "hidden_size_per_layer_input": 2,
        "altup_num_inputs": 2,
        "laurel_rank": 1,
        "vision_encoder_config": vision_encoder.get_config(),
        "vision_hidden_size": 8,
        "audio_encoder_config": audio_encoder.get_config(),
        "audio_hidden_size": 4,
    }


def _gemma4_kwargs():
    vision_encoder = _hub_src(
        "gemma4.gemma4_vision_encoder", "Gemma4VisionEncoder"
    )(
        image_size=16,
        patch_size=4,
        pool_size=2,
        num_layers=2,
        num_heads=2,
        head_dim=4,
        num_key_value_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        output_dim=8,
    )
    return {
        "vocabulary_size": 256,
        "image_size": 16,
        "num_layers": 6,
        "num_query_heads": 2,
        "num_key_value_heads": 1,
        "hidden_dim": 8,
        "intermediate_dim": 16,
        "head_dim": 4,
        "use_sliding_window_attention": True,
        "sliding_window_size": 16,
        "attention_logit_soft_cap": None,
        "final_logit_soft_cap": None,
        "vision_encoder": vision_encoder,
    }


def _parseq_kwargs():
    # Test: ViT encoder hidden 64 (mlp 256) on 32x128 images, decoder
    # hidden 64, vocabulary 97, labels of 25; shrunk to hidden 16, 8 labels.
    image_encoder = _hub("ViTBackbone")(
        image_shape=(32, 128, 3),
        patch_size=(4, 8),
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        mlp_dim=32,
        use_class_token=False,
        name="image_encoder",
    )
    return {
        "image_encoder": image_encoder,
        "vocabulary_size": 97,
        "max_label_length": 8,
        "decoder_hidden_dim": 16,
        "num_decoder_layers": 1,
        "num_decoder_heads": 2,
        "decoder_mlp_dim": 32,
        "dropout_rate": 0.0,
        "attention_dropout": 0.0,
    }


def _retinanet_kwargs():
    # Test: ResNet50 encoder (64..512 filters, [3, 4, 6, 3] bottleneck
    # blocks) on 256x256 images; shrunk to the 16..64-filter basic ResNet
    # (the feature pyramid keeps its fixed 256 channels).
    return {
        "image_encoder": _tiny_resnet(),
        "min_level": 3,
        "max_level": 7,
        "use_p5": True,
    }


def _sam_kwargs():
    image_encoder = _hub("ViTDetBackbone")(
        hidden_size=16,
        num_layers=16,
        intermediate_dim=16 * 4,
        num_heads=16,
        global_attention_layer_indices=[2, 5, 8, 11],
        patch_size=16,
        num_output_channels=8,
        window_size=2,
        image_shape=(16, 16, 3),
    )
    prompt_encoder = _hub_src("sam.sam_prompt_encoder", "SAMPromptEncoder")(
        hidden_size=8,
        image_embedding_size=(8, 8),
        input_image_size=(16, 16),
        mask_in_channels=16,
    )
    mask_decoder = _hub_src("sam.sam_mask_decoder", "SAMMaskDecoder")(
        num_layers=2,
        hidden_size=16,
        intermediate_dim=32,
        num_heads=8,
        embedding_dim=8,
        num_multimask_outputs=3,
        iou_head_depth=3,
        iou_head_hidden_dim=8,
    )
    return {
        "image_encoder": image_encoder,
        "prompt_encoder": prompt_encoder,
        "mask_decoder": mask_decoder,
    }


def _sam3_kwargs():
    def sam3(module, name):
        return _hub_src(f"sam3.sam3_{module}", f"SAM3{name}")

    return {
        "vision_encoder": sam3("vision_encoder", "VisionEncoder")(
            image_shape=(28, 28, 3),
            patch_size=14,
            num_layers=2,
            hidden_dim=16,
            intermediate_dim=32,
            num_heads=2,
            fpn_hidden_dim=16,
            fpn_scale_factors=[4.0, 2.0, 1.0, 0.5],
            pretrain_image_shape=(42, 42, 3),
            window_size=2,
            global_attn_indexes=[1, 2],
        ),
        "text_encoder": sam3("text_encoder", "TextEncoder")(
            vocabulary_size=32,
            embedding_dim=16,
            hidden_dim=16,
            num_layers=2,
            num_heads=2,
            intermediate_dim=32,
        ),
        "geometry_encoder": sam3("geometry_encoder", "GeometryEncoder")(
            num_layers=2,
            hidden_dim=16,
            intermediate_dim=32,
            num_heads=2,
            roi_size=7,
        ),
        "detr_encoder": sam3("detr_encoder", "DetrEncoder")(
            num_layers=2,
            hidden_dim=16,
            intermediate_dim=32,
            num_heads=2,
        ),
        "detr_decoder": sam3("detr_decoder", "DetrDecoder")(
            image_shape=(28, 28, 3),
            patch_size=14,
            num_layers=2,
            hidden_dim=16,
            intermediate_dim=32,
            num_heads=2,
            num_queries=8,
        ),
        "mask_decoder": sam3("mask_decoder", "MaskDecoder")(
            num_upsampling_stages=3,
            hidden_dim=16,
            num_heads=2,
        ),
    }


def _segformer_kwargs():
    # Test: projection_filters=256; shrunk to 16.
    image_encoder = _hub("MiTBackbone")(
        layerwise_depths=[2, 2],
        image_shape=(32, 32, 3),
        hidden_dims=[4, 8],
        num_layers=2,
        layerwise_num_heads=[1, 2],
        layerwise_sr_ratios=[8, 4],
        max_drop_path_rate=0.1,
        layerwise_patch_sizes=[7, 3],
        layerwise_strides=[4, 2],
    )
    return {"image_encoder": image_encoder, "projection_filters": 16}


def _stable_diffusion_3_kwargs():
    # Test: VAE with 32 filters and CLIP-L/G text encoders of hidden 32/64 in
    # float16 (except on JAX CPU); here text encoders of hidden 16/32 in
    # float32 (outputs comparable on every backend).
    clip = _hub_src("clip.clip_text_encoder", "CLIPTextEncoder")
    return {
        "mmdit_patch_size": 2,
        "mmdit_hidden_dim": 16 * 2,
        "mmdit_num_layers": 2,
        "mmdit_num_heads": 2,
        "mmdit_position_size": 192,
        "mmdit_qk_norm": None,
        "mmdit_dual_attention_indices": None,
        "vae": _vae(),
        "clip_l": clip(20, 16, 16, 2, 2, 32, "quick_gelu", -2, name="clip_l"),
        "clip_g": clip(20, 32, 32, 2, 2, 64, "gelu", -2, name="clip_g"),
        "image_shape": (64, 64, 3),
    }


# Registry entries shared by aliases (same class, same test).
_ESM = {
    "vocabulary_size": 10,
    "num_layers": 2,
    "num_heads": 1,
    "hidden_dim": 2,
    "intermediate_dim": 4,
}

_SMOLLM3 = {
    "vocabulary_size": 100,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "num_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "rope_layer_enabled_list": [True, True],
    "layer_types": ["attention", "attention"],
    "mlp_bias": False,
    "layer_norm_epsilon": 1e-5,
    "max_position_embeddings": 128,
    "rope_theta": 10000.0,
    "partial_rotary_factor": 1.0,
}

_QWEN = {
    "vocabulary_size": 32,
    "num_layers": 2,
    "num_query_heads": 4,
    "num_key_value_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
}

# Entries that share most of their configuration with another class's.
_MISTRAL = {
    "vocabulary_size": 10,
    "num_layers": 2,
    "num_query_heads": 8,
    "num_key_value_heads": 4,
    "hidden_dim": 16,
    "intermediate_dim": 8,
    "sliding_window": 2,
}

_MIXTURE = {**_MISTRAL, "num_experts": 2, "top_k": 2}

_QWEN_MOE = {
    "vocabulary_size": 20,
    "num_layers": 2,
    "num_query_heads": 4,
    "num_key_value_heads": 2,
    "hidden_dim": 16,
    "intermediate_dim": 32,
    "moe_intermediate_dim": 16,
    "num_experts": 4,
    "top_k": 2,
    "norm_top_k_prob": True,
    "decoder_sparse_step": 1,
    "layer_norm_epsilon": 1e-6,
    "rope_max_wavelength": 10000,
    "rope_scaling_factor": 1.0,
    "dropout": 0.0,
    "sliding_window_size": 4096,
    "router_aux_loss_coefficient": 0.01,
    "tie_word_embeddings": False,
    "mlp_only_layers": [],
    "dtype": "float32",
}

_QWEN3_5 = {
    "vocabulary_size": 10,
    "num_layers": 4,
    "num_query_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "hidden_dim": 16,
    "layer_types": [
        "linear_attention",
        "linear_attention",
        "linear_attention",
        "full_attention",
    ],
    "partial_rotary_factor": 0.25,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "linear_key_head_dim": 4,
    "linear_value_head_dim": 4,
    "linear_conv_kernel_dim": 4,
}

_T5GEMMA = {
    "vocabulary_size": 100,
    "encoder_hidden_dim": 32,
    "encoder_intermediate_dim": 64,
    "encoder_num_layers": 2,
    "encoder_num_attention_heads": 4,
    "encoder_num_key_value_heads": 2,
    "encoder_head_dim": 8,
    "encoder_layer_types": ["sliding_attention", "full_attention"],
    "decoder_hidden_dim": 32,
    "decoder_intermediate_dim": 64,
    "decoder_num_layers": 2,
    "decoder_num_attention_heads": 4,
    "decoder_num_key_value_heads": 2,
    "decoder_head_dim": 8,
    "decoder_layer_types": ["sliding_attention", "full_attention"],
    "dropout_rate": 0.1,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "query_pre_attn_scalar": 1.0,
    "attention_bias": False,
    "hidden_activation": "gelu_approximate",
    "sliding_window": 16,
    "cross_attention_hidden_size": 32,
    "attn_logit_softcapping": 50.0,
    "rope_max_wavelength": 10000.0,
    "initializer_range": 0.04,
    "attention_dropout": 0.1,
}


HUB_BACKBONES = {
    "AlbertBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "num_groups": 1,
        "num_inner_repetitions": 1,
        "embedding_dim": 16,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "BASNetBackbone": _basnet_kwargs,
    "BLIP2Backbone": _blip2_kwargs,
    "BartBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "BertBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "BloomBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 4,
        "hidden_dim": 8,
        "intermediate_dim": 32,
    },
    "CLIPBackbone": _clip_kwargs,
    "CSPNetBackbone": {
        "stem_filters": 32,
        "stem_kernel_size": 3,
        "stem_strides": 1,
        "stackwise_strides": 2,
        "stackwise_depth": [1, 2, 8],
        "stackwise_num_filters": [16, 24, 48],
        "image_shape": (None, None, 3),
        "down_growth": True,
        "bottle_ratio": (0.5,) + (1.0,),
        "block_ratio": (1.0,) + (0.5,),
        "expand_ratio": (2.0,) + (1.0,),
        "block_type": "dark_block",
        "stage_type": "csp",
        "stem_padding": "same",
    },
    "DFineBackbone": _d_fine_kwargs,
    "DINOV2Backbone": {
        "patch_size": 14,
        "num_layers": 2,
        "hidden_dim": 16,
        "num_heads": 2,
        "intermediate_dim": 16 * 4,
        "layer_scale_init_value": 1.0,
        "num_register_tokens": 0,
        "use_swiglu_ffn": False,
        "image_shape": (70, 70, 3),
        "name": "dinov2_backbone",
    },
    "DINOV3Backbone": {
        "patch_size": 16,
        "num_layers": 2,
        "hidden_dim": 16,
        "num_heads": 2,
        "intermediate_dim": 16 * 4,
        "layer_scale_init_value": 1.0,
        "num_register_tokens": 4,
        "use_gated_mlp": False,
        "image_shape": (64, 64, 3),
        "name": "dinov3_backbone",
    },
    "DebertaV3Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "DeepLabV3Backbone": _deeplab_v3_kwargs,
    # Test: hidden_dim 48, 6 heads, 3 layers, intermediate 192; shrunk.
    "DeiTBackbone": {
        "image_shape": (28, 28, 3),
        "patch_size": 4,
        "num_layers": 2,
        "hidden_dim": 16,
        "num_heads": 2,
        "intermediate_dim": 32,
        "use_mha_bias": True,
    },
    # Test: growth_rate 2 with [2, 4, 6, 4] repeats on 32x32 images.
    "DenseNetBackbone": {
        "stackwise_num_repeats": [2, 4, 6, 4],
        "compression_ratio": 0.5,
        "growth_rate": 2,
        "image_shape": (32, 32, 3),
    },
    "DepthAnythingBackbone": _depth_anything_kwargs,
    "DistilBertBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    # ESM2Backbone is an alias of ESMBackbone (same class, same test).
    "ESM2Backbone": _ESM,
    "ESMBackbone": _ESM,
    "EdRecBackbone": {
        "vocab_size": 10,
        "num_layers_enc": 2,
        "num_layers_dec": 2,
        "num_heads": 2,
        "hidden_dim": 4,
        "intermediate_dim": 8,
        "dropout": 0.0,
    },
    # Test: the EfficientNetV2-S stack (6 stages, [2, 4, 4, 6, 9, 15]
    # repeats, 24..256 filters) on 224x224 images, passing the legacy
    # `width_coefficient`/`depth_coefficient` kwargs; shrunk to 3 stages of
    # one block each and 8..16 filters, with the signature's stackwise
    # coefficients. num_features stays at its default (1280): get_config
    # leaves it out, so any other value does not survive from_config.
    "EfficientNetBackbone": {
        "stackwise_kernel_sizes": [3, 3, 3],
        "stackwise_num_repeats": [1, 1, 1],
        "stackwise_input_filters": [8, 8, 16],
        "stackwise_output_filters": [8, 16, 16],
        "stackwise_expansion_ratios": [1, 4, 4],
        "stackwise_squeeze_and_excite_ratios": [0.0, 0.0, 0.25],
        "stackwise_strides": [1, 2, 2],
        "stackwise_block_types": ["fused", "fused", "unfused"],
        "stackwise_force_input_filters": [0] * 3,
        "stackwise_nores_option": [False] * 3,
        "stackwise_width_coefficients": [1.0] * 3,
        "stackwise_depth_coefficients": [1.0] * 3,
    },
    "ElectraBackbone": {
        "vocab_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "embedding_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "FNetBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "FalconBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_attention_heads": 8,
        "hidden_dim": 16,
        "intermediate_dim": 32,
    },
    # Test: hidden_size 256, 4 heads of 64 (axes_dim [8, 28, 28]), 64 input
    # channels, 4 single blocks; shrunk to hidden 32, 2 heads of 16
    # (axes_dim [4, 6, 6]), 16 channels, 2 single blocks. The test's VAE and
    # CLIP-L "pipeline models" belong to the text-to-image task, not to the
    # backbone.
    "FluxBackbone": {
        "input_channels": 16,
        "hidden_size": 32,
        "mlp_ratio": 2.0,
        "num_heads": 2,
        "depth": 2,
        "depth_single_blocks": 2,
        "axes_dim": [4, 6, 6],
        "theta": 10_000,
        "use_bias": True,
        "guidance_embed": True,
        "image_shape": (16, 16),
        "text_shape": (16, 16),
        "image_ids_shape": (16, 3),
        "text_ids_shape": (16, 3),
        "y_shape": (16,),
    },
    "GPT2Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "GPTNeoXBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "Gemma3Backbone": _gemma3_kwargs,
    "Gemma3nBackbone": _gemma3n_kwargs,
    "Gemma4Backbone": _gemma4_kwargs,
    "GemmaBackbone": {
        "vocabulary_size": 20,
        "num_layers": 2,
        "num_query_heads": 4,
        "num_key_value_heads": 1,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "head_dim": 4,
        "layer_norm_epsilon": 1e-6,
    },
    "GptOssBackbone": _MIXTURE,
    # Test: stem [3, 16, 32], stages 32->64 and 64->128 on 64x64 images;
    # halved.
    "HGNetV2Backbone": {
        "embedding_size": 16,
        "stem_channels": [3, 8, 16],
        "hidden_act": "relu",
        "use_learnable_affine_block": False,
        "image_shape": (64, 64, 3),
        "depths": [1, 1],
        "hidden_sizes": [32, 64],
        "stackwise_stage_filters": [[16, 8, 32, 1, 1, 3], [32, 16, 64, 1, 1, 3]],
        "apply_downsample": [False, True],
        "use_lightweight_conv_block": [False, False],
        "out_features": ["stem", "stage1", "stage2"],
    },
    # No backbone test: the kwargs of llama3_causal_lm_test.py's backbone.
    "Llama3Backbone": {
        "vocabulary_size": 35,
        "num_layers": 2,
        "num_query_heads": 4,
        "num_key_value_heads": 2,
        "hidden_dim": 8,
        "intermediate_dim": 16,
    },
    "LlamaBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_query_heads": 4,
        "num_key_value_heads": 2,
        "hidden_dim": 8,
        "intermediate_dim": 8,
    },
    "MetaCLIP2Backbone": _metaclip_2_kwargs,
    "MiTBackbone": {
        "layerwise_depths": [2, 2],
        "image_shape": (32, 32, 3),
        "hidden_dims": [4, 8],
        "num_layers": 2,
        "layerwise_num_heads": [1, 2],
        "layerwise_sr_ratios": [8, 4],
        "max_drop_path_rate": 0.1,
        "layerwise_patch_sizes": [7, 3],
        "layerwise_strides": [4, 2],
    },
    "MistralBackbone": _MISTRAL,
    "MixtralBackbone": _MIXTURE,
    # Test: MobileNetV3-small-like stack, 1024 output filters, 288 last;
    # output filters shrunk to 64 and last layer to 48.
    "MobileNetBackbone": {
        "stackwise_expansion": [[40, 56], [64, 144, 144], [72, 72], [144, 288, 288]],
        "stackwise_num_blocks": [2, 3, 2, 3],
        "stackwise_num_filters": [[16, 16], [24, 24, 24], [24, 24], [48, 48, 48]],
        "stackwise_kernel_size": [[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
        "stackwise_num_strides": [[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
        "stackwise_se_ratio": [
            [None, None],
            [0.25, 0.25, 0.25],
            [0.25, 0.25],
            [0.25, 0.25, 0.25],
        ],
        "stackwise_activation": [
            ["relu", "relu"],
            ["hard_swish", "hard_swish", "hard_swish"],
            ["hard_swish", "hard_swish"],
            ["hard_swish", "hard_swish", "hard_swish"],
            ["hard_swish"],
        ],
        "stackwise_padding": [[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
        "output_num_filters": 64,
        "input_activation": "hard_swish",
        "output_activation": "hard_swish",
        "input_num_filters": 16,
        "image_shape": (32, 32, 3),
        "depthwise_filters": 8,
        "depthwise_stride": 2,
        "depthwise_residual": False,
        "squeeze_and_excite": 0.5,
        "last_layer_filter": 48,
    },
    # num_features shrunk from the default 2048 to 32.
    "MobileNetV5Backbone": {
        "stackwise_block_types": [["er"], ["uir", "uir"]],
        "stackwise_num_blocks": [1, 2],
        "stackwise_num_filters": [[24], [48, 48]],
        "stackwise_strides": [[2], [2, 1]],
        "stackwise_act_layers": [["relu"], ["relu", "relu"]],
        "stackwise_exp_ratios": [[4.0], [6.0, 6.0]],
        "stackwise_se_ratios": [[0.0], [0.0, 0.0]],
        "stackwise_dw_kernel_sizes": [[0], [5, 5]],
        "stackwise_dw_start_kernel_sizes": [[0], [0, 0]],
        "stackwise_dw_end_kernel_sizes": [[0], [0, 0]],
        "stackwise_exp_kernel_sizes": [[3], [0, 0]],
        "stackwise_pw_kernel_sizes": [[1], [0, 0]],
        "stackwise_num_heads": [[0], [0, 0]],
        "stackwise_key_dims": [[0], [0, 0]],
        "stackwise_value_dims": [[0], [0, 0]],
        "stackwise_kv_strides": [[0], [0, 0]],
        "stackwise_use_cpe": [[False], [False, False]],
        "image_shape": (32, 32, 3),
        "stem_size": 16,
        "num_features": 32,
        "use_msfa": False,
    },
    # Test: vocabulary 10000, hidden 64, filter 64, intermediate 512, 8
    # heads, 16000 audio samples; shrunk to vocabulary 100, hidden 16,
    # filter 16, intermediate 32, 2 heads (inputs: 4000 samples).
    "MoonshineBackbone": {
        "vocabulary_size": 100,
        "filter_dim": 16,
        "encoder_num_layers": 2,
        "decoder_num_layers": 2,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "encoder_num_heads": 2,
        "decoder_num_heads": 2,
        "feedforward_expansion_factor": 4,
        "encoder_use_swiglu_activation": False,
        "decoder_use_swiglu_activation": True,
        "max_position_embeddings": 2048,
        "pad_head_dim_to_multiple_of": None,
        "partial_rotary_factor": 0.62,
        "dropout": 0.0,
        "initializer_range": 0.02,
        "rope_theta": 10000.0,
        "attention_bias": False,
        "attention_dropout": 0.0,
    },
    "OPTBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "PARSeqBackbone": _parseq_kwargs,
    # The vision encoder is built inside from the vit_* kwargs.
    "PaliGemmaBackbone": {
        "vocabulary_size": 256,
        "image_size": 16,
        "num_layers": 2,
        "num_query_heads": 2,
        "num_key_value_heads": 1,
        "hidden_dim": 8,
        "intermediate_dim": 16,
        "head_dim": 4,
        "vit_patch_size": 4,
        "vit_num_layers": 2,
        "vit_num_heads": 2,
        "vit_hidden_dim": 8,
        "vit_intermediate_dim": 16,
    },
    "Phi3Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_query_heads": 4,
        "num_key_value_heads": 2,
        "hidden_dim": 8,
        "intermediate_dim": 8,
    },
    # Qwen2Backbone is an alias of QwenBackbone. No backbone test: the
    # kwargs of qwen_causal_lm_test.py's backbone.
    "Qwen2Backbone": _QWEN,
    "Qwen3Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_query_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 2,
        "hidden_dim": 8,
        "intermediate_dim": 8,
    },
    "Qwen3MoeBackbone": {**_QWEN_MOE, "head_dim": 2},
    "Qwen3_5Backbone": {**_QWEN3_5, "intermediate_dim": 32},
    "Qwen3_5MoeBackbone": {
        **_QWEN3_5,
        "moe_intermediate_dim": 8,
        "shared_expert_intermediate_size": 8,
        "num_experts": 4,
        "top_k": 2,
        "router_aux_loss_coefficient": 0.01,
        "dtype": "float32",
    },
    "QwenBackbone": _QWEN,
    "QwenMoeBackbone": {
        **_QWEN_MOE,
        "shared_expert_intermediate_dim": 32,
        "use_sliding_window_attention": False,
        "output_router_logits": False,
    },
    "RWKV7Backbone": {
        "vocabulary_size": 10,
        "hidden_size": 16,
        "num_layers": 2,
        "head_size": 4,
        "intermediate_dim": 32,
        "gate_lora": 32,
        "mv_lora": 16,
        "aaa_lora": 16,
        "decay_lora": 16,
    },
    "ResNetBackbone": {
        "input_conv_filters": [64],
        "input_conv_kernel_sizes": [7],
        "stackwise_num_filters": [64, 64, 64],
        "stackwise_num_blocks": [2, 2, 2],
        "stackwise_num_strides": [1, 2, 2],
        "image_shape": (None, None, 3),
        "block_type": "bottleneck_block",
        "use_pre_activation": False,
    },
    "RetinaNetBackbone": _retinanet_kwargs,
    "RobertaBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "RoformerV2Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 1,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "head_size": 2,
    },
    # The test file is sam3/sam3_pc_backbnoe_test.py (sic).
    "SAM3PromptableConceptBackbone": _sam3_kwargs,
    "SAMBackbone": _sam_kwargs,
    "SegFormerBackbone": _segformer_kwargs,
    "SigLIPBackbone": _siglip_kwargs,
    # SmolLMBackbone is an alias of SmolLM3Backbone. Test: hidden 64,
    # intermediate 128, vocabulary 100; shrunk to hidden 16, intermediate 32.
    "SmolLM3Backbone": _SMOLLM3,
    "SmolLMBackbone": _SMOLLM3,
    "StableDiffusion3Backbone": _stable_diffusion_3_kwargs,
    # Test: embed_dim 32; halved.
    "SwinTransformerBackbone": {
        "image_shape": (32, 32, 3),
        "embed_dim": 16,
        "depths": (2, 2),
        "num_heads": (2, 4),
        "window_size": 4,
    },
    "T5Backbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
    },
    "T5Gemma2Backbone": {**_T5GEMMA, "use_query_key_norm": True},
    "T5GemmaBackbone": _T5GEMMA,
    # Test: filters [8, 64, 64]; shrunk to [8, 16, 16].
    "VGGBackbone": {
        "stackwise_num_repeats": [2, 3, 3],
        "stackwise_num_filters": [8, 16, 16],
        "image_shape": (16, 16, 3),
    },
    # Test: hidden_dim 48, 6 heads, 3 layers, mlp 192; shrunk.
    "ViTBackbone": {
        "image_shape": (28, 28, 3),
        "patch_size": (4, 4),
        "num_layers": 2,
        "hidden_dim": 16,
        "num_heads": 2,
        "mlp_dim": 32,
        "use_mha_bias": True,
    },
    "ViTDetBackbone": {
        "image_shape": (16, 16, 3),
        "patch_size": 2,
        "hidden_size": 4,
        "num_layers": 2,
        "global_attention_layer_indices": [2, 5, 8, 11],
        "intermediate_dim": 4 * 4,
        "num_heads": 2,
        "num_output_channels": 2,
        "window_size": 2,
    },
    "VideoPrismBackbone": {
        "image_shape": (28, 28, 3),
        "num_frames": 4,
        "patch_size": 4,
        "hidden_dim": 16,
        "intermediate_dim": 32,
        "num_heads": 2,
        "num_spatial_layers": 1,
        "num_temporal_layers": 1,
        "num_auxiliary_layers": 1,
        "vocabulary_size": 0,
        "num_text_layers": 0,
    },
    "WhisperBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_encoder_sequence_length": 6,
        "max_decoder_sequence_length": 6,
    },
    "XLMRobertaBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
        "max_sequence_length": 5,
    },
    "XLNetBackbone": {
        "vocabulary_size": 10,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 2,
        "intermediate_dim": 4,
    },
    # Test: filters [[32, 64], [128, 128], [256, 256]]; quartered.
    "XceptionBackbone": {
        "stackwise_conv_filters": [[8, 16], [32, 32], [64, 64]],
        "stackwise_pooling": [False, True, False],
        "image_shape": (None, None, 3),
    },
}


def hub_kwargs(name):
    """Fresh constructor kwargs for ``keras_hub.models.<name>``."""
    entry = HUB_BACKBONES[name]
    return entry() if callable(entry) else copy.deepcopy(entry)


def hub_backbone(name):
    """The tiny ``keras_hub.models.<name>``, built."""
    return _hub(name)(**hub_kwargs(name))


# Input hints for `hub_inputs`: lengths of the unknown (None) dimensions, by
# input name ("*" for any input), and the size of images whose height and
# width are unknown. The test's `self.input_data` is the guide.
_HUB_INPUT_HINTS = {
    "BartBackbone": {"encoder_token_ids": (3,), "encoder_padding_mask": (3,)},
    "BASNetBackbone": {"image": 64},
    # Text encoders take max_sequence_length (16) tokens.
    "CLIPBackbone": {"*": 16},
    "MetaCLIP2Backbone": {"*": 16},
    "SigLIPBackbone": {"*": 16},
    "CSPNetBackbone": {"image": 64},
    "DFineBackbone": {"image": 32},
    "DeepLabV3Backbone": {"image": 96},
    "Gemma3Backbone": {"*": 16},
    "Gemma4Backbone": {"*": 16},
    "Gemma3nBackbone": {"*": 8},
    "PaliGemmaBackbone": {"*": 16},
    "MoonshineBackbone": {
        "encoder_input_values": (4000, 1),
        "encoder_padding_mask": (4000,),
        "*": 10,
    },
    "PARSeqBackbone": {"*": 8},
    "ResNetBackbone": {"image": 64},
    "RetinaNetBackbone": {"image": 128},
    "RWKV7Backbone": {"*": 16},
    "SAM3PromptableConceptBackbone": {"*": 32},
    "T5Backbone": {"*": 3},
    "T5GemmaBackbone": {"*": 16},
    "T5Gemma2Backbone": {"*": 16},
    "WhisperBackbone": {"encoder_features": (5, 80)},
    "XceptionBackbone": {"image": 64},
    "Qwen3MoeBackbone": {"*": 7},
    "QwenMoeBackbone": {"*": 7},
}


def _vision_layout(seq_len, n_images, tokens_per_image, start=2, gap=2):
    """vision_mask (seq_len,) and vision_indices (n * tokens,) for one row."""
    mask = np.zeros((seq_len,), dtype=bool)
    indices = []
    position = start
    for _ in range(n_images):
        indices.extend(range(position, position + tokens_per_image))
        position += tokens_per_image + gap
    mask[indices] = True
    return mask, np.array(indices, dtype="int32")


def _gemma_vision_inputs(model, batch, rng, values, tokens_per_image):
    seq_len = values["token_ids"].shape[1]
    n_images = 1
    mask, indices = _vision_layout(seq_len, n_images, tokens_per_image)
    values["vision_mask"] = np.tile(mask, (batch, 1))
    values["vision_indices"] = np.tile(indices, (batch, 1))
    return values


def _fix_gemma3(model, batch, rng, values):
    encoder = model.vision_encoder
    per_side = encoder.image_size // encoder.patch_size // encoder.pool_size
    values["images"] = rng.random(
        (batch, 1, encoder.image_size, encoder.image_size, 3), dtype="float32"
    )
    return _gemma_vision_inputs(model, batch, rng, values, per_side**2)


def _fix_gemma4(model, batch, rng, values):
    encoder = model.vision_encoder
    per_side = encoder.image_size // encoder.patch_size
    patch_dim = 3 * encoder.patch_size**2
    values["pixel_values"] = rng.random(
        (batch, 1, per_side**2, patch_dim), dtype="float32"
    )
    grid = np.stack(
        np.meshgrid(np.arange(per_side), np.arange(per_side), indexing="ij"),
        axis=-1,
    ).reshape(1, 1, per_side**2, 2)
    values["pixel_position_ids"] = np.tile(grid, (batch, 1, 1, 1)).astype(
        "int32"
    )
    tokens = per_side**2 // encoder.pool_size**2
    return _gemma_vision_inputs(model, batch, rng, values, tokens)


def _fix_gemma3n(model, batch, rng, values):
    # As the test: one image, one audio clip, audio mask all False.
    values["images"] = rng.random((batch, 1, 32, 32, 3), dtype="float32")
    values["input_features"] = rng.random((batch, 1, 8, 16), dtype="float32")
    values["input_features_mask"] = np.zeros((batch, 1, 8), dtype=bool)
    return values


def _fix_paligemma(model, batch, rng, values):
    values["response_mask"] = np.zeros_like(values["padding_mask"])
    return values


def _fix_sam(model, batch, rng, values):
    size = model.image_encoder.image_shape[0]
    values["points"] = rng.random((batch, 1, 2), dtype="float32") * size
    values["labels"] = np.ones((batch, 1), dtype="float32")
    values["boxes"] = np.ones((batch, 1, 2, 2), dtype="float32")
    values["masks"] = np.zeros((batch, 0, size, size, 1), dtype="float32")
    return values


def _fix_sam3(model, batch, rng, values):
    values["boxes"] = np.ones((batch, 1, 5), dtype="float32")
    values["box_labels"] = np.ones((batch, 1), dtype="int32")
    return values


def _fix_flux(model, batch, rng, values):
    values["timesteps"] = np.ones((batch,), dtype="float32")
    values["guidance"] = np.ones((batch,), dtype="float32")
    return values


def _fix_sd3(model, batch, rng, values):
    values["num_steps"] = np.ones((batch,), dtype="int32")
    values["guidance_scale"] = np.ones((batch,), dtype="float32")
    return values


_HUB_INPUT_FIXES = {
    "Gemma3Backbone": _fix_gemma3,
    "Gemma4Backbone": _fix_gemma4,
    "Gemma3nBackbone": _fix_gemma3n,
    "PaliGemmaBackbone": _fix_paligemma,
    "SAMBackbone": _fix_sam,
    "SAM3PromptableConceptBackbone": _fix_sam3,
    "FluxBackbone": _fix_flux,
    "StableDiffusion3Backbone": _fix_sd3,
}

_VOCAB_ATTRS = (
    "vocabulary_size",
    "vocab_size",
    "text_vocab_size",
)


def _vocabulary_size(model, input_name):
    """The vocabulary size for the token ids of `input_name`."""
    # Sub-models with their own vocabulary (SD3's CLIP encoders, ...).
    prefix = input_name.split("_token_ids")[0].replace("_negative", "")
    sub = getattr(model, prefix, None) if prefix != input_name else None
    for owner in (sub, model, getattr(model, "text_encoder", None)):
        for attr in _VOCAB_ATTRS:
            value = getattr(owner, attr, None) if owner is not None else None
            if isinstance(value, int) and value > 0:
                return value
    return 10


def _spec_items(model):
    """(name, KerasTensor) pairs for `model.input`, and how to pack them."""
    struct = model.input
    if isinstance(struct, dict):
        return list(struct.items()), "dict"
    if isinstance(struct, (list, tuple)):
        return [(t.name, t) for t in struct], "list"
    return [(struct.name, struct)], "single"


def _fill_shape(name, shape, hints, default_len, image):
    fixed = hints.get(name)
    if fixed is not None and not isinstance(fixed, int):
        return tuple(fixed)
    shape = list(shape[1:])
    if len(shape) == 3 and shape[-1] is not None and shape[0] is None:
        # An image of unknown height and width.
        shape[0] = shape[0] or image
        shape[1] = shape[1] or image
    length = hints.get(name, hints.get("*", default_len))
    return tuple(length if d is None else d for d in shape)


def _value(name, dtype, shape, rng, batch, model):
    full = (batch,) + tuple(shape)
    lname = name.lower()
    if "int" in dtype or dtype == "bool":
        if "token_ids" in lname or lname in ("tokens",):
            vocab = _vocabulary_size(model, name)
            return rng.integers(0, vocab, size=full).astype(dtype)
        if "mask" in lname:
            return np.ones(full, dtype=dtype)
        if "position_ids" in lname:
            return np.broadcast_to(
                np.arange(full[-1], dtype=dtype), full
            ).copy()
        return np.zeros(full, dtype=dtype)
    return rng.random(full, dtype="float32").astype(dtype)


def hub_inputs(name, model, batch=2, seed=0):
    """Sample inputs for the tiny ``keras_hub.models.<name>`` `model`.

    Shaped and structured as ``model.input`` (a dict, list or array): token
    ids drawn in [0, vocabulary size), masks of ones, segment ids of zeros,
    position ids 0..n-1, floats (images, audio, latents) uniform in [0, 1).
    Unknown lengths come from ``_HUB_INPUT_HINTS`` (5 tokens and 32x32
    images by default) and inputs that must agree with each other (Gemma's
    vision masks and indices, SAM's prompts, ...) from
    ``_HUB_INPUT_FIXES``, following the test's ``self.input_data``.
    """
    rng = np.random.default_rng(seed)
    hints = _HUB_INPUT_HINTS.get(name, {})
    items, kind = _spec_items(model)
    values = {}
    for key, tensor in items:
        shape = _fill_shape(key, tensor.shape, hints, 5, hints.get("image", 32))
        values[key] = _value(key, tensor.dtype, shape, rng, batch, model)
    fix = _HUB_INPUT_FIXES.get(name)
    if fix is not None:
        values = fix(model, batch, rng, values)
    for key, tensor in items:
        values[key] = np.asarray(values[key]).astype(tensor.dtype)
    return _pack(values, items, kind)


def _pack(values, items, kind):
    if kind == "dict":
        return values
    if kind == "list":
        return [values[key] for key, _ in items]
    return values[items[0][0]]


# ---------------------------------------------------------------------------
# keras.applications
# ---------------------------------------------------------------------------

# The smallest input_shape each builder takes with weights=None: 32x32
# (`imagenet_utils.obtain_input_shape`'s floor) for most, 75x75 for the
# Inceptions, 71x71 for Xception; one pixel less is refused (checked).
_APP_INPUT = {
    "InceptionV3": (75, 75, 3),
    "InceptionResNetV2": (75, 75, 3),
    "Xception": (71, 71, 3),
}

APPLICATIONS = {
    name: {
        "weights": None,
        "classes": 5,
        "input_shape": _APP_INPUT.get(name, (32, 32, 3)),
    }
    for name in (
        "ConvNeXtBase",
        "ConvNeXtLarge",
        "ConvNeXtSmall",
        "ConvNeXtTiny",
        "ConvNeXtXLarge",
        "DenseNet121",
        "DenseNet169",
        "DenseNet201",
        "EfficientNetB0",
        "EfficientNetB1",
        "EfficientNetB2",
        "EfficientNetB3",
        "EfficientNetB4",
        "EfficientNetB5",
        "EfficientNetB6",
        "EfficientNetB7",
        "EfficientNetV2B0",
        "EfficientNetV2B1",
        "EfficientNetV2B2",
        "EfficientNetV2B3",
        "EfficientNetV2L",
        "EfficientNetV2M",
        "EfficientNetV2S",
        "InceptionResNetV2",
        "InceptionV3",
        "MobileNet",
        "MobileNetV2",
        "MobileNetV3Large",
        "MobileNetV3Small",
        "NASNetLarge",
        "NASNetMobile",
        "ResNet101",
        "ResNet101V2",
        "ResNet152",
        "ResNet152V2",
        "ResNet50",
        "ResNet50V2",
        "VGG16",
        "VGG19",
        "Xception",
    )
}


def application(name):
    """``keras.applications.<name>(weights=None, classes=5, input_shape=...)``."""
    return getattr(keras.applications, name)(**APPLICATIONS[name])


def application_inputs(name, model, batch=2, seed=0):
    """Images in [0, 255) of the model's input shape."""
    rng = np.random.default_rng(seed)
    shape = tuple(model.input.shape[1:])
    return (rng.random((batch,) + shape, dtype="float32") * 255.0).astype(
        "float32"
    )


# ---------------------------------------------------------------------------
# keras_cv backbones
# ---------------------------------------------------------------------------

# The base classes keras_cv 0.9.0 exports as `keras_cv.models.*Backbone`.
# Its other `*Backbone` names (ResNet50Backbone, EfficientNetV2SBackbone,
# MiTB0Backbone, ...) are aliases that build from a preset, so they are
# not here. keras_cv's tests use full-size configurations; these are tiny.
KERAS_CV_BACKBONES = {
    "CSPDarkNetBackbone": {
        "stackwise_channels": [8, 16, 32, 64],
        "stackwise_depth": [1, 1, 1, 1],
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    "CenterPillarBackbone": {
        "stackwise_down_blocks": [1, 1, 1],
        "stackwise_down_filters": [8, 16, 32],
        "stackwise_up_filters": [32, 16, 16],
        "input_shape": (16, 16, 5),
    },
    "DenseNetBackbone": {
        "stackwise_num_repeats": [1, 1, 1, 1],
        "include_rescaling": False,
        "growth_rate": 4,
        "input_shape": (32, 32, 3),
    },
    # The first two stacks of keras_cv's test, one block each (the first
    # stack's input filters must be the stem's 32).
    "EfficientNetLiteBackbone": {
        "stackwise_kernel_sizes": [3, 3],
        "stackwise_num_repeats": [1, 1],
        "stackwise_input_filters": [32, 16],
        "stackwise_output_filters": [16, 24],
        "stackwise_expansion_ratios": [1, 6],
        "stackwise_strides": [1, 2],
        "width_coefficient": 1.0,
        "depth_coefficient": 1.0,
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    "EfficientNetV1Backbone": {
        "stackwise_kernel_sizes": [3, 3],
        "stackwise_num_repeats": [1, 1],
        "stackwise_input_filters": [8, 8],
        "stackwise_output_filters": [8, 16],
        "stackwise_expansion_ratios": [1, 4],
        "stackwise_strides": [1, 2],
        "stackwise_squeeze_and_excite_ratios": [0.25, 0.25],
        "width_coefficient": 1.0,
        "depth_coefficient": 1.0,
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    "EfficientNetV2Backbone": {
        "stackwise_kernel_sizes": [3, 3, 3],
        "stackwise_num_repeats": [1, 1, 1],
        "stackwise_input_filters": [8, 8, 16],
        "stackwise_output_filters": [8, 16, 16],
        "stackwise_expansion_ratios": [1, 4, 4],
        "stackwise_squeeze_and_excite_ratios": [0.0, 0.0, 0.25],
        "stackwise_strides": [1, 2, 2],
        "stackwise_conv_types": ["fused", "fused", "unfused"],
        "width_coefficient": 1.0,
        "depth_coefficient": 1.0,
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    # The number of heads is fixed at [1, 2, 5, 8] per stage, so the
    # embedding dims are multiples of those.
    "MiTBackbone": {
        "include_rescaling": False,
        "depths": [1, 1, 1, 1],
        "embedding_dims": [8, 16, 40, 64],
        "input_shape": (64, 64, 3),
    },
    "MobileNetV3Backbone": {
        "stackwise_expansion": [1, 4, 6],
        "stackwise_filters": [8, 16, 16],
        "stackwise_kernel_size": [3, 3, 5],
        "stackwise_stride": [2, 2, 1],
        "stackwise_se_ratio": [0.25, None, 0.25],
        "stackwise_activation": ["relu", "relu", "hard_swish"],
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    "ResNetBackbone": {
        "stackwise_filters": [8, 16, 32, 64],
        "stackwise_blocks": [1, 1, 1, 1],
        "stackwise_strides": [1, 2, 2, 2],
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    # Two blocks per stack: with one, the first and last block of a stack
    # get the same layer names.
    "ResNetV2Backbone": {
        "stackwise_filters": [8, 16, 32, 64],
        "stackwise_blocks": [2, 2, 2, 2],
        "stackwise_strides": [1, 2, 2, 2],
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
    # VGG16's layers are fixed (64..512 filters); the smallest input it takes
    # without the top.
    "VGG16Backbone": {
        "include_rescaling": False,
        "include_top": False,
        "input_shape": (32, 32, 3),
        "pooling": "avg",
    },
    "ViTDetBackbone": {
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
        "patch_size": 8,
        "embed_dim": 16,
        "depth": 2,
        "mlp_dim": 32,
        "num_heads": 2,
        "out_chans": 8,
        "window_size": 2,
        "global_attention_indices": [1],
    },
    "VideoSwinBackbone": {
        "include_rescaling": False,
        "input_shape": (4, 32, 32, 3),
        "embed_dim": 8,
        "patch_size": [2, 4, 4],
        "window_size": [2, 2, 2],
        "depths": [1, 1],
        "num_heads": [1, 2],
    },
    "YOLOV8Backbone": {
        "stackwise_channels": [8, 16, 32, 64],
        "stackwise_depth": [1, 1, 1, 1],
        "include_rescaling": False,
        "input_shape": (32, 32, 3),
    },
}


def _keras_cv():
    import keras_cv

    return keras_cv


def keras_cv_backbone(name):
    """The tiny ``keras_cv.models.<name>``, built."""
    cls = getattr(_keras_cv().models, name)
    return cls(**copy.deepcopy(KERAS_CV_BACKBONES[name]))


def keras_cv_inputs(name, model, batch=2, seed=0):
    """Images in [0, 1) (point-pillar grids for CenterPillarBackbone)."""
    rng = np.random.default_rng(seed)
    items, kind = _spec_items(model)
    values = {}
    for key, tensor in items:
        shape = tuple(32 if d is None else d for d in tensor.shape[1:])
        values[key] = rng.random((batch,) + shape, dtype="float32")
    return _pack(values, items, kind)


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

REGISTRIES = {
    "hub": HUB_BACKBONES,
    "applications": APPLICATIONS,
    "keras_cv": KERAS_CV_BACKBONES,
}
_BUILDERS = {
    "hub": hub_backbone,
    "applications": application,
    "keras_cv": keras_cv_backbone,
}
_INPUTS = {
    "hub": hub_inputs,
    "applications": application_inputs,
    "keras_cv": keras_cv_inputs,
}


def build(family, name):
    return _BUILDERS[family](name)


def inputs(family, name, model, batch=2, seed=0):
    return _INPUTS[family](name, model, batch=batch, seed=seed)


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------


def _outputs(model, x):
    """The model's outputs on `x` as a flat list of numpy arrays."""
    y = model(x, training=False)
    return [
        np.asarray(keras.ops.convert_to_numpy(t)) for t in keras.tree.flatten(y)
    ]


def _compare(reference, outputs):
    """None if `outputs` equal `reference`, else what differs."""
    if len(reference) != len(outputs):
        return f"{len(outputs)} outputs, expected {len(reference)}"
    worst = 0.0
    for a, b in zip(reference, outputs):
        if a.shape != b.shape:
            return f"output shape {b.shape}, expected {a.shape}"
        if a.dtype.kind in "biu":
            if not np.array_equal(a, b):
                return "integer outputs differ"
            continue
        a64 = a.astype("float64")
        b64 = b.astype("float64")
        if not np.array_equal(np.isnan(a64), np.isnan(b64)):
            return "NaNs differ"
        diff = np.nanmax(np.abs(a64 - b64)) if a64.size else 0.0
        worst = max(worst, float(diff))
    if worst > 0.0:
        return f"max abs difference {worst:.3g}"
    return None


def _where(error):
    """'file:line' of the frame that raised `error`."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return None
    frame = frames[-1]
    path = frame.filename
    for marker in ("site-packages/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{frame.lineno}"


def _first_line(error):
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0][:300]


def _last_line(error):
    """The message's last line where it has several (Keras puts the cause
    of a deserialization error there), else None."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:300] if len(lines) > 1 else None


def _check(record, key, make, model, x, reference, set_weights=True):
    """Build a copy with `make()`, set the weights, compare outputs."""
    start = time.perf_counter()
    try:
        other = make()
        if set_weights:
            other.set_weights(model.get_weights())
        problem = _compare(reference, _outputs(other, x))
        record[key] = problem is None
        record[f"{key}_error"] = problem
        del other
    except Exception as error:  # a finding: record it, go on
        record[key] = False
        record[f"{key}_error"] = _first_line(error)
        record[f"{key}_cause"] = _last_line(error)
        record[f"{key}_where"] = _where(error)
    record[f"{key}_seconds"] = round(time.perf_counter() - start, 2)


def check(family, name, tmpdir=None):
    """Build, forward, clone, from_config and save/load one model."""
    record = {
        "name": name,
        "family": family,
        "backend": keras.backend.backend(),
        "trainable_params": None,
        "build": False,
        "build_error": None,
        "forward": False,
        "forward_error": None,
        "deterministic": None,
        "clone": None,
        "clone_error": None,
        "from_config": None,
        "from_config_error": None,
        "save_load": None,
        "save_load_error": None,
    }
    start = time.perf_counter()
    model = None
    try:
        model = build(family, name)
        record["build"] = True
        record["trainable_params"] = int(
            sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        )
    except Exception as error:
        record["build_error"] = _first_line(error)
        record["traceback"] = traceback.format_exc(limit=-4)
    if record["build"]:
        try:
            x = inputs(family, name, model)
            reference = _outputs(model, x)
            record["forward"] = True
            again = _compare(reference, _outputs(model, x))
            record["deterministic"] = again is None
        except Exception as error:
            record["forward_error"] = _first_line(error)
            record["traceback"] = traceback.format_exc(limit=-4)
    if record["forward"]:
        _check(
            record,
            "clone",
            lambda: keras.models.clone_model(model, recursive=True),
            model,
            x,
            reference,
        )
        _check(
            record,
            "from_config",
            lambda: keras.saving.deserialize_keras_object(
                keras.saving.serialize_keras_object(model)
            ),
            model,
            x,
            reference,
        )

        def save_and_load():
            with tempfile.TemporaryDirectory(dir=tmpdir) as folder:
                path = os.path.join(folder, f"{name}.keras")
                model.save(path)
                return keras.models.load_model(path)

        # load_model restores the weights itself: no set_weights here.
        _check(
            record,
            "save_load",
            save_and_load,
            model,
            x,
            reference,
            set_weights=False,
        )
    record["seconds"] = round(time.perf_counter() - start, 2)
    del model
    keras.backend.clear_session()
    gc.collect()
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=FAMILIES, default="hub")
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the records of an existing --out file, replacing those "
        "of the same family and name",
    )
    args = parser.parse_args(argv)
    names = args.names or list(REGISTRIES[args.family])
    unknown = [n for n in names if n not in REGISTRIES[args.family]]
    if unknown:
        parser.error(f"not in the {args.family} registry: {unknown}")
    if args.family == "keras_cv":
        _keras_cv()
    records = []
    for name in names:
        record = check(args.family, name)
        records.append(record)
        print(json.dumps({k: v for k, v in record.items() if k != "traceback"}),
              flush=True)
    if args.out:
        written = records
        if args.merge and os.path.exists(args.out):
            with open(args.out) as f:
                written = _merge(json.load(f), records)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(written, f, indent=1)
            f.write("\n")
    return records


def _merge(old, new):
    """`old` records with `new` ones in place of those of the same key,
    sorted by family (as in FAMILIES) then registry order."""
    by_key = {(r["family"], r["name"]): r for r in old}
    by_key.update({(r["family"], r["name"]): r for r in new})

    def order(key):
        family, name = key
        names = list(REGISTRIES.get(family, {}))
        rank = FAMILIES.index(family) if family in FAMILIES else len(FAMILIES)
        return (rank, names.index(name) if name in names else len(names), name)

    return [by_key[key] for key in sorted(by_key, key=order)]


if __name__ == "__main__":
    main()
