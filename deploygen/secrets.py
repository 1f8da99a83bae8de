"""What a secret looks like, by its name and by its shape, so that none is written or printed.

A profile names Modal secrets; it never holds a secret value. Validation refuses a literal under a name
that says key, token, secret, password or auth, and any value shaped like a known token or as random as
one. Output is masked with the same shapes, as a last line of defence.
"""

from __future__ import annotations

import math
import re
from collections import Counter

# Words that make a flag or environment variable name a secret wherever they appear...
_SECRET_WORDS = {
    "secret",
    "secrets",
    "password",
    "passwd",
    "passphrase",
    "apikey",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "cookie",
}
# ...and words that do when the name ends with them (`max-token-latency` is about LLM tokens, `hf-token` is not).
_SECRET_LAST_WORDS = {"key", "token", "pat"}

# Token formats with a published prefix. Sources: Hugging Face (https://huggingface.co/docs/hub/security-tokens),
# OpenAI (https://platform.openai.com/docs/api-reference/authentication), GitHub
# (https://github.blog/engineering/platform-security/behind-githubs-new-authentication-token-formats/), Modal
# token ids and secrets (`modal token new` writes ak-... and as-...), AWS access key ids
# (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html), Slack and Google API keys.
TOKEN_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"hf_[A-Za-z0-9]{20,}"
    r"|sk-[A-Za-z0-9_-]{16,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|github_pat_[A-Za-z0-9_]{20,}"
    r"|a[ks]-[A-Za-z0-9]{16,}"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{30,}"
    r")"
    # `Authorization: Bearer <token>`, and the password of a URL's user:password@ part.
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=://)[^/\s:@'\"]+:[^/\s@'\"]+(?=@)"
)
# Runs of base64/base62 characters long enough to be a key.
_CANDIDATE = re.compile(r"[A-Za-z0-9+/=_-]{24,}")
_HEX = re.compile(r"[0-9a-fA-F]+")


def secret_name(name: str) -> bool:
    """A flag or environment variable name that says it holds a secret (`admin-api-key`, `HF_TOKEN`,
    `ssl-keyfile-password`, `MODAL_AUTH`)."""
    words = [w for w in re.split(r"[-_.\s]+", name.lower()) if w]
    return bool(words) and (words[-1] in _SECRET_LAST_WORDS or any(w in _SECRET_WORDS for w in words))


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_looking(run: str) -> bool:
    """A run as random as a generated key: mixed letters and digits, about 4+ bits per character.
    Hex runs (commits, digests) and words joined by '-' or '_' are not."""
    if _HEX.fullmatch(run):
        return False
    classes = sum(bool(re.search(c, run)) for c in ("[a-z]", "[A-Z]", "[0-9]"))
    parts = re.split(r"[-_/]", run)
    return classes >= 3 and max(len(p) for p in parts) >= 20 and _entropy(run) >= 4.0


def looks_secret(value: str) -> bool:
    """A value shaped like a token or a key: never a literal in a profile, never printed."""
    return bool(TOKEN_SHAPES.search(value)) or any(_random_looking(m) for m in _CANDIDATE.findall(value))


def mask(text: str) -> str:
    """The text with every secret-looking part replaced by `***`."""
    text = TOKEN_SHAPES.sub("***", text)
    return _CANDIDATE.sub(lambda m: "***" if _random_looking(m.group()) else m.group(), text)
