"""The global weight bank: one float32 vector that every shared layer reads."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ssn")
class BankInitializer(keras.initializers.Initializer):
    """Draws each group's slice of the bank from its own normal distribution.

    Args:
        segments: List of `(size, stddev)` pairs, one per parameter group, in
            bank order. Their sizes add up to the bank size.
        seed: Optional integer seed.
    """

    def __init__(self, segments, seed=None):
        self.segments = [(int(size), float(stddev)) for size, stddev in segments]
        self.seed = seed

    def __call__(self, shape, dtype=None):
        total = sum(size for size, _ in self.segments)
        if tuple(shape) != (total,):
            raise ValueError(
                f"BankInitializer was configured for a bank of {total} "
                f"entries but was asked for shape {tuple(shape)}."
            )
        seed = self.seed
        pieces = []
        for size, stddev in self.segments:
            pieces.append(
                keras.random.normal((size,), stddev=stddev, dtype=dtype, seed=seed)
            )
            seed = None if seed is None else seed + 1
        return ops.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def get_config(self):
        return {"segments": [list(s) for s in self.segments], "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_ssn")
class CoefficientMapInitializer(keras.initializers.Initializer):
    """Draws each group's coefficient map (for `share="emb"`) as an orthogonal matrix.

    A map of shape `(embedding_dim, templates)` gets orthonormal rows (or
    columns, if it has more rows), so that a unit-norm layer embedding is
    projected to unit-norm coefficients.

    Args:
        shapes: List of `(embedding_dim, templates)`, one per map, in order.
        seed: Optional integer seed.
    """

    def __init__(self, shapes, seed=None):
        self.shapes = [(int(rows), int(cols)) for rows, cols in shapes]
        self.seed = seed

    def __call__(self, shape, dtype=None):
        total = sum(rows * cols for rows, cols in self.shapes)
        if tuple(shape) != (total,):
            raise ValueError(
                f"CoefficientMapInitializer was configured for {total} "
                f"entries but was asked for shape {tuple(shape)}."
            )
        seed = self.seed
        pieces = []
        for map_shape in self.shapes:
            orthogonal = keras.initializers.Orthogonal(seed=seed)
            pieces.append(ops.reshape(orthogonal(map_shape, dtype=dtype), (-1,)))
            seed = None if seed is None else seed + 1
        return ops.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def get_config(self):
        return {"shapes": [list(s) for s in self.shapes], "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_ssn")
class WeightBank(keras.layers.Layer):
    """Owns the single trainable vector from which shared layers generate weights.

    Parameter groups are contiguous slices of this vector. The bank is always
    stored and read in float32, whatever the global dtype policy, so mixed
    precision training keeps full-precision shared parameters.

    With `share="emb"`, the bank also owns each group's coefficient map (the
    linear map shared by the group's layers) in a second vector,
    `coefficient_maps`: like the bank entries, the maps belong to a group,
    not to any one layer.

    The entries are held in one or more variables, `pieces`, laid end to
    end in bank order; together they are always `size` trainable parameters
    and `vector()` joins them:

    - By default one variable, `entries`.
    - Cut into `pieces` (sizes given by `keras_ssn.bank_cuts.bank_pieces`):
      variables `piece_0`, `piece_1`, ..., cut where the layers' reading
      cuts the bank, so that a layer whose templates are one piece reads
      that variable itself (no copy out of the bank) and its gradient is
      that variable's gradient (no concatenation into the bank's).
    - Sharded over `shards` devices (`keras.distribution.ModelParallel`, see
      `keras_ssn.bank_layouts`): `entries`, a multiple of `shards` long,
      which the layout shards, and `entries_tail`, the `size % shards`
      entries left, which every device holds.

    However the entries are held, `save()` and `save_weights()` store them
    as one vector, so a file loads into a bank cut into other pieces.

    Args:
        size: Number of entries in the bank.
        initializer: Initializer of the bank vector.
        coefficient_maps: List of `(embedding_dim, templates)` map shapes;
            empty when no group uses `share="emb"`.
        coefficient_map_initializer: Initializer of the maps; by default a
            `CoefficientMapInitializer` over `coefficient_maps`.
        shards: Number of devices the entries are sharded over (1: not
            sharded).
        pieces: Sizes of the variables that hold the entries, in bank
            order, adding up to `size`; `None` for one variable. Only
            unsharded banks are cut into pieces.
        **kwargs: Base layer keyword arguments, such as `name`.
    """

    def __init__(
        self,
        size,
        initializer="random_normal",
        coefficient_maps=(),
        coefficient_map_initializer=None,
        shards=1,
        pieces=None,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        if int(size) < 1:
            raise ValueError(f"A WeightBank needs at least one entry; got size={size}.")
        if not 1 <= int(shards) <= int(size):
            raise ValueError(
                f"shards must be between 1 and the bank size ({size}); got shards={shards}."
            )
        self.size = int(size)
        self.shards = int(shards)
        self.piece_sizes = _piece_sizes(pieces, self.size, self.shards)
        self.initializer = keras.initializers.get(initializer)
        self.coefficient_map_shapes = [tuple(s) for s in coefficient_maps]
        if coefficient_map_initializer is None:
            coefficient_map_initializer = CoefficientMapInitializer(
                self.coefficient_map_shapes
            )
        self.coefficient_map_initializer = keras.initializers.get(
            coefficient_map_initializer
        )
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        initial = self.initializer((self.size,), dtype="float32")
        if self.shards > 1:
            head_size = self.size - self.size % self.shards
            names = ["entries", "entries_tail"]
            sizes = [head_size, self.size - head_size]
        elif len(self.piece_sizes) == 1:
            names, sizes = ["entries"], self.piece_sizes
        else:
            names = [f"piece_{i}" for i in range(len(self.piece_sizes))]
            sizes = self.piece_sizes
        self.pieces = []
        start = 0
        for name, piece_size in zip(names, sizes):
            if not piece_size:
                continue  # a sharded bank with no entries left over
            self.pieces.append(
                self.add_weight(
                    name=name,
                    shape=(piece_size,),
                    initializer=_Given(initial[start : start + piece_size]),
                    dtype="float32",
                    autocast=False,
                )
            )
            start += piece_size
        self.coefficient_maps = None
        map_size = sum(rows * cols for rows, cols in self.coefficient_map_shapes)
        if map_size:
            self.coefficient_maps = self.add_weight(
                name="coefficient_maps",
                shape=(map_size,),
                initializer=self.coefficient_map_initializer,
                dtype="float32",
                autocast=False,
            )
        self.built = True

    def piece_values(self):
        """The entries as the tensors of `pieces`, in bank order."""
        return [piece.value for piece in self.pieces]

    def entries_holding(self, start, stop):
        """The pieces that hold entries `start` to `stop - 1`, joined.

        Returns:
            `(first, entries)`: the bank position of the first entry of
            `entries`, a 1-D tensor that holds the range.
        """
        first, held = self.pieces_holding(start, stop)
        return first, held[0] if len(held) == 1 else ops.concatenate(held)

    def pieces_holding(self, start, stop):
        """The pieces that hold entries `start` to `stop - 1`.

        Returns:
            `(first, pieces)`: the bank position of the first entry of the
            first piece, and the list of 1-D piece tensors, in bank order.
        """
        first, held, low = None, [], 0
        for value in self.piece_values():
            high = low + value.shape[0]
            if low < stop and start < high:
                first = low if first is None else first
                held.append(value)
            low = high
        return first, held

    def vector(self):
        """All `size` entries as one 1-D tensor, in bank order."""
        values = self.piece_values()
        return values[0] if len(values) == 1 else ops.concatenate(values)

    def assign_vector(self, vector):
        """Writes `size` entries, in bank order, into the pieces that hold them.

        Args:
            vector: 1-D array or tensor of `size` entries.
        """
        start = 0
        for piece in self.pieces:
            piece.assign(vector[start : start + piece.shape[0]])
            start += piece.shape[0]

    def save_own_variables(self, store):
        """Stores the entries as one vector, then the coefficient maps."""
        store["0"] = ops.convert_to_numpy(self.vector())
        if self.coefficient_maps is not None:
            store["1"] = self.coefficient_maps

    def load_own_variables(self, store):
        """Loads stored entries into this bank's pieces, however they are cut.

        The store holds the entries as one vector (what `save_own_variables`
        writes) or as the variables of a sharded bank, then the coefficient
        maps if the bank has any.

        Raises:
            ValueError: if the stored entries are not `size` long, or the
                coefficient maps are missing.
        """
        count = len(store.keys()) - (self.coefficient_maps is not None)
        if count < 1:
            raise ValueError(
                f"The weight bank expected its entries and coefficient maps, but "
                f"the file holds {len(store.keys())} vector(s): it was saved "
                "from another model."
            )
        entries = np.concatenate(
            [np.asarray(store[str(i)]).reshape(-1) for i in range(count)]
        )
        if entries.shape != (self.size,):
            raise ValueError(
                f"The weight bank has {self.size:,} entries, but the file holds "
                f"{entries.shape[0]:,}: it was saved from another model or budget."
            )
        self.assign_vector(entries)
        if self.coefficient_maps is not None:
            self.coefficient_maps.assign(store[str(count)])

    def call(self, inputs=None):
        return self.vector()

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(
            {
                "size": self.size,
                "shards": self.shards,
                "pieces": self.piece_sizes if len(self.piece_sizes) > 1 else None,
                "initializer": keras.initializers.serialize(self.initializer),
                "coefficient_maps": [list(s) for s in self.coefficient_map_shapes],
                "coefficient_map_initializer": keras.initializers.serialize(
                    self.coefficient_map_initializer
                ),
            }
        )
        return config


def _piece_sizes(pieces, size, shards):
    """Checks the `pieces` argument of `WeightBank`; returns the sizes."""
    if pieces is None:
        return [size]
    sizes = [int(p) for p in pieces]
    if not sizes or min(sizes) < 1 or sum(sizes) != size:
        raise ValueError(
            f"pieces must be positive sizes adding up to the bank size ({size:,}); "
            f"got {len(sizes)} pieces adding up to {sum(sizes):,}."
        )
    if len(sizes) > 1 and shards > 1:
        raise ValueError(
            f"A bank sharded over {shards} devices is held as one sharded "
            "variable; pass pieces=None."
        )
    return sizes


class _Given(keras.initializers.Initializer):
    """Returns a tensor drawn beforehand (the bank's pieces share one draw)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        return self.value
