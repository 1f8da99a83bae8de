"""Where SGLang's JIT compilers keep their kernels: one folder of the persistent cache volume each."""


def jit_cache_env(cache_dir: str) -> dict[str, str]:
    """Every JIT compiler SGLang uses, pointed at the persistent cache folder."""
    return {
        "SGLANG_DG_CACHE_DIR": f"{cache_dir}/deep_gemm",
        "TRITON_CACHE_DIR": f"{cache_dir}/triton",
        "FLASHINFER_WORKSPACE_BASE": f"{cache_dir}/flashinfer",
        "TVM_FFI_CACHE_DIR": f"{cache_dir}/tvm_ffi",
        "CUTE_DSL_CACHE_DIR": f"{cache_dir}/cute_dsl",
        "TORCHINDUCTOR_CACHE_DIR": f"{cache_dir}/inductor",
    }
