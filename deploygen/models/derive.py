"""Model facts from a checkpoint's config.json and file list, each value with the key it came from.

Pure: no network, no files. The Hub reading lives in hub.py; this turns what it read into the facts
that data/models/NAME.yaml holds (schema/model.schema.json). A config family this cannot size raises
a UserError that names the missing key and how to supply the value by hand (`--set FACT=VALUE`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deploygen.errors import Origin, Problem, UserError

Fact = dict[str, Any]  # {"value": ..., "from": "config.json key"}

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# Keys of state-space (mamba) hybrids whose per-request state this module does not size.
MAMBA_KEYS = ("hybrid_override_pattern", "attn_layer_period", "mamba_d_state", "mamba_d_ssm", "ssm_state_size")


@dataclass(frozen=True)
class Checkpoint:
    """What the Hub holds for one commit: the parsed config and index, and the size of every file."""

    repo: str
    commit: str
    config: dict[str, Any]
    index: dict[str, Any] | None
    file_sizes: dict[str, int]


class _Config:
    """config.json lookups that also search `text_config` (multimodal checkpoints nest the language
    model there) and say which key answered."""

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        config = checkpoint.config
        text = config.get("text_config")
        self.scopes = [("text_config.", text)] if isinstance(text, dict) else []
        self.scopes.append(("", config))

    def find(self, *keys: str) -> Fact | None:
        for key in keys:
            for prefix, scope in self.scopes:
                if scope.get(key) is not None:
                    return {"value": scope[key], "from": f"config.json {prefix}{key}"}
        return None

    def need(self, fact: str, *keys: str, what: str) -> Fact:
        found = self.find(*keys)
        if found is None:
            raise self.missing(fact, keys, what)
        return found

    def missing(self, fact: str, keys: tuple[str, ...], what: str) -> UserError:
        searched = " or ".join(keys)
        if len(self.scopes) > 1:
            searched += " (top level or text_config)"
        return UserError(
            Problem(
                Origin(f"config.json of {self.checkpoint.repo}@{self.checkpoint.commit[:12]}"),
                fact,
                f"no {searched}: deploygen cannot derive {what}",
                f"supply it by hand: model add {self.checkpoint.repo}@{self.checkpoint.commit} --set {fact}=VALUE "
                f"(VALUE from the model card or the modeling code; schema/model.schema.json describes {fact})",
            )
        )

    def refuse(self, fact: str, message: str, hint: str) -> UserError:
        origin = Origin(f"config.json of {self.checkpoint.repo}@{self.checkpoint.commit[:12]}")
        return UserError(Problem(origin, fact, message, hint))


def derive_facts(checkpoint: Checkpoint, supplied: dict[str, int | str] | None = None) -> dict[str, Any]:
    """The facts file's content for one checkpoint, in schema order. `supplied` holds values typed
    by hand (--set); they replace what config.json says, or fill in what it lacks."""
    supplied = supplied or {}
    config = _Config(checkpoint)
    facts: dict[str, Any] = {"repo": checkpoint.repo, "commit": checkpoint.commit}

    def given(fact: str) -> Fact | None:
        if fact in supplied:
            return {"value": supplied[fact], "from": "given by hand (--set)"}
        return None

    def add(fact: str, found: Fact | None) -> None:
        found = given(fact) or found
        if found is not None:
            facts[fact] = found

    architectures = checkpoint.config.get("architectures")
    architecture = None
    if isinstance(architectures, list) and architectures and isinstance(architectures[0], str):
        architecture = {"value": architectures[0], "from": "config.json architectures[0]"}
    add("architecture", architecture)
    if "architecture" not in facts:
        raise config.missing("architecture", ("architectures",), "the model class SGLang loads")

    def need(fact: str, *keys: str, what: str) -> None:
        add(fact, given(fact) or config.need(fact, *keys, what=what))

    need("layers", "num_hidden_layers", what="the layer count")
    need("hidden_size", "hidden_size", what="the model width")
    _attention(config, facts, add, need, given)
    _hybrid(config, facts, add, given)
    add("experts", config.find("n_routed_experts", "num_experts", "num_local_experts"))
    if "experts" in facts:
        need("experts_per_token", "num_experts_per_tok", what="how many experts a token uses")
    need("max_context", "max_position_embeddings", what="the maximum context length")
    add("quantization", _quantization(config))
    add("checkpoint_bytes", _checkpoint_bytes(checkpoint, config))
    mtp = config.find("num_nextn_predict_layers", "mtp_num_hidden_layers")
    add(
        "mtp_layers",
        mtp or {"value": 0, "from": "config.json has no num_nextn_predict_layers or mtp_num_hidden_layers"},
    )
    return facts


def _attention(config: _Config, facts: dict, add, need, given) -> None:  # noqa: ANN001 - closures of derive_facts
    need("attention_heads", "num_attention_heads", what="the attention head count")
    mla = given("kv_lora_rank") or config.find("kv_lora_rank")
    if mla is not None:
        # MLA configs also carry num_key_value_heads (GLM-5: 64), which MLA's KV cache does not use.
        indexer = given("index_head_dim") or config.find("index_head_dim")
        kind = "dsa" if indexer else "mla"
        source = f"{mla['from']} present" + (f", {indexer['from']} present (DSA indexer)" if indexer else "")
        add("attention", {"value": kind, "from": source})
        add("kv_lora_rank", mla)
        need("qk_rope_head_dim", "qk_rope_head_dim", what="the MLA rotary key size")
        if indexer:
            add("index_head_dim", indexer)
            add("index_heads", config.find("index_n_heads"))
            add("index_topk", config.find("index_topk"))
        return
    kv_heads = given("kv_heads") or config.find("num_key_value_heads")
    if kv_heads is None:
        kv_heads = {
            "value": facts["attention_heads"]["value"],
            "from": "config.json has no num_key_value_heads: one KV head per query head (num_attention_heads)",
        }
    kind = "mha" if kv_heads["value"] == facts["attention_heads"]["value"] else "gqa"
    add("attention", {"value": kind, "from": f"{kv_heads['from']} vs num_attention_heads"})
    add("kv_heads", kv_heads)
    head_dim = config.find("head_dim")
    if head_dim is None:
        hidden, heads = facts["hidden_size"]["value"], facts["attention_heads"]["value"]
        if hidden % heads:
            raise config.missing("head_dim", ("head_dim",), "the KV head size (hidden_size / heads is not whole)")
        head_dim = {"value": hidden // heads, "from": "config.json hidden_size / num_attention_heads (no head_dim)"}
    add("head_dim", head_dim)


def _hybrid(config: _Config, facts: dict, add, given) -> None:  # noqa: ANN001 - closures of derive_facts
    layers = facts["layers"]["value"]
    layer_types = config.find("layer_types")
    interval = config.find("full_attention_interval")
    by_hand = given("full_attention_layers")
    mamba = config.find(*MAMBA_KEYS)
    if mamba is not None and layer_types is None and by_hand is None:
        raise config.refuse(
            "full_attention_layers",
            f"{mamba['from']}: a state-space (mamba) hybrid, whose per-request state deploygen does not size",
            "supply the count of layers with attention by hand: --set full_attention_layers=N; the planner then "
            "counts per-token KV for those layers only",
        )
    linear = None
    if layer_types is not None:
        kinds = layer_types["value"] if isinstance(layer_types["value"], list) else []
        other = sorted({str(k) for k in kinds if k not in ("full_attention", "linear_attention")})
        if (other or not kinds) and by_hand is None:
            shown = ", ".join(other) if other else "no list of"
            raise config.refuse(
                "full_attention_layers",
                f"{layer_types['from']} has {shown} layers, whose KV deploygen does not size",
                f"supply the count of layers that keep per-token KV by hand: --set full_attention_layers=N "
                f"(all {layers} layers is an upper bound)",
            )
        add(
            "full_attention_layers",
            {"value": kinds.count("full_attention"), "from": f"{layer_types['from']} (full_attention entries)"},
        )
        if kinds.count("linear_attention"):
            linear = {
                "value": kinds.count("linear_attention"),
                "from": f"{layer_types['from']} (linear_attention entries)",
            }
    elif interval is not None and config.find("linear_num_value_heads") is not None:
        full = layers // interval["value"]
        add("full_attention_layers", {"value": full, "from": f"config.json num_hidden_layers / {interval['from']}"})
        linear = {
            "value": layers - full,
            "from": f"config.json num_hidden_layers minus one in every {interval['from']}",
        }
    else:
        add("full_attention_layers", None)
    if linear is None:
        return
    add("linear_attention_layers", linear)
    for fact, key in (
        ("linear_key_heads", "linear_num_key_heads"),
        ("linear_value_heads", "linear_num_value_heads"),
        ("linear_key_head_dim", "linear_key_head_dim"),
        ("linear_value_head_dim", "linear_value_head_dim"),
        ("linear_conv_kernel", "linear_conv_kernel_dim"),
    ):
        found = given(fact) or config.find(key)
        if found is None:
            raise config.missing(fact, (key,), "the linear-attention state size")
        add(fact, found)


def _quantization(config: _Config) -> Fact:
    quantization = config.find("quantization_config")
    if quantization is not None and isinstance(quantization["value"], dict):
        method = quantization["value"].get("quant_method")
        if isinstance(method, str) and method:
            return {"value": method, "from": f"{quantization['from']}.quant_method"}
    dtype = config.find("torch_dtype", "dtype")
    shown = f" ({dtype['from']} {dtype['value']})" if dtype else ""
    return {"value": "none", "from": f"config.json has no quantization_config{shown}"}


def _checkpoint_bytes(checkpoint: Checkpoint, config: _Config) -> Fact:
    sizes = checkpoint.file_sizes
    if checkpoint.index is not None:
        weight_map = checkpoint.index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise config.refuse(
                "checkpoint_bytes",
                f"{INDEX_FILE} has no weight_map",
                "supply the checkpoint size by hand: --set checkpoint_bytes=N",
            )
        shards = sorted(set(map(str, weight_map.values())))
        absent = [shard for shard in shards if sizes.get(shard) is None]
        if absent:
            raise config.refuse(
                "checkpoint_bytes",
                f"{INDEX_FILE} names {len(absent)} shard(s) the commit does not hold, first {absent[0]}",
                "pin a revision whose upload is complete, or supply --set checkpoint_bytes=N",
            )
        return {
            "value": sum(sizes[shard] for shard in shards),
            "from": f"Hub file sizes of the {len(shards)} shards in {INDEX_FILE} weight_map",
        }
    if sizes.get(SINGLE_FILE) is not None:
        return {"value": sizes[SINGLE_FILE], "from": f"Hub file size of {SINGLE_FILE} (no {INDEX_FILE})"}
    raise config.refuse(
        "checkpoint_bytes",
        f"the commit has neither {INDEX_FILE} nor {SINGLE_FILE}",
        "SGLang on Modal loads safetensors checkpoints; for another format supply --set checkpoint_bytes=N",
    )
