"""What the templates show, computed here: every value is a pre-rendered Python expression.

The templates receive one `View` per deployment (as datamodel-code-generator feeds its templates
pre-rendered strings) and hold almost no logic. Every profile value reaches the source through
`py_literal`, every profile comment through `comment_block`, so no profile string can leave its
literal or its comment.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploygen.files import read_bytes
from deploygen.load.yaml_source import Path_, display_path
from deploygen.models.facts import model_path
from deploygen.paths import DATA_DIR, GENERATED_DIR, ROOT, SCHEMA_PATH, TEMPLATES_DIR
from deploygen.plan.deployment import AUTOSCALER_SCHEDULE, Deployment, Flag, ImageStep
from deploygen.render.literals import py_literal
from deploygen.render.runtime_source import RUNTIME_DIR, RuntimeModule, import_block, runtime_module
from deploygen.sglang.catalog import sglang_serve_since
from deploygen.validate import derived
from deploygen.validate.derived import STOP_OVERHEAD, VOLUME_COMMIT_MARGIN, image_slug, model_dir

MINUTE = 60
HOUR = 60 * MINUTE

# The runtime modules in the order the rendered file includes them, after the Modal code.
LIBRARY = ("request_paths", "engine", "weights", "local")
# And for a multi-node profile, the cluster's.
CLUSTER_LIBRARY = ("cluster_link", "cluster")
# The keep-alive module joins them when the profile keeps a replica warm.
KEEPALIVE_LIBRARY = "keepalive"
# The oldest modal SDK that has what each serving interface renders: @app.server came in 1.5.1
# (https://github.com/modal-labs/modal-client/blob/main/CHANGELOG.md); the cls form's parameter names
# (min_containers, scaledown_window, @modal.concurrent) are those of modal 1.0.
MINIMUM_MODAL = {"server": "1.5.1", "cls": "1.0"}


# Flags whose value is one of the file's constants: the command reads them from there.
CONSTANT_FLAGS = {
    ("model", "path"): "MODEL_PATH",
    ("model", "name"): "MODEL_NAME",
    ("gpu", "count"): "str(GPU_COUNT)",
    ("server", "port"): "str(port)",
}


CACHE_FOLDER = [
    "One cache folder per architecture and image: a new GPU or image compiles afresh instead of",
    "loading stale kernels, and JIT caches survive cold starts (15 minutes of JIT per start",
    "otherwise).",
]

# The serving container's resources a profile may set (server.*): Modal's own argument names.
CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral_disk")


def resource_literal(value: Any) -> str:
    """A reservation as Modal takes it: a number, or a (request, limit) tuple."""
    return f"({py_literal(value[0])}, {py_literal(value[1])})" if isinstance(value, list) else py_literal(value)


@dataclass(frozen=True)
class Line:
    """One line of code, with the comment lines (already `# `-prefixed) that stand above it."""

    code: str
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineView:
    """What differs by engine in the rendered file: names, the command partial, the caches module."""

    name: str  # as logs and comments call it
    image_var: str  # the Modal image object
    image_constant: str  # the constant holding its reference
    start_function: str
    command_template: str
    caches_module: str  # the runtime module with jit_cache_env for this engine
    image_suffix: str  # chained after from_registry(...)


ENGINES = {
    "sglang": EngineView(
        "SGLang", "sglang_image", "SGLANG_IMAGE", "start_sglang", "partials/command.py.j2", "caches", ""
    ),
    # vllm/vllm-openai's ENTRYPOINT is `vllm serve`: cleared, so the container runs what Modal starts.
    "vllm": EngineView(
        "vLLM",
        "vllm_image",
        "VLLM_IMAGE",
        "start_vllm",
        "partials/command_vllm.py.j2",
        "vllm_caches",
        ".entrypoint([])",
    ),
}
# Said in place of the DeepGEMM precompile function, which vLLM has no equivalent of.
VLLM_NO_PRECOMPILE = (
    "No precompile function: vLLM has no separate compile step. Its torch.compile graphs and Triton and",
    "FlashInfer kernels compile during the first start into CACHE_DIR on the cache volume; later starts",
    "load them from there.",
)


@dataclass(frozen=True)
class View:
    engine: EngineView
    docstring: str
    stdlib_imports: tuple[str, ...]
    constants: tuple[Line, ...]
    engine_env: tuple[Line, ...]
    download_weights: str  # the call that fills the weights volume
    image_steps: tuple[Line, ...]  # the profile's build steps, chained after from_registry(...)
    download_image: tuple[str, str]  # python version, huggingface_hub requirement
    flags: tuple[Line, ...]
    serve_command: Line | None  # SGLang's SERVE_COMMAND: `sglang serve`, or launch_server where it is missing
    hf_secret: bool
    api_key_secret: bool
    download: tuple[Line, ...]
    compile: tuple[Line, ...] | None  # None: no DeepGEMM precompile
    cache_volume: bool  # False: no volumes.compile_cache, JIT caches on the container's disk
    compile_off_comments: tuple[str, ...]  # why there is none
    warmup: bool
    interface: str  # "server" (@app.server) or "cls" (@app.cls + @modal.web_server)
    server: tuple[Line, ...]
    concurrency: Line
    web_server: str  # the @modal.web_server arguments of the cls form
    keepalive_mode: str  # "off", "autoscaler" or "ping"
    keepalive: tuple[Line, ...]
    keepalive_function: tuple[Line, ...]  # the keep_warm decorator's arguments
    ping_headers: str  # what the keep-alive ping sends: Modal's proxy auth headers, or none
    outside_min_containers: str  # the autoscaler keep-alive's min_containers outside the window
    # A multi-node profile: the arguments of its clustered @app.server; None: one node.
    cluster_server: tuple[Line, ...] | None
    early_runtime: RuntimeModule
    library: tuple[RuntimeModule, ...]


def comment_block(lines: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Comment lines for the rendered file; characters that could end a comment line are escaped."""
    return tuple(f"# {_printable(line)}".rstrip() for line in lines)


