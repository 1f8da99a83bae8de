"""Stand-in modules for the GPU stack, so that SGLang's parser can be built where torch is not installed.

SGLang imports torch, triton and its GPU kernel packages while it builds `sglang serve`'s parser, but the
parser itself is plain argparse over plain Python values. vLLM builds its CLI docs the same way
(https://github.com/vllm-project/vllm/blob/main/docs/mkdocs/hooks/generate_argparse.py mocks the imports).

A stand-in module answers any attribute: a CamelCase name is a class (it can be subclassed, called, used in
type hints), any other name a permissive object (callable, usable as a decorator, a number, an iterable,
false). Only what SGLang asks of the machine is answered as a real machine would: `ANSWERS` models the CUDA
H200 machine on which the real-import catalogs (0.5.10, 0.5.23) were extracted, and every catalog records
which stand-ins its extraction imported. Extracting 0.5.10 and 0.5.23 with stand-ins gives the same flags,
test parses and compile_deep_gemm parser as their real imports did (schema/sglang/index.json records it).
"""

from __future__ import annotations

import abc
import contextlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

# Packages that need a GPU, a CUDA build of torch, or compiled kernels, and nothing else that SGLang imports.
GPU_STACK = (
    "torch",
    "triton",
    "torchvision",
    "torchaudio",
    "torchcodec",
    "tvm_ffi",
    "sgl_kernel",
    "compressed_tensors",
    "xgrammar",
    "flashinfer",
    "deep_gemm",
    "flash_attn",
    "cuda",
)


class _Library:
    """torch.library.Library: SGLang registers its custom ops in one, and reads back `.m.name` if it has one."""

    def __init__(self, namespace: str, kind: str, *args: Any):
        self.ns = namespace
        self.m = None  # the C++ library handle, which has no `name`

    def __getattr__(self, name: str) -> Any:
        return _StandIn(f"torch.library.Library().{name}")


def _jit(fn: Any = None, **options: Any) -> Any:
    """triton.jit: a JITFunction (SGLang's kernel caches check the type), also as `@triton.jit(...)`."""
    if fn is None:
        return _jit
    return _attribute("triton.runtime.jit", "JITFunction")(fn)


# What the stand-ins answer as the real packages would on a machine with one NVIDIA H200 (sm90) and torch
# built for CUDA 13.0.
DEVICE_DESCRIPTION = "CUDA 13.0, one NVIDIA H200 (sm90)"
ANSWERS: dict[str, Any] = {
    "torch.library.Library": _Library,
    "triton.jit": _jit,
    "torch.version.cuda": "13.0",
    "torch.version.hip": None,
    "torch.cuda.is_available": lambda: True,
    "torch.cuda.device_count": lambda: 1,
    "torch.cuda.get_device_name": lambda *device: "NVIDIA H200",
    "torch.cuda.get_device_capability": lambda *device: (9, 0),
    "triton.runtime.driver.active.get_current_target": lambda: types.SimpleNamespace(
        backend="cuda", arch=90, warp_size=32
    ),
}
# Accelerator namespaces that torch on that machine does not have (SGLang tests them with hasattr).
ABSENT = frozenset({"torch.npu", "torch.xpu", "torch.hpu", "torch.mps", "torch.version.musa"})

_classes: dict[str, type] = {}


def _attribute(owner: str, name: str) -> Any:
    full = f"{owner}.{name}"
    if full in ANSWERS:
        return ANSWERS[full]
    if (name.startswith("__") and name.endswith("__")) or full in ABSENT:
        raise AttributeError(name)
    if name.lstrip("_")[:1].isupper() and not name.isupper():  # (_)CamelCase: a class; ALL_CAPS: a constant
        if full not in _classes:
            namespace = {
                "__module__": owner,
                "__qualname__": name,
                "__init__": lambda self, *args, **kwargs: None,
                "__call__": _StandIn.__call__,
                "__getattr__": lambda self, item: _attribute(f"{full}()", item),
                "__get_pydantic_core_schema__": classmethod(_any_schema),  # a pydantic field may name it
            }
            _classes[full] = _StandInClass(name, (), namespace)
        return _classes[full]
    return _StandIn(full)


