"""Train-step time of a converted model against the plain model, under XLA.

Builds one ResNet-style CNN, converts it at each budget, compiles every model
with `jit_compile=True`, warms up (compilation excluded), then times train
steps in interleaved rounds so that machine noise hits all models alike.
Prints JSON: per-model median step time, the SSN/plain ratio and trainable
counts.

    python -m benchmarks.step_time [--budgets 0.1 4.0] [--batch 64] [--steps 30]
"""

import argparse
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_ssn  # noqa: E402


def resnet(input_shape=(32, 32, 3), widths=(32, 64, 128), blocks=2, classes=10):
    """A small pre-activation-free ResNet: conv-BN-ReLU blocks with skips."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    for stage, width in enumerate(widths):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            skip = x
            y = keras.layers.Conv2D(width, 3, strides, padding="same",
                                    use_bias=False)(x)
            y = keras.layers.BatchNormalization()(y)
            y = keras.layers.ReLU()(y)
            y = keras.layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
            y = keras.layers.BatchNormalization()(y)
            if strides != 1 or skip.shape[-1] != width:
                skip = keras.layers.Conv2D(width, 1, strides, use_bias=False)(skip)
            x = keras.layers.ReLU()(keras.layers.Add()([y, skip]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes)(x)
    return keras.Model(inputs, outputs, name="resnet")


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def time_steps(models, x, y, warmup, steps):
    for model in models.values():
        for _ in range(warmup):
            model.train_on_batch(x, y)
    times = {name: [] for name in models}
    for _ in range(steps):
        for name, model in models.items():
            start = time.perf_counter()
            loss = model.train_on_batch(x, y)
            float(np.asarray(loss))
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.1, 4.0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    plain = resnet()
    models = {"plain": compiled(plain)}
    for budget in args.budgets:
        models[f"ssn_{budget:g}"] = compiled(keras_ssn.convert(plain, budget, seed=0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, args.batch)
    medians = time_steps(models, x, y, args.warmup, args.steps)
    result = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "batch": args.batch,
        "steps": args.steps,
        "median_step_seconds": medians,
        "trainable": {n: keras_ssn.count_trainable(m) for n, m in models.items()},
        "ratio_to_plain": {
            n: medians[n] / medians["plain"] for n in medians if n != "plain"
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
