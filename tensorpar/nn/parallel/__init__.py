"""Parallel layouts of the :mod:`tensorpar.nn` layers under MPI.

Each parallel layer is a plain layer holding a shard of the weights plus a
named communication step of :mod:`tensorpar.nn.parallel.mappings`
(Megatron-LM's layout), so its forward pass shows where data moves. Every
layout is tested equal to the serial layer at 1, 2, 3 and 4 ranks, and its
bytes per step equal the formula in its docstring. This package imports
only :mod:`tensorpar.distributed.comm` and :mod:`tensorpar.distributed.grid`
from the distributed layer, never mpi4py itself.
"""

from __future__ import annotations

# --- par1: mappings, ledger, Megatron 1D / sequence parallel, RNNs, data parallel, ZeRO ---
from .attention import ParallelMultiheadAttention
from .clip import parallel_clip_grad_norm, parallel_grad_norm
from .data_parallel import DataParallel, broadcast_parameters, plan_buckets
from .embedding import VocabParallelCrossEntropy, VocabParallelEmbedding
from .feedforward import ParallelFeedForward
from .layers import ColumnParallelLinear, RowParallelLinear
from .ledger import MemoryLedger, format_ledgers, gather_ledgers, memory_ledger, traffic_by_layer
from .mappings import (
    Mapping,
    agree_on,
    copy_to_tensor_parallel,
    copy_to_tensor_parallel_backward,
    gather_from_sequence_parallel,
    gather_from_sequence_parallel_backward,
    gather_from_tensor_parallel,
    gather_from_tensor_parallel_backward,
    reduce_from_tensor_parallel,
    reduce_from_tensor_parallel_backward,
    reduce_scatter_to_sequence_parallel,
    reduce_scatter_to_sequence_parallel_backward,
    scatter_to_sequence_parallel,
    scatter_to_sequence_parallel_backward,
    scatter_to_tensor_parallel,
    scatter_to_tensor_parallel_backward,
)
from .rnn import ParallelGRU, ParallelLSTM
from .sharding import ShardSpec, gather_parameters, gather_shard, shard
from .transformer import ParallelTransformerBlock
from .zero import ZeroAdam

__all__ = [
    "ColumnParallelLinear", "DataParallel", "Mapping", "MemoryLedger", "ParallelFeedForward",
    "ParallelGRU", "ParallelLSTM", "ParallelMultiheadAttention", "ParallelTransformerBlock",
    "RowParallelLinear", "ShardSpec", "VocabParallelCrossEntropy", "VocabParallelEmbedding",
    "ZeroAdam", "agree_on", "broadcast_parameters", "copy_to_tensor_parallel",
    "copy_to_tensor_parallel_backward", "format_ledgers", "gather_from_sequence_parallel",
    "gather_from_sequence_parallel_backward", "gather_from_tensor_parallel",
    "gather_from_tensor_parallel_backward", "gather_ledgers", "gather_parameters",
    "gather_shard", "memory_ledger", "parallel_clip_grad_norm", "parallel_grad_norm",
    "plan_buckets", "reduce_from_tensor_parallel", "reduce_from_tensor_parallel_backward",
    "reduce_scatter_to_sequence_parallel", "reduce_scatter_to_sequence_parallel_backward",
    "scatter_to_sequence_parallel", "scatter_to_sequence_parallel_backward",
    "scatter_to_tensor_parallel", "scatter_to_tensor_parallel_backward", "shard",
    "traffic_by_layer",
]
# --- end par1 ---

# --- par2: rotated (RTP), folded tensor+sequence (TSP) and 2-D SUMMA layouts ---
from .rotated import RotatedLinear, gathered_state  # noqa: E402
from .summa import SummaLinear, summa_grid  # noqa: E402
from .tsp import (  # noqa: E402
    TSPAttention,
    TSPFeedForward,
    TSPTransformerBlock,
    tsp_gather,
    tsp_positions,
    tsp_split,
)

__all__ += ["RotatedLinear", "SummaLinear", "TSPAttention", "TSPFeedForward",
            "TSPTransformerBlock", "gathered_state", "summa_grid", "tsp_gather", "tsp_positions",
            "tsp_split"]
# --- end par2 ---
