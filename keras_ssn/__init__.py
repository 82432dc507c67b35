"""keras_ssn: train any Keras model under any parameter budget.

Implements Neural Parameter Allocation Search with Shapeshifter Networks
(Plummer et al., ICLR 2022): layers generate their weights from one shared,
budget-sized weight bank.
"""

from keras_ssn import baselines
from keras_ssn.bank import BankInitializer
from keras_ssn.bank import WeightBank
from keras_ssn.bank_sharding import bank_layouts
from keras_ssn.budget import BudgetError
from keras_ssn.cloning import clone_model
from keras_ssn.convert import UnsupportedLayerError
from keras_ssn.copying import CopyError
from keras_ssn.convert import convert
from keras_ssn.materializing import materialize
from keras_ssn.layer_paths import count_trainable
from keras_ssn.layers import SharedConv1D
from keras_ssn.layers import SharedConv1DTranspose
from keras_ssn.layers import SharedConv2D
from keras_ssn.layers import SharedConv2DTranspose
from keras_ssn.layers import SharedConv3D
from keras_ssn.layers import SharedConv3DTranspose
from keras_ssn.layers import SharedDense
from keras_ssn.layers import SharedDepthwiseConv1D
from keras_ssn.layers import SharedDepthwiseConv2D
from keras_ssn.layers import SharedEinsumDense
from keras_ssn.layers import SharedEmbedding
from keras_ssn.layers import SharedGRU
from keras_ssn.layers import SharedGRUCell
from keras_ssn.layers import SharedLSTM
from keras_ssn.layers import SharedLSTMCell
from keras_ssn.layers import SharedMultiHeadAttention
from keras_ssn.layers import SharedReversibleEmbedding
from keras_ssn.layers import SharedUntiedReversibleEmbedding
from keras_ssn.layers import SharedSeparableConv1D
from keras_ssn.layers import SharedSeparableConv2D
from keras_ssn.layers import SharedSimpleRNN
from keras_ssn.layers import SharedSimpleRNNCell
from keras_ssn.layers import register_shared_layer
from keras_ssn.layers import shared_variant
from keras_ssn.learned_groups import learn_groups
from keras_ssn.functional_subclasses import SharedFunctionalSubclass
from keras_ssn.models import SharedFunctional
from keras_ssn.models import SharedModel
from keras_ssn.models import SharedSequential
from keras_ssn.plot import plot_sharing
from keras_ssn.weight_fit import FitWeights
from keras_ssn.report import summary

__version__ = "0.1.0"
