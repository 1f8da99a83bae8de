"""The memory model of one SGLang replica, per GPU: weights, the static pool, the KV pool, tokens that fit.

Plain numbers in, plain numbers out, so the rules (does one request fit?) and the planner (how many
fit?) compute the same thing, whatever the numbers come from (data/models/*.yaml today).

SGLang reserves `mem-fraction-static` of each GPU's memory for weights plus KV cache; the rest is
headroom for activations, CUDA graphs and NCCL. Weights split across TP x PP ranks. The KV cache of a
token splits across pipeline stages (each keeps its layers) and, for MHA/GQA, across TP ranks by KV
head (ranks beyond the number of KV heads hold copies); an MLA latent is not split across TP.
With hybrid linear attention, SGLang gives the linear-attention state `ratio / (1 + ratio)` of the
pool (`handle_max_mamba_cache`) and the full-attention layers' KV the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9


@dataclass(frozen=True)
class MemoryInputs:
    gpu_memory_gb: float
    mem_fraction_static: float
    checkpoint_gb: float
    tp: int
    pp: int
    # The whole model's KV cache for one token (every layer), in the KV cache dtype.
    kv_bytes_per_token: float
    # True for MHA/GQA (KV heads split across TP ranks), False for MLA (every rank keeps the latent).
    kv_split_across_tp: bool
    # The number of KV heads, when known: TP ranks beyond it replicate heads instead of splitting them.
    kv_heads: int | None = None
    # --mamba-full-memory-ratio for a hybrid linear-attention model; None for a model without one.
    linear_state_ratio: float | None = None


@dataclass(frozen=True)
class MemoryPerGPU:
    inputs: MemoryInputs
    weights_gb: float
    static_pool_gb: float
    # The static pool less the weights: the KV cache, and the linear-attention state of a hybrid model.
    kv_pool_gb: float
    headroom_gb: float
    linear_state_pool_gb: float | None
    # What holds the KV of full-attention layers: the KV pool, less the linear-attention state.
    full_attention_kv_pool_gb: float
    kv_divisor: int
    kv_bytes_per_token: float
    kv_pool_tokens: int

    @property
    def weights_fit(self) -> bool:
        return self.weights_gb < self.static_pool_gb


def kv_divisor(tp: int, pp: int, split_across_tp: bool, kv_heads: int | None = None) -> int:
    """How many ways one token's KV cache splits over the GPUs of a replica."""
    if not split_across_tp:
        return pp
    return (min(tp, kv_heads) if kv_heads else tp) * pp


def memory_per_gpu(inputs: MemoryInputs) -> MemoryPerGPU:
    weights = inputs.checkpoint_gb / (inputs.tp * inputs.pp)
    static = inputs.gpu_memory_gb * inputs.mem_fraction_static
    pool = static - weights
    ratio = inputs.linear_state_ratio
    full_attention = pool / (1 + ratio) if ratio is not None else pool
    divisor = kv_divisor(inputs.tp, inputs.pp, inputs.kv_split_across_tp, inputs.kv_heads)
    per_token = inputs.kv_bytes_per_token / divisor
    per_token = int(per_token) if per_token.is_integer() else per_token
    return MemoryPerGPU(
        inputs=inputs,
        weights_gb=weights,
        static_pool_gb=static,
        kv_pool_gb=pool,
        headroom_gb=inputs.gpu_memory_gb - static,
        linear_state_pool_gb=pool * ratio / (1 + ratio) if ratio is not None else None,
        full_attention_kv_pool_gb=full_attention,
        kv_divisor=divisor,
        kv_bytes_per_token=per_token,
        kv_pool_tokens=max(0, int(full_attention * GB // per_token)),
    )
