"""Plain-text views without Streamlit: number, time and status formatters, and the CLI's
progress line. The pages and ui.py use these; nothing here draws anything."""

from __future__ import annotations

import html
import re
import sys

from cnnkit.errors import CnnkitError

MODEL_TITLES = {"cnn": "CNN", "baseline": "dense baseline"}
STATUS_ICONS = {"queued": "⏳", "running": "🏃", "finished": "✅", "stopped": "⏹️", "failed": "❌",
                "interrupted": "⚠️", "damaged": "🧨"}


# Everything Streamlit's markdown gives a meaning: emphasis, links and images, headings, lists,
# tables, HTML, :emoji: and :color[...] directives, $LaTeX$.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def plain(value: object) -> str:
    """Text someone else wrote (a run name, a file name, a message quoting a value), safe inside
    Streamlit markdown: every markup character escaped, lines joined. A run renamed
    "![p](http://attacker/p.png)" once made the next visitor's Train page fetch that image."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def plain_html(value: object) -> str:
    """The same for plotly labels (legends, titles), which render a little HTML (<a href=…>)."""
    return html.escape(" ".join(str(value).split()), quote=False)


def model_title(key: str, *, capital: bool = False) -> str:
    """"CNN", "dense baseline"; `capital` for the start of a label ("Dense baseline train")."""
    title = MODEL_TITLES.get(key, key)
    return title[:1].upper() + title[1:] if capital else title


def fmt_seconds(seconds: float | None) -> str:
    """"4.2 s", "42 s", "2 min 05 s", "1 h 02 min"; "–" when not known."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals ("98.76%"); "–" when not known."""
    return "–" if value is None else f"{value:.2%}"


def status_label(status: str) -> str:
    """A run status with its icon: "✅ finished"."""
    return f"{STATUS_ICONS.get(status, '•')} {status}"


def status_counts(statuses) -> str:
    """How many runs have each status, by name: "🧨 damaged 1 · ✅ finished 2"."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return " · ".join(f"{status_label(s)} {n}" for s, n in sorted(counts.items()))


def run_label(record) -> str:
    """A run in a picker (a cnnkit.runs.store.RunRecord): "name (dataset, status · accuracy)"."""
    acc = "" if record.test_accuracy is None else f" · {fmt_pct(record.test_accuracy)}"
    return f"{record.name} ({record.dataset or '?'}, {record.status}{acc})"


def source_summary(description: str) -> str:
    """A data source's description without its long why-not-the-real-data note (after " — ")."""
    return description.split(" — ")[0]


def error_text(exc: Exception, what: str = "") -> str:
    """A message for people: cnnkit's own errors as they are, others with their type;
    `what` failed first ("Could not load the model: …")."""
    text = str(exc) if isinstance(exc, CnnkitError) else f"{type(exc).__name__}: {exc}"
    return plain(f"{what}: {text}" if what else text)


class TerminalProgress:
    """A one-line progress bar on stderr (a line per epoch when stderr is not a terminal)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr  # looked up now: a default bound at import outlives a redirect
        self.tty = self.stream.isatty()

    def __repr__(self) -> str:
        return f"TerminalProgress(tty={self.tty})"

    def __call__(self, progress: dict) -> None:
        phase = progress.get("phase")
        if phase == "training" and self.tty:
            done, total = progress.get("batch", 0), max(progress.get("batches", 1), 1)
            filled = int(30 * done / total)
            self.stream.write(
                f"\r{progress.get('model')} epoch {progress.get('epoch')}/{progress.get('epochs')} "
                f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} loss {progress.get('loss', 0):.4f} "
                f"{progress.get('images_per_second', 0):,.0f} img/s ETA {progress.get('eta_seconds', 0):.0f}s ")
            self.stream.flush()
        elif phase == "epoch_end":
            val = (f" val_acc {progress['val_accuracy']:.4f}" if "val_accuracy" in progress else "")
            self.stream.write(f"{chr(13) if self.tty else ''}{progress['model']} epoch {progress['epoch']}: "
                              f"loss {progress.get('loss', 0):.4f} acc {progress.get('accuracy', 0):.4f}{val} "
                              f"({progress['seconds']:.1f} s, {progress['images_per_second']:,.0f} img/s)"
                              f"{' ' * 20}\n")
            self.stream.flush()
        elif phase in ("loading data", "evaluating"):
            self.stream.write(f"{phase}…\n")
            self.stream.flush()

