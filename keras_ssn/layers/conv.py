"""Shared variants of the convolution layers.

Standard, depthwise and transposed convolutions read one `kernel`, separable
convolutions a `depthwise_kernel` and a `pointwise_kernel`; the shared
variants generate them from the model's weight bank.
"""

import keras

from keras_ssn.layers.base import shared_variant


def _shared_conv(base_class, weights=("kernel",)):
    return shared_variant(base_class, weights)


SEPARABLE_WEIGHTS = ("depthwise_kernel", "pointwise_kernel")


SharedConv1D = _shared_conv(keras.layers.Conv1D)
SharedConv2D = _shared_conv(keras.layers.Conv2D)
SharedConv3D = _shared_conv(keras.layers.Conv3D)
SharedDepthwiseConv1D = _shared_conv(keras.layers.DepthwiseConv1D)
SharedDepthwiseConv2D = _shared_conv(keras.layers.DepthwiseConv2D)
SharedConv1DTranspose = _shared_conv(keras.layers.Conv1DTranspose)
SharedConv2DTranspose = _shared_conv(keras.layers.Conv2DTranspose)
SharedConv3DTranspose = _shared_conv(keras.layers.Conv3DTranspose)
SharedSeparableConv1D = _shared_conv(keras.layers.SeparableConv1D, SEPARABLE_WEIGHTS)
SharedSeparableConv2D = _shared_conv(keras.layers.SeparableConv2D, SEPARABLE_WEIGHTS)

CONV_CLASSES = (
    SharedConv1D,
    SharedConv2D,
    SharedConv3D,
    SharedDepthwiseConv1D,
    SharedDepthwiseConv2D,
    SharedConv1DTranspose,
    SharedConv2DTranspose,
    SharedConv3DTranspose,
    SharedSeparableConv1D,
    SharedSeparableConv2D,
)
