"""Data-parallel training of a converted model across processes (JAX).

Every process runs this script with its own `--process-id`; together they
train one converted model with `keras.distribution.DataParallel` over all
their devices. Each process feeds its own part of every batch, and per step
the processes exchange only the gradient of the trainable parameters (the
budget), not of the model's generated weights.

On one machine, `--processes N` starts N processes over loopback (CPU
collectives with gloo) and waits for them:

    python examples/distributed.py --processes 2

On several hosts, run on each (the same code; `--coordinator` is host 0's
address and a free port):

    python examples/distributed.py --coordinator 10.0.0.1:12345 \\
        --num-processes 2 --process-id 0        # 1 on the second host

Data: scikit-learn's digits (shipped with scikit-learn, no download), an
MLP converted at `--budget`. Process 0 prints a JSON line with the training
losses, the test accuracy and the bank's checksum; `--processes 1` trains
the same batches in one process, for comparison.
"""

import argparse
import json
import os
import socket
import subprocess
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=None,
                        help="start this many processes on this machine")
    parser.add_argument("--coordinator", default=None, help="host:port of process 0")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--budget", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    return parser.parse_args(argv)


def launch(count, argv):
    """Starts `count` processes of this script on this machine; returns 0's output."""
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    own = [a for a in argv if not a.startswith("--processes")]
    if "--processes" in argv:
        index = argv.index("--processes")
        own = argv[:index] + argv[index + 2:]
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, *own, "--coordinator", f"localhost:{port}",
             "--num-processes", str(count), "--process-id", str(i)],
            stdout=subprocess.PIPE, text=True,
        )
        for i in range(count)
    ]
    outputs = [worker.communicate()[0] for worker in workers]
    failed = [i for i, worker in enumerate(workers) if worker.returncode]
    if failed:
        raise SystemExit(f"processes {failed} failed")
    return outputs[0]


def train(args):
    import jax

    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    import keras_ssn

    if args.coordinator:
        keras.distribution.initialize(args.coordinator, args.num_processes, args.process_id)
    keras.utils.set_random_seed(0)
    devices = keras.distribution.list_devices()
    distribution = keras.distribution.DataParallel(devices=devices)
    distribution.auto_shard_dataset = False  # each process feeds its own part
    keras.distribution.set_distribution(distribution)

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train_count = (1400 // args.batch_size) * args.batch_size
    train_index, test_index = order[:train_count], order[train_count:]
    # Each process feeds its own slice of every global batch.
    local = args.batch_size // args.num_processes
    part = np.concatenate([
        train_index[start + args.process_id * local: start + (args.process_id + 1) * local]
        for start in range(0, train_count, args.batch_size)
    ])

    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dense(10),
    ])
    small = keras_ssn.convert(model, args.budget, seed=0)
    small.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    history = small.fit(x[part], y[part], batch_size=local, epochs=args.epochs,
                        shuffle=False, verbose=0)
    bank = np.asarray(jax.device_get(small.bank.vector()))
    plain = keras_ssn.materialize(small)
    keras.distribution.set_distribution(None)
    predictions = plain.predict(x[test_index], verbose=0).argmax(-1)
    return {
        "processes": args.num_processes,
        "devices": len(devices),
        "trainable": keras_ssn.count_trainable(small),
        "losses": [float(v) for v in history.history["loss"]],
        "test_accuracy": float(np.mean(predictions == y[test_index])),
        "bank_sum": float(bank.sum()),
        "bank_abs_sum": float(np.abs(bank).sum()),
    }


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    processes = args.processes or args.num_processes
    if args.batch_size % processes:
        raise SystemExit(
            f"--batch-size {args.batch_size} does not divide by {processes} processes: "
            "each process feeds an equal part of every batch."
        )
    if args.processes and args.processes > 1:
        print(launch(args.processes, argv).strip().splitlines()[-1])
        return
    result = train(args)
    if args.process_id == 0:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
