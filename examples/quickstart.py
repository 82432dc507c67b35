"""Train a 1-D CNN on MNIST-1D at full size and under a 10% parameter budget.

MNIST-1D (https://github.com/greydanus/mnist1d) is generated on the spot by
the `mnist1d` package, so this runs offline. The script shows how the small
model shares its bank, trains both models (a header and a progress line per
epoch), prints their trainable parameter counts, test accuracy and seconds per
epoch, then saves
the small model, reloads it and materializes it. It writes the converted
model, the materialized one and a picture of the sharing into `--out`.

    python examples/quickstart.py [--budget 0.1] [--epochs 20] [--out quickstart_output]
"""

import argparse
import contextlib
import importlib.util
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def native_logs_silenced():
    """Hides what native libraries print to stderr while they start.

    TensorFlow and XLA log their start-up (CPU features, CUDA probing) from
    C++, before `TF_CPP_MIN_LOG_LEVEL` takes effect. Python errors raised
    inside still show: stderr is back before they propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


with native_logs_silenced():
    import keras
    import numpy as np
    from mnist1d.data import get_dataset_args
    from mnist1d.data import make_dataset

    import keras_ssn

    keras.ops.convert_to_numpy(keras.ops.zeros(1))  # starts the backend's devices
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401  (Keras's data pipeline loads it on any backend)


def load_mnist1d(seed=42):
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    x_train = data["x"][..., None].astype("float32")
    x_test = data["x_test"][..., None].astype("float32")
    return (x_train, data["y"]), (x_test, data["y_test"])


def build_cnn(length=40, classes=10):
    return keras.Sequential(
        [
            keras.Input((length, 1)),
            keras.layers.Conv1D(64, 5, padding="same", activation="relu"),
            keras.layers.Conv1D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv1D(64, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(classes),
        ],
        name="cnn1d",
    )


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def train(model, data, epochs, seed):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    timer = EpochTimer()
    model.fit(x_train, y_train, batch_size=64, epochs=epochs, verbose=2,
              callbacks=[timer])
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    # The first epoch includes XLA compilation; report the steady state.
    return accuracy, float(np.median(timer.times[1:] or timer.times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="quickstart_output",
                        help="folder for the saved models and the picture")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    data = load_mnist1d()
    keras.utils.set_random_seed(args.seed)
    full = build_cnn()
    small = keras_ssn.convert(full, args.budget, seed=args.seed)
    print(
        f"Converted '{full.name}' ({keras_ssn.count_trainable(full):,} trainable "
        f"parameters) to a budget of {args.budget:g}: "
        f"{keras_ssn.count_trainable(small):,}. How it shares its bank:\n"
    )
    keras_ssn.summary(small)
    picture = os.path.join(args.out, "sharing.png")
    keras_ssn.plot_sharing(small, picture)

    rows = []
    for name, model in (("full", full), (f"ssn {args.budget:g}", small)):
        print(f"\nTraining the {name} model for {args.epochs} epochs:")
        accuracy, seconds = train(model, data, args.epochs, args.seed)
        rows.append((name, keras_ssn.count_trainable(model), accuracy, seconds))
    print(f"\n{'model':<12}{'trainable':>12}{'test acc':>10}{'s/epoch':>10}")
    for name, count, accuracy, seconds in rows:
        print(f"{name:<12}{count:>12,}{accuracy:>10.3f}{seconds:>10.2f}")
    print(
        "s/epoch: wall-clock seconds on this machine, the median of epochs 2 on "
        "(the first compiles); on a CPU they vary from run to run, often by more "
        "than the two models differ, so they are not a speed comparison "
        "(docs/results.md compares compiled cost and GPU step times)."
    )

    x_test = data[1][0]
    expected = keras.ops.convert_to_numpy(small.predict(x_test, verbose=0))
    path = os.path.join(args.out, "small.keras")
    small.save(path)
    reloaded = keras.models.load_model(path)
    reloaded_out = keras.ops.convert_to_numpy(reloaded.predict(x_test, verbose=0))
    plain = keras_ssn.materialize(reloaded)
    plain_path = os.path.join(args.out, "materialized.keras")
    plain.save(plain_path)
    plain_out = keras.ops.convert_to_numpy(plain.predict(x_test, verbose=0))
    print(
        f"\nSaved the converted model to {path} and reloaded it: "
        f"max |diff| {np.abs(reloaded_out - expected).max():.2e}, "
        f"trainable {keras_ssn.count_trainable(reloaded):,}."
    )
    relative = np.abs(plain_out - expected).max() / np.abs(expected).max()
    print(
        f"Materialized it into a plain {type(plain).__name__} '{plain.name}' with "
        f"{keras_ssn.count_trainable(plain):,} parameters like the original "
        f"(max |diff| / max |output| {relative:.1e}), saved to {plain_path}."
    )
    print(f"The picture of the sharing is {picture}.")


if __name__ == "__main__":
    main()
