"""Weights generated where they are used, and generated again for the backward pass.

A shared layer's weight exists only while its layer uses it: the weight is
generated just before the layer's forward op (a matmul, an einsum, a
convolution), dropped after it, and generated again from the bank just
before that op's backward computation. Its gradient goes straight into the
gradients of the bank pieces and generation parameters it came from. This is
rematerialization (Chen et al., 2016), applied to the generated weights
only: the layer's activations are saved as usual, so the recomputation is
one more generation pass, not one more forward pass.

Two things XLA would otherwise undo are handled here:

- Keeping the two generations apart, each next to its op. `keras.remat`
  (`jax.checkpoint`, `tf.recompute_grad`) does not lower the compiled peak
  on XLA's CPU compiler: it removes the optimization barriers that keep a
  recomputation apart from the forward computation, and
  common-subexpression elimination then merges the two (`python -m
  benchmarks.remat_cpu`: 404.9 MB with and without `jax.checkpoint`), and
  the scheduler is free to generate every weight at the start of the step.
  Here the generation inputs are tied, with an exact zero, to the output of
  the previous op in the forward pass and to the weight's gradient in the
  backward pass: the two generations are different expressions that XLA
  can neither merge nor move away from the op.
- Summing the gradient of a bank piece that several layers read as the
  backward pass goes. Left to itself, XLA fuses every layer's contribution
  into the optimizer's update at the end of the step, so all of them are
  alive at once. Here each piece is passed from one reading layer to the
  next (`PieceChain`), and each layer's backward adds its contribution to
  the gradient carried back from the later layers in place, as one running
  sum (`_running_sum`).
"""

import keras
from keras import ops


def apply_rematerialized(op, inputs, recipe):
    """`op(inputs, weight)` with the weight generated on the spot, twice.

    Forward: the weight is generated after the previous rematerialized op
    of the pass has run (its generation is tied to that op's output through
    `PieceChain.token`), used, and dropped. Backward: the op's gradient
    with respect to the weight is computed first (it needs only `inputs`
    and the output gradient); the weight is generated again, tied to that
    gradient, for the gradient with respect to `inputs`; and the weight's
    gradient goes back through generation to the pieces and parameters.

    Args:
        op: Function `(inputs, weight) -> outputs`, linear in each of its
            arguments (`ops.matmul`, an einsum, a convolution), with no
            state of its own.
        inputs: Float tensor.
        recipe: The weight's `WeightRecipe`.

    Returns:
        `op(inputs, weight)`; its gradients flow to `inputs` and to the
        recipe's pieces and parameters.
    """
    chain = recipe.chain
    passed = [k for k, i in enumerate(recipe.pieces) if chain.is_passed(i)]

    @ops.custom_gradient
    def forward(inputs, token, *sources):
        weight = recipe.weight_from(sources, token)
        shape = weight.shape
        outputs = op(inputs, weight)
        handed_on = [ops.add(sources[k], 0.0) for k in passed]

        def backward(*args, upstream=None):
            cotangents = _flat(args if upstream is None else upstream)
            upstream, later = cotangents[0], cotangents[1 : 1 + len(passed)]
            (weight_grad,) = _vjp(
                lambda weight: op(inputs, weight), [ops.zeros(shape, "float32")], upstream
            )
            anchor = _zero(weight_grad)
            weight = recipe.weight_from(sources, anchor)
            (inputs_grad,) = _vjp(lambda x: op(x, weight), [inputs], upstream)
            grads = list(
                _vjp(lambda *s: recipe.weight_from(s, anchor), sources, weight_grad)
            )
            done = _after_reads(inputs_grad, grads[len(recipe.pieces) :])
            for k, carried in zip(passed, later):
                grads[k] = _running_sum(carried, grads[k], done)
            grads = [grad if k in passed else _tied(grad, done) for k, grad in enumerate(grads)]
            return (inputs_grad, ops.zeros_like(token), *grads)

        return (outputs, *handed_on, _zero(outputs)), backward

    results = forward(inputs, chain.token, *recipe.sources())
    for k, piece in zip(passed, results[1:-1]):
        chain.advance(recipe.pieces[k], piece)
    chain.token = results[-1]
    return results[0]


def _after_reads(inputs_grad, parameter_grads):
    """An exact zero that exists only once the backward pass has read the sources.

    The regenerated weight is read for the gradient with respect to the
    inputs, and the templates for the parameters' gradients; neither is
    needed for the pieces' own gradients. Each source's gradient is tied to
    this zero (`_tied`, `_running_sum`), so that the optimizer's in-place
    update of a bank piece or a parameter comes, in the dataflow, after the
    last read of it. Otherwise XLA copies each such variable at the start of
    the step and reads the copy (24 x Dense(1024) at 50%: 11 bank pieces and
    every coefficient vector, 45 MB, alive all step).
    """
    done = _zero(inputs_grad)
    for grad in parameter_grads:
        done = done + _zero(ops.reshape(ops.sum(grad), (1,)))
    return done


def _tied(grad, zero):
    """`grad + zero`, `zero` (shape `(1,)`) broadcast over `grad`'s axes."""
    return grad + ops.reshape(zero, [1] * len(grad.shape))


def _running_sum(carried, term, zero):
    """`carried + term`, computed where XLA keeps it as one running sum.

    An add (or a reduction) of a chain of gradients is fused by XLA into
    one op that holds every term until the end of the step. A
    `dynamic_update_slice` at a position known only at run time (`zero`, an
    exact zero XLA cannot fold) is updated in place and fused with nothing
    after it, so each layer's term is added as soon as it exists. The
    buffer it updates is `carried` with one more entry, that zero: its copy
    is made only once `zero` exists, next to the update, rather than
    wherever XLA's scheduler would put it (24 x Dense(1024) at 50%: 0.85x
    the plain step's peak, 0.92x with a constant entry).
    """
    size = carried.shape[0]
    start = ops.cast(zero, "int32")[0]
    buffer = ops.concatenate([carried, ops.cast(zero, carried.dtype)])
    return ops.slice_update(buffer, [start], carried + term)[:size]


def _zero(anchor):
    """An exact float32 zero of shape `(1,)` computed from `anchor`'s first entry.

    `0 * isfinite(anchor[0, ..., 0])`: never NaN, whatever `anchor` holds,
    and not folded away by XLA (a float multiply by zero is kept, as it
    would turn NaN into 0). Take it from the output of a matmul or a
    convolution: XLA would otherwise fuse the elementwise ops that made
    `anchor` into this one entry's computation.
    """
    # The reshape to (1,) keeps the shape static where `anchor`'s batch size
    # is unknown (TensorFlow graphs), so that adding it to a bank piece of
    # one entry does not make that piece's shape unknown.
    first = ops.reshape(ops.reshape(anchor, (-1,))[:1], (1,))
    return ops.cast(ops.isfinite(first), "float32") * 0.0


def _flat(cotangents):
    if isinstance(cotangents, (list, tuple)):
        return [c for item in cotangents for c in _flat(item)]
    return [cotangents]


def _vjp(function, primals, cotangent):
    """Gradients of `function` at `primals` times `cotangent`, one per primal."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # only on the JAX backend

        _, pullback = jax.vjp(function, *primals)
        return pullback(cotangent)
    import tensorflow as tf  # only on the TensorFlow backend

    with tf.GradientTape() as tape:
        for primal in primals:
            tape.watch(primal)
        outputs = function(*primals)
    grads = tape.gradient(outputs, list(primals), output_gradients=cotangent)
    return [
        ops.zeros_like(primal) if grad is None else grad
        for primal, grad in zip(primals, grads)
    ]
