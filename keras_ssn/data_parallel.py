"""Data-parallel training whose all-reduce carries the budget (JAX).

Under `keras.distribution.DataParallel`, Keras compiles one train step for
the whole batch and lets XLA split it over the devices. XLA then sums each
layer's weight gradient across devices where the layer's matmul produces it:
for a converted model that is every *generated* weight, the model's full
size, before the gradient is reduced into the bank.

A converted model computes its loss and gradients per device instead, in a
`shard_map` over the distribution's batch axis: each device generates the
weights from its copy of the bank, runs its part of the batch, and reduces
the weight gradients into the bank on the device. The only cross-device sum
of gradients is then the one of the trainable variables (bank,
coefficients, unshared weights): 4 bytes per trainable parameter, whatever
the model's size (Plummer et al., ICLR 2022, Section 1: parameter sharing
lowers communication).

What differs from Keras's own `DataParallel` step: layers that combine the
examples of a batch see each device's part of it, as in most data-parallel
frameworks; batch normalization normalizes with the device's batch
statistics, and its moving statistics are averaged over the devices.
Losses, metrics and the gradient equal the one-device step's for layers
that treat examples independently (tested).
"""

import jax
import keras
from jax.sharding import PartitionSpec

from keras_ssn.keras_internals import jax_compute_loss_and_updates


def batch_axis():
    """The mesh and batch axis of the active `DataParallel`, or `None`.

    Returns:
        `(jax.sharding.Mesh, axis name)` when a `keras.distribution
        .DataParallel` with more than one device on its batch axis is
        active on the JAX backend, else `None`.
    """
    if keras.backend.backend() != "jax":
        return None
    distribution = keras.distribution.distribution()
    if not isinstance(distribution, keras.distribution.DataParallel):
        return None
    mesh = distribution.device_mesh.backend_mesh
    axis = distribution.batch_dim_name
    if mesh.shape[axis] < 2:
        return None
    return mesh, axis


def compute_loss_and_updates(model, mesh, axis, trainable_variables,
                             non_trainable_variables, metrics_variables, x, y,
                             sample_weight, training=False,
                             optimizer_variables=None):
    """Keras's JAX `compute_loss_and_updates`, one part of the batch per device.

    Takes and returns what `keras.Model.compute_loss_and_updates` does on the
    JAX backend (the function Keras differentiates in its train step). The
    variables enter the `shard_map` unsplit, so differentiating it sums the
    gradient of each trainable variable across devices, and that is the
    step's only cross-device sum of gradients.

    Args:
        model: The converted model.
        mesh: The `jax.sharding.Mesh` of the distribution.
        axis: Name of the mesh axis the batch is split over.
        trainable_variables, non_trainable_variables, metrics_variables:
            Values of the model's variables, as lists.
        x, y, sample_weight: The whole batch, split over `axis`.
        training: Whether the model runs in training mode.
        optimizer_variables: Values of the optimizer's variables.

    Returns:
        `(loss, (unscaled_loss, y_pred, non_trainable_variables,
        metrics_variables))`: the losses averaged over the devices, `y_pred`
        split over `axis`, the floating non-trainable values averaged over
        the devices, and each metric variable increased by the sum of every
        device's increase.
    """

    def per_device(trainable, non_trainable, metrics, optimizer, x, y, sample_weight):
        loss, (unscaled, y_pred, new_non_trainable, new_metrics) = (
            jax_compute_loss_and_updates(model)(
                trainable, non_trainable, metrics, x, y, sample_weight,
                training=training, optimizer_variables=optimizer,
            )
        )
        return jax.lax.pmean(loss, axis), (
            jax.lax.pmean(unscaled, axis),
            y_pred,
            [_mean_if_float(v, axis) for v in new_non_trainable],
            [old + jax.lax.psum(new - old, axis) for old, new in zip(metrics, new_metrics)],
        )

    replicated = PartitionSpec()
    split = PartitionSpec(axis)
    return jax.shard_map(
        per_device,
        mesh=mesh,
        check_vma=False,
        in_specs=(replicated,) * 4 + (split,) * 3,
        out_specs=(replicated, (replicated, split, replicated, replicated)),
    )(
        trainable_variables, non_trainable_variables, metrics_variables,
        optimizer_variables, x, y, sample_weight,
    )


def _mean_if_float(value, axis):
    if jax.numpy.issubdtype(value.dtype, jax.numpy.floating):
        return jax.lax.pmean(value, axis)
    return value
