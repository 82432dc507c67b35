"""XLA's cost of a HashedNets train step against the plain model's (JAX).

The hash is computed in the forward pass (`keras_ssn.hashing`), so its
integer work is part of every step. Prints flops and bytes accessed as
multiples of the plain model's, and temp buffers.

    KERAS_BACKEND=jax python -m benchmarks.hashed_cost [--models dense64 wrn16_4] [--budget 0.1]
"""

import argparse

import keras

import keras_ssn
from benchmarks import cost


def figures(name, budget):
    """`(plain, hashed)` XLA figures of one model's compiled train step."""
    build, size, _ = cost.MODELS[name]
    keras.utils.set_random_seed(0)
    plain = cost.compile_for_training(build())
    x, y = cost.batch(plain, size)
    keras.utils.set_random_seed(0)
    hashed = cost.compile_for_training(keras_ssn.baselines.hashed(build(), budget, seed=0))
    return cost.compiled_step_cost(plain, x, y), cost.compiled_step_cost(hashed, x, y)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["dense64", "wrn16_4"],
                        choices=sorted(cost.MODELS))
    parser.add_argument("--budget", type=float, default=0.1)
    args = parser.parse_args(argv)
    print("| model | flops × plain | bytes × plain | temp MB (plain) |")
    print("|---|---|---|---|")
    for name in args.models:
        plain, hashed = figures(name, args.budget)
        print(f"| {name} | {hashed['flops'] / plain['flops']:.3f} | "
              f"{hashed['bytes_accessed'] / plain['bytes_accessed']:.3f} | "
              f"{hashed['temp_bytes'] / 1e6:.0f} ({plain['temp_bytes'] / 1e6:.0f}) |")


if __name__ == "__main__":
    main()
