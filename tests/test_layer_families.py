"""Layer families and model kinds beyond Dense/Conv/Embedding, and exclusions."""

import re

import keras
import numpy as np
import pytest
from conftest import MODELS
from conftest import assert_converts

import keras_ssn
from keras_ssn.layers import is_shared


def conv_family_model(rank):
    """Standard, depthwise and transposed convolutions of one rank."""
    conv = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
    transpose = {1: keras.layers.Conv1DTranspose, 2: keras.layers.Conv2DTranspose,
                 3: keras.layers.Conv3DTranspose}
    depthwise = {1: keras.layers.DepthwiseConv1D, 2: keras.layers.DepthwiseConv2D}
    pool = {1: keras.layers.GlobalAveragePooling1D,
            2: keras.layers.GlobalAveragePooling2D,
            3: keras.layers.GlobalAveragePooling3D}
    inputs = keras.Input((6,) * rank + (3,))
    x = conv[rank](16, 3, padding="same", name="conv")(inputs)
    if rank in depthwise:
        x = depthwise[rank](3, padding="same", depth_multiplier=2, name="depthwise")(x)
    x = transpose[rank](8, 3, strides=2, padding="same", name="transpose")(x)
    if rank < 3:
        separable = {1: keras.layers.SeparableConv1D, 2: keras.layers.SeparableConv2D}
        x = separable[rank](8, 3, padding="same", name="separable")(x)
    x = pool[rank]()(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, outputs, name=f"conv{rank}d_family")


# Every rank once, rank 2 both below 100% (upsampling) and above (combining).
@pytest.mark.parametrize("rank,fraction", [(1, 0.1), (2, 0.1), (2, 3.0), (3, 3.0)])
def test_depthwise_and_transposed_convolutions(rank, fraction, tmp_path):
    small = assert_converts(conv_family_model(rank), fraction, tmp_path)
    shared = {type(l).__name__ for l in small.shared_layers()}
    expected = {f"SharedConv{rank}D", f"SharedConv{rank}DTranspose", "SharedDense"}
    if rank < 3:
        expected |= {f"SharedDepthwiseConv{rank}D", f"SharedSeparableConv{rank}D"}
    assert shared == expected


def test_exclude_by_name_path_regex_list_and_predicate():
    def unshared(**options):
        small = keras_ssn.convert(MODELS["nested"](), 1.0, **options)
        return {e["path"] for e in small.sharing_plan.unshared_layers}

    assert unshared(exclude="head") == {"head"}
    assert unshared(exclude="inner/block/expand") == {"inner/block/expand"}
    assert unshared(exclude=r"inner/.*") == {
        "inner/block/expand", "inner/block/project", "inner/inner_dense"}
    assert unshared(exclude=["stem", "head"]) == {"stem", "head"}
    assert unshared(exclude=lambda layer: layer.units == 128) == {
        "stem", "inner/block/project", "inner/inner_dense"}
    model = MODELS["nested"]()
    small = keras_ssn.convert(model, 1.0, exclude=[model.get_layer("head"),
                                                   re.compile("inner/block/.*")])
    assert {e["path"] for e in small.sharing_plan.unshared_layers} == {
        "head", "inner/block/expand", "inner/block/project"}


def test_a_containers_name_excludes_everything_inside_it():
    def unshared(exclude):
        small = keras_ssn.convert(MODELS["nested"](), 1.0, exclude=exclude)
        return {e["path"] for e in small.sharing_plan.unshared_layers}

    inside = {"inner/block/expand", "inner/block/project", "inner/inner_dense"}
    assert unshared("inner") == inside
    assert unshared("block") == {"inner/block/expand", "inner/block/project"}
    assert unshared("inner/block") == {"inner/block/expand", "inner/block/project"}
    assert unshared("inn.r") == inside


def test_exclude_that_matches_no_layer_lists_the_paths():
    for options in ({"exclude": "innr"}, {"exclude": ["head", "bsae"]}):
        with pytest.raises(ValueError) as info:
            keras_ssn.convert(MODELS["nested"](), 1.0, **options)
        message = str(info.value)
        assert "matches no layer of model 'outer'" in message
        assert "'inner/block/expand'" in message and "'head'" in message
    with pytest.raises(ValueError, match="exclude='bsae' matches no layer"):
        keras_ssn.baselines.hashed(MODELS["nested"](), 0.5, exclude="bsae")


