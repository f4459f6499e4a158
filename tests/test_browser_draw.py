"""The Draw page's layout in a real browser (Chromium through cnnkit.lab.browser), at a laptop's
1,400 px and a phone's 390 px: the canvas's toolbar, which fades in above the canvas on hover,
covers nothing; nothing scrolls sideways; a dot is read with a warning under the prediction.

The canvas component keeps its parts in a shadow root: the measuring script walks into it.
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

# Every element, through open shadow roots; boxes as plain objects; the toolbar's card (the part
# people see), what it could cover (the Model selector, the messages, every text) and who overflows.
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
  const card = find('.dc-toolbar-card'), scroller = find('.dc-scroll');
  const covered = [];
  for (const el of document.querySelectorAll('[data-testid="stSelectbox"], [data-testid="stAlert"]'))
    covered.push({what: el.dataset.testid + ': ' + el.innerText.slice(0, 40), box: box(el.getBoundingClientRect())});
  for (const el of document.querySelectorAll('[data-testid="stMarkdownContainer"], h1'))
    for (const b of textBoxes(el)) covered.push({what: 'text: ' + el.innerText.slice(0, 40), box: b});
  const se = document.scrollingElement, main = document.querySelector('[data-testid="stMain"]');
  return {
    toolbar: card && box(card.getBoundingClientRect()),
    toolbarOpacity: card && getComputedStyle(find('.dc-toolbar')).opacity,
    canvas: box(find('canvas.upper-canvas').getBoundingClientRect()),
    covered,
    overflow: {canvas: scroller.scrollWidth - scroller.clientWidth, page: se.scrollWidth - se.clientWidth,
               main: main.scrollWidth - main.clientWidth},
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


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


def open_draw(browser, server, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(f"{server.url}/Draw")
    page.locator("canvas.upper-canvas").first.wait_for(timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(300)  # the canvas takes strokes once it has loaded (see test_browser_e2e)
    return page


def show_toolbar(page) -> dict:
    page.locator("canvas.upper-canvas").first.hover()
    page.wait_for_timeout(600)  # it fades in after 0.1 s, for 0.15 s
    return page.evaluate(MEASURE)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1400px", "390px"])
def test_the_canvas_toolbar_covers_nothing_and_nothing_scrolls_sideways(server, browser, viewport):
    page = open_draw(browser, server, viewport)
    for moment in ("empty canvas", "after a stroke"):
        seen = show_toolbar(page)
        assert seen["toolbarOpacity"] == "1", seen  # it is showing, so its box is what a person sees
        hidden = [c["what"] for c in seen["covered"] if overlaps(seen["toolbar"], c["box"])]
        assert not hidden, (moment, seen["toolbar"], hidden)
        assert seen["overflow"] == {"canvas": 0, "page": 0, "main": 0}, moment
        assert seen["canvas"]["right"] - seen["canvas"]["left"] == pytest.approx(280, abs=0.5)
        if moment == "empty canvas":
            canvas_stroke(page, ONE_STROKE)
            page.wait_for_function("() => /Prediction: \\d/.test(document.body.innerText)", timeout=30_000)
            wait_idle(page)


def test_a_dot_is_read_with_a_warning_under_the_prediction(server, browser):
    page = open_draw(browser, server, LAPTOP)
    canvas_stroke(page, [(0.5 + 0.01 * math.cos(t), 0.5 + 0.01 * math.sin(t)) for t in range(8)])  # a dot: 20 px brush
    page.wait_for_function("() => /Prediction: \\d/.test(document.body.innerText)", timeout=30_000)
    warning = page.get_by_text("Don't trust this reading:")
    warning.wait_for(timeout=30_000)
    assert "a blot, not pen strokes" in warning.inner_text()
    prediction = page.get_by_text("Prediction:").bounding_box()
    assert warning.bounding_box()["y"] > prediction["y"] + prediction["height"]  # under it, not above