def _printable(text: str) -> str:
    # Python ends a comment at \n or \r; NUL and other controls are not allowed in source at all.
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def seconds(value: Any) -> str:
    """A duration in seconds as the modal-examples write it: `24 * HOURS`, `15 * MINUTES`, `30`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 2 * HOUR and value % HOUR == 0:
            return f"{value // HOUR} * HOURS"
        if value >= MINUTE and value % MINUTE == 0:
            return f"{value // MINUTE} * MINUTES"
    return py_literal(value)


class _Builder:
    def __init__(self, deployment: Deployment, out_dir: Path):
        self.deployment = deployment
        self.out_dir = out_dir
        self.profile = deployment.profile
        self.data = deployment.profile.data

    def value(self, path: Path_) -> Any:
        node: Any = self.data
        for part in path:
            node = node[part]
        return node

    def comments(self, path: Path_, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """The profile's comment above the value at path, else the template's own."""
        return comment_block(self.profile.comment(*path) or default)

    def line(self, template: str, path: Path_, render=py_literal, default: tuple[str, ...] = ()) -> Line:
        """`template` with `{}` replaced by the rendered value at path, under the value's comment."""
        return Line(template.format(render(self.value(path))), self.comments(path, default))

    def constant(self, name: str, path: Path_, render=py_literal, default: tuple[str, ...] = ()) -> Line:
        return self.line(f"{name} = {{}}", path, render, default)

    def kwarg(self, name: str, path: Path_, render=py_literal, default: tuple[str, ...] = ()) -> Line:
        return self.line(f"{name}={{}},", path, render, default)

    def build(self) -> View:
        data = self.data
        lifecycle = data["lifecycle"]
        engine = ENGINES[data["engine"]]
        # vLLM compiles at its first start: no DeepGEMM precompile function, whatever lifecycle.compile says.
        compile_on = derived.precompiles_deepgemm(self.profile)
        clustered = data["gpu"]["nodes"] > 1
        keepalive_mode = data["keepalive"]["mode"]
        names = (
            *LIBRARY,
            *(CLUSTER_LIBRARY if clustered else ()),
            *((KEEPALIVE_LIBRARY,) if keepalive_mode != "off" else ()),
        )
        library = tuple(runtime_module(name) for name in names)
        early = runtime_module(engine.caches_module)
        # The Modal code itself reads os.environ and exits through sys.exit.
        stdlib = set().union(early.imports, *(module.imports for module in library), {"import os", "import sys"})
        if any(step.local for step in self.deployment.image_steps):
            stdlib.add("from pathlib import Path")
        return View(
            engine=engine,
            docstring=py_literal(self.docstring(), block=True),
            stdlib_imports=tuple(import_block(stdlib)),
            constants=self.constants(compile_on),
            engine_env=self.engine_env(),
            download_weights=self.download_weights(),
            image_steps=tuple(self.image_step(step) for step in self.deployment.image_steps),
            download_image=(
                py_literal(data["image"]["download_python"]),
                py_literal(f"huggingface_hub[hf_xet]=={data['image']['huggingface_hub']}"),
            ),
            flags=tuple(self.flag(flag) for flag in self.deployment.flags),
            serve_command=self.serve_command() if data["engine"] == "sglang" else None,
            hf_secret=bool(data["secrets"]["huggingface"]),
            api_key_secret=bool(data["secrets"]["api_key"]),
            download=(
                self.kwarg("timeout", ("lifecycle", "download", "timeout"), seconds),
                self.kwarg("cpu", ("lifecycle", "download", "cpu")),
                self.kwarg("memory", ("lifecycle", "download", "memory")),
            ),
            compile=(self.kwarg("timeout", ("lifecycle", "compile", "timeout"), seconds),) if compile_on else None,
            cache_volume="compile_cache" in data["volumes"],
            compile_off_comments=self.compile_off_comments(compile_on),
            warmup=lifecycle["warmup"]["enabled"],
            interface=data["server"]["interface"],
            server=self.server() if data["server"]["interface"] == "server" else self.cls(),
            concurrency=self.concurrency(),
            web_server=self.web_server(),
            keepalive_mode=keepalive_mode,
            keepalive=self.keepalive(keepalive_mode),
            keepalive_function=self.keepalive_function(keepalive_mode),
            ping_headers="{}" if data["server"]["unauthenticated"] else "proxy_auth_headers()",
            outside_min_containers=py_literal(data["scaling"]["min_containers"]),
            cluster_server=self.cluster_server() if clustered else None,
            early_runtime=early,
            library=library,
        )

    def hf_cache(self) -> bool:
        return self.data["model"]["weights_layout"] == "hf-cache"

    def engine_env(self) -> tuple[Line, ...]:
        """The profile's image.env, after HF_HUB_CACHE when the weights volume is a Hugging Face cache."""
        lines = [self.line(f"{py_literal(name)}: {{}},", ("image", "env", name)) for name in self.data["image"]["env"]]
        if self.hf_cache():
            why = (
                "The weights volume is a Hugging Face cache (model.weights_layout: hf-cache); serving reads it offline."
            )
            lines.insert(0, Line('"HF_HUB_CACHE": WEIGHTS_MOUNT,', comment_block([why])))
        return tuple(lines)

    def download_weights(self) -> str:
        workers = f"max_workers={py_literal(self.data['lifecycle']['download']['max_workers'])}"
        if self.hf_cache():
            return f"download_to_hf_cache(WEIGHTS_MOUNT, MODEL_REPO, MODEL_REVISION, {workers})"
        return f"download_weights(MODEL_PATH, MODEL_REPO, MODEL_REVISION, {workers})"

    def model_path(self) -> Line:
        if not self.hf_cache():
            return self.constant("MODEL_PATH", ("model", "path"))
        return Line(
            f"MODEL_PATH = {py_literal(model_dir(self.profile))}",
            self.comments(
                ("model", "weights_layout"),
                ("The snapshot folder of MODEL_REVISION in the Hugging Face cache on the weights volume.",),
            ),
        )

    def image_step(self, step: ImageStep) -> Line:
        """`.method(arguments)` of the serving image, under the profile's comment; a local file or folder
        is named relative to the rendered file, with the digest of its content above it."""
        comments = self.comments(step.source) or self.comments((*step.source, step.method))
        if step.local is None:
            arguments = [py_literal(value) for value in step.values]
            arguments += [f"{name}={py_literal(value)}" for name, value in step.options]
            if step.method == "uv_pip_install":
                arguments.append("uv_version=UV_VERSION")
            return Line(f".{step.method}({', '.join(arguments)})", comments)
        relative = Path(os.path.relpath(step.local.path, self.out_dir)).as_posix()
        shown = step.local.path.relative_to(step.local.root).as_posix()
        digest = comment_block([f"sha256 of {shown}{'/ (its files)' if step.local.is_dir else ''}: {step.digest}"])
        local = f"Path(__file__).parent / {py_literal(relative)}"
        return Line(f".{step.method}({local}, {py_literal(step.values[0])}, copy=True)", comments + digest)

    def serve_command(self) -> Line:
        """The SERVE_COMMAND constant: the planned command that starts SGLang's server, and why that one."""
        command = self.deployment.command
        version = self.data["image"]["sglang_version"]
        if command[0] == "sglang":
            why = [f"`sglang serve`, SGLang's recommended entry point (docs/sources.md#entry-point), in {version}."]
        else:
            why = [
                f"SGLang {version} ships no `sglang` command (its wheel's console scripts, schema/sglang/index.json);",
                f"`sglang serve`, the recommended entry point, comes with SGLang {sglang_serve_since()}"
                " (docs/sources.md#entry-point).",
            ]
        return Line(f"SERVE_COMMAND = {py_literal(command)}", comment_block(why))

    def compile_off_comments(self, compile_on: bool) -> tuple[str, ...]:
        if compile_on:
            return ()
        if self.data["engine"] == "vllm":
            return comment_block(VLLM_NO_PRECOMPILE)
        reason = derived.no_precompile_reason(self.profile)
        jit = (
            "; kernels JIT-compile into CACHE_DIR"
            if self.profile.data["lifecycle"]["compile"]["enabled"] is False
            else ""
        )
        return comment_block([f"No DeepGEMM precompile: {reason}{jit}."]) + self.comments(
            ("lifecycle", "compile", "enabled")
        )

    def flag_check_line(self) -> str:
        """How the SGLang flags were checked, when the image names no release (empty otherwise)."""
        image = self.data["image"]
        if self.data["engine"] != "sglang" or image["flag_check"] == "release":
            return ""
        if image["flag_check"] == "off":
            return "SGLang flags NOT checked against any catalog (image.flag_check: off).\n"
        return (
            f"The image names no SGLang release; its flags were checked against SGLang {image['sglang_version']}'s "
            "catalog,\nwhose parser the profile says it has (image.flag_check: parser-matches).\n"
        )

    def docstring(self) -> str:
        sources = ", ".join(display_path(p) for p in self.profile.sources)
        setup = (
            "download weights, compile DeepGEMM kernels, verify"
            if self.data["engine"] == "sglang"
            else ("download weights, verify")
        )
        interface = self.data["server"]["interface"]
        served_by = "@app.server" if interface == "server" else "@app.cls with @modal.web_server"
        return (
            f"{self.data['description']}\n\n"
            f"Generated by deploygen from {sources}.\n"
            f"{self.flag_check_line()}"
            f"Do not edit by hand: change the profile, then run `make render PROFILE={self.profile.name}`.\n"
            f"Inputs digest: {inputs_digest(self.deployment)}\n"
            f"Served by {served_by}: needs modal >= {MINIMUM_MODAL[interface]}.\n\n"
            f"  modal run deploy.py       {setup} (run once)\n"
            "  modal deploy deploy.py    serve\n"
            "  python deploy.py --local  run the same lifecycle on this machine, without Modal\n"
        )

    def constants(self, compile_on: bool) -> tuple[Line, ...]:
        data = self.data
        engine = data["engine"]
        image = data["image"][f"{engine}_image"]
        slug = image_slug(image)
        model_slug = re.sub(r"[^A-Za-z0-9._-]", "-", data["model"]["name"])
        blank = Line("")
        lines = [
            Line("MINUTES = 60  # seconds"),
            Line("HOURS = 60 * MINUTES"),
            blank,
            self.constant("APP_NAME", ("app", "name")),
            self.constant("MODEL_REPO", ("model", "repo")),
            self.constant("MODEL_REVISION", ("model", "revision")),
            self.constant("MODEL_NAME", ("model", "name")),
            self.model_path(),
            self.constant("GPU_TYPE", ("gpu", "type")),
            self.constant("GPU_COUNT", ("gpu", "count")),
            Line(
                f"GPU_ARCH = {py_literal(self.deployment.gpu_arch)}",
                comment_block(["Compiled kernels only run on the architecture they were built for."]),
            ),
            self.constant("PORT", ("server", "port")),
            self.constant(f"{engine.upper()}_VERSION", ("image", f"{engine}_version")),
            self.constant(f"{engine.upper()}_IMAGE", ("image", f"{engine}_image")),
            *(
                [self.constant("UV_VERSION", ("image", "uv_version"))]
                if any(step.method == "uv_pip_install" for step in self.deployment.image_steps)
                else []
            ),
            *((blank, *self.cluster()) if data["gpu"]["nodes"] > 1 else ()),
            blank,
            self.constant("WEIGHTS_VOLUME", ("volumes", "weights", "name")),
            self.constant("WEIGHTS_MOUNT", ("volumes", "weights", "mount")),
        ]
        if "compile_cache" in data["volumes"]:
            lines += [
                self.constant("CACHE_VOLUME", ("volumes", "compile_cache", "name")),
                self.constant("CACHE_MOUNT", ("volumes", "compile_cache", "mount")),
                Line(f"IMAGE_SLUG = {py_literal(slug)}", comment_block(CACHE_FOLDER)),
                Line('CACHE_DIR = f"{CACHE_MOUNT}/{GPU_ARCH}-{IMAGE_SLUG}"'),
            ]
        else:
            lines += [
                Line(f"IMAGE_SLUG = {py_literal(slug)}"),
                Line(
                    'CACHE_DIR = f"/root/.cache/jit/{GPU_ARCH}-{IMAGE_SLUG}"',
                    comment_block(
                        [
                            "No compile step and no compile-cache volume (volumes.compile_cache unset): JIT caches",
                            "stay on the container's disk and each cold start rebuilds them.",
                        ]
                    ),
                ),
            ]
        if compile_on:
            key = '"gpu_type": GPU_TYPE, "gpu_arch": GPU_ARCH, "sglang_version": SGLANG_VERSION, "image": SGLANG_IMAGE'
            if data["gpu"]["nodes"] > 1:
                key += ', "nodes": CLUSTER_SIZE'  # the per-rank shapes are the cluster's
            lines += [
                # The slug holds only [A-Za-z0-9._-]: nothing in it can act inside the f-string.
                Line(f'COMPILE_MARKER = f"{{CACHE_DIR}}/.compiled-{model_slug}.json"'),
                Line(
                    f"COMPILE_KEY = {{{key}}}",
                    comment_block(["What compiled kernels depend on: a different value means they must be rebuilt."]),
                ),
            ]
        secrets = [
            self.constant(name, ("secrets", key))
            for name, key in (("HF_SECRET", "huggingface"), ("API_KEY_SECRET", "api_key"))
            if data["secrets"][key]
        ]
        lines += [blank, *secrets] if secrets else []
        lines += [
            blank,
            self.constant("HEALTH_TIMEOUT", ("lifecycle", "health", "timeout"), seconds),
            self.constant("HEALTH_POLL_INTERVAL", ("lifecycle", "health", "poll_interval")),
            self.constant("HEALTH_MAX_POLL_INTERVAL", ("lifecycle", "health", "max_poll_interval")),
        ]
        if data["lifecycle"]["warmup"]["enabled"]:
            lines += [
                self.constant("WARMUP_TIMEOUT", ("lifecycle", "warmup", "timeout"), seconds),
                self.warmup_requests(),
            ]
        lines.append(self.constant("SHUTDOWN_GRACE", ("lifecycle", "shutdown", "grace_period"), seconds))
        return tuple(lines)

    def warmup_requests(self) -> Line:
        """The warmup requests derived from the profile (or its own), one literal the runtime sends."""
        warmup = ("lifecycle", "warmup")
        path = warmup + ("requests",) if self.data["lifecycle"]["warmup"].get("requests") else warmup
        default = ("What the warmup sends and what each answer must hold (`generate.py validate` lists them).",)
        return Line(f"WARMUP_REQUESTS = {py_literal(list(self.deployment.warmup))}", self.comments(path, default))

    def flag(self, flag: Flag) -> Line:
        option = py_literal(flag.option)
        if not flag.values:
            return Line(f"{option},", self.comments(flag.source))
        constant = CONSTANT_FLAGS.get(flag.source)
        gpu = self.data["gpu"]
        if flag.option == "--tp-size" and gpu["nodes"] == 1 and flag.values == (str(gpu["count"]),):
            constant = "str(GPU_COUNT)"
        if flag.option == "--tp-size" and gpu["nodes"] > 1 and flag.values == (str(gpu["count"] * gpu["nodes"]),):
            constant = "str(CLUSTER_SIZE * GPU_COUNT)"
        if constant:
            return Line(f"{option}, {constant},", self.comments(flag.source))
        return Line(f"{option}, {' '.join(py_literal(v) + ',' for v in flag.values)}", self.comments(flag.source))

    def common_server(self) -> list[Line]:
        image = ENGINES[self.data["engine"]].image_var
        lines = [Line(f"image={image},"), Line('gpu=f"{GPU_TYPE}:{GPU_COUNT}",'), Line("volumes=VOLUME_MOUNTS,")]
        if self.data["secrets"]["api_key"]:
            lines.append(Line("secrets=[modal.Secret.from_name(API_KEY_SECRET)],"))
        return lines + self.resources()

    def resources(self) -> list[Line]:
        """The container's reservations where the profile sets them; [request, limit] is Modal's tuple."""
        server = self.data["server"]
        return [self.kwarg(name, ("server", name), resource_literal) for name in CONTAINER_RESOURCES if name in server]

    def scaling(self) -> list[Line]:
        scaling = self.data["scaling"]
        lines = [self.kwarg("min_containers", ("scaling", "min_containers"))]
        # Unset: no max_containers argument, Modal's own "no cap".
        if scaling.get("max_containers") is not None:
            lines.append(self.kwarg("max_containers", ("scaling", "max_containers")))
        if scaling.get("buffer_containers") is not None:
            lines.append(self.kwarg("buffer_containers", ("scaling", "buffer_containers")))
        if scaling.get("scaleup_window") is not None:
            lines.append(self.kwarg("scaleup_window", ("scaling", "scaleup_window"), seconds))
        lines.append(self.kwarg("scaledown_window", ("scaling", "scaledown_window"), seconds))
        return lines

    def startup_timeout(self) -> Line:
        return self.kwarg(
            "startup_timeout",
            ("scaling", "startup_timeout"),
            seconds,
            default=("Covers weight load, CUDA graph capture and warmup in @modal.enter.",),
        )

    def server(self) -> tuple[Line, ...]:
        """The @app.server arguments (https://github.com/modal-labs/modal-client/blob/main/modal/app.py)."""
        data, scaling = self.data, self.data["scaling"]
        target, limit = self.deployment.server_concurrency
        lines = [
            *self.common_server(),
            Line("port=PORT,"),
            self.startup_timeout(),
            self.exit_grace_period(),
            *self.scaling(),
            Line(f"target_concurrency={py_literal(target)},", self.concurrency_comments("target_concurrency")),
        ]
        if limit:
            lines.append(Line(f"max_concurrency={py_literal(limit)},", self.concurrency_comments("max_concurrency")))
        lines.append(self.unauthenticated())
        if data["server"].get("routing_region") is not None:
            lines.append(self.kwarg("routing_region", ("server", "routing_region")))
        if scaling["region"] is not None:
            lines.append(self.kwarg("compute_region", ("scaling", "region")))
        return tuple(lines)

    def exit_grace_period(self) -> Line:
        """Seconds Modal gives the container after SIGTERM: the profile's, or derived from the grace period."""
        value = self.deployment.exit_grace_period
        if self.data["server"].get("exit_grace_period") is not None:
            return Line(f"exit_grace_period={py_literal(value)},", self.comments(("server", "exit_grace_period")))
        why = (
            f"SIGTERM to kill: @modal.exit stops the engine (SHUTDOWN_GRACE + {STOP_OVERHEAD:g}s), then Modal",
            f"commits the volumes ({VOLUME_COMMIT_MARGIN}s of room).",
        )
        return Line(f"exit_grace_period={py_literal(value)},", comment_block(why))

    def unauthenticated(self) -> Line:
        return self.kwarg(
            "unauthenticated",
            ("server", "unauthenticated"),
            default=(
                "Modal's proxy auth: clients send the Modal-Key and Modal-Secret headers of a proxy auth token."
                if not self.data["server"]["unauthenticated"]
                else "Anyone with the URL reaches SGLang: only its --api-key stands in the way.",
            ),
        )

    def concurrency_comments(self, key: str) -> tuple[str, ...]:
        """The profile's comment, or where the derived value comes from."""
        if self.data["scaling"].get(key) is not None:
            return self.comments(("scaling", key))
        scaling = self.data["scaling"]
        if key == "target_concurrency":
            source = "target_inputs" if scaling.get("target_inputs") is not None else "max_inputs"
            return comment_block([f"From scaling.{source}: the autoscaler adds a replica at this many requests each."])
        return comment_block(
            ["From --max-running-requests: a replica takes what SGLang's running slots hold; Modal answers 429 above."]
        )

    def cls(self) -> tuple[Line, ...]:
        scaling = self.data["scaling"]
        lines = [
            *self.common_server(),
            self.kwarg("timeout", ("scaling", "timeout"), seconds),
            self.startup_timeout(),
            *self.scaling(),
        ]
        if scaling["region"] is not None:
            lines.append(self.kwarg("region", ("scaling", "region")))
        return tuple(lines)

    def web_server(self) -> str:
        arguments = f"port=PORT, startup_timeout={seconds(self.data['scaling']['web_startup_timeout'])}"
        if not self.data["server"]["unauthenticated"]:
            arguments += ", requires_proxy_auth=True"
        return arguments

    def concurrency(self) -> Line:
        scaling = self.data["scaling"]
        arguments = f"max_inputs={py_literal(scaling['max_inputs'])}"
        if scaling["target_inputs"] is not None:
            arguments += f", target_inputs={py_literal(scaling['target_inputs'])}"
        comments = self.comments(("scaling", "max_inputs")) + self.comments(("scaling", "target_inputs"))
        return Line(f"@modal.concurrent({arguments})", comments)

    def cluster(self) -> tuple[Line, ...]:
        return (
            self.constant(
                "CLUSTER_SIZE",
                ("gpu", "nodes"),
                default=(
                    "A replica is a Modal cluster of CLUSTER_SIZE containers (nodes) of GPU_COUNT GPUs, one SGLang",
                    "rank on each, tensor parallelism across them; Modal routes HTTP to rank 0 only.",
                ),
            ),
            self.constant(
                "CLUSTER_RDMA",
                ("gpu", "rdma"),
                default=("RDMA between the nodes (3,200 Gbps per node); without it, the private IPv6 network.",),
            ),
            self.constant(
                "RENDEZVOUS_PORT",
                ("server", "rendezvous_port"),
                default=("Rank 0's port for SGLang's --dist-init-addr.",),
            ),
            self.constant(
                "CLUSTER_WATCH_PORT",
                ("server", "cluster_watch_port"),
                default=("Rank 0's port for the ranks' watch of each other.",),
            ),
            Line(
                'CLUSTER_ADDRESS_FAMILY = "ipv4"',
                comment_block(
                    ["The cluster addresses SGLang gets, as Modal's SGLang-based cluster examples use them."]
                ),
            ),
            Line(
                "CLUSTER_JOIN_TIMEOUT = 10 * MINUTES",
                comment_block(
                    ["Modal starts a cluster's containers together; this bounds how far apart they may start."]
                ),
            ),
        )

    def cluster_server(self) -> tuple[Line, ...]:
        scaling = self.data["scaling"]
        lines = [
            *self.resources(),
            self.kwarg(
                "startup_timeout",
                ("scaling", "startup_timeout"),
                seconds,
                default=("Covers the cluster join, weight load, CUDA graph capture and warmup in @modal.enter.",),
            ),
            self.kwarg(
                "min_containers",
                ("scaling", "min_containers"),
                default=("Modal counts containers: multiples of CLUSTER_SIZE, one cluster per replica.",),
            ),
            *(
                [self.kwarg("max_containers", ("scaling", "max_containers"))]
                if scaling.get("max_containers") is not None
                else []
            ),
            self.kwarg("scaledown_window", ("scaling", "scaledown_window"), seconds),
            Line(
                f"target_concurrency={py_literal(scaling['target_inputs'] or scaling['max_inputs'])},",
                comment_block(
                    [
                        "Requests per replica (all on rank 0) the autoscaler aims at: scaling.target_inputs, else",
                        "max_inputs. No cap: SGLang queues what exceeds its --max-running-requests.",
                    ]
                ),
            ),
            self.exit_grace_period(),
        ]
        lines.append(self.unauthenticated())
        if scaling["region"] is not None:
            lines.append(self.kwarg("compute_region", ("scaling", "region")))
        return tuple(lines)

    def keepalive(self, mode: str) -> tuple[Line, ...]:
        if mode == "off":
            return ()
        lines = [self.constant("KEEPALIVE_TIMEZONE", ("keepalive", "timezone"))]
        if mode == "ping":
            lines = [
                Line("ENABLE_KEEPALIVE_CRON = True"),
                self.constant(
                    "DEPLOYED_URL",
                    ("keepalive", "url"),
                    default=("Empty: keep_warm asks Modal for the deployed URL of the server.",),
                ),
                self.constant("KEEPALIVE_SCHEDULE", ("keepalive", "schedule")),
                *lines,
                self.constant("KEEPALIVE_PATH", ("keepalive", "path")),
                self.constant("KEEPALIVE_TIMEOUT", ("keepalive", "timeout"), seconds),
            ]
            if not self.data["server"]["unauthenticated"]:
                lines.append(
                    self.constant(
                        "PROXY_AUTH_SECRET",
                        ("secrets", "proxy_auth"),
                        default=("Holds MODAL_PROXY_KEY and MODAL_PROXY_SECRET: the ping passes Modal's proxy auth.",),
                    )
                )
            return tuple(lines)
        lead = self.deployment.keepalive_lead_s
        return (
            self.constant("KEEPALIVE_DAYS", ("keepalive", "window", "days")),
            self.constant("KEEPALIVE_START", ("keepalive", "window", "start")),
            self.constant("KEEPALIVE_END", ("keepalive", "window", "end")),
            *lines,
            self.constant("KEEPALIVE_MIN_CONTAINERS", ("keepalive", "window", "min_containers")),
            Line(
                f"KEEPALIVE_LEAD = {seconds(lead)}",
                comment_block(
                    [
                        "Raised this long before the window opens: the planner's cold start (weights at the slow",
                        "volume speed, cached kernels, warmup: `make plan`) plus one period of the schedule below,",
                        "so the replica is warm when the window opens.",
                    ]
                ),
            ),
        )

    def keepalive_function(self, mode: str) -> tuple[Line, ...]:
        if mode == "ping":
            lines = [
                Line("image=download_image,"),
                Line("schedule=modal.Cron(KEEPALIVE_SCHEDULE, timezone=KEEPALIVE_TIMEZONE),"),
                Line("timeout=KEEPALIVE_TIMEOUT + 30,"),
            ]
            if not self.data["server"]["unauthenticated"]:
                lines.append(Line("secrets=[modal.Secret.from_name(PROXY_AUTH_SECRET)],"))
            return tuple(lines)
        if mode == "autoscaler":
            return (
                Line("image=download_image,"),
                Line(
                    f"schedule=modal.Cron({py_literal(AUTOSCALER_SCHEDULE)}),",
                    comment_block(["Every 5 minutes: each run sets what the window says now, so a missed run heals."]),
                ),
                Line("timeout=2 * MINUTES,"),
            )
        return ()


def build_view(deployment: Deployment, out_dir: Path | None = None) -> View:
    """The view of a render written into out_dir (generated/<profile>/ unless given): local files of the
    image are named relative to it."""
    folder = out_dir if out_dir is not None else GENERATED_DIR / deployment.profile.name
    return _Builder(deployment, Path(os.path.realpath(folder))).build()


def inputs_digest(deployment: Deployment) -> str:
    """A digest of every file the render depends on, so a changed input shows up in the header."""
    profile, catalog = deployment.profile, deployment.catalog
    files = [
        *profile.sources,
        catalog.path,
        SCHEMA_PATH,
        DATA_DIR / "gpus.yaml",
        model_path(profile.data["model"]["facts"]),
        *sorted(TEMPLATES_DIR.rglob("*.j2")),
        *sorted(RUNTIME_DIR.glob("*.py")),
    ]
    digest = hashlib.sha256()
    for path in files:
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
        digest.update(name.encode() + b"\0" + read_bytes(path) + b"\0")
    for step in deployment.image_steps:
        digest.update(step.digest.encode() + b"\0")
    return digest.hexdigest()[:16]