def test_excluded_layers_keep_their_weights_and_count_toward_the_budget():
    model = MODELS["mlp"]()
    small = keras_ssn.convert(model, 0.2, exclude="logits", min_size=0)
    assert isinstance(small.get_layer("logits"), keras.layers.Dense)
    assert not keras_ssn.layers.is_shared(small.get_layer("logits"))
    assert keras_ssn.count_trainable(small) == round(0.2 * keras_ssn.count_trainable(model))
    (entry,) = small.sharing_plan.unshared_layers
    assert entry["params"] == 128 * 10 + 10 and entry["reason"] == "excluded by exclude="


def test_min_size_keeps_small_weights_unshared():
    small = keras_ssn.convert(MODELS["mlp"](), 0.2, min_size=2000)
    (entry,) = small.sharing_plan.unshared_layers
    assert entry["path"] == "logits"
    assert "1280 entries, fewer than min_size=2000" in entry["reason"]


def test_excluding_everything_raises_and_bad_exclude_is_typed():
    with pytest.raises(ValueError, match="no layer whose weight can be shared"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude=".*")
    with pytest.raises(TypeError, match="exclude must be"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude=3)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, exclude="dense[")
    with pytest.raises(TypeError, match="min_size must be an int"):
        keras_ssn.convert(MODELS["mlp"](), 0.5, min_size=1.5)


def test_learn_groups_honours_exclude():
    import numpy as np

    model = MODELS["mlp"]()
    x = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
    y = np.zeros((32, 10), "float32")
    groups = keras_ssn.learn_groups(model, (x, y), 2, loss="mse", exclude="logits",
                                    seed=0, verbose=0)
    assert set(groups) == {"hidden_1/kernel", "hidden_2/kernel"}
    small = keras_ssn.convert(model, 0.2, groups=groups, exclude="logits")
    assert len(small.sharing_plan.groups) == 2


def recurrent_model():
    inputs = keras.Input((7, 5))
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(8, return_sequences=True, name="lstm"),
        name="bidirectional")(inputs)
    x = keras.layers.GRU(6, return_sequences=True, name="gru")(x)
    x = keras.layers.TimeDistributed(keras.layers.Dense(6, name="step"), name="steps")(x)
    x, state = keras.layers.SimpleRNN(4, return_state=True, name="simple_rnn")(x)
    x = keras.layers.Concatenate()([x, state])
    outputs = keras.layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs, name="recurrent")


@pytest.mark.parametrize("fraction", [0.2, 3.0])
def test_recurrent_layers_share_both_kernels(fraction, tmp_path):
    small = assert_converts(recurrent_model(), fraction, tmp_path)
    paths = set(small.sharing_plan.weights)
    for layer in ("bidirectional/forward_lstm", "bidirectional/backward_lstm", "gru",
                  "simple_rnn"):
        assert {f"{layer}/cell/kernel", f"{layer}/cell/recurrent_kernel"} <= paths
    assert "steps/step/kernel" in paths
    cells = {type(l).__name__ for l in small.shared_layers()}
    assert {"SharedLSTMCell", "SharedGRUCell", "SharedSimpleRNNCell"} <= cells


def test_generic_rnn_around_a_cell_is_shared(tmp_path):
    inputs = keras.Input((5, 3))
    x = keras.layers.RNN(keras.layers.LSTMCell(6), name="rnn")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    small = assert_converts(model, 0.5, tmp_path)
    assert "rnn/lstm_cell/kernel" in small.sharing_plan.weights


def attention_model():
    inputs = keras.Input((6, 16))
    x = keras.layers.MultiHeadAttention(2, 8, name="attention")(inputs, inputs)
    x = keras.layers.LayerNormalization()(x + inputs)
    x = keras.layers.SeparableConv1D(8, 3, padding="same", name="separable")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(3, name="head")(x)
    return keras.Model(inputs, outputs, name="attention_model")


