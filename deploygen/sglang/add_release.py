"""Add an SGLang release from PyPI: download its wheel, extract its flag catalog, record it in the index.

    python -m deploygen.sglang.add_release 0.5.24

1. `pip download sglang==VERSION --no-deps` (the wheel pip picks for this Python); its sha256 is recorded.
2. The wheel is unpacked beside the light packages SGLang imports (extract-requirements.txt, plus the
   transformers version the wheel pins), installed once per transformers pin under the cache folder.
3. `python -m deploygen.sglang.extract --stand-ins` builds the parser in a child process, with stand-ins
   for the GPU stack (deploygen/sglang/stand_ins.py).
4. The catalog is compared with the nearest earlier catalog of the same release (0.5.10 for 0.5.10.post1):
   when the parser is the same (flags, test parses, compile_deep_gemm parser), the version maps to it;
   otherwise it gets its own schema/sglang/<version>.json. schema/sglang/index.json records, for every
   version, its catalog, how that was decided, the wheel, its sha256 and its entry points.
A catalog extracted with real imports (0.5.10 and 0.5.23, on a CUDA machine) is kept; the stand-in
extraction must give the same parser, which the index records as the check of the stand-ins.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deploygen.errors import UserError
from deploygen.files import write_atomic
from deploygen.paths import PACKAGE_DIR
from deploygen.sglang.catalog import CATALOG_DIR, INDEX_PATH, release_index, version_key
from deploygen.sglang.extract import catalog_json

REQUIREMENTS = Path(__file__).with_name("extract-requirements.txt")
CACHE_DIR = Path(os.environ.get("DEPLOYGEN_CACHE", Path.home() / ".cache" / "deploygen")) / "sglang-extract"
# What a catalog holds besides its parser: where it came from.
PROVENANCE = ("sglang_version", "extracted_with", "extraction", "entry_points", "report")


class ReleaseError(UserError):
    """PyPI has no such release, or its extraction failed or disagrees with a real-import catalog."""


def _run(command: list[str], what: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ReleaseError(f"{what} failed: {last}")
    return result.stdout


def download_wheel(version: str, folder: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
         "--dest", str(folder), f"sglang=={version}"],
        f"pip download sglang=={version}",
    )  # fmt: skip
    wheels = sorted(folder.glob("sglang-*.whl"))
    if len(wheels) != 1:
        raise ReleaseError(f"pip download sglang=={version} gave {len(wheels)} wheels")
    return wheels[0]


def sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def pinned(wheel: zipfile.ZipFile, package: str) -> str:
    """The version the wheel's metadata pins for `package` (its first `package==X` requirement)."""
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    for line in wheel.read(metadata).decode().splitlines():
        requirement = line.removeprefix("Requires-Dist: ").split(";")[0].replace(" ", "")
        if line.startswith("Requires-Dist: ") and requirement.startswith(f"{package}=="):
            return requirement.split("==")[1]
    raise ReleaseError(f"{metadata} pins no {package} version")


def dependencies(transformers: str) -> Path:
    """The light packages SGLang imports, with that transformers, installed once into the cache."""
    site = CACHE_DIR / f"site-transformers-{transformers}"
    if not (site / ".complete").is_file():
        _run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary",
             ":all:", "--upgrade", "--target", str(site), "-r", str(REQUIREMENTS), f"transformers=={transformers}"],
            f"installing the extraction dependencies with transformers {transformers}",
        )  # fmt: skip
        (site / ".complete").touch()
    return site


def extract_wheel(version: str, wheel: Path, work: Path) -> dict[str, Any]:
    """The catalog of the wheel's sglang, extracted with stand-ins in a child process."""
    unpacked = work / "wheel"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
        site = dependencies(pinned(archive, "transformers"))
    out = work / "catalog.json"
    python_path = os.pathsep.join([str(unpacked), str(site), str(PACKAGE_DIR.parent)])
    env = {**os.environ, "PYTHONPATH": python_path, "PYTHONHASHSEED": "0", "PYTHONNOUSERSITE": "1"}
    _run(
        [sys.executable, "-m", "deploygen.sglang.extract", "--stand-ins", "--version", version, "--out", str(out)],
        f"extracting sglang {version}",
        env,
    )
    return json.loads(out.read_text())


