"""Where vLLM keeps what it compiles: one folder of the persistent cache volume each.

vLLM compiles at its first start (torch.compile artifacts under VLLM_CACHE_ROOT, Triton and FlashInfer JIT
kernels) and has no separate precompile step; on the cache volume, later starts load instead of compiling.
"""


def jit_cache_env(cache_dir: str) -> dict[str, str]:
    """Every compile cache vLLM uses, pointed at the persistent cache folder."""
    return {
        "VLLM_CACHE_ROOT": f"{cache_dir}/vllm",
        "TRITON_CACHE_DIR": f"{cache_dir}/triton",
        "FLASHINFER_WORKSPACE_BASE": f"{cache_dir}/flashinfer",
        "TORCHINDUCTOR_CACHE_DIR": f"{cache_dir}/inductor",
    }
