"""What each shared weight is generated from, for generation where it is used.

A `WeightRecipe` names the bank pieces and the generation parameters a
weight is generated from and how; `keras_ssn.remat` generates the weight
from it where its layer's op uses it, and again for the op's backward pass.
The recipes of one forward pass read the bank's pieces through one
`PieceChain`, which passes a piece that several weights read from one
reader to the next (see `keras_ssn.remat`).
"""

from keras import ops

from keras_ssn import generation
from keras_ssn.generation import COMBINE


class PieceChain:
    """The bank pieces of one forward pass, passed from layer to layer.

    Args:
        pieces: List of the bank's piece tensors.
        readers: List with, per piece, how many weights in the pass read it.
    """

    def __init__(self, pieces, readers):
        self.pieces = list(pieces)
        self.readers = list(readers)
        # An exact zero from the output of the last rematerialized op: the
        # next op's weight is generated after that op has run.
        self.token = ops.zeros((1,), "float32")

    def current(self, index):
        """Piece `index` as the next layer reads it."""
        return self.pieces[index]

    def is_passed(self, index):
        """Whether piece `index` goes from layer to layer (several read it)."""
        return self.readers[index] > 1

    def advance(self, index, piece):
        self.pieces[index] = piece


class WeightRecipe:
    """What a shared weight is generated from, and how.

    Args:
        chain: The forward pass's `PieceChain`.
        pieces: Indices of the bank pieces the weight reads.
        parameters: The weight's generation parameters (a tensor), or `None`.
        generate: Function `(piece tensors, parameters, zero) -> weight`,
            where `zero` is `None` or an exact zero (shape `(1,)`) that
            generation adds to its inputs so that XLA cannot merge two
            generations of the weight (see `apply_rematerialized`).
        view: `(shape, scale)` where the weight is one whole bank piece,
            reshaped to `shape`, times `scale`; else `None`.
    """

    def __init__(self, chain, pieces, parameters, generate, view=None):
        self.chain = chain
        self.pieces = list(pieces)
        self.parameters = parameters
        self.generate = generate
        self.view = view
        self._weight = None

    def is_view(self):
        """Whether the weight is a piece only it reads, times a scale.

        A linear op then applies the piece itself and scales its output:
        the piece is a variable, alive all step anyway, and no weight-sized
        copy is made (see `SharedWeightMixin.apply_weight`).
        """
        return self.view is not None and not self.chain.is_passed(self.pieces[0])

    def piece_view(self):
        """The piece this weight scales, reshaped to the weight's shape."""
        shape, _ = self.view
        return ops.reshape(self.chain.current(self.pieces[0]), shape)

    def sources(self):
        """The tensors the weight is generated from: pieces, then parameters."""
        pieces = [self.chain.current(i) for i in self.pieces]
        return pieces + ([] if self.parameters is None else [self.parameters])

    def weight_from(self, sources, zero=None):
        """The weight generated from `sources` (as `sources()` orders them)."""
        count = len(self.pieces)
        parameters = sources[count] if len(sources) > count else None
        return self.generate(list(sources[:count]), parameters, zero)

    def weight(self):
        """The weight, generated once (for code that reads it directly)."""
        if self._weight is None:
            self._weight = self.weight_from(self.sources())
        return self._weight


def generated_weights(bank, weights):
    """A `GeneratedWeights` holding a `WeightRecipe` per weight.

    The weights read the bank's pieces through one `PieceChain`, so a piece
    that several of them read is passed from one to the next.

    Args:
        bank: The `WeightBank` the layers are attached to.
        weights: `(layer, name)` pairs of shared layers.
    """
    from keras_ssn.engine import GeneratedWeights  # the engine imports this module

    weights = list(weights)
    readers = [0] * len(bank.pieces)
    for layer, name in weights:
        _, held, read = pieces_read(bank, layer.sharing[name])
        for index, is_read in zip(held, read):
            readers[index] += is_read
    chain = PieceChain(bank.piece_values(), readers)
    generated = GeneratedWeights()
    for layer, name in weights:
        generated.add(layer, name, layer.weight_recipe(name, chain))
    return generated


def weight_recipe(bank, spec, parameters, chain=None):
    """The `WeightRecipe` of the weight `spec` describes.

    Args:
        bank: The `WeightBank`.
        spec: The weight's `WeightSpec`.
        parameters: Its generation parameters (a tensor), or `None`.
        chain: The forward pass's `PieceChain`; by default one in which
            every piece has one reader.

    Returns:
        A `WeightRecipe` whose weight is in float32.
    """
    first, held, read = pieces_read(bank, spec)
    sizes = [bank.pieces[i].shape[0] for i in held]
    if chain is None:
        chain = PieceChain(bank.piece_values(), [1] * len(bank.pieces))

    def generate(pieces, parameters, zero):
        # The pieces the weight does not read are zeros here: its gradient
        # reaches only the pieces it reads.
        reading = iter(pieces)
        pieces = [next(reading) if is_read else ops.zeros((size,), "float32")
                  for size, is_read in zip(sizes, read)]
        entries, parameters = generation.tie(pieces, parameters, spec, zero)
        return generation.generate_weight(entries, spec, parameters, first)

    reads = [i for i, is_read in zip(held, read) if is_read]
    view = (spec.shape, spec.scale) if _is_view(spec, parameters, first, sizes, read) else None
    return WeightRecipe(chain, reads, parameters, generate, view)


def pieces_read(bank, spec):
    """Which bank pieces hold a weight's group slice, and which it reads.

    Returns:
        `(first, held, read)`: the bank position of the first holding piece,
        the indices of the holding pieces, and whether the weight reads each.
    """
    spans = [(spec.start + begin, spec.start + end) for begin, end in spec.read_spans]
    first, held, read, low = None, [], [], 0
    for index, piece in enumerate(bank.pieces):
        high = low + piece.shape[0]
        if low < spec.start + spec.size and spec.start < high:
            first = low if first is None else first
            held.append(index)
            read.append(any(low < end and begin < high for begin, end in spans))
        low = high
    return first, held, read


def _is_view(spec, parameters, first, sizes, read):
    """Whether the weight is one whole bank piece times its scale (one window)."""
    if (parameters is not None or spec.mode != COMBINE
            or spec.templates != 1 or sum(read) != 1):
        return False
    index = read.index(True)
    begin = first + sum(sizes[:index])
    spans = [(spec.start + b, spec.start + e) for b, e in spec.read_spans]
    return spans == [(begin, begin + sizes[index])]
