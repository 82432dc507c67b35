"""Shared variants of the convolution layers with one kernel.

Standard, depthwise and transposed convolutions all read one `kernel`; the
shared variants generate it from the model's weight bank.
"""

import keras

from keras_ssn.layers.base import SharedWeightMixin
from keras_ssn.layers.base import generated_weight_property


def _shared_conv(base_class):
    """Defines and registers the shared variant of one convolution class."""
    name = f"Shared{base_class.__name__}"
    doc = f"`{base_class.__name__}` whose kernel is generated from the model's weight bank."
    cls = type(
        name,
        (SharedWeightMixin, base_class),
        {
            "__doc__": doc,
            "__module__": __name__,
            "base_class": base_class,
            "kernel": generated_weight_property("kernel"),
        },
    )
    return keras.saving.register_keras_serializable(package="keras_ssn")(cls)


SharedConv1D = _shared_conv(keras.layers.Conv1D)
SharedConv2D = _shared_conv(keras.layers.Conv2D)
SharedConv3D = _shared_conv(keras.layers.Conv3D)
SharedDepthwiseConv1D = _shared_conv(keras.layers.DepthwiseConv1D)
SharedDepthwiseConv2D = _shared_conv(keras.layers.DepthwiseConv2D)
SharedConv1DTranspose = _shared_conv(keras.layers.Conv1DTranspose)
SharedConv2DTranspose = _shared_conv(keras.layers.Conv2DTranspose)
SharedConv3DTranspose = _shared_conv(keras.layers.Conv3DTranspose)

CONV_CLASSES = (
    SharedConv1D,
    SharedConv2D,
    SharedConv3D,
    SharedDepthwiseConv1D,
    SharedDepthwiseConv2D,
    SharedConv1DTranspose,
    SharedConv2DTranspose,
    SharedConv3DTranspose,
)
