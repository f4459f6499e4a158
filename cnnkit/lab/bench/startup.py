"""4. App start: `streamlit run app.py` → home page rendered in Chromium, then each page.

Each start is a fresh server process (the browser is already running); the clock runs from
`streamlit run` to Streamlit reporting the script finished with the page's title on screen.
The server must not have imported TensorFlow after the home page.
"""

from __future__ import annotations

import tempfile
import time

from cnnkit.lab.bench.common import Options, Section, browser_skip, make_finished_run, median, table
from cnnkit.lab.browser import StreamlitServer, goto_when_up, launch_browser, wait_rendered
from cnnkit.sysinfo import load_average

STARTUP_DEADLINE = 120.0  # seconds from `streamlit run` until the home page must have opened


def page_links(page) -> list[tuple[str, str]]:
    """(label, href) of the sidebar's page links, Home first."""
    links = page.eval_on_selector_all('[data-testid="stSidebarNav"] a',
                                      "els => els.map(e => [e.innerText.trim(), e.href])")
    # a link's text is its icon and its name on separate lines: keep the name
    return [(label.splitlines()[-1].strip(), href) for label, href in links]


def startup_once(server: StreamlitServer, browser) -> dict:
    """Seconds from `streamlit run` to the home page rendered, then to each page by its sidebar link."""
    page = browser.new_page()
    try:
        server.start()
        goto_when_up(page, server.url, time.perf_counter() + STARTUP_DEADLINE)
        wait_rendered(page)
        out = {"home": time.perf_counter() - server.started, "tensorflow_after_home": server.has_tensorflow(),
               "pages": {}}
        for label, href in page_links(page)[1:]:
            start = time.perf_counter()
            page.click(f'[data-testid="stSidebarNav"] a[href="{href}"]')
            page.wait_for_url(lambda url, href=href: url.split("?")[0] == href, timeout=60_000)  # pages add ?run=
            wait_rendered(page, label)
            out["pages"][label] = time.perf_counter() - start
        out["tensorflow_after_all_pages"] = server.has_tensorflow()
        return out
    finally:
        page.close()
        server.stop()


def fresh_starts(runs_dir: str, opts: Options, repeats: int, visit=None) -> list[dict]:
    """`repeats` fresh `streamlit run`s of the app on `runs_dir`, each visited by `visit(server,
    browser)` (startup_once: Home, then every page once) in one Chromium; its times and the load."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            for _ in range(repeats):
                load = load_average()
                # offline=False: the server has this process's CNNKIT_OFFLINE, as a user's would
                server = StreamlitServer(runs_dir, data_dir=opts.data_dir, offline=False)
                results.append({**(visit or startup_once)(server, browser), "load": load})
        finally:
            browser.close()
    return results


def bench_startup(opts: Options) -> Section:
    section = Section("4. App start: `streamlit run app.py` → pages rendered in Chromium")
    skip = browser_skip()
    if skip:
        section.lines.append(skip)
        return section
    repeats = 1 if opts.quick else 3
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as runs_dir:
        if not opts.quick:
            make_finished_run(runs_dir, opts.data_dir)
        results = fresh_starts(runs_dir, opts, repeats)
    labels = list(results[0]["pages"])
    rows = [["Home (from `streamlit run`)", *[r["home"] for r in results], median(r["home"] for r in results)]]
    rows += [[f"{label} (sidebar click)", *[r["pages"].get(label) for r in results],
              median(r["pages"].get(label) for r in results)] for label in labels]
    section.lines += table(["page", *[f"start {i} (s)" for i in range(1, repeats + 1)], "median (s)"], rows)
    tf_home = [r["tensorflow_after_home"] for r in results]
    section.lines += ["", f"TensorFlow loaded in the server after the home page: {tf_home} (goal: False); "
                      f"after visiting every page: {[r['tensorflow_after_all_pages'] for r in results]}. "
                      "Each start is a fresh server process; the browser is already running. "
                      "\"Rendered\" = Streamlit reports the script finished (`notRunning`) and the page "
                      "title is on screen. Pages are visited in sidebar order, in one session, so a "
                      "page's time includes imports no earlier page needed. "
                      f"Load average at each start: {[round(r['load'], 2) for r in results]}."]
    if not opts.quick:
        section.lines.append("The runs folder holds one finished run (so Compare, Inspect and Draw have a run to show).")
    section.data = {"starts": results}
    return section
