"""An experiment in a link: `?exp=1.<base64url of the compressed spec JSON>`.

A teacher shares one URL and every student's Build page opens the same network and recipe (as
TensorFlow Playground and ENNUI keep theirs in the URL). Trained weights do not fit in a URL;
a run's zip carries those. The value comes from whoever made the link, so it is read like an
upload: its length is capped before decoding, the decompressed size is capped while inflating
(a few hundred bytes must not inflate to gigabytes), and the spec is validated field by field.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib

from cnnkit.errors import CnnkitError
from cnnkit.specs import MAX_JSON_BYTES, ExperimentSpec

LINK_VERSION = "1"
MAX_LINK_CHARS = 6000           # browsers and proxies cut URLs somewhere past 8,000 characters
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
DEFAULT_BASE_URL = "http://localhost:8501/"


class LinkError(CnnkitError):
    """An experiment link cannot be read; the message says why."""


def link_value(spec: ExperimentSpec) -> str:
    """The `exp` parameter for `spec`: versioned, compact, URL-safe."""
    compact = json.dumps(spec.to_dict(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    packed = base64.urlsafe_b64encode(zlib.compress(compact, 9)).decode("ascii").rstrip("=")
    return f"{LINK_VERSION}.{packed}"


def experiment_url(spec: ExperimentSpec, base_url: str = DEFAULT_BASE_URL) -> str:
    """The Build page of the app at `base_url`, opening `spec`."""
    return f"{base_url.rstrip('/')}/Build?exp={link_value(spec)}"


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_JSON_BYTES + 1)
    except zlib.error:
        raise LinkError("the link is damaged (cut short or changed): copy it again") from None
    if len(out) > MAX_JSON_BYTES or inflater.unconsumed_tail:
        raise LinkError(f"the link's experiment is larger than {MAX_JSON_BYTES:,} bytes")
    if not inflater.eof:
        raise LinkError("the link is damaged (cut short): copy it again")
    return out


def spec_from_link(value: object) -> ExperimentSpec:
    """The experiment of an `exp` parameter; LinkError (or SpecError naming the field) if it
    cannot be one. Nothing is decoded before the length and the characters are checked."""
    if not isinstance(value, str) or not value:
        raise LinkError("the link holds no experiment")
    if len(value) > MAX_LINK_CHARS:
        raise LinkError(f"the link is {len(value):,} characters long; an experiment link has at most "
                        f"{MAX_LINK_CHARS:,}")
    version, dot, packed = value.partition(".")
    if not dot or version != LINK_VERSION:
        shown = version[:10] if dot else "none"
        raise LinkError(f"the link is of version {shown!r}; this cnnkit reads version {LINK_VERSION} "
                        f"(a newer cnnkit made it, or it is not an experiment link)")
    if not BASE64URL.fullmatch(packed):
        raise LinkError("the link is damaged (it has characters a link never has): copy it again")
    try:
        data = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
    except (binascii.Error, ValueError):
        raise LinkError("the link is damaged (cut short or changed): copy it again") from None
    return ExperimentSpec.from_json(_inflate(data))
