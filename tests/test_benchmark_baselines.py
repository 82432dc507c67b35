"""The benchmark's reduced-width and ALBERT-style baselines hit the counts they claim."""

from benchmarks.accuracy import match_width
from benchmarks.architectures import char_transformer
from benchmarks.architectures import cnn1d
from conftest import backend_independent
from keras_ssn.layer_paths import count_trainable

pytestmark = backend_independent


def test_reduced_width_is_the_closest_count_the_architecture_allows():
    target = 10_843  # 10% of the quickstart CNN
    scale, count = match_width(cnn1d, target)
    assert count == count_trainable(cnn1d(scale)) == 10_799
    # Slightly wider and narrower models are further from the target.
    for factor in (0.98, 1.02):
        other = count_trainable(cnn1d(scale * factor))
        assert other != count and abs(other - target) > abs(count - target)


def test_albert_reuses_one_blocks_layers():
    plain = count_trainable(char_transformer(98, blocks=3))
    shared = count_trainable(char_transformer(98, blocks=3, reuse_block=True))
    dim = 64
    block = 4 * dim * dim + 2 * dim * 4 * dim + 2 * dim  # attention, MLP, 2 RMS norms
    assert plain - shared == 2 * block
