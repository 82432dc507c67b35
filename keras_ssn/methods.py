"""Generation methods: how a layer turns the bank entries it reads into its weight.

The paper (Plummer et al., ICLR 2022, Section 3.2) makes a layer's weight in
one of two ways, depending on how its weight compares to its group's slice:

- **combination** (downsampling, the slice holds `K >= 2` copies of the
  weight): the layer reads `K` templates and mixes them (`WeightedAverage`,
  `EmbeddedAverage`, `Average`; `SoftmaxAverage` for learning groups);
- **upsampling** (the weight is larger than the slice): the layer enlarges
  what the slice holds (`Repeat`, `Interpolate`, `Mask`, `Scale`, `HalfMix`).

Each method is one object that knows its learned parameter count, their
initializer, the standard deviation it keeps of i.i.d. bank entries (its
*gain*, which the planner divides out) and how to generate. `COMBINATIONS`
and `UPSAMPLINGS` map the names `convert()` takes to them. Everything here
uses static shapes and `keras.ops` only, so generation compiles under XLA.
"""

import math

import keras
from keras import ops

from keras_ssn.resize import bilinear_gain
from keras_ssn.resize import reduced_template_shape
from keras_ssn.resize import upsample_template

# Largest per-layer embedding for `EmbeddedAverage`: a group whose layers
# combine at most K templates uses embeddings of min(EMBEDDING_DIM, K) entries.
EMBEDDING_DIM = 4

# Most learned values of one `Mask`-upsampled weight: past this many copies
# of its slice, each value scales a run of consecutive copies.
MAX_MASK_VALUES = 16


class GenerationMethod:
    """Base class of the generation methods.

    Attributes:
        name: The name `convert()` takes for it.
        parameter_name: Suffix of the name of the learned variable a layer
            owns for it (`"kernel_template_coefficients"`), or `None`.
    """

    name = None
    parameter_name = None
    # Whether the weight is linear in the learned parameters (for a fixed
    # bank), as `keras_ssn.weight_fit` needs to fit them by least squares.
    linear_in_parameters = False

    def parameter_shape(self, count):
        """Shape of a layer's learned parameters, given their count."""
        return (1, count)

    def parameter_initializer(self, seed=None):
        """Initializer of a layer's learned parameters."""
        return keras.initializers.Orthogonal(seed=seed)

    def __repr__(self):
        return f"{type(self).__name__}()"


class Combination(GenerationMethod):
    """Mixes `K` full-size templates into one weight (downsampling).

    `combine(templates, parameters, scale)` takes `templates` of shape
    `(K, weight_size)` and returns the weight, flat; `coefficients` gives
    the weight of each template.
    """

    def parameter_count(self, templates, embedding_dim=0):
        """Learned parameters of one layer that combines `templates`."""
        return templates if templates >= 2 else 0

    def gain(self, templates):
        """Std that combining independent unit-variance templates keeps."""
        return 1.0  # a single template, or coefficients with unit norm

    def coefficients(self, parameters, templates):
        """The `(1, templates)` weights that `combine` gives the templates."""
        if parameters is None:
            return ops.ones((1, templates))
        return parameters

    def combine(self, templates, parameters, scale=1.0):
        """The weight, flat: `scale * sum_k coefficient_k * templates[k]`.

        The scale multiplies the `K` coefficients rather than the weight,
        which saves a pass over the weight.

        Args:
            templates: `(K, n)` tensor, or a list of `K` tensors `(n,)`.
                A list is mixed as it is, in one elementwise pass that XLA
                fuses: no `(K, n)` copy of the templates is made, nor of
                their gradient (24 x Dense(1024) at 50%, 8 templates per
                layer: 0.67x the bytes accessed of the stacked matmul).
            parameters: The layer's generation parameters, or `None`.
            scale: Python float.
        """
        if isinstance(templates, list):
            coefficients = self.coefficients(parameters, len(templates)) * scale
            weight = templates[0] * coefficients[0, 0]
            for k in range(1, len(templates)):
                weight = weight + templates[k] * coefficients[0, k]
            return weight
        if templates.shape[0] == 1 and parameters is None:
            return templates[0] * scale
        coefficients = self.coefficients(parameters, templates.shape[0]) * scale
        # A (1, K) @ (K, n) matmul rather than a broadcast multiply and a
        # sum over templates: XLA's CPU backend materializes the broadcast
        # coefficients, K times the weight, for the sum and its gradient
        # (measured on 64 x Dense(512) at budget 1.0: 1.30x the bytes
        # accessed and 1.48x the temp buffers of the matmul).
        return ops.matmul(coefficients, templates)[0]


class WeightedAverage(Combination):
    """The paper's WAvg: `w = sum_k alpha_k T_k` with learned `alpha` per layer.

    The coefficients start as a random unit vector (orthogonal initializer),
    so the weight starts with the std the plan sets.
    """

    name = "wavg"
    parameter_name = "template_coefficients"
    linear_in_parameters = True


