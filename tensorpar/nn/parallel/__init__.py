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
from .rotated import RotatedLinear, gathered_state
from .sharding import ShardSpec, gather_parameters, gather_shard, shard
from .summa import SummaLinear, summa_grid
from .transformer import ParallelTransformerBlock
from .tsp import (
    TSPAttention,
    TSPFeedForward,
    TSPTransformerBlock,
    tsp_gather,
    tsp_positions,
    tsp_split,
)
from .zero import ZeroAdam

__all__ = [
    "agree_on", "broadcast_parameters", "ColumnParallelLinear", "copy_to_tensor_parallel",
    "copy_to_tensor_parallel_backward", "DataParallel", "format_ledgers",
    "gather_from_sequence_parallel", "gather_from_sequence_parallel_backward",
    "gather_from_tensor_parallel", "gather_from_tensor_parallel_backward", "gather_ledgers",
    "gather_parameters", "gather_shard", "gathered_state", "Mapping", "memory_ledger",
    "MemoryLedger", "parallel_clip_grad_norm", "parallel_grad_norm", "ParallelFeedForward",
    "ParallelGRU", "ParallelLSTM", "ParallelMultiheadAttention", "ParallelTransformerBlock",
    "plan_buckets", "reduce_from_tensor_parallel", "reduce_from_tensor_parallel_backward",
    "reduce_scatter_to_sequence_parallel", "reduce_scatter_to_sequence_parallel_backward",
    "RotatedLinear", "RowParallelLinear", "scatter_to_sequence_parallel",
    "scatter_to_sequence_parallel_backward", "scatter_to_tensor_parallel",
    "scatter_to_tensor_parallel_backward", "shard", "ShardSpec", "summa_grid", "SummaLinear",
    "traffic_by_layer", "tsp_gather", "tsp_positions", "tsp_split", "TSPAttention",
    "TSPFeedForward", "TSPTransformerBlock", "VocabParallelCrossEntropy", "VocabParallelEmbedding",
    "ZeroAdam",
]
