"""Fits a converted model's bank to the weights its model learned.

`convert(model, budget, init="weights")` starts the converted model from
what `model` learned: the bank and the learned generation parameters are
chosen so that the generated weights reproduce `model`'s weights as closely
as the plan allows. Every generation method is linear in the bank for fixed
generation parameters, and the template coefficients (`share="wavg"`), the
upsampling masks (`upsample="mask"`) and the half mixes (`upsample="wavg"`)
are linear in those parameters for a fixed bank, so the fit alternates two
linear least-squares problems, each solved without forming a matrix by
conjugate gradients on the normal equations (CGLS), with the generation
itself and its transpose as the operator:

    minimize  sum_i ||generated_i - W_i||^2 / ||W_i||^2

over the bank, then over those parameters, and so on for `rounds` rounds.
Each weight's error counts relative to its own size, so a small layer is
fitted as closely as a large one.

Where the bank can hold every weight (budgets of 100% and up), the system
has exact solutions and CGLS, started from the randomly drawn bank, reaches
the one closest to it: the generated weights equal `model`'s, and the extra
capacity of a larger budget keeps its random start. Below that, the fit
gives the least-squares bank for the coefficients it ends with.
"""

import math
import time

import keras
import numpy as np
from keras import ops

from keras_ssn import generation
from keras_ssn.backends import compiled_linear_map

INITS = ("random", "weights")