def _any_schema(cls: type, source: Any, handler: Any) -> Any:
    from pydantic_core import core_schema

    return core_schema.any_schema()


class _StandInClass(abc.ABCMeta):  # ABCMeta, so that a class may list a stand-in and ABC among its bases
    def __getattr__(cls, name: str) -> Any:
        return _attribute(f"{cls.__module__}.{cls.__qualname__}", name)

    def __getitem__(cls, item: Any) -> Any:
        return cls

    def __or__(cls, other: Any) -> Any:
        return cls

    __ror__ = __or__


class _StandIn:
    def __init__(self, name: str):
        object.__setattr__(self, "_name", name)

    def __getattr__(self, name: str) -> Any:
        return _attribute(self._name, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and callable(args[0]) and not kwargs:  # used as a decorator
            return args[0]
        return _StandIn(f"{getattr(self, '_name', type(self).__qualname__)}()")

    def __getitem__(self, item: Any) -> Any:
        return _StandIn(f"{self._name}[]")

    def __mro_entries__(self, bases: tuple) -> tuple:
        return ()

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __contains__(self, item: Any) -> bool:
        return False

    def __bool__(self) -> bool:
        return False

    def __int__(self) -> int:
        return 0

    __index__ = __int__

    def __float__(self) -> float:
        return 0.0

    def __lt__(self, other: Any) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return hash(self._name)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<stand-in {self._name}>"


def _same(self: Any, *other: Any) -> Any:
    return self


for _operator in (
    "neg", "pos", "abs", "invert", "add", "radd", "sub", "rsub", "mul", "rmul", "matmul", "truediv", "rtruediv",
    "floordiv", "rfloordiv", "mod", "rmod", "pow", "rpow", "and", "rand", "or", "ror", "xor", "rxor", "lshift",
    "rshift",
):  # fmt: skip
    setattr(_StandIn, f"__{_operator}__", _same)


class _StandInModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        return _attribute(self.__name__, name)


class _Distribution(importlib.metadata.Distribution):
    """What importlib.metadata reports for a stand-in package: its name, version and top-level package."""

    def __init__(self, name: str, version: str):
        self._files = {"METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", "top_level.txt": name}

    def read_text(self, filename: str) -> str | None:
        return self._files.get(filename)

    def locate_file(self, path: Any) -> Any:
        return path


_ANY_DISTRIBUTION = importlib.metadata.DistributionFinder.Context()


class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a stand-in for each package in `packages` and their submodules, and remembers which."""

    def __init__(self, packages: Iterable[str], versions: dict[str, str] | None = None):
        self.packages = frozenset(packages)
        self.versions = versions or {}
        self.imported: set[str] = set()

    def _covers(self, name: str) -> bool:
        return name.split(".")[0] in self.packages

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(name, self, is_package=True) if self._covers(name) else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name)
        module.__path__ = []
        if "." not in spec.name:
            module.__version__ = self.versions.get(spec.name, "0.0.0")
        self.imported.add(spec.name.split(".")[0])
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass

    def find_distributions(self, context: Any = _ANY_DISTRIBUTION) -> Iterator:
        name = context.name.replace("-", "_").lower() if context.name else None  # None: every distribution
        for package in sorted(self.packages):
            if name in (None, package.lower()):
                yield _Distribution(package, self.versions.get(package, "0.0.0"))


class LateStandInFinder(StandInFinder):
    """Stands in for every `sglang.*` module not loaded yet, except `keep` and its packages: used to import
    one module for its parser alone (compile_deep_gemm's CompileArgs, the `sglang` script's subcommands)."""

    def __init__(self, keep: str):
        super().__init__(())
        parts = keep.split(".")
        self.keep = frozenset(".".join(parts[:end]) for end in range(1, len(parts) + 1))
        self.loaded = frozenset(sys.modules)

    def _covers(self, name: str) -> bool:
        return name.startswith("sglang.") and name not in self.loaded and name not in self.keep

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = super().create_module(spec)
        self.imported.discard(spec.name.split(".")[0])
        self.imported.add(spec.name)
        return module


@contextlib.contextmanager
def installed(finder: StandInFinder) -> Iterator[StandInFinder]:
    """The finder first on sys.meta_path for the duration."""
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
