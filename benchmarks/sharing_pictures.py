"""The sharing pictures and summaries of two larger models, for the guide.

Converts a keras-hub GPT-2 backbone (2 layers, 64 wide, built from its
config, no download) and `keras.applications.ResNet50V2(weights=None)` at
10%, saves `plot_sharing()` of each under `docs/plots/` and prints their
`summary()`:

    python -m benchmarks.sharing_pictures [--out docs/plots]
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import keras_ssn  # noqa: E402


def gpt2_backbone():
    import keras_hub

    return keras_hub.models.GPT2Backbone(
        vocabulary_size=1000, num_layers=2, num_heads=4, hidden_dim=64,
        intermediate_dim=256, max_sequence_length=64,
    )


def resnet50v2():
    return keras.applications.ResNet50V2(weights=None, input_shape=(64, 64, 3), classes=10)


MODELS = {"gpt2_backbone": gpt2_backbone, "resnet50v2": resnet50v2}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/plots")
    parser.add_argument("--budget", type=float, default=0.1)
    args = parser.parse_args(argv)
    for name, build in MODELS.items():
        small = keras_ssn.convert(build(), args.budget, seed=0)
        keras_ssn.summary(small, line_length=100)
        keras_ssn.plot_sharing(small, os.path.join(args.out, f"sharing_{name}.png"))


if __name__ == "__main__":
    main()
