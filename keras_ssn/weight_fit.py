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

With calibration data (`FitWeights(data=x)`) the fit is activation-aware:
a weight that its layer applies to its inputs with a matmul, an einsum or a
convolution (see `keras_ssn.calibration`) is measured by the outputs it
gives on the inputs its layer sees when the trained model runs on `x`:

    ||op(x_i, generated_i) - op(x_i, W_i)||^2 / ||op(x_i, W_i)||^2
        + damping * ||generated_i - W_i||^2 / ||W_i||^2

so the plan spends what it can hold on the directions the data uses, as
post-training compression methods do (GPTQ, Frantar et al., ICLR 2023; AWQ,
Lin et al., MLSys 2024). The damping term keeps the directions the data
does not reach near the weights. Other weights keep the first measure.

Where the bank can hold every weight (budgets of 100% and up), the system
has exact solutions and CGLS, started from the randomly drawn bank, reaches
the one closest to it: the generated weights equal `model`'s, and the extra
capacity of a larger budget keeps its random start. Below that, the fit
gives the least-squares bank for the coefficients it ends with.
"""

import math
import time

import numpy as np
from keras import ops

from keras_ssn import generation
from keras_ssn.backends import compiled_linear_map
from keras_ssn.least_squares import least_squares
from keras_ssn.least_squares import norm

INITS = ("random", "weights")


class FitWeights:
    """How `convert(..., init=FitWeights(...))` fits the bank to the weights.

    `init="weights"` is `FitWeights()`.

    Args:
        data: Optional calibration inputs, without labels: an array, or a
            list, tuple or dict of arrays, as `model(data)` takes them (a few hundred
            samples; every forward pass's layer inputs are kept while the
            fit runs). With data the fit is activation-aware: each layer
            that applies its weight with a matmul, an einsum or a
            convolution (`Dense`, `EinsumDense`, `Conv1D`/`2D`/`3D`, and the
            attention projections built from them; the input kernels of
            `SimpleRNN`, `LSTM` and `GRU`) has the error of its outputs on
            the data minimized instead of its weight's; the other weights
            are fitted as without data.
        batch_size: Samples per forward pass over `data`.
        damping: Weight of each data-fitted weight's own relative error
            next to its outputs' (keeps the directions the data does not
            reach near the trained weights).
        rounds: Alternations of a bank fit and a fit of the generation
            parameters that are linear in their weight (template
            coefficients, upsampling masks and half mixes).
        iterations: Most CGLS iterations of one fit.
        tolerance: A fit stops once the relative residual
            `||generated - W|| / ||W||` (each weight scaled by its norm)
            falls to this.
        keep_norms: After the fit, scale each group's slice of the bank, and
            each weight's fitted parameters, so that every generated weight
            has the norm of the weight it replaces (with data: so that
            every data-fitted layer's outputs have the trained outputs'
            norm). Below 100% the least squares weights are smaller than
            the model's (what the plan cannot hold is left out), which
            starves a deep model of signal; keeping the norms costs some
            reconstruction error and trains better (`docs/results.md`).
            From 100% up the fit is exact and this changes nothing.
        verbose: Print one line per fit (its residual and time).

    Raises:
        ValueError: A count is below 1, or the tolerance or the damping is
            negative.
        TypeError: The tolerance or the damping is not a number.
    """

    def __init__(self, data=None, batch_size=64, damping=0.01, rounds=3, iterations=25,
                 tolerance=1e-6, keep_norms=True, verbose=False):
        for name, value in (("rounds", rounds), ("iterations", iterations),
                            ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer; received {value!r}.")
        for name, value in (("tolerance", tolerance), ("damping", damping)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise TypeError(f"`{name}` must be a number; received {value!r}.")
            if not value >= 0:
                raise ValueError(f"`{name}` must be at least 0; received {value!r}.")
        self.data = data
        self.batch_size = batch_size
        self.damping = float(damping)
        self.rounds = rounds
        self.iterations = iterations
        self.tolerance = float(tolerance)
        self.keep_norms = bool(keep_norms)
        self.verbose = bool(verbose)

    def __repr__(self):
        data = "None" if self.data is None else "<calibration data>"
        return (f"FitWeights(data={data}, batch_size={self.batch_size}, "
                f"damping={self.damping}, rounds={self.rounds}, "
                f"iterations={self.iterations}, tolerance={self.tolerance}, "
                f"keep_norms={self.keep_norms}, verbose={self.verbose})")


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


def fit_to_weights(terms, bank, fit, calls=None):
    """Sets `bank` and the generation parameters so the weights match `terms`.

    Args:
        terms: List of `(layer, name, spec, target)`: a shared layer, the
            name of one of its shared weights, its `WeightSpec` and the
            value (a NumPy array of the spec's shape) to reproduce.
        bank: The `WeightBank` the layers read.
        fit: A `FitWeights`.
        calls: Optional list with, per term, the `(op, inputs)` of each of
            its layer's applications of the weight on calibration data (see
            `keras_ssn.calibration.layer_inputs`); a term with none is
            fitted on its entries.

    Returns:
        The relative error of the generated weights after the last fit
        (each weight scaled by its norm; 0 is exact), measured on the
        outputs where `calls` has them.
    """
    if calls is not None:
        # The weights' own fit first: exact from 100% up, and below that a
        # start from which the fit on the outputs ends closer (trained
        # MNIST-1D CNN at 50%, 512 samples: 0.911 accuracy right after
        # the fit, against 0.887 from the drawn bank).
        _alternate(_Problem(terms, bank), fit, "weights, ")
    problem = _Problem(terms, bank, calls, fit.damping)
    error = _alternate(problem, fit, "" if calls is None else "outputs, ")
    if fit.keep_norms and error > fit.tolerance:
        started = time.perf_counter()
        problem.keep_norms()
        error = problem.error()
        _report(fit, "norms kept", error, started)
    return error


def _alternate(problem, fit, label):
    """Fits the bank, then the fitted parameters, `fit.rounds` times; the error."""
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
                _report(fit, f"{label}round {round_index + 1}/{fit.rounds}, {what}",
                        error, started)
    return error


def _report(fit, what, error, started):
    if fit.verbose:
        print(f"fit {what}: relative error {error:.3g} "
              f"({time.perf_counter() - started:.1f} s)")


class _Problem:
    """The generated weights as linear maps of the bank and of the parameters.

    Each term's image is its weight divided by the weight's norm or, for a
    term with calibration calls, the layer's outputs on the calibration
    inputs divided by the trained outputs' norm, followed by the weight
    times `sqrt(damping)` over its norm. The images are laid end to end.
    The bank map takes the bank to every image (the generation parameters
    fixed); the parameter map takes the fitted parameters, laid end to
    end, to the images of the weights they generate (the bank fixed).
    """

    def __init__(self, terms, bank, calls=None, damping=0.0):
        self.terms = terms
        self.bank = bank
        calls = calls or [[] for _ in terms]
        self.ops = [[op for op, _ in term_calls] for term_calls in calls]
        self.inputs = [[x for _, x in term_calls] for term_calls in calls]
        self.damping = damping
        self.without_data = not any(self.ops)
        maps = None if bank.coefficient_maps is None else bank.coefficient_maps.value
        self.parameters = [layer.generation_parameters(name, maps)
                           for layer, name, _, _ in terms]
        self.weight_norms = [max(float(np.linalg.norm(target.astype("float64"))), 1e-30)
                             for _, _, _, target in terms]
        self.norms = list(self.weight_norms)
        # Each term's count of outputs (or of weight entries, without data).
        self.primary_sizes = [target.size for _, _, _, target in terms]
        for index, (_, _, _, target) in enumerate(terms):
            if self.ops[index]:
                outputs = self._outputs(index, ops.convert_to_tensor(target, "float32"),
                                        self.inputs[index])
                self.norms[index] = max(norm(outputs), 1e-30)
                self.primary_sizes[index] = outputs.shape[0]
        images = [
            self._image(index, ops.convert_to_tensor(target, "float32"), self.inputs[index])
            for index, (_, _, _, target) in enumerate(terms)
        ]
        self.target = ops.concatenate(images)
        sizes = [image.shape[0] for image in images]
        self.starts = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        # Where each term's outputs (or weight) end, before its damping part.
        self.primary = [start + size for start, size in zip(self.starts, self.primary_sizes)]
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
        # Whether each image entry is one bank entry times a factor: then
        # the sign probes of `least_squares` give `A^T A`'s diagonal exactly.
        self.single_reads = self.without_data and all(
            _reads_one_entry(spec) for _, _, spec, _ in terms)
        self.bank_map = compiled_linear_map(self._generate_from_bank, bank.size)
        if self.fitted:
            self.parameter_map = compiled_linear_map(
                self._generate_from_parameters,
                sum(math.prod(v.shape) for v in self.variables))

    def error(self):
        forward, _ = self.bank_map
        residual = self.target - forward(self.bank.vector(), self._fixed())
        return norm(residual) / norm(self.target)

    def generated_norms(self):
        """Each term's generated weight's (or outputs') norm, over its target's."""
        forward, _ = self.bank_map
        flat = ops.convert_to_numpy(forward(self.bank.vector(), self._fixed()))
        return [float(np.linalg.norm(flat[a:b]))
                for a, b in zip(self.starts, self.primary)]

    def keep_norms(self):
        """Gives every generated weight its target's norm, or every group's total.

        A weight with fitted parameters is scaled through them, exactly; the
        other weights of a group share its slice, which is scaled so that
        their norms add up to their targets' (each counts alike where data
        measures some of them on their outputs).
        """
        ratios = self.generated_norms()
        slices = {}
        for index, ((_, _, spec, _), ratio, scale) in enumerate(
                zip(self.terms, ratios, self.norms)):
            if index in self.fitted:
                continue  # scaled through its own parameters below
            weight = scale**2 if self.without_data else 1.0
            totals = slices.setdefault((spec.start, spec.size), [0.0, 0.0])
            totals[0] += weight * ratio**2
            totals[1] += weight
        vector = ops.convert_to_numpy(self.bank.vector()).copy()
        for (start, size), (have, want) in slices.items():
            if have > 0:
                vector[start : start + size] *= (want / have) ** 0.5
        self.bank.assign_vector(vector)
        ratios = self.generated_norms()
        for index, variable in zip(self.fitted, self.variables):
            if ratios[index] > 0:
                variable.assign(variable.value / ratios[index])
                layer, name, _, _ = self.terms[index]
                self.parameters[index] = layer.generation_parameters(name, None)

    def fit_bank(self, fit):
        forward, transpose = self.bank_map
        vector = least_squares(
            lambda x: forward(x, self._fixed()),
            lambda y: transpose(y, self._fixed()),
            self.target, self.bank.vector(), fit.iterations, fit.tolerance,
            scaled=self.single_reads)
        self.bank.assign_vector(vector)

    def fit_parameters(self, fit):
        forward, transpose = self.parameter_map
        fixed = (self.bank.vector(), [self.inputs[i] for i in self.fitted])
        target = ops.concatenate([
            self.target[self.starts[i] : self.starts[i + 1]] for i in self.fitted])
        start = ops.concatenate([ops.reshape(v.value, (-1,)) for v in self.variables])
        vector = least_squares(
            lambda x: forward(x, fixed), lambda y: transpose(y, fixed), target, start,
            fit.iterations, fit.tolerance)
        begin = 0
        for index, variable in zip(self.fitted, self.variables):
            size = math.prod(variable.shape)
            variable.assign(ops.reshape(vector[begin : begin + size], variable.shape))
            begin += size
            layer, name, _, _ = self.terms[index]
            self.parameters[index] = layer.generation_parameters(name, None)

    def _fixed(self):
        return (self.parameters, self.inputs)

    def _outputs(self, index, weight, inputs):
        return ops.concatenate([
            ops.reshape(op(x, weight), (-1,)) for op, x in zip(self.ops[index], inputs)])

    def _image(self, index, weight, inputs):
        """Term `index`'s image of `weight`, scaled by its target's (see the class)."""
        flat = ops.reshape(weight, (-1,)) / self.weight_norms[index]
        if not self.ops[index]:
            return flat
        outputs = self._outputs(index, weight, inputs) / self.norms[index]
        if self.damping == 0.0:
            return outputs
        return ops.concatenate([outputs, flat * self.damping**0.5])

    def _generate_from_bank(self, bank, fixed):
        # Read through the bank's own pieces (cut where the layers' reads
        # cut it): the transpose of a read then reaches its pieces alone,
        # not a bank-sized buffer per read.
        parameters, inputs = fixed
        sizes = [piece.shape[0] for piece in self.bank.pieces]
        pieces = [bank] if len(sizes) == 1 else ops.split(
            bank, [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)])
        entries = generation.SlicePieces(pieces)
        return ops.concatenate([
            self._image(index, generation.generate_weight(entries, spec, p), x)
            for index, ((_, _, spec, _), p, x) in enumerate(zip(self.terms, parameters, inputs))
        ])

    def _generate_from_parameters(self, parameters, fixed):
        bank, inputs = fixed
        images, begin = [], 0
        for index, variable, x in zip(self.fitted, self.variables, inputs):
            size = math.prod(variable.shape)
            p = ops.reshape(parameters[begin : begin + size], variable.shape)
            begin += size
            weight = generation.generate_weight(bank, self.terms[index][2], p)
            images.append(self._image(index, weight, x))
        return ops.concatenate(images)


def _reads_one_entry(spec):
    if spec.mode == generation.HASHED:
        return True
    if spec.mode == generation.COMBINE:
        return spec.templates == 1
    return spec.mode == generation.UPSAMPLE and spec.upsample in ("repeat", "mask", "scale")
