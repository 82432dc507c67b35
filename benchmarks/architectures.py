"""Architectures the benchmarks train: small ResNets and wide ResNets."""

import keras


def resnet(input_shape=(32, 32, 3), widths=(32, 64, 128), blocks=2, classes=10):
    """A small pre-activation-free ResNet: conv-BN-ReLU blocks with skips."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for stage, width in enumerate(widths):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            skip = x
            y = keras.layers.Conv2D(width, 3, strides, padding="same",
                                    use_bias=False)(x)
            y = keras.layers.BatchNormalization()(y)
            y = keras.layers.ReLU()(y)
            y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
            y = keras.layers.BatchNormalization()(y)
            if strides != 1 or skip.shape[-1] != width:
                skip = keras.layers.Conv2D(width, 1, strides, use_bias=False)(skip)
            x = keras.layers.ReLU()(keras.layers.Add()([y, skip]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="resnet")


def wide_resnet(depth=28, width=10, input_shape=(32, 32, 3), classes=100, dropout=0.0):
    """WRN-depth-width (Zagoruyko & Komodakis, 2016), pre-activation blocks.

    WRN-28-10 at CIFAR shape has 36.5 M trainable parameters.
    """
    if (depth - 4) % 6:
        raise ValueError(f"depth must be 6n + 4; received depth={depth}.")
    blocks = (depth - 4) // 6
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    for stage, channels in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _wide_block(x, channels, strides, dropout)
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
