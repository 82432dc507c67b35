"""The paper's CIFAR-100 recipe: a WRN-28-10 trained under a parameter budget.

Recipe (Plummer et al., 2022, following Zagoruyko & Komodakis, 2016): SGD
with Nesterov momentum 0.9, learning rate 0.1 multiplied by 0.2 after epochs
60, 120 and 160, 200 epochs, batch 128, weight decay 5e-4 on every weight
but none on the SSN coefficients (`SharedFunctional.compile` excludes them),
random horizontal flips, 4-pixel padding with a random 32x32 crop and cutout
of one 16x16 square. The official training set is split into 45,000 images
for training and 5,000 for validation; the test set is evaluated at the end.

Keras's optimizers apply weight decay decoupled from the gradient (the
weight shrinks by `learning_rate * weight_decay` each step), where the
paper's PyTorch SGD adds it to the gradient before momentum.

CIFAR-100 comes from `tfds.load("cifar100")`, which downloads it once;
`--mock` uses `tfds.testing.mock_data` instead (random images, no download),
which is what the test suite runs.

    python -m examples.cifar100_wrn [--budget 0.1 | --plain] [--epochs 200]
        [--depth 28] [--width 10] [--steps N] [--mock] [--save wrn.keras]
"""

import argparse
import contextlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

import keras_ssn  # noqa: E402
from benchmarks.architectures import wide_resnet  # noqa: E402

MEAN = (0.5071, 0.4865, 0.4409)
STD = (0.2673, 0.2564, 0.2762)
SPLITS = ("train[:90%]", "train[90%:]", "test")
LR_EPOCHS = (60, 120, 160)
CUTOUT = 16
PADDING = 4


def load_splits(data_dir=None, mock=False):
    """The 45k/5k/10k train, validation and test splits as `(image, label)` datasets."""
    context = tfds.testing.mock_data(num_examples=16) if mock else contextlib.nullcontext()
    with context:
        return tfds.load("cifar100", split=list(SPLITS), as_supervised=True,
                         data_dir=data_dir)


def normalize(image, label):
    image = (tf.cast(image, "float32") / 255.0 - MEAN) / STD
    return image, label


def cutout(image, size=CUTOUT):
    """Zeroes one `size` x `size` square centred anywhere in the image (clipped at the edges)."""
    height, width = image.shape[0], image.shape[1]
    center_y = tf.random.uniform([], 0, height, dtype=tf.int32)
    center_x = tf.random.uniform([], 0, width, dtype=tf.int32)
    rows = _within(tf.range(height) - center_y, size)[:, None]
    columns = _within(tf.range(width) - center_x, size)[None, :]
    keep = tf.logical_not(rows & columns)
    return image * tf.cast(keep, image.dtype)[..., None]


def _within(offsets, size):
    return (offsets >= -(size // 2)) & (offsets < size - size // 2)


def pipeline(dataset, batch_size, training):
    """Normalizes and batches; when `training`, shuffles and augments."""
    dataset = dataset.map(normalize, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        flip = keras.layers.RandomFlip("horizontal")
        crop = keras.layers.RandomCrop(32, 32)

        def augment(image, label):
            padded = tf.pad(image, [[PADDING, PADDING], [PADDING, PADDING], [0, 0]])
            image = crop(flip(padded))
            return cutout(image), label

        dataset = dataset.shuffle(10_000).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def learning_rate(steps_per_epoch, initial=0.1, factor=0.2, epochs=LR_EPOCHS):
    """Initial rate, times `factor` after each epoch in `epochs`."""
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [e * steps_per_epoch for e in epochs],
        [initial * factor**i for i in range(len(epochs) + 1)],
    )


def build_model(args):
    model = wide_resnet(args.depth, args.width, classes=100, dropout=args.dropout)
    if args.plain:
        return model
    return keras_ssn.convert(model, args.budget, seed=args.seed)


def train(args):
    """Trains per `args`; returns `(model, history, test accuracy)`."""
    keras.utils.set_random_seed(args.seed)
    train_split, validation_split, test_split = load_splits(args.data_dir, args.mock)
    steps_per_epoch = args.steps or 45_000 // args.batch
    model = build_model(args)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate(steps_per_epoch), momentum=0.9,
                                       nesterov=True, weight_decay=5e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=True,
    )
    history = model.fit(
        pipeline(train_split, args.batch, training=True).repeat(),
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        validation_data=pipeline(validation_split, 500, training=False),
        shuffle=False,  # the pipeline shuffles
        verbose=args.verbose,
    )
    _, test_accuracy = model.evaluate(pipeline(test_split, 500, training=False),
                                      verbose=0)
    return model, history, test_accuracy


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--budget", type=float, default=0.1,
                      help="trainable parameters as a fraction of the plain model's "
                           "(4 is 400%%)")
    size.add_argument("--plain", action="store_true", help="train the plain model")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--depth", type=int, default=28)
    parser.add_argument("--width", type=int, default=10)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=None,
                        help="steps per epoch (default: the 45,000 images once)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--mock", action="store_true",
                        help="random data from tfds.testing.mock_data (no download)")
    parser.add_argument("--save", default=None, help="save the trained model here (.keras)")
    parser.add_argument("--verbose", type=int, default=2)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    model, history, test_accuracy = train(args)
    if not args.plain:
        keras_ssn.summary(model)
    print(f"trainable parameters {keras_ssn.count_trainable(model):,}, "
          f"validation accuracy {history.history['val_accuracy'][-1]:.4f}, "
          f"test accuracy {test_accuracy:.4f}")
    if args.save:
        model.save(args.save)
    return model, history, test_accuracy


if __name__ == "__main__":
    main()
