"""Neural-network layers built on tensorpar's primitives, with hand-written backward passes.

Every layer is a :class:`Module`: ``forward`` keeps what ``backward`` needs,
``backward(grad_out)`` returns the input gradient and accumulates parameter
gradients. Weights of compressed layers are TT-matrices and CP factors, and
the products go through :mod:`tensorpar.tt`. Parallel layouts live in
:mod:`tensorpar.nn.parallel`.
"""

from __future__ import annotations

# --- dense layers, activations, losses, optimizers (nn1) ---
from .activation import GELU, ReLU, Sigmoid, Tanh
from .attention import MultiheadAttention
from .containers import Sequential
from .dropout import Dropout
from .embedding import Embedding
from .linear import Linear
from .loss import MSELoss, SoftmaxCrossEntropy
from .module import Module, Parameter
from .norm import LayerNorm
from .optim import SGD, Adam, AdamW, WarmupCosine, clip_grad_norm
from .state import load_state, save_state
from .transformer import FeedForward, TransformerBlock

__all__ = [
    "GELU", "SGD", "Adam", "AdamW", "Dropout", "Embedding", "FeedForward", "LayerNorm", "Linear",
    "MSELoss", "Module", "MultiheadAttention", "Parameter", "ReLU", "Sequential", "Sigmoid",
    "SoftmaxCrossEntropy", "Tanh", "TransformerBlock", "WarmupCosine", "clip_grad_norm",
    "load_state", "save_state",
]

# --- TT/CP-compressed layers and recurrent layers (nn2) ---
from .cp_linear import CPLinear  # noqa: E402
from .rnn import GRU, LSTM  # noqa: E402
from .tt_cores import TTCores  # noqa: E402
from .tt_embedding import TTEmbedding  # noqa: E402
from .tt_init import tt_matrix_init  # noqa: E402
from .tt_linear import TTLinear, tt_factory  # noqa: E402

__all__ += ["CPLinear", "GRU", "LSTM", "TTCores", "TTEmbedding", "TTLinear", "tt_factory",
            "tt_matrix_init"]
