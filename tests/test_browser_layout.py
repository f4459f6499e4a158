"""Issue 9 in a real browser: where things land on the screen, measured as bounding boxes at a
laptop's 1,400 px and a phone's 390 px (`streamlit run app.py` and Debian's Chromium, started by
cnnkit.lab.browser like every browser test).

- plotly's toolbar (it shows on hover, at a chart's top right) covers no title, subplot title or
  legend, and no legend lies on an axis title or tick labels (Data, Compare, Inspect, Train, Draw);
- no text is cut off: Build's layer buttons, Home's versions table; Build's table shows its Σ row
  without scrolling at 12 layers; Compare's ledger fits a laptop's width;
- a keyed widget whose options changed meaning shows the new labels (Data's class chips).
"""

from __future__ import annotations

import contextlib
import re

import pytest

from cnnkit.lab.browser import (
    CANVAS,
    ONE_STROKE,
    canvas_stroke,
    wait_idle,
)
from tests.oracles import app_serving, chromium

pytestmark = pytest.mark.slow

WIDTHS = {"laptop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
RENDERED = '[data-testid="stApp"][data-test-script-state="notRunning"] h1'

# Per chart, every box of the parts that must stay apart, in page coordinates ([left, top, right, bottom]).
CHART_BOXES = """(index) => {
  const chart = document.querySelectorAll('[data-testid="stPlotlyChart"]')[index];
  const boxes = selector => [...chart.querySelectorAll(selector)].map(e => e.getBoundingClientRect())
      .filter(r => r.width > 0 && r.height > 0).map(r => [r.left, r.top, r.right, r.bottom]);
  return {modebar: boxes('.modebar'), titles: boxes('.gtitle'), annotations: boxes('.annotation'),
          legend: boxes('.legend'), axis_titles: boxes('[class*="xtitle"], [class*="ytitle"]'),
          ticks: boxes('.xtick text, .ytick text')};
}"""


# Two animation frames: whatever the hover changed has been laid out and painted. (Measured: plotly's
# toolbar has the same box before the hover, at once after it and 300 ms later.)
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def overlap(a, b) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = [{"layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"}, {"type": "flatten"}],
             "dataset": {"name": "mnist", "train_limit": 600, "validation_split": 0.1},
             "training": {"epochs": 2, "batch_size": 64}, "baseline": "dense-128", "name": name}
            for name in ("first run", "second run")]
    with app_serving(tmp_path_factory.mktemp("browser_layout"), runs) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as launched:
        yield launched


# Pages that two tests look at, opened once: the chart test's Compare at laptop width is the page
# the ledger test measures next (a chart hovered moves nothing in the ledger's box). Closed at the
# module's end. (Data at laptop width is not shared: after the charts were hovered, the chips
# test's click on the Dataset box opened no options list.)
SHARED = {("Compare", "laptop")}


@pytest.fixture(scope="module")
def shared_pages(browser):
    kept = {}
    yield kept
    for page in kept.values():
        page.close()


def open_page(browser, server, path: str, width: str):
    page = browser.new_page(viewport=WIDTHS[width])
    page.goto(f"{server.url}/{path}")
    page.wait_for_selector(RENDERED, timeout=90_000)
    wait_idle(page)
    return page


@contextlib.contextmanager
def opened(browser, server, path: str, width: str, shared: dict | None = None):
    """The page at `path`, loaded and settled; a page in SHARED comes from (and stays in) `shared`."""
    if shared is not None and (path, width) in SHARED:
        if (path, width) not in shared:
            shared[(path, width)] = open_page(browser, server, path, width)
        yield shared[(path, width)]
        return
    page = open_page(browser, server, path, width)
    try:
        yield page
    finally:
        page.close()


def chart_collisions(page) -> list[str]:
    """Each chart hovered (the toolbar shows), then what covers what, in words."""
    found = []
    charts = page.locator('[data-testid="stPlotlyChart"]')
    for index in range(charts.count()):
        if not charts.nth(index).is_visible():  # in a closed expander
            continue
        charts.nth(index).scroll_into_view_if_needed()
        charts.nth(index).hover()
        page.evaluate(PAINTED)  # the hover's effects are laid out (was a fixed 300 ms wait)
        boxes = page.evaluate(CHART_BOXES, index)
        for part in ("titles", "annotations", "legend"):
            found += [f"chart {index}: the toolbar covers a {part[:-1] if part != 'legend' else part}"
                      for box in boxes[part] for bar in boxes["modebar"] if overlap(box, bar)]
        found += [f"chart {index}: the legend lies on an axis title or tick labels"
                  for box in boxes["legend"] for other in boxes["axis_titles"] + boxes["ticks"] if overlap(box, other)]
    return found