class FitWeights:
    """How `convert(..., init=FitWeights(...))` fits the bank to the weights.

    `init="weights"` is `FitWeights()`.

    Args:
        rounds: Alternations of a bank fit and a fit of the generation
            parameters that are linear in their weight (template
            coefficients, upsampling masks and half mixes).
        iterations: Most CGLS iterations of one fit.
        tolerance: A fit stops once the relative residual
            `||generated - W|| / ||W||` (each weight scaled by its norm)
            falls to this.
        keep_norms: After the fit, scale each group's slice of the bank, and
            each weight's fitted parameters, so that every generated weight
            has the norm of the weight it replaces. Below 100% the least
            squares weights are smaller than the model's (what the plan
            cannot hold is left out), which starves a deep model of signal;
            keeping the norms costs some reconstruction error and trains
            better (`docs/results.md`). From 100% up the fit is exact and
            this changes nothing.
        verbose: Print one line per fit (its residual and time).

    Raises:
        ValueError: A count is below 1 or the tolerance is negative.
    """

    def __init__(self, rounds=3, iterations=25, tolerance=1e-6, keep_norms=True,
                 verbose=False):
        for name, value in (("rounds", rounds), ("iterations", iterations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
        if not tolerance >= 0:
            raise ValueError(f"`tolerance` must be at least 0; received {tolerance!r}.")
        self.rounds = rounds
        self.iterations = iterations
        self.tolerance = float(tolerance)
        self.keep_norms = bool(keep_norms)
        self.verbose = bool(verbose)

    def __repr__(self):
        return (f"FitWeights(rounds={self.rounds}, iterations={self.iterations}, "
                f"tolerance={self.tolerance}, keep_norms={self.keep_norms}, "
                f"verbose={self.verbose})")


def resolve_init(init):
    """The `FitWeights` that `init` asks for, or `None` for a random start.

    Raises:
        ValueError: `init` is neither `"random"`, `"weights"` nor a
            `FitWeights`.
    """
    if isinstance(init, FitWeights):
        return init
    if isinstance(init, str) and init in INITS:
        return None if init == "random" else FitWeights()
    raise ValueError(
        f"`init` must be one of {INITS} or a keras_ssn.FitWeights; received {init!r}."
    )


def fit_to_weights(terms, bank, fit):
    """Sets `bank` and the generation parameters so the weights match `terms`.

    Args:
        terms: List of `(layer, name, spec, target)`: a shared layer, the
            name of one of its shared weights, its `WeightSpec` and the
            value (a NumPy array of the spec's shape) to reproduce.
        bank: The `WeightBank` the layers read.
        fit: A `FitWeights`.

    Returns:
        The relative error of the generated weights after the last fit
        (each weight scaled by its norm; 0 is exact).
    """
    problem = _Problem(terms, bank)
    error = problem.error()
    steps = [("bank", problem.fit_bank)]
    if problem.fitted:
        steps.append(("coefficients", problem.fit_parameters))
    for round_index in range(fit.rounds):
        for what, step in steps:
            if error > fit.tolerance:
                started = time.perf_counter()
                step(fit)
                error = problem.error()
                _report(fit, f"round {round_index + 1}/{fit.rounds}, {what}", error, started)
    if fit.keep_norms and error > fit.tolerance:
        started = time.perf_counter()
        problem.keep_norms()
        error = problem.error()
        _report(fit, "norms kept", error, started)
    return error


def _report(fit, what, error, started):
    if fit.verbose:
        print(f"fit {what}: relative error {error:.3g} "
              f"({time.perf_counter() - started:.1f} s)")


class _Problem:
    """The generated weights as linear maps of the bank and of the parameters.

    The weights are laid end to end, each divided by its norm. The bank map
    takes the bank to every weight (the generation parameters fixed); the
    parameter map takes the fitted parameters, laid end to end, to the
    weights they generate (the bank fixed).
    """

    def __init__(self, terms, bank):
        self.terms = terms
        self.bank = bank
        maps = None if bank.coefficient_maps is None else bank.coefficient_maps.value
        self.parameters = [layer.generation_parameters(name, maps)
                           for layer, name, _, _ in terms]
        self.norms = [max(float(np.linalg.norm(target.astype("float64"))), 1e-30)
                      for _, _, _, target in terms]
        self.target = ops.concatenate([
            ops.reshape(ops.convert_to_tensor(target, "float32"), (-1,)) / norm
            for (_, _, _, target), norm in zip(terms, self.norms)
        ])
        sizes = [target.size for _, _, _, target in terms]
        self.starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        # The terms whose parameters are fitted too: one learned variable
        # that the weight is linear in.
        self.fitted = [
            index for index, (layer, name, spec, _) in enumerate(terms)
            if spec.generation_method is not None
            and spec.generation_method.linear_in_parameters
            and spec.coefficient_map is None
            and layer.coefficients.get(name) is not None
        ]
        self.variables = [terms[i][0].coefficients[terms[i][1]] for i in self.fitted]
        # Whether each weight entry is one bank entry times a factor: then
        # the sign probes of `_column_scale` give `A^T A`'s diagonal exactly.
        self.single_reads = all(_reads_one_entry(spec) for _, _, spec, _ in terms)
        self.bank_map = compiled_linear_map(self._generate_from_bank, bank.size)
        if self.fitted:
            self.parameter_map = compiled_linear_map(
                self._generate_from_parameters,
                sum(math.prod(v.shape) for v in self.variables))

    def error(self):
        forward, _ = self.bank_map
        residual = self.target - forward(self.bank.vector(), self.parameters)
        return _norm(residual) / _norm(self.target)

    def generated_norms(self):
        forward, _ = self.bank_map
        flat = ops.convert_to_numpy(forward(self.bank.vector(), self.parameters))
        return [float(np.linalg.norm(flat[a:b])) * norm for a, b, norm
                in zip(self.starts, self.starts[1:], self.norms)]

    def keep_norms(self):
        """Gives every generated weight its target's norm, or every group's total.

        A weight with fitted parameters is scaled through them, exactly; the
        other weights of a group share its slice, which is scaled so that
        their norms add up to their targets'.
        """
        generated = self.generated_norms()
        slices = {}
        for index, ((_, _, spec, _), have, want) in enumerate(
                zip(self.terms, generated, self.norms)):
            if index in self.fitted:
                continue  # scaled through its own parameters below
            totals = slices.setdefault((spec.start, spec.size), [0.0, 0.0])
            totals[0] += have**2
            totals[1] += want**2
        vector = ops.convert_to_numpy(self.bank.vector()).copy()
        for (start, size), (have, want) in slices.items():
            if have > 0:
                vector[start : start + size] *= (want / have) ** 0.5
        self.bank.assign_vector(vector)
        generated = self.generated_norms()
        for index, variable in zip(self.fitted, self.variables):
            if generated[index] > 0:
                variable.assign(variable.value * (self.norms[index] / generated[index]))
                layer, name, _, _ = self.terms[index]
                self.parameters[index] = layer.generation_parameters(name, None)

    def fit_bank(self, fit):
        forward, transpose = self.bank_map
        vector = _least_squares(
            lambda x: forward(x, self.parameters),
            lambda y: transpose(y, self.parameters),
            self.target, self.bank.vector(), fit, scaled=self.single_reads)
        self.bank.assign_vector(vector)

    def fit_parameters(self, fit):
        forward, transpose = self.parameter_map
        bank = [self.bank.vector()]
        target = ops.concatenate([
            self.target[self.starts[i] : self.starts[i + 1]] for i in self.fitted])
        start = ops.concatenate([ops.reshape(v.value, (-1,)) for v in self.variables])
        vector = _least_squares(
            lambda x: forward(x, bank), lambda y: transpose(y, bank), target, start, fit)
        begin = 0
        for index, variable in zip(self.fitted, self.variables):
            size = math.prod(variable.shape)
            variable.assign(ops.reshape(vector[begin : begin + size], variable.shape))
            begin += size
            layer, name, _, _ = self.terms[index]
            self.parameters[index] = layer.generation_parameters(name, None)

    def _generate_from_bank(self, bank, parameters):
        # Read through the bank's own pieces (cut where the layers' reads
        # cut it): the transpose of a read then reaches its pieces alone,
        # not a bank-sized buffer per read.
        sizes = [piece.shape[0] for piece in self.bank.pieces]
        pieces = ops.split(bank, [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)])
        entries = generation.SlicePieces(pieces)
        return ops.concatenate([
            ops.reshape(generation.generate_weight(entries, spec, p), (-1,)) / norm
            for (_, _, spec, _), p, norm in zip(self.terms, parameters, self.norms)
        ])

    def _generate_from_parameters(self, parameters, fixed):
        (bank,) = fixed
        weights, begin = [], 0
        for index, variable in zip(self.fitted, self.variables):
            size = math.prod(variable.shape)
            p = ops.reshape(parameters[begin : begin + size], variable.shape)
            begin += size
            spec = self.terms[index][2]
            weight = generation.generate_weight(bank, spec, p)
            weights.append(ops.reshape(weight, (-1,)) / self.norms[index])
        return ops.concatenate(weights)


def _least_squares(forward, transpose, target, start, fit, scaled=False):
    """CGLS: `x` minimizing `||forward(x) - target||`, from `start`.

    Of the minimizers, CGLS reaches the one closest to `start`. With
    `scaled` (for maps where each output is one unknown times a factor),
    the unknowns are first scaled by the inverse square root of the diagonal
    of `A^T A`, which sign probes give exactly for such maps: the fit then
    takes one iteration where the bank holds every weight whole.
    """
    scale = _column_scale(forward, transpose, start) if scaled else None
    if scale is not None:
        def apply(u):
            return forward(u * scale)

        def transposed(y):
            return transpose(y) * scale
    else:
        apply, transposed = forward, transpose
    residual = target - forward(start)
    target_norm = max(_norm(target), 1e-30)
    step_sum = ops.zeros_like(start)
    gradient = transposed(residual)
    direction = gradient
    gamma = _dot(gradient, gradient)
    for _ in range(fit.iterations):
        if _norm(residual) <= fit.tolerance * target_norm or gamma == 0.0:
            break
        image = apply(direction)
        step = gamma / max(_dot(image, image), 1e-300)
        step_sum = step_sum + step * direction
        residual = residual - step * image
        gradient = transposed(residual)
        previous, gamma = gamma, _dot(gradient, gradient)
        direction = gradient + (gamma / previous) * direction
    return start + (step_sum if scale is None else step_sum * scale)


def _reads_one_entry(spec):
    if spec.mode == generation.HASHED:
        return True
    if spec.mode == generation.COMBINE:
        return spec.templates == 1
    return spec.mode == generation.UPSAMPLE and spec.upsample in ("repeat", "mask", "scale")


def _column_scale(forward, transpose, like, probes=4, seed=0):
    """`1 / sqrt(diag(A^T A))`, the diagonal estimated with sign probes."""
    generator = keras.random.SeedGenerator(seed)
    diagonal = ops.zeros_like(like)
    for _ in range(probes):
        signs = ops.sign(keras.random.uniform(ops.shape(like), -1.0, 1.0, seed=generator))
        diagonal = diagonal + signs * transpose(forward(signs))
    diagonal = ops.abs(diagonal) / probes
    floor = 1e-3 * ops.mean(diagonal)
    return 1.0 / ops.sqrt(ops.maximum(diagonal, floor))


def _dot(a, b):
    return float(ops.convert_to_numpy(ops.sum(a * b)))


def _norm(a):
    return _dot(a, a) ** 0.5
