"""Experiment links (`?exp=`): every preset round-trips; hostile links get one clear message."""

import base64
import json
import zlib

import pytest

from cnnkit.errors import SpecError
from cnnkit.presets import PRESETS
from cnnkit.shapes import summarize_spec
from cnnkit.views.links import MAX_LINK_CHARS, LinkError, experiment_url, link_value, spec_from_link


def pack(raw: bytes, version: str = "1") -> str:
    return f"{version}." + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_a_link(name):
    spec = PRESETS[name].experiment(baseline="dense-128").updated({"name": f"{name} for my class 🧠"})
    value = link_value(spec)
    assert spec_from_link(value) == spec
    assert summarize_spec(spec_from_link(value)).total_params == summarize_spec(spec).total_params
    assert len(value) < 1000  # compact: the largest preset's link is measured below


def test_the_url_opens_the_build_page_and_is_url_safe():
    spec = PRESETS["kruse-conv-nopool"].experiment()
    url = experiment_url(spec, "https://cnnkit.example.org/")
    assert url.startswith("https://cnnkit.example.org/Build?exp=1.")
    value = url.split("?exp=", 1)[1]
    assert all(c.isalnum() or c in "._-" for c in value)
    longest = max(len(link_value(p.experiment(baseline="matched"))) for p in PRESETS.values())
    print(f"\nthe longest preset link value: {longest} characters")
    assert longest < MAX_LINK_CHARS // 4


@pytest.mark.parametrize("value, why", [
    (None, "holds no experiment"),
    ("", "holds no experiment"),
    ("1." + "A" * (MAX_LINK_CHARS + 1), "characters long"),                 # huge: refused unread
    ("2." + "eJyrVgIAAUABAA", "version '2'"),                               # from a future cnnkit
    ("eJyrVgIAAUABAA", "version 'none'"),                                   # no version at all
    ("1.abc$def", "characters a link never has"),
    ("1.abcde", "damaged"),                                                  # not zlib data
])
def test_a_hostile_or_damaged_link_says_why(value, why):
    with pytest.raises(LinkError, match=why):
        spec_from_link(value)


def test_a_truncated_link_is_damaged():
    value = link_value(PRESETS["chollet-cnn"].experiment())
    for cut in (len(value) // 2, len(value) - 3):
        with pytest.raises(LinkError, match="damaged"):
            spec_from_link(value[:cut])


def test_a_compression_bomb_is_refused_while_it_inflates():
    bomb = pack(b" " * 3_000_000)  # ~4,000 characters of link that inflate to 3 MB
    assert len(bomb) < MAX_LINK_CHARS
    with pytest.raises(LinkError, match="larger than 1,000,000 bytes"):
        spec_from_link(bomb)


def test_an_invalid_experiment_names_its_field():
    doc = json.loads(PRESETS["chollet-cnn"].experiment().to_json())
    doc["layers"][0]["filters"] = -4
    with pytest.raises(SpecError, match=r"layers\[0\]\.filters"):
        spec_from_link(pack(json.dumps(doc).encode()))
    with pytest.raises(SpecError, match="not valid JSON"):
        spec_from_link(pack(b"{not json"))
    good = json.loads(PRESETS["chollet-cnn"].experiment().to_json())
    with pytest.raises(SpecError, match="lone surrogate"):
        spec_from_link(pack(json.dumps({**good, "name": "\ud800"}).encode()))