def draw_a_stroke(page) -> None:
    page.locator(CANVAS).first.wait_for(state="visible", timeout=60_000)
    page.wait_for_timeout(300)  # the canvas takes its drawing tool a moment after it appears
    canvas_stroke(page, ONE_STROKE)
    page.wait_for_function("() => /Prediction: \\d/.test(document.body.innerText)", timeout=60_000)
    wait_idle(page)


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("path", ["Data", "Compare", "Inspect", "Train?run={run}", "Draw"])
def test_the_chart_toolbar_and_legends_cover_nothing(browser, server, shared_pages, path, width):
    from cnnkit.runs.store import RunStore

    run = RunStore(server.runs_dir).list()[0].run_id
    with opened(browser, server, path.format(run=run), width, shared_pages) as page:
        if path == "Draw":
            draw_a_stroke(page)
        assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
        assert chart_collisions(page) == []


def text_cut_off(locator) -> list[str]:
    """The texts of these elements that do not fit their box (an ellipsis, or clipped)."""
    return [item["text"] for item in locator.evaluate_all(
        "els => els.map(e => ({text: e.innerText, cut: e.scrollWidth > e.clientWidth + 1}))") if item["cut"]]


@pytest.mark.parametrize("width", list(WIDTHS))
def test_build_layer_buttons_show_their_whole_label(browser, server, width):
    with opened(browser, server, "Build", width) as page:
        page.locator("text=3 · Conv2D").first.click()  # one layer's editor open: its ↑ ↓ ✕
        wait_idle(page)
        buttons = page.locator('details[open] button[data-testid^="stBaseButton"] [data-testid="stMarkdownContainer"]')
        assert buttons.count() >= 3
        assert text_cut_off(buttons) == []


def test_build_shows_the_totals_row_of_a_long_network_without_scrolling(browser, server):
    from cnnkit.specs import ExperimentSpec
    from cnnkit.views.links import link_value

    layers = [{"type": "conv2d", "filters": 8, "kernel_size": 3, "padding": "same"}] * 10 + [{"type": "flatten"}]
    spec = ExperimentSpec.from_dict({"layers": layers, "dataset": {"name": "mnist"}})
    with opened(browser, server, f"Build?exp={link_value(spec)}", "laptop") as page:
        page.wait_for_selector("text=Opened the linked experiment", timeout=30_000)
        wait_idle(page)
        scroller = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first
        rows_height, shown_height = scroller.evaluate("s => [s.scrollHeight, s.clientHeight]")
        # 11 layers, the output and Σ: 13 rows and the header, all of them inside the table's box
        assert rows_height <= shown_height + 1


def test_compare_ledger_fits_a_laptop_screen(browser, server, shared_pages):
    with opened(browser, server, "Compare", "laptop", shared_pages) as page:
        scroller = page.locator('[data-testid="stDataFrame"] .dvn-scroller').first
        content_width, shown_width = scroller.evaluate("s => [s.scrollWidth, s.clientWidth]")
        assert content_width <= shown_width + 1


@pytest.mark.parametrize("width", list(WIDTHS))
def test_home_versions_table_fits_its_column(browser, server, width):
    with opened(browser, server, "", width) as page:
        page.locator("summary:has-text('Library versions')").click()
        table = page.locator('[data-testid="stTable"] table').first
        table.wait_for(state="visible")
        right, column_right = table.evaluate(
            "t => [t.getBoundingClientRect().right, t.closest('[data-testid=\"stExpander\"]').getBoundingClientRect().right]")
        assert right <= column_right + 1


def chips(page) -> list[str]:
    return [text.strip() for text in page.locator(
        '[data-testid="stMultiSelect"]:has-text("Classes") [data-tag] > span[title]').all_inner_texts()]


def test_data_class_chips_follow_the_dataset(browser, server):
    from cnnkit.data.catalog import DATASETS

    with opened(browser, server, "Data", "laptop") as page:
        assert chips(page) == [str(k) for k in range(10)]
        for name in ("fashion_mnist", "mnist"):
            page.locator('[data-testid="stSelectbox"]:has-text("Dataset")').first.click()
            page.get_by_role("option", name=re.compile(f"^{re.escape(DATASETS[name].title)}$")).click()
            page.wait_for_selector(f"text={DATASETS[name].description[:30]}", timeout=30_000)
            wait_idle(page)
            # was: Fashion-MNIST's chips read 0–9, and MNIST's then "T-shirt/top, Trouser…"
            assert chips(page) == list(DATASETS[name].class_names)

