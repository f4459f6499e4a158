"""The Draw page's canvas in a real browser (Chromium through cnnkit.lab.browser), at a laptop's
1,400 px and a phone's 390 px: the canvas and its Undo and Clear cover nothing and nothing scrolls
sideways; Undo takes the last stroke back and Clear empties it, on the canvas and in the reading;
a dot is read with a warning under the prediction.

The canvas component (components/draw_canvas.js) keeps its parts in a shadow root: the measuring
script walks into it, and Playwright's locators go in by themselves.
"""

from __future__ import annotations

import math

import pytest

from cnnkit.lab.browser import (
    ONE_STROKE,
    canvas_stroke,
    wait_idle,
)
from tests.oracles import app_serving, chromium

pytestmark = pytest.mark.slow

LAPTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}

# Every element, through open shadow roots; boxes as plain objects; the canvas and its buttons,
# what they could cover (the Model selector, the messages, every text) and who overflows.
MEASURE = """() => {
  const all = [], roots = [document];
  while (roots.length) {
    for (const el of roots.pop().querySelectorAll('*')) { all.push(el); if (el.shadowRoot) roots.push(el.shadowRoot); }
  }
  const box = r => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  const find = sel => all.find(el => el.matches(sel));
  const textBoxes = el => {  // the text itself, not the (full-width) blocks that hold it
    const boxes = [], walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const range = document.createRange();
      range.selectNodeContents(node);
      boxes.push(...[...range.getClientRects()].filter(r => r.width > 0 && r.height > 0).map(box));
    }
    return boxes;
  };
  const covered = [];
  for (const el of document.querySelectorAll('[data-testid="stSelectbox"], [data-testid="stAlert"]'))
    covered.push({what: el.dataset.testid + ': ' + el.innerText.slice(0, 40), box: box(el.getBoundingClientRect())});
  for (const el of document.querySelectorAll('[data-testid="stMarkdownContainer"], h1'))
    for (const b of textBoxes(el)) covered.push({what: 'text: ' + el.innerText.slice(0, 40), box: b});
  const se = document.scrollingElement, main = document.querySelector('[data-testid="stMain"]');
  return {
    canvas: box(find('canvas.ink').getBoundingClientRect()),
    tools: box(find('.tools').getBoundingClientRect()),
    covered,
    overflow: {page: se.scrollWidth - se.clientWidth, main: main.scrollWidth - main.clientWidth},
  };
}"""


def overlaps(a: dict, b: dict) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with app_serving(tmp_path_factory.mktemp("draw"), [{
            "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"},
                       {"type": "flatten"}, {"type": "dense", "units": 32}],
            "dataset": {"train_limit": 1500}, "training": {"epochs": 1, "batch_size": 64},
            "baseline": "dense-128"}]) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:  # one Chromium for the module: each test opens its own page
        yield launched


def open_draw(browser, server, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(f"{server.url}/Draw")
    page.locator("canvas.ink").first.wait_for(timeout=60_000)
    wait_idle(page)
    return page


READ = "() => /Prediction: \\d/.test(document.body.innerText)"
EMPTY = "() => document.body.innerText.includes('Nothing drawn yet')"


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1400px", "390px"])
def test_the_canvas_and_its_buttons_cover_nothing_and_nothing_scrolls_sideways(server, browser, viewport):
    page = open_draw(browser, server, viewport)
    for moment in ("empty canvas", "after a stroke"):
        seen = page.evaluate(MEASURE)
        for part in ("canvas", "tools"):
            hidden = [c["what"] for c in seen["covered"] if overlaps(seen[part], c["box"])]
            assert not hidden, (moment, part, seen[part], hidden)
        assert seen["overflow"] == {"page": 0, "main": 0}, moment
        assert seen["canvas"]["right"] - seen["canvas"]["left"] == pytest.approx(280, abs=0.5)
        assert seen["tools"]["top"] >= seen["canvas"]["bottom"]  # under the canvas, not over it
        if moment == "empty canvas":
            canvas_stroke(page, ONE_STROKE)
            page.wait_for_function(READ, timeout=30_000)
            wait_idle(page)


def test_undo_takes_the_last_stroke_back_and_clear_empties_the_canvas(server, browser):
    page = open_draw(browser, server, LAPTOP)
    lit = ("() => { const roots = [document]; let c; while (roots.length && !c) { const r = roots.pop(); "
           "c = r.querySelector('canvas.ink'); r.querySelectorAll('*').forEach(e => e.shadowRoot && roots.push(e.shadowRoot)); } "
           "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; "
           "for (let i = 0; i < d.length; i += 4) n += d[i] > 127; return n; }")
    canvas_stroke(page, ONE_STROKE)
    page.wait_for_function(READ, timeout=30_000)
    one = page.evaluate(lit)
    canvas_stroke(page, [(0.3, 0.3), (0.7, 0.3)])  # a bar across the top: a "7"
    page.wait_for_function(f"() => ({lit})() > {one}", timeout=10_000)
    page.get_by_role("button", name="Undo").click()
    assert page.evaluate(lit) == one  # the bar is gone, the "1" is as it was
    page.get_by_role("button", name="Undo").click()
    assert page.evaluate(lit) == 0
    page.wait_for_function(EMPTY, timeout=30_000)  # the server was told: no reading of an empty canvas
    canvas_stroke(page, ONE_STROKE)
    page.wait_for_function(READ, timeout=30_000)
    page.get_by_role("button", name="Clear").click()
    assert page.evaluate(lit) == 0
    page.wait_for_function(EMPTY, timeout=30_000)
    assert not page.evaluate(READ)


def test_a_dot_is_read_with_a_warning_under_the_prediction(server, browser):
    page = open_draw(browser, server, LAPTOP)
    canvas_stroke(page, [(0.5 + 0.01 * math.cos(t), 0.5 + 0.01 * math.sin(t)) for t in range(8)])  # a dot: 20 px brush
    page.wait_for_function("() => /Prediction: \\d/.test(document.body.innerText)", timeout=30_000)
    warning = page.get_by_text("Don't trust this reading:")
    warning.wait_for(timeout=30_000)
    assert "a blot, not pen strokes" in warning.inner_text()
    prediction = page.get_by_text("Prediction:").bounding_box()
    assert warning.bounding_box()["y"] > prediction["y"] + prediction["height"]  # under it, not above