class EmbeddedAverage(Combination):
    """The paper's Emb: coefficients projected from a learned layer embedding.

    Each layer learns an embedding `phi` of `min(4, K)` entries; a linear map
    shared by its group (stored in the bank's `coefficient_maps`) turns it
    into coefficients, `alpha = phi @ M[:, :K]`.
    """

    name = "emb"
    parameter_name = "layer_embedding"

    def parameter_count(self, templates, embedding_dim=0):
        return embedding_dim if templates >= 2 else 0

    @staticmethod
    def map_shape(mixing_templates):
        """`(embedding_dim, templates)` of a group's map."""
        cols = max(mixing_templates)
        return min(EMBEDDING_DIM, cols), cols

    def group_parameter_count(self, mixing_templates):
        """Embeddings and the map of a group whose layers combine these `K`s."""
        if not mixing_templates:
            return 0
        dim, cols = self.map_shape(mixing_templates)
        return dim * len(mixing_templates) + dim * cols


class Average(Combination):
    """The mean of the templates; no learned parameters."""

    name = "avg"

    def parameter_count(self, templates, embedding_dim=0):
        return 0

    def gain(self, templates):
        return 1.0 / math.sqrt(templates)

    def coefficients(self, parameters, templates):
        return ops.full((1, templates), 1.0 / templates)


class SoftmaxAverage(Combination):
    """Templates weighted by the softmax of learned coefficients.

    Used by `learn_groups()`'s pretraining: the softmax makes the layers'
    coefficient vectors comparable mixing proportions. Every layer has
    coefficients, even with one template.
    """

    name = "softmax"
    parameter_name = "template_coefficients"

    def parameter_count(self, templates, embedding_dim=0):
        return templates

    def coefficients(self, parameters, templates):
        return ops.softmax(parameters, axis=-1)


class Upsampling(GenerationMethod):
    """Makes a weight larger than its group's slice (the paper's upsampling).

    `template_shape(rows, cols, slice_size)` gives the shape of the entries
    the layer reads (wrapping around its slice); `upsample(window, spec,
    parameters)` turns them into the weight's 2-D view `(rows, cols)`.
    """

    def parameter_count(self, weight_size, slice_size):
        return 0

    def template_shape(self, rows, cols, slice_size):
        """`(shape of the entries read, gain)` for a `rows x cols` weight."""
        return (rows, cols), 1.0

    def output_view(self, shape, units):
        """The `(rows, cols)` view `repeats_columns` and `distinct_rows` take.

        Args:
            shape: The weight's shape.
            units: How many output units its trailing axes hold
                (`SharedWeight.columns`).
        """
        return math.prod(shape[:-1]), shape[-1]

    def repeats_columns(self, rows, cols, slice_size):
        """Whether two output units (columns) of the weight come out equal.

        A weight whose columns are copies of each other never learns to
        tell its outputs apart (with a softmax, the bank's gradient cancels
        to exactly 0), so the planner refuses slices where this happens.
        """
        return False

    def distinct_rows(self, rows, cols, slice_size):
        """How many of the weight's rows are not copies of an earlier row.

        A weight with `r` distinct rows has rank at most `r`.
        """
        return rows


