"""Architectures the benchmarks train, each with a width multiplier.

`scale` multiplies every channel count (rounded, at least 1), so that the
reduced-width baseline can be searched to any parameter budget. At
`scale=1.0` every builder gives the reference model.
"""

import keras
import numpy as np


def _channels(base, scale):
    return max(1, int(round(base * scale)))


def cnn1d(scale=1.0, length=40, classes=10):
    """The quickstart's 1-D CNN (108,426 parameters at `scale=1.0`)."""
    return keras.Sequential(
        [
            keras.Input((length, 1)),
            keras.layers.Conv1D(_channels(64, scale), 5, padding="same",
                                activation="relu"),
            keras.layers.Conv1D(_channels(64, scale), 3, strides=2, padding="same",
                                activation="relu"),
            keras.layers.Conv1D(_channels(64, scale), 3, strides=2, padding="same",
                                activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(_channels(128, scale), activation="relu"),
            keras.layers.Dense(classes),
        ],
        name="cnn1d",
    )


def gru_classifier(scale=1.0, length=40, units=64, layers=2, classes=10):
    """A stacked GRU sequence classifier without biases (37,696 parameters at
    `scale=1.0`): every trainable weight is a kernel, so even 1% budgets fit."""
    inputs = keras.Input((length, 1))
    x = inputs
    for index in range(layers):
        x = keras.layers.GRU(_channels(units, scale), use_bias=False,
                             return_sequences=index < layers - 1)(x)
    outputs = keras.layers.Dense(classes, use_bias=False)(x)
    return keras.Model(inputs, outputs, name="gru_classifier")


def resnet(input_shape=(32, 32, 3), widths=(32, 64, 128), blocks=2, classes=10,
           scale=1.0):
    """A small ResNet: conv-BN-ReLU blocks with skips, 1-D or 2-D by `input_shape`."""
    conv, pool = _spatial_layers(len(input_shape) - 1)
    widths = [_channels(w, scale) for w in widths]
    inputs = keras.Input(input_shape)
    x = conv(widths[0], 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for stage, width in enumerate(widths):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            skip = x
            y = conv(width, 3, strides, padding="same", use_bias=False)(x)
            y = keras.layers.BatchNormalization()(y)
            y = keras.layers.ReLU()(y)
            y = conv(width, 3, padding="same", use_bias=False)(y)
            y = keras.layers.BatchNormalization()(y)
            if strides != 1 or skip.shape[-1] != width:
                skip = conv(width, 1, strides, use_bias=False)(skip)
            x = keras.layers.ReLU()(keras.layers.Add()([y, skip]))
    x = pool()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="resnet")


def _spatial_layers(rank):
    if rank == 1:
        return keras.layers.Conv1D, keras.layers.GlobalAveragePooling1D
    if rank == 2:
        return keras.layers.Conv2D, keras.layers.GlobalAveragePooling2D
    raise ValueError(f"resnet takes 1-D or 2-D inputs; received rank {rank}.")


def wide_resnet(depth=28, width=10, input_shape=(32, 32, 3), classes=100, dropout=0.0,
                scale=1.0):
    """WRN-depth-width (Zagoruyko & Komodakis, 2016), pre-activation blocks.

    WRN-28-10 at CIFAR shape has 36.5 M trainable parameters.
    """
    if (depth - 4) % 6:
        raise ValueError(f"depth must be 6n + 4; received depth={depth}.")
    blocks = (depth - 4) // 6
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(_channels(16, scale), 3, padding="same",
                            use_bias=False)(inputs)
    for stage, base in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _wide_block(x, _channels(base, scale), strides, dropout)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name=f"wrn_{depth}_{width}")


def _wide_block(x, channels, strides, dropout):
    y = keras.layers.BatchNormalization()(x)
    y = keras.layers.ReLU()(y)
    skip = x
    if strides != 1 or x.shape[-1] != channels:
        skip = keras.layers.Conv2D(channels, 1, strides, use_bias=False)(y)
    y = keras.layers.Conv2D(channels, 3, strides, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    if dropout:
        y = keras.layers.Dropout(dropout)(y)
    y = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(y)
    return keras.layers.Add()([y, skip])


def char_transformer(vocabulary, length=64, dim=64, heads=4, blocks=2, scale=1.0,
                     reuse_block=False):
    """A causal pre-norm transformer language model over characters.

    Dense and attention layers have no biases and the norms are
    `RMSNormalization`, so nearly every parameter is a shareable kernel.
    Positions are added as fixed sinusoids (no parameters).

    Args:
        vocabulary: Number of character ids.
        length: Context length.
        dim: Model width at `scale=1.0`; the feed-forward width is `4 * dim`.
        heads: Attention heads; each head has `dim // heads` channels.
        blocks: Transformer blocks.
        scale: Width multiplier.
        reuse_block: ALBERT-style: every block calls the layers of one block.

    Returns:
        A functional model from `(batch, length)` int ids to next-character
        logits `(batch, length, vocabulary)`.
    """
    dim = _channels(dim, scale)
    inputs = keras.Input((length,), dtype="int32")
    x = keras.layers.Embedding(vocabulary, dim)(inputs)
    x = x + keras.ops.convert_to_tensor(_sinusoids(length, dim))
    block = None
    for _ in range(blocks):
        if block is None or not reuse_block:
            block = _transformer_block_layers(dim, heads)
        x = _apply_block(block, x)
    x = keras.layers.RMSNormalization()(x)
    outputs = keras.layers.Dense(vocabulary, use_bias=False)(x)
    name = "albert_char_lm" if reuse_block else "char_lm"
    return keras.Model(inputs, outputs, name=name)


def _transformer_block_layers(dim, heads):
    return {
        "attention_norm": keras.layers.RMSNormalization(),
        "attention": keras.layers.MultiHeadAttention(
            heads, max(1, dim // heads), use_bias=False),
        "mlp_norm": keras.layers.RMSNormalization(),
        "mlp_in": keras.layers.Dense(4 * dim, activation="gelu", use_bias=False),
        "mlp_out": keras.layers.Dense(dim, use_bias=False),
    }


def _apply_block(block, x):
    h = block["attention_norm"](x)
    x = x + block["attention"](h, h, use_causal_mask=True)
    h = block["mlp_norm"](x)
    return x + block["mlp_out"](block["mlp_in"](h))


def _sinusoids(length, dim):
    positions = np.arange(length)[:, None]
    frequencies = np.exp(-np.log(10000.0) * (np.arange(dim) // 2 * 2) / dim)
    angles = positions * frequencies[None, :]
    table = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))
    return table.astype("float32")
