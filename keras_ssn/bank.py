"""The global weight bank: one float32 vector that every shared layer reads."""

import keras
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

    Sharded over `shards` devices (`keras.distribution.ModelParallel`, see
    `keras_ssn.bank_layouts`), the entries are two variables: `entries`, a
    multiple of `shards` long, which the layout shards, and `entries_tail`,
    the `size % shards` entries left, which every device holds. Together
    they are still `size` trainable parameters; `vector()` joins them.

    Args:
        size: Number of entries in the bank.
        initializer: Initializer of the bank vector.
        coefficient_maps: List of `(embedding_dim, templates)` map shapes;
            empty when no group uses `share="emb"`.
        coefficient_map_initializer: Initializer of the maps; by default a
            `CoefficientMapInitializer` over `coefficient_maps`.
        shards: Number of devices the entries are sharded over (1: not
            sharded, one `entries` variable).
        **kwargs: Base layer keyword arguments, such as `name`.
    """

    def __init__(
        self,
        size,
        initializer="random_normal",
        coefficient_maps=(),
        coefficient_map_initializer=None,
        shards=1,
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
        head_size = self.size - self.size % self.shards
        initial = self.initializer((self.size,), dtype="float32")
        self.entries = self.add_weight(
            name="entries",
            shape=(head_size,),
            initializer=_Given(initial[:head_size]),
            dtype="float32",
            autocast=False,
        )
        self.entries_tail = None
        if head_size < self.size:
            self.entries_tail = self.add_weight(
                name="entries_tail",
                shape=(self.size - head_size,),
                initializer=_Given(initial[head_size:]),
                dtype="float32",
                autocast=False,
            )
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

    def vector(self):
        """All `size` entries as one 1-D tensor, in bank order."""
        if self.entries_tail is None:
            return self.entries.value
        return ops.concatenate([self.entries.value, self.entries_tail.value])

    def call(self, inputs=None):
        return self.vector()

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        config.update(
            {
                "size": self.size,
                "shards": self.shards,
                "initializer": keras.initializers.serialize(self.initializer),
                "coefficient_maps": [list(s) for s in self.coefficient_map_shapes],
                "coefficient_map_initializer": keras.initializers.serialize(
                    self.coefficient_map_initializer
                ),
            }
        )
        return config


class _Given(keras.initializers.Initializer):
    """Returns a tensor drawn beforehand (the bank's pieces share one draw)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        return self.value
