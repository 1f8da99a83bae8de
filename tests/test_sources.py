"""The product cites public sources or its own committed docs: no reference to documents outside the
repository, and every `docs/sources.md#anchor` it cites names a heading of docs/sources.md."""

from __future__ import annotations

import re
import subprocess

from conftest import ROOT

# Names of the working notes this project started from; none of them is in the repository.
OUTSIDE = re.compile(r"FACTS\.md|\bseed[ ]0\d\d\b|\bseeds?/\d", re.IGNORECASE)
CITATION = re.compile(r"docs/sources\.md#([a-z0-9-]+)((?:,? #[a-z0-9-]+)*)")


def committed_text_files() -> dict[str, str]:
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    files = {}
    for name in filter(None, (n.decode() for n in names)):
        path = ROOT / name
        if name != "tests/test_sources.py" and path.is_file() and path.suffix not in (".png", ".svg"):
            try:
                files[name] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return files


def test_nothing_refers_to_documents_outside_the_repository():
    found = [
        f"{name}:{text[: m.start()].count(chr(10)) + 1}: {m.group()}"
        for name, text in committed_text_files().items()
        for m in OUTSIDE.finditer(text)
    ]
    assert found == []


def test_every_cited_anchor_of_docs_sources_exists():
    headings = set(re.findall(r"^### (\S+)$", (ROOT / "docs" / "sources.md").read_text(), re.MULTILINE))
    cited = {}
    for name, text in committed_text_files().items():
        for match in CITATION.finditer(text):
            anchors = [match.group(1), *re.findall(r"#([a-z0-9-]+)", match.group(2))]
            for anchor in anchors:
                cited.setdefault(anchor, name)
    # GitHub turns a heading into its anchor by dropping punctuation: keep headings to what survives.
    assert [h for h in headings if not re.fullmatch(r"[a-z0-9-]+", h)] == []
    missing = {anchor: name for anchor, name in cited.items() if anchor not in headings}
    assert missing == {}
    assert cited, "no citation found: the pattern no longer matches how the repository cites"