def parser_of(catalog: dict[str, Any]) -> dict[str, Any]:
    """What decides whether two versions parse alike: the catalog less its provenance."""
    parser = {key: value for key, value in catalog.items() if key not in PROVENANCE}
    parser["compile_deep_gemm"] = {k: v for k, v in parser["compile_deep_gemm"].items() if k != "info"}
    return parser


def release_of(version: str) -> str:
    return version.split(".post")[0]


def nearest_catalog(version: str, releases: dict[str, Any]) -> str | None:
    """The nearest earlier version of the same release that has its own catalog file."""
    earlier = [
        other
        for other, record in releases.items()
        if release_of(other) == release_of(version)
        and version_key(other) < version_key(version)
        and record["catalog"] == other
    ]
    return max(earlier, key=version_key) if earlier else None


def add_release(version: str) -> dict[str, Any]:
    """Extract `version` from PyPI and record it; returns its index record."""
    try:
        return _add_release(version)
    except OSError as exc:
        raise ReleaseError(f"adding sglang {version} failed: {exc}") from None


def _add_release(version: str) -> dict[str, Any]:
    releases = dict(release_index()["releases"])
    with tempfile.TemporaryDirectory(prefix="deploygen-sglang-") as folder:
        work = Path(folder)
        wheel = download_wheel(version, work / "download")
        catalog = extract_wheel(version, wheel, work)
        # The entry points are the wheel's, recorded in the index (a mapped post-release has no catalog file).
        wheel_record = {"wheel": wheel.name, "sha256": sha256(wheel), **catalog.pop("entry_points")}
    own_path = CATALOG_DIR / f"{version}.json"
    existing = json.loads(own_path.read_text()) if own_path.is_file() else None
    if existing and not existing["extraction"].get("stand_in_modules_used"):
        # A real-import catalog: the stand-ins must reproduce its parser exactly.
        if parser_of(existing) != parser_of(catalog):
            raise ReleaseError(
                f"the stand-in extraction of sglang {version} differs from its real-import catalog {own_path.name}"
            )
        record = {"catalog": version, "how": "real imports on a CUDA machine; stand-ins give the same parser"}
    else:
        base = nearest_catalog(version, releases)
        if base and parser_of(json.loads((CATALOG_DIR / f"{base}.json").read_text())) == parser_of(catalog):
            own_path.unlink(missing_ok=True)
            record = {
                "catalog": base,
                "how": f"stand-ins; same parser as {base} (flags, test parses, compile_deep_gemm)",
            }
        else:
            write_atomic(own_path, catalog_json(catalog))
            differs = f"; parser differs from {base}" if base else ""
            record = {"catalog": version, "how": f"stand-ins{differs}"}
    releases[version] = record = record | wheel_record
    index = {**release_index(), "releases": dict(sorted(releases.items(), key=lambda item: version_key(item[0])))}
    write_atomic(INDEX_PATH, catalog_json(index))
    release_index.cache_clear()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploygen.sglang.add_release",
        description="Download an SGLang release from PyPI, extract its flag catalog and record it.",
    )
    parser.add_argument("versions", nargs="+", metavar="VERSION", help="e.g. 0.5.24 (several: oldest first)")
    args = parser.parse_args(argv)
    try:
        for line in add_releases(args.versions):
            print(line)
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def add_releases(versions: list[str]) -> Iterator[str]:
    """Add each version in turn (oldest first, so that a post-release finds its release); one line each."""
    for version in versions:
        record = add_release(version)
        yield f"sglang {version}: catalog {record['catalog']} ({record['how']}); {record['wheel']}"


if __name__ == "__main__":
    sys.exit(main())