class Repeat(Upsampling):
    """Tiles the slice to the weight's size: the read wraps around the slice."""

    name = "repeat"

    def output_view(self, shape, units):
        # The tiling runs through the weight in C order, so an output unit
        # spread over several trailing axes (an attention kernel's heads
        # and head dimensions) is one column of the `(inputs, units)` view.
        return math.prod(shape) // units, units

    def repeats_columns(self, rows, cols, slice_size):
        # Entry (i, j) reads slice entry (offset + i * cols + j) % slice_size,
        # so columns j and j + slice_size read the same entries.
        return slice_size < cols

    def distinct_rows(self, rows, cols, slice_size):
        # Row i starts at (offset + i * cols) % slice_size, so the rows come
        # round again after slice_size / gcd(slice_size, cols) of them: a
        # 64 x 256 kernel tiled from 512 entries has 2 distinct rows.
        return min(rows, slice_size // math.gcd(slice_size, cols))

    def upsample(self, window, spec, parameters):
        return ops.reshape(window, spec.matrix_shape)


class Mask(Repeat):
    """The tiling, each copy of the slice times its own learned value.

    A weight that holds `c` copies of its slice learns one value per copy up
    to `MAX_MASK_VALUES`; past that, each value scales a run of
    `ceil(c / MAX_MASK_VALUES)` consecutive copies, so a mask costs at most
    16 parameters per weight. The values start at ones (plain tiling), so
    copies can diverge in training: each tiled weight learns its own scale
    and each stretch of rows a copy fills learns its own (the stacked GRU of
    `docs/results.md` trains far better with them at 10%).
    """

    name = "mask"
    parameter_name = "upsample_mask"
    linear_in_parameters = True
    max_values = MAX_MASK_VALUES

    def parameter_count(self, weight_size, slice_size):
        return math.ceil(math.ceil(weight_size / slice_size)
                         / self.copies_per_value(weight_size, slice_size))

    def copies_per_value(self, weight_size, slice_size):
        """How many consecutive copies of the slice one mask value scales."""
        return math.ceil(math.ceil(weight_size / slice_size) / self.max_values)

    def parameter_shape(self, count):
        return (count,)

    def parameter_initializer(self, seed=None):
        return "ones"

    # `repeats_columns` and `distinct_rows` as `Repeat`: a copy's mask value
    # scales whole stretches of rows, so columns and rows that the tiling
    # repeats stay proportional.

    def upsample(self, window, spec, parameters):
        run = self.copies_per_value(spec.weight_size, spec.size) * spec.size
        mask = ops.repeat(parameters, run, axis=0)[: spec.weight_size]
        return ops.reshape(window * mask, spec.matrix_shape)


class Scale(Mask):
    """The tiling times one learned value per weight (a mask of one value).

    Each tiled weight learns its own scale and nothing more: one parameter
    per upsampled weight.
    """

    name = "scale"
    parameter_name = "upsample_scale"
    max_values = 1


class HalfMix(Upsampling):
    """Chunks of half a slice, each a learned mix of the slice's two halves."""

    name = "wavg"
    parameter_name = "upsample_coefficients"
    linear_in_parameters = True

    def parameter_count(self, weight_size, slice_size):
        return 2 * upsample_chunks(weight_size, slice_size)

    def parameter_shape(self, count):
        return (count // 2, 2)

    def parameter_initializer(self, seed=None):
        return UnitRows(seed)

    def template_shape(self, rows, cols, slice_size):
        return (2, math.ceil(slice_size / 2)), 1.0

    def upsample(self, window, spec, parameters):
        pieces = ops.reshape(window, spec.template_shape)
        mixed = ops.reshape(ops.matmul(parameters, pieces), (-1,))
        return ops.reshape(mixed[: spec.weight_size], spec.matrix_shape)


class Interpolate(Upsampling):
    """The paper's Inter: a reduced template, bilinearly resized to the weight.

    The template keeps the weight's 2-D aspect, holds at least the whole
    slice and has at least two rows and two columns (where the weight has
    them). The resize aligns corners: output point `j` of `target` samples
    the template at `j * (source - 1) / (target - 1)`, so no two output
    columns sample the same place. (The half-pixel resize of
    `keras.ops.image.resize(..., interpolation="bilinear")` clamps the
    outputs near each edge to the edge, which makes copies of the first and
    last columns once a weight is 3 times wider than its template; plans
    saved with it, `WeightSpec.align_corners=False`, load and generate as
    they did.)
    """

    name = "inter"

    def template_shape(self, rows, cols, slice_size):
        shape = reduced_template_shape(rows, cols, slice_size)
        return shape, bilinear_gain(shape, (rows, cols), align_corners=True)

    def repeats_columns(self, rows, cols, slice_size):
        # Template column j reads entries (offset + i * c + j) % slice_size:
        # a slice smaller than the template's c columns repeats them.
        _, template_cols = reduced_template_shape(rows, cols, slice_size)
        return slice_size < template_cols

    def upsample(self, window, spec, parameters):
        template = ops.reshape(window, spec.template_shape)
        return upsample_template(template, spec.matrix_shape, spec.align_corners)


COMBINATIONS = {m.name: m for m in (WeightedAverage(), EmbeddedAverage(), Average(),
                                    SoftmaxAverage())}
UPSAMPLINGS = {m.name: m for m in (Repeat(), Interpolate(), Mask(), Scale(), HalfMix())}
# The learned parameters a shared layer may own, and the bank's group maps.
# None is a weight of the original layer; optimizer weight decay skips them
# (as the paper does for the coefficients).
COEFFICIENT_MAPS_NAME = "coefficient_maps"
GENERATION_PARAM_NAMES = tuple(
    dict.fromkeys(
        m.parameter_name
        for m in (*COMBINATIONS.values(), *UPSAMPLINGS.values())
        if m.parameter_name
    )
) + (COEFFICIENT_MAPS_NAME,)


def combination(name):
    return COMBINATIONS[name]


def upsampling(name):
    return UPSAMPLINGS[name]


class UnitRows(keras.initializers.Initializer):
    """Random rows of unit norm (a normal draw, each row normalized)."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        draw = keras.random.normal(shape, dtype=dtype, seed=self.seed)
        return draw / ops.sqrt(ops.sum(draw * draw, axis=-1, keepdims=True))

    def get_config(self):
        return {"seed": self.seed}


def upsample_chunks(weight_size, slice_size):
    """Chunks of a `HalfMix`-upsampled weight: one per half-slice it spans."""
    return math.ceil(weight_size / math.ceil(slice_size / 2))
