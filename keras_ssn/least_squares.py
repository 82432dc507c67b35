"""Conjugate gradients for linear least squares, with the map as a function.

`keras_ssn.weight_fit` solves for a bank (or the generation parameters) that
generates given weights; the map is the generation itself, never a matrix.
"""

import keras
from keras import ops


def least_squares(forward, transpose, target, start, iterations, tolerance,
                  scaled=False):
    """CGLS: `x` minimizing `||forward(x) - target||`, from `start`.

    Stops after `iterations` iterations, or once the residual falls to
    `tolerance` times `||target||`.

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
    target_norm = max(norm(target), 1e-30)
    step_sum = ops.zeros_like(start)
    gradient = transposed(residual)
    direction = gradient
    gamma = dot(gradient, gradient)
    for _ in range(iterations):
        if norm(residual) <= tolerance * target_norm or gamma == 0.0:
            break
        image = apply(direction)
        step = gamma / max(dot(image, image), 1e-300)
        step_sum = step_sum + step * direction
        residual = residual - step * image
        gradient = transposed(residual)
        previous, gamma = gamma, dot(gradient, gradient)
        direction = gradient + (gamma / previous) * direction
    return start + (step_sum if scale is None else step_sum * scale)


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


def dot(a, b):
    return float(ops.convert_to_numpy(ops.sum(a * b)))


def norm(a):
    return dot(a, a) ** 0.5
