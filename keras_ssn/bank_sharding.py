"""Sharding the weight bank over devices with `keras.distribution.ModelParallel`.

For budgets too large for one device, the bank's entries can be split over a
mesh axis: put `bank_layouts(axis)` in the `LayoutMap` and call `convert()`
inside the distribution's scope. The bank then keeps the entries that divide
evenly among the devices in its sharded `entries` variable and the few left
(fewer than the device count) in `entries_tail`, which every device holds,
so any device count up to the bank's size works and the trainable count
stays exactly the budget.

Variable paths (stable): `weight_bank/entries`, `weight_bank/entries_tail`
and, with `share="emb"`, `weight_bank/coefficient_maps`.
"""

import math

import keras

BANK_NAME = "weight_bank"
ENTRIES_PATH = f"{BANK_NAME}/entries"


def bank_layouts(axis="model"):
    """`LayoutMap` entries that shard a converted model's bank over `axis`.

    Example:

    ```python
    mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], devices)
    layout_map = keras.distribution.LayoutMap(mesh)
    for path, layout in keras_ssn.bank_layouts("model").items():
        layout_map[path] = layout
    with keras.distribution.ModelParallel(
        layout_map=layout_map, batch_dim_name="batch"
    ).scope():
        small = keras_ssn.convert(model, 4.0)
    ```

    Args:
        axis: Name of the mesh axis (or a tuple of names) to shard over.

    Returns:
        Dict mapping a variable path pattern to a layout tuple.
    """
    return {f"(.*/)?{ENTRIES_PATH}": (axis,)}


def bank_shards(size):
    """How many devices the active distribution splits a new bank's entries over.

    Args:
        size: The bank's entry count.

    Returns:
        1 without a `ModelParallel` distribution whose layout map shards
        `weight_bank/entries`; else the number of devices along its axes.

    Raises:
        ValueError: when the layout map also shards a bank variable that
            cannot be split evenly (`entries_tail`, `coefficient_maps`), or
            shards the entries over more devices than the bank has entries.
    """
    distribution = keras.distribution.distribution()
    if not isinstance(distribution, keras.distribution.ModelParallel):
        return 1
    for name in ("entries_tail", "coefficient_maps"):
        if _devices_along(distribution, f"{BANK_NAME}/{name}") > 1:
            raise ValueError(
                f"The distribution's LayoutMap shards '{BANK_NAME}/{name}', which "
                "does not split evenly over devices. Shard the bank with "
                "the entries of keras_ssn.bank_layouts(axis), which match "
                f"'{ENTRIES_PATH}' only."
            )
    devices = _devices_along(distribution, ENTRIES_PATH)
    if devices > size:
        raise ValueError(
            f"The distribution's LayoutMap shards '{ENTRIES_PATH}' over {devices} "
            f"devices, but this budget gives the bank only {size:,} "
            f"{'entry' if size == 1 else 'entries'}. Shard "
            "the bank only when it holds at least one entry per device: use a larger "
            "budget or leave the bank out of the LayoutMap."
        )
    return devices


def _devices_along(distribution, path):
    layout = distribution.get_tensor_layout(path)
    if layout is None or not layout.axes or layout.axes[0] is None:
        return 1
    axes = layout.axes[0]
    axes = axes if isinstance(axes, (tuple, list)) else (axes,)
    mesh = distribution.device_mesh
    return math.prod(mesh.shape[mesh.axis_names.index(a)] for a in axes)
