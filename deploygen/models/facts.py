"""data/models/NAME.yaml: read, checked against schema/model.schema.json, and the numbers derived from it.

KV bytes per token are computed here from the attention geometry, for the layouts SGLang allocates
(python/sglang/srt/mem_cache/memory_pool.py in https://github.com/sgl-project/sglang):
- MHA/GQA (`MHATokenToKVPool`): K and V of `kv_heads x head_dim` per layer; each TP rank holds
  kv_heads / tp heads, and at least one (KV heads are replicated when tp exceeds them).
- MLA (`MLATokenToKVPool`): one latent of `kv_lora_rank + qk_rope_head_dim` per layer, not split across TP.
- DSA (`NSATokenToKVPool`): MLA plus the indexer's keys, `index_head_dim` FP8 bytes and one FP32 scale per
  128 values (`quant_block_size`), whatever the KV dtype. With an FP8 KV cache the latent is FP8 with one
  FP32 scale per 128 values while the rotary part stays BF16 (`rope_storage_dtype`): 656 bytes for
  512 + 64, FlashMLA's FP8 sparse layout (https://github.com/deepseek-ai/FlashMLA).
- Hybrid linear attention (`HybridLinearKVPool` + `MambaPool`): only full-attention layers keep per-token
  KV; each linear-attention layer keeps a fixed state per request.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from deploygen.errors import Origin, Problem, UserError
from deploygen.load.yaml_source import display_path, read_yaml
from deploygen.memory import kv_divisor
from deploygen.paths import DATA_DIR, PROJECT_DIR, ROOT
from deploygen.suggest import did_you_mean

SCHEMA_PATH = ROOT / "schema" / "model.schema.json"
# The facts files shipped with deploygen, and those of the project it runs in (the same folder in a
# checkout; a team's own repository with deploygen installed keeps its models beside its profiles).
SHIPPED_MODELS_DIR = DATA_DIR / "models"
MODELS_DIR = PROJECT_DIR / "data" / "models"
SEARCHED_DIRS = tuple(dict.fromkeys((MODELS_DIR, SHIPPED_MODELS_DIR)))

# Bytes per value of each --kv-cache-dtype SGLang accepts for a KV cache of that width.
KV_DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "fp8_e4m3": 1, "fp8_e5m2": 1}
# NSATokenToKVPool.quant_block_size: one FP32 scale per this many FP8 values.
DSA_QUANT_BLOCK = 128
FP32_BYTES = 4
BF16_BYTES = 2


@functools.cache
def model_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(model_schema())


@dataclass(frozen=True)
class ModelFacts:
    """One checkpoint's facts (values only; `sources` keeps where each came from)."""

    name: str
    file: str
    repo: str
    commit: str
    values: dict[str, Any]
    sources: dict[str, str]

    def __getattr__(self, fact: str) -> Any:
        # Facts by schema name (facts.layers, facts.kv_heads); an optional fact that is absent is None.
        if fact.startswith("_") or fact not in model_schema()["properties"]:
            raise AttributeError(fact)
        return self.values.get(fact)

    def source(self, fact: str) -> str:
        """`data/models/x.yaml layers, from config.json num_hidden_layers`: for planner and rule messages."""
        return f"{self.file} {fact}, from {self.sources[fact]}" if fact in self.sources else f"{self.file} {fact}"

    @property
    def checkpoint_gb(self) -> float:
        return self.checkpoint_bytes / 1e9

    @property
    def kv_layers(self) -> int:
        """Layers that keep a per-token KV cache."""
        return self.full_attention_layers or self.layers

    @property
    def hybrid_linear_attention(self) -> bool:
        return bool(self.linear_attention_layers)

    @property
    def kv_split_across_tp(self) -> bool:
        return self.attention in ("mha", "gqa")

    def kv_bytes_per_token_per_layer(self, kv_dtype: str) -> int:
        """One token's KV in one layer on one GPU holding all of it (no TP split)."""
        width = _dtype_bytes(kv_dtype)
        if self.attention in ("mha", "gqa"):
            return 2 * self.kv_heads * self.head_dim * width
        if self.attention == "dsa" and width == 1:
            latent = self.kv_lora_rank + self.kv_lora_rank // DSA_QUANT_BLOCK * FP32_BYTES
            latent += self.qk_rope_head_dim * BF16_BYTES
        else:
            latent = (self.kv_lora_rank + self.qk_rope_head_dim) * width
        if self.attention == "dsa":
            latent += self.index_head_dim + self.index_head_dim // DSA_QUANT_BLOCK * FP32_BYTES
        return latent

    def kv_bytes_per_token(self, kv_dtype: str) -> int:
        """One token's KV in the whole model (every layer, every KV head once)."""
        return self.kv_layers * self.kv_bytes_per_token_per_layer(kv_dtype)

    def kv_bytes_per_token_per_gpu(self, kv_dtype: str, tp: int, pp: int = 1) -> float:
        """One token's KV on one GPU at tensor parallelism `tp`, as the memory model splits it."""
        per_gpu = self.kv_bytes_per_token(kv_dtype) / kv_divisor(tp, pp, self.kv_split_across_tp, self.kv_heads)
        return int(per_gpu) if per_gpu.is_integer() else per_gpu

    def linear_state_bytes_per_request_per_gpu(self, tp: int, ssm_dtype_bytes: int = FP32_BYTES) -> int:
        """The fixed state one request keeps in the linear-attention layers on one GPU (MambaPool):
        the SSM state (value heads / tp x key dim x value dim, SGLang's --mamba-ssm-dtype, FP32 by
        default) plus the convolution state ((kernel - 1) x conv channels / tp, BF16)."""
        if not self.linear_attention_layers:
            return 0
        ssm = self.linear_value_heads // tp * self.linear_key_head_dim * self.linear_value_head_dim * ssm_dtype_bytes
        channels = 2 * self.linear_key_heads * self.linear_key_head_dim
        channels += self.linear_value_heads * self.linear_value_head_dim
        conv = (self.linear_conv_kernel - 1) * (channels // tp) * BF16_BYTES
        return self.linear_attention_layers * (ssm + conv)


def _dtype_bytes(kv_dtype: str) -> int:
    dtype = {"bf16": "bfloat16", "fp16": "float16", "half": "float16"}.get(kv_dtype, kv_dtype)
    if dtype not in KV_DTYPE_BYTES:
        raise UserError(
            f"no KV size for kv-cache-dtype {kv_dtype!r}; deploygen knows {', '.join(sorted(KV_DTYPE_BYTES))}"
        )
    return KV_DTYPE_BYTES[dtype]


def default_name(repo: str) -> str:
    """Qwen/Qwen3-8B -> qwen3-8b: the file name a profile's model.facts names."""
    return repo.split("/", 1)[1].lower()


def known_models(models_dir: Path | None = None) -> list[str]:
    folders = (models_dir,) if models_dir is not None else SEARCHED_DIRS
    return sorted({path.stem for folder in folders for path in folder.glob("*.yaml")})


def model_path(name: str, models_dir: Path | None = None) -> Path:
    """The facts file of NAME: the project's own first, then the shipped one; the project's when neither."""
    folders = (models_dir,) if models_dir is not None else SEARCHED_DIRS
    return next((f / f"{name}.yaml" for f in folders if (f / f"{name}.yaml").is_file()), folders[0] / f"{name}.yaml")


def load_model_facts(name: str, models_dir: Path | None = None) -> ModelFacts:
    """data/models/NAME.yaml, checked; a missing, bad or incomplete file is a located UserError."""
    path = model_path(name, models_dir)
    return _load_cached(path, _version(path), name, models_dir)


def _version(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=64)
def _load_cached(path: Path, version: tuple[int, int] | None, name: str, models_dir: Path | None) -> ModelFacts:
    shown = display_path(path)
    if version is None:
        known = ", ".join(known_models(models_dir)) or "none"
        raise UserError(
            Problem(
                Origin(shown),
                "",
                f"no model data file for {name!r} (known: {known})",
                "write it from the Hub: generate.py model add OWNER/REPO --name " + name,
            )
        )
    data, origins = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(
            Problem(Origin(shown, 1, 1), "", "a model data file is a mapping", "see schema/model.schema.json")
        )
    problems = schema_problems(data, origins, shown)
    if problems:
        raise UserError(problems)
    values = {k: v["value"] if isinstance(v, dict) else v for k, v in data.items()}
    sources = {k: v["from"] for k, v in data.items() if isinstance(v, dict)}
    return ModelFacts(name, shown, data["repo"], data["commit"], values, sources)


def schema_problems(data: dict[str, Any], origins: dict[tuple, Origin], shown: str) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(data):
        path = tuple(error.absolute_path)
        origin = origins.get(path) or Origin(shown, 1, 1)
        dotted = ".".join(map(str, path))
        if error.validator == "additionalProperties":
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                where = origins.get((*path, key), origin)
                problems.append(
                    Problem(
                        where, ".".join(map(str, (*path, key))), f"unknown key {key!r}", _did_you_mean(key, allowed)
                    )
                )
            continue
        if error.validator in ("required", "dependentRequired"):
            missing = error.message.split("'")[1]
            field = ".".join(map(str, (*path, missing)))
            problems.append(Problem(origin, field, f"missing {missing!r}{_because(error)}", _fix(missing)))
            continue
        problems.append(Problem(origin, dotted, error.message, _fix(str(path[0])) if path else ""))
    return sorted(problems, key=lambda p: (p.origin.line, p.origin.column, p.path))


def _because(error: jsonschema.ValidationError) -> str:
    if error.validator == "dependentRequired":
        return f" (needed with {error.message.split(' is a dependency of ')[-1]})"
    if "then" in error.schema_path:
        return " (needed for this attention kind)"
    return ""


def _fix(fact: str) -> str:
    schema = model_schema()["properties"].get(fact)
    if schema is None:
        return ""
    if fact in ("repo", "commit"):
        return f"{schema['description']} Regenerate the file: generate.py model add OWNER/REPO"
    return f'write `{fact}: {{value: ..., from: "where the value comes from"}}`; {schema["description"]}'


# Keys of the hand-written facts files deploygen used before `model add`, and what replaced them.
_REPLACED_KEYS = {
    "kv_bytes_per_token": "deploygen derives KV bytes per token from the attention geometry; remove it",
    "kv_split_across_tp": "deploygen knows it from the attention kind; remove it",
    "hybrid_linear_attention": "write linear_attention_layers and the linear_* facts instead",
    "max_position_embeddings": "write max_context",
    "checkpoint_gb": "write checkpoint_bytes",
    "num_key_value_heads": "write kv_heads",
    "source": "each fact carries its own `from`; remove it",
}


def _did_you_mean(key: str, allowed: list[str]) -> str:
    if key in _REPLACED_KEYS:
        return f"{_REPLACED_KEYS[key]} (or regenerate the file: generate.py model add OWNER/REPO)"
    return did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