@pytest.mark.parametrize("fraction", [0.2, 3.0])
def test_attention_projections_and_separable_kernels(fraction, tmp_path):
    small = assert_converts(attention_model(), fraction, tmp_path)
    paths = set(small.sharing_plan.weights)
    assert {f"attention/{p}/kernel" for p in ("query", "key", "value", "output")} <= paths
    assert {"separable/depthwise_kernel", "separable/pointwise_kernel"} <= paths
    unshared = {e["class_name"] for e in small.sharing_plan.unshared_layers}
    assert unshared == {"LayerNormalization"}


def test_group_mapping_by_layer_path_covers_all_its_weights():
    mapping = {"attention": 0, "separable": 1, "head": 1}
    plan = keras_ssn.convert(attention_model(), 0.5, groups=mapping).sharing_plan
    assert len(plan.groups[0].weights) == 4 and len(plan.groups[1].weights) == 3
    with pytest.raises(ValueError, match="Missing paths"):
        keras_ssn.convert(attention_model(), 0.5, groups={"attention": 0})


@keras.saving.register_keras_serializable(package="tests")
class Block(keras.layers.Layer):
    """A transformer block that creates its sublayers itself, plus a weight of its own."""

    def __init__(self, dim, heads=2, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads = dim, heads
        self.attention = keras.layers.MultiHeadAttention(heads, dim // heads)
        self.norm = keras.layers.LayerNormalization()
        self.ffn = [keras.layers.Dense(2 * dim, activation="relu"), keras.layers.Dense(dim)]

    def build(self, input_shape):
        self.gate = self.add_weight(shape=(self.dim,), initializer="ones", name="gate")

    def call(self, x):
        x = self.norm(x + self.attention(x, x))
        h = x
        for layer in self.ffn:
            h = layer(h)
        return x + self.gate * h

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads}


@keras.saving.register_keras_serializable(package="tests")
class Classifier(keras.Model):
    """A subclassed model around a custom block."""

    def __init__(self, dim=8, classes=3, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.classes = dim, classes
        self.embed = keras.layers.Dense(dim)
        self.block = Block(dim)
        self.pool = keras.layers.GlobalAveragePooling1D()
        self.head = keras.layers.Dense(classes)

    def call(self, x):
        return self.head(self.pool(self.block(self.embed(x))))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "classes": self.classes}


BLOCK_WEIGHTS = ["block/attention/query/kernel", "block/attention/key/kernel",
                 "block/attention/value/kernel", "block/attention/output/kernel",
                 "block/ffn/0/kernel", "block/ffn/1/kernel"]


def test_custom_layers_share_the_layers_they_contain(tmp_path):
    inputs = keras.Input((5, 8))
    x = keras.layers.GlobalAveragePooling1D()(Block(8, name="block")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    # The block's own weight is a per-channel gate: kept, without a warning.
    small = assert_converts(model, 0.5, tmp_path)
    assert sorted(small.sharing_plan.weights) == sorted(BLOCK_WEIGHTS + ["head/kernel"])
    assert {(e["path"], e["params"]) for e in small.sharing_plan.unshared_layers} == {
        ("block", 8), ("block/norm", 16)}
    strict = keras_ssn.convert(model, 0.5, strict=True)
    assert sorted(strict.sharing_plan.weights) == sorted(small.sharing_plan.weights)


def test_subclassed_models_are_converted_on_a_copy(tmp_path):
    model = Classifier()
    model(np.zeros((2, 5, 4), "float32"))
    small = assert_converts(model, 0.5, tmp_path)
    assert isinstance(small, keras_ssn.SharedModel)
    assert sorted(small.sharing_plan.weights) == sorted(
        BLOCK_WEIGHTS + ["embed/kernel", "head/kernel"])
    assert isinstance(keras_ssn.materialize(small), Classifier)
    assert not any(is_shared(layer) for layer in model._flatten_layers())


@keras.saving.register_keras_serializable(package="tests")
class Scaled(keras.layers.Layer):
    """A user layer with one weight read in `call`: the sharing protocol."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units))
        self.scale = self.add_weight(name="scale", shape=(self.units,), initializer="ones")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) * self.scale

    def get_config(self):
        return {**super().get_config(), "units": self.units}


SharedScaled = keras_ssn.shared_variant(Scaled, package="tests")
keras_ssn.register_shared_layer(SharedScaled, family="scaled")


def test_user_layers_join_through_the_sharing_protocol(tmp_path):
    inputs = keras.Input((12,))
    x = Scaled(32, name="scaled")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    small = assert_converts(model, 0.3, tmp_path, groups="type")
    assert isinstance(small.get_layer("scaled"), SharedScaled)
    assert "scaled/kernel" in small.sharing_plan.weights
    assert len(small.sharing_plan.groups) == 2
    with pytest.raises(TypeError, match="shared_variant"):
        keras_ssn.register_shared_layer(Scaled)


# TensorFlow takes minutes to compile the train steps of the two networks
# below with XLA; the smaller models above check XLA on TensorFlow, and
# `benchmarks/compatibility.py` checks these families under XLA.
XLA_UNLESS_TENSORFLOW = {"jit_compile": keras.backend.backend() != "tensorflow"}


def test_a_keras_application(tmp_path):
    """One application in the suite (MobileNet, smaller than MobileNetV2);
    `benchmarks/compatibility.py` runs the rest."""
    model = keras.applications.MobileNet(
        weights=None, input_shape=(32, 32, 3), classes=5, alpha=0.25)
    small = assert_converts(model, 0.1, tmp_path, **XLA_UNLESS_TENSORFLOW)
    # 15 convolutions (the 1x1 classifier included) and 13 depthwise kernels.
    assert len(small.sharing_plan.weights) == 28


def test_a_keras_hub_backbone(tmp_path):
    keras_hub = pytest.importorskip("keras_hub")
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=8)
    small = assert_converts(backbone, 0.5, tmp_path)
    assert isinstance(small, type(backbone))
    assert small.token_embedding.embeddings.shape == (50, 8)
    assert "token_embedding/embeddings" in small.sharing_plan.weights
    # keras_hub's PositionEmbedding reads its table as `position_embeddings`;
    # its name is the one Keras gives a PositionEmbedding without one.
    assert "position_embedding#0/embeddings" in small.sharing_plan.weights
    assert "transformer_layer_1/self_attention/_query_dense/kernel" in (
        small.sharing_plan.weights)
    assert type(keras_ssn.materialize(small)) is type(backbone)


def test_a_keras_cv_backbone(tmp_path):
    keras_cv = pytest.importorskip("keras_cv")
    # Two stacks of two blocks: one block per stack repeats a layer name
    # (a keras_cv defect); `benchmarks/compatibility.py` runs every keras_cv
    # backbone.
    backbone = keras_cv.models.ResNetV2Backbone(
        stackwise_filters=[8, 16], stackwise_blocks=[2, 2], stackwise_strides=[1, 2],
        include_rescaling=False, input_shape=(16, 16, 3))
    convolutions = [l for l in backbone._flatten_layers() if isinstance(l, keras.layers.Conv2D)]
    small = assert_converts(backbone, 0.1, tmp_path, **XLA_UNLESS_TENSORFLOW)
    assert len(small.sharing_plan.weights) == len(convolutions) == 15
    assert type(keras_ssn.materialize(small)) is type(backbone)

    inputs = keras.Input((16, 16, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(5)(pooled))
    nested = keras_ssn.convert(classifier, 0.1, seed=0)
    assert len(nested.sharing_plan.weights) == len(convolutions) + 1
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    plain = keras_ssn.materialize(nested)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(plain(x)),
                               keras.ops.convert_to_numpy(nested(x)), rtol=1e-5, atol=1e-5)


@keras.saving.register_keras_serializable(package="tests")
class PositionTable(keras.layers.Layer):
    """Returns its table once for the whole batch, shape `(1, 6)` (as SAM
    returns its image positional embeddings)."""

    def build(self, input_shape):
        self.table = self.add_weight(shape=(6,), initializer="ones")

    def call(self, inputs):
        return keras.ops.expand_dims(self.table, 0)


def test_the_check_trains_on_the_outputs_that_follow_the_batch(tmp_path):
    inputs = keras.Input((5,))
    outputs = {"scores": keras.layers.Dense(4)(keras.layers.Dense(16)(inputs)),
               "positions": PositionTable()(inputs)}
    model = keras.Model(inputs, outputs)
    small = assert_converts(model, 0.5, tmp_path)
    outputs = small(np.ones((3, 5), "float32"))
    assert sorted(outputs) == ["positions", "scores"]
    assert tuple(outputs["positions"].shape) == (1, 6)
