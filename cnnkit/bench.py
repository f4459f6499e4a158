"""`python -m cnnkit bench [which…]`: the performance numbers in docs/PERFORMANCE.md.

    throughput  training images/s and test accuracy: cnnkit's run_job vs a plain Keras script
    latency     one 28×28 image through the app's prediction path vs model.predict
    memory      peak RSS while training, and after five trainings in one process
    dashboard   training with the live Train page open in a browser vs bare model.fit
    startup     `streamlit run` → home page rendered in a browser, then each page
    levers      (only when named) each speed lever of training.py on its own

Every training side runs in a fresh child process (`python -m cnnkit.bench --child …`): each
gets TensorFlow's default start-up state, nothing leaks from one side into the other, and the
parent never imports TensorFlow. The sides alternate (A B A B …) so both meet the same load
from the other users of this shared 2-core machine; reports give medians, every repetition
and the load average. Timings are reported, never asserted.

The full benchmarks need the real datasets (--data-dir or CNNKIT_DATA_DIR) and skip with a
message without them; --quick runs tiny versions on whatever data there is (the bundled
sample too), for smoke tests.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from cnnkit.errors import DataError, SpecError

BENCHES = ("throughput", "latency", "memory", "dashboard", "startup")
RESULT_PREFIX = "BENCH_RESULT "
CHILD_TIMEOUT = 3 * 3600
REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# ---------------------------------------------------------------------------
# The machine and the numbers


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def machine_info(gpus: list[str] | None = None) -> dict:
    """CPU, cores, memory, GPUs (if TensorFlow is loaded here or `gpus` is given), versions."""
    if gpus is None and "tensorflow" in sys.modules:
        gpus = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    flags = _cpu_flags()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": _memory_gib(),
        "bf16": "avx512_bf16" in flags or "amx_bf16" in flags,
        "gpus": gpus,
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in
                     ("tensorflow", "tensorflow-cpu", "keras", "numpy", "streamlit", "playwright")},
    }


def describe_machine(info: dict) -> str:
    versions = info.get("versions", {})
    tf_version = next((v for k, v in versions.items() if k.startswith("tensorflow") and v != "not installed"),
                      "?")
    gpus = info.get("gpus")
    gpu_text = "GPU: not checked" if gpus is None else (f"GPU: {', '.join(gpus)}" if gpus else "no GPU")
    memory = info.get("memory_gib")
    return (f"{info.get('cpu')}, {info.get('usable_cores')} cores"
            f"{f', {memory:.0f} GiB RAM' if memory else ''}, {gpu_text}; Python {info.get('python')}, "
            f"TensorFlow {tf_version}, Keras {versions.get('keras')}, NumPy {versions.get('numpy')}, "
            f"Streamlit {versions.get('streamlit')}")


def median(values) -> float | None:
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values, q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), q in 0–100."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def load_average() -> float:
    return os.getloadavg()[0]


def rss_mib() -> dict:
    """This process's resident memory now and its peak (VmHWM), in MiB."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return {"rss_mib": out.get("VmRSS"), "peak_rss_mib": out.get("VmHWM")}


@dataclass
class Section:
    """One benchmark's result: a markdown block and its raw numbers."""

    title: str
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Section({self.title!r}, {len(self.lines)} lines)"

    def markdown(self) -> str:
        return "\n".join([f"### {self.title}", "", *self.lines]) + "\n"


def table(header: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
        return "–" if value is None else str(value)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]]


# ---------------------------------------------------------------------------
# Child processes


def run_child(kind: str, params: dict, timeout: float = CHILD_TIMEOUT) -> dict:
    """Run one measurement in a fresh interpreter; its last RESULT line is the answer."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                       os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnkit.bench", "--child", kind, json.dumps(params)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO_ROOT))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["child_seconds"] = time.perf_counter() - started
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"benchmark child {kind} failed (exit {proc.returncode}): {' / '.join(tail)}")


def child_main(argv: list[str]) -> int:
    kind, params = argv[0], json.loads(argv[1])
    result = CHILDREN[kind](**params)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------
# 1. Training throughput: cnnkit vs the plain Keras script of the articles


def reference_training(preset: str, data_dir: str | None, train_limit: int | None, epochs: int,
                       seed: int | None = None) -> dict:
    """What the source articles did: keras.Sequential, float32 numpy arrays, model.fit defaults
    (verbose=0: the progress bar would only slow the reference down)."""
    from cnnkit.models import keras_layer
    from cnnkit.presets import get_preset
    from cnnkit.tf_import import keras, tf
    from cnnkit.training import prepare_data

    spec = _bench_spec(get_preset(preset), train_limit, epochs, seed)
    prepared = prepare_data(spec, data_dir)
    x_train = prepared.normalize(prepared.x_train).astype("float32")  # the article's x / 255.0
    x_test = prepared.normalize(prepared.x_test).astype("float32")
    keras.utils.set_random_seed(spec.training.seed)
    model = keras.Sequential(
        [keras.Input(prepared.input_shape)]
        + [keras_layer(i, layer) for i, layer in enumerate(spec.layers, start=1)]
        + [keras.layers.Dense(prepared.num_classes, activation=None if spec.output == "logits" else "softmax")])
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                 "sgd": keras.optimizers.SGD}[spec.training.optimizer](spec.training.learning_rate)
    model.compile(optimizer=optimizer, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=spec.output == "logits"))
    timer = EpochTimer()
    model.fit(x_train, prepared.y_train, batch_size=spec.training.batch_size, epochs=epochs, verbose=0,
              callbacks=[timer])
    _, accuracy = model.evaluate(x_test, prepared.y_test, batch_size=1000, verbose=0)
    n = len(prepared.y_train)
    return {"side": "keras", "images_per_second": [n / s for s in timer.seconds],
            "cpu_ms_per_image": [1000 * c / n for c in timer.cpu_seconds], "test_accuracy": float(accuracy),
            "train_images": n, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")], **rss_mib()}


def cnnkit_training(preset: str, data_dir: str | None, train_limit: int | None, epochs: int,
                    seed: int | None = None) -> dict:
    """The dashboard's own path: a run folder and run_job, live reporting included."""
    from cnnkit.presets import get_preset
    from cnnkit.store import RunStore
    from cnnkit.training import run_job

    spec = _bench_spec(get_preset(preset), train_limit, epochs, seed)
    cpu_marks: list[float] = []

    def hook(progress: dict) -> None:
        if progress.get("phase") == "epoch_end" and progress.get("model") == "cnn":
            cpu_marks.append(time.process_time())

    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        run_id = store.create(spec).run_id
        meta = run_job(store, run_id, data_dir=data_dir, hook=hook)
    cnn = meta["models"]["cnn"]
    n = meta["data_summary"]["train"]
    # CPU per epoch from one epoch end to the next: the first epoch (with tracing) drops out.
    cpu = [0.0] + [b - a for a, b in zip(cpu_marks, cpu_marks[1:], strict=False)]
    return {"side": "cnnkit", "images_per_second": cnn["images_per_second"],
            "cpu_ms_per_image": [1000 * c / n for c in cpu], "test_accuracy": cnn["test_accuracy"],
            "train_images": n, "status": meta["status"], **rss_mib()}


def _bench_spec(preset, train_limit: int | None, epochs: int, seed: int | None = None):
    changes = {"training.epochs": epochs}
    if seed is not None:
        changes["training.seed"] = seed
    if train_limit:
        changes["dataset.train_limit"] = train_limit
    return preset.experiment().updated(changes)


def _epoch_timer_class():
    from cnnkit.tf_import import keras

    class _EpochTimer(keras.callbacks.Callback):
        """Wall and CPU seconds of each epoch; epoch hooks only, so Keras' loop is unchanged."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []

        def __repr__(self) -> str:
            return f"EpochTimer({len(self.seconds)} epochs)"

        def on_epoch_begin(self, epoch, logs=None):
            self._wall, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._wall)
            self.cpu_seconds.append(time.process_time() - self._cpu)

    return _EpochTimer


def EpochTimer():  # noqa: N802 - a class, built lazily so this module never imports TensorFlow
    return _epoch_timer_class()()


def steady(values: list[float]) -> float | None:
    """The median over epochs after the first (which includes tracing and warm-up)."""
    return median(values[1:] if len(values) > 1 else values)


@dataclass(frozen=True)
class Options:
    data_dir: str | None
    quick: bool
    real_data: bool

    def __repr__(self) -> str:
        return f"Options(quick={self.quick}, real_data={self.real_data})"


THROUGHPUT_PRESETS = ("chollet-cnn", "moroney-cnn", "dense-128")


def bench_throughput(opts: Options) -> Section:
    from cnnkit.presets import get_preset

    section = Section("1. Training throughput: cnnkit vs a plain Keras script")
    if not opts.quick and not opts.real_data:
        section.lines.append(SKIP_NO_DATA)
        return section
    presets = ("dense-128",) if opts.quick else THROUGHPUT_PRESETS
    reps = 1 if opts.quick else 3
    rows, raw = [], {}
    for name in presets:
        epochs = 2 if opts.quick else get_preset(name).training.epochs
        params = {"preset": name, "data_dir": opts.data_dir, "train_limit": 600 if opts.quick else None,
                  "epochs": epochs}
        runs = {"keras": [], "cnnkit": []}
        loads = []
        for rep in range(reps):  # A B A B: both sides meet the same background load
            seed = get_preset(name).training.seed + rep  # repetition i: seed 42 + i on both sides
            for kind, side in (("reference", "keras"), ("cnnkit", "cnnkit")):
                loads.append(load_average())
                runs[side].append({**run_child(kind, {**params, "seed": seed}), "seed": seed})
        raw[name] = runs
        ref_ips = median(steady(r["images_per_second"]) for r in runs["keras"])
        our_ips = median(steady(r["images_per_second"]) for r in runs["cnnkit"])
        ref_acc = median(r["test_accuracy"] for r in runs["keras"])
        our_acc = median(r["test_accuracy"] for r in runs["cnnkit"])
        rows.append([name, epochs, runs["cnnkit"][0]["train_images"], ref_ips, our_ips,
                     f"{our_ips / ref_ips:.2f}×", median(steady(r["cpu_ms_per_image"]) for r in runs["keras"]),
                     median(steady(r["cpu_ms_per_image"]) for r in runs["cnnkit"]),
                     f"{100 * ref_acc:.2f}%", f"{100 * our_acc:.2f}%", f"{100 * (our_acc - ref_acc):+.2f}",
                     f"{min(loads):.1f}–{max(loads):.1f}"])
    section.lines += table(["preset", "epochs", "train images", "Keras img/s", "cnnkit img/s", "ratio",
                            "Keras CPU ms/img", "cnnkit CPU ms/img", "Keras test acc", "cnnkit test acc",
                            "Δ pt", "load avg"], rows)
    section.lines += ["", f"Medians of {reps} run(s) per side, alternating (A B A B …), run i with seed 42 + i "
                      "on both sides; img/s is the median over epochs after the first. CPU ms/img (process "
                      "CPU time per training image) is less sensitive to the other users' load than "
                      "wall-clock img/s.", "",
                      "Every run (img/s per epoch, test accuracy):", ""]
    for name, runs in raw.items():
        for side in ("keras", "cnnkit"):
            for i, r in enumerate(runs[side], start=1):
                per_epoch = ", ".join(f"{v:,.0f}" for v in r["images_per_second"])
                section.lines.append(f"- {name} {side} #{i} (seed {r['seed']}): {per_epoch}; "
                                     f"acc {100 * r['test_accuracy']:.2f}%")
    section.data = raw
    return section


# ---------------------------------------------------------------------------
# 3. Prediction latency


LATENCY_MODELS = ("quick-train", "moroney-cnn", "kruse-conv-nopool")


def _stroke_canvas(size: int = 280):
    """A canvas with a vertical stroke ('1'), RGBA as streamlit-drawable-canvas returns it."""
    import numpy as np

    canvas = np.zeros((size, size, 4), np.uint8)
    canvas[size // 5: 4 * size // 5, size // 2 - 10: size // 2 + 10] = (255, 255, 255, 255)
    return canvas


def latency_child(models: list[str], calls: int, predict_calls: int) -> dict:
    import numpy as np

    from cnnkit.demo import quick_train_spec, read_drawing
    from cnnkit.inspection import Predictor
    from cnnkit.lite import load_predictor
    from cnnkit.models import build_model
    from cnnkit.presets import get_preset
    from cnnkit.tf_import import keras

    out = {}
    canvas = _stroke_canvas()
    image = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        for name in models:
            spec = quick_train_spec() if name == "quick-train" else get_preset(name).experiment()
            keras.utils.set_random_seed(0)
            model = build_model(spec.layers, (28, 28, 1), 10, normalization=spec.dataset.normalization,
                                mean=np.zeros((28, 28, 1), np.float32), std=np.ones((28, 28, 1), np.float32))
            path = os.path.join(tmp, f"{name}.keras")
            model.save(path)
            app = load_predictor(path, spec.output)  # what ui.predictor() gives the pages
            compiled = Predictor(model, spec.output)
            timings = {
                f"app: {type(app).__name__}.probabilities": _timed(lambda p=app: p.probabilities(image), calls),
                "app: canvas → read_drawing": _timed(lambda p=app: read_drawing(canvas, {"cnn": p}), calls),
                "TF: inspection.Predictor": _timed(lambda p=compiled: p.probabilities(image), calls),
                "TF: model.predict": _timed(lambda m=model: m.predict(image[None, ..., None], verbose=0),
                                            predict_calls)}
            out[name] = {path: {"p50_ms": percentile(t, 50), "p95_ms": percentile(t, 95), "calls": len(t)}
                         for path, t in timings.items()}
    return out


def _timed(call, n: int) -> list[float]:
    for _ in range(min(10, n)):  # warm-up: tracing and first-call allocations are not latency
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def bench_latency(opts: Options) -> Section:
    section = Section("3. Prediction latency: one 28×28 image")
    calls, predict_calls = (50, 10) if opts.quick else (1000, 200)
    load = load_average()
    models = ["quick-train"] if opts.quick else list(LATENCY_MODELS)
    result = run_child("latency", {"models": models, "calls": calls, "predict_calls": predict_calls})
    result.pop("child_seconds", None)
    rows = [[name, path, t["calls"], t["p50_ms"], t["p95_ms"]]
            for name, paths in result.items() for path, t in paths.items()]
    section.lines += table(["model", "path", "calls", "p50 ms", "p95 ms"], rows)
    section.lines += ["", f"Load average at the start: {load:.2f}. Untrained models (latency does not "
                      "depend on the weights), saved to a .keras file and loaded the way the pages load "
                      "them (`cnnkit.lite.load_predictor`: a numpy forward pass, so the server never imports "
                      "TensorFlow). `read_drawing` adds the drawing's preprocessing (280×280 RGBA canvas → "
                      "centred 28×28), as the Draw page runs it. For comparison, TensorFlow's compiled "
                      "`inspection.Predictor` (a tf.function) and `model.predict`."]
    section.data = result
    return section


# ---------------------------------------------------------------------------
# 5. Memory


def memory_child(preset: str, data_dir: str | None, train_limit: int | None, epochs: int, trainings: int) -> dict:
    from cnnkit.presets import get_preset
    from cnnkit.store import RunStore
    from cnnkit.training import run_job

    spec = _bench_spec(get_preset(preset), train_limit, epochs)
    after = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        for _ in range(trainings):
            run_id = store.create(spec).run_id
            meta = run_job(store, run_id, data_dir=data_dir)
            after.append({**rss_mib(), "status": meta["status"], "train_images": meta["data_summary"]["train"]})
    return {"after_each": after}


def bench_memory(opts: Options) -> Section:
    section = Section("5. Memory: training moroney-cnn on Fashion-MNIST, five times in one process")
    if not opts.quick and not opts.real_data:
        section.lines.append(SKIP_NO_DATA)
        return section
    params = {"preset": "moroney-cnn", "data_dir": opts.data_dir, "train_limit": 300 if opts.quick else None,
              "epochs": 1, "trainings": 2 if opts.quick else 5}
    load = load_average()
    result = run_child("memory", params)
    after = result["after_each"]
    rows = [[i, a["train_images"], a["rss_mib"], a["peak_rss_mib"]] for i, a in enumerate(after, start=1)]
    section.lines += table(["training", "train images", "RSS after (MiB)", "peak RSS so far (MiB)"], rows)
    first, last = after[0]["rss_mib"], after[-1]["rss_mib"]
    peak = max(a["peak_rss_mib"] for a in after)
    growth = 100 * (last - first) / first
    section.lines += ["", f"Peak RSS {peak:,.0f} MiB ({peak / 1024:.2f} GiB; goal ≤ 1 GiB). RSS after training "
                      f"{len(after)} vs 1: {growth:+.1f}% (goal: within 10%). One epoch per training (memory "
                      f"does not grow with epochs: the data and the model are allocated once). "
                      f"Load average at the start: {load:.2f}."]
    section.data = {"after_each": after, "peak_mib": peak, "growth_percent": growth}
    return section



# ---------------------------------------------------------------------------
# The app in a real browser (2. dashboard cost, 4. start-up)


class StreamlitServer:
    """`streamlit run app.py` on a free port, with its own runs folder; stopped by pid."""

    def __init__(self, runs_dir: str, data_dir: str | None, app_dir: Path | None = None):
        self.runs_dir, self.data_dir = runs_dir, data_dir
        self.app_dir = Path(app_dir or REPO_ROOT)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def __repr__(self) -> str:
        return f"StreamlitServer(port={self.port}, pid={self.proc.pid if self.proc else None})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StreamlitServer:
        env = {**os.environ, "CNNKIT_RUNS_DIR": self.runs_dir, "CNNKIT_WORKSPACES": "shared",
               "CNNKIT_SLOTS_DIR": os.path.join(self.runs_dir, ".slots")}
        env.pop("CNNKIT_DATA_DIR", None)
        if self.data_dir:
            env["CNNKIT_DATA_DIR"] = self.data_dir
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=str(self.app_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def has_tensorflow(self) -> bool:
        """Whether the server process has TensorFlow's library mapped (i.e. imported it)."""
        try:
            return "libtensorflow" in Path(f"/proc/{self.proc.pid}/maps").read_text()
        except OSError:
            return False


def browser_available() -> str | None:
    """None when Playwright and Chromium are there, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright (python) is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    return None


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def wait_rendered(page, title: str = "", timeout_s: float = 120.0) -> None:
    """The script has run to the end: Streamlit's app root says `notRunning` and shows the page's
    title (`title`: text the h1 must contain, so the previous page's title does not count)."""
    selector = '[data-testid="stApp"][data-test-script-state="notRunning"] h1'
    page.wait_for_selector(f'{selector}:has-text("{title}")' if title else selector, timeout=timeout_s * 1000)


def goto_when_up(page, url: str, deadline: float) -> None:
    """Open `url` as soon as the server answers (the browser retries, as a person would)."""
    while True:
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=10_000)
            return
        except Exception:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.05)


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
        goto_when_up(page, server.url, time.perf_counter() + 120)
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


def bench_startup(opts: Options) -> Section:
    section = Section("4. App start: `streamlit run app.py` → pages rendered in Chromium")
    why_not = browser_available()
    if why_not or not (REPO_ROOT / "app.py").exists():
        section.lines.append(f"Skipped: {why_not or 'no app.py'}.")
        return section
    from playwright.sync_api import sync_playwright

    repeats = 1 if opts.quick else 3
    results = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as runs_dir:
        if not opts.quick:
            _make_finished_run(runs_dir, opts)
        with sync_playwright() as pw:
            browser = launch_browser(pw)
            try:
                for _ in range(repeats):
                    load = load_average()
                    result = startup_once(StreamlitServer(runs_dir, opts.data_dir), browser)
                    result["load"] = load
                    results.append(result)
            finally:
                browser.close()
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


def _make_finished_run(runs_dir: str, opts: Options) -> None:
    run_child("train_run", {"runs_dir": runs_dir, "data_dir": opts.data_dir, "preset": "chollet-cnn",
                            "train_limit": 2000, "epochs": 1, "baseline": "dense-128"})


def train_run_child(runs_dir: str, data_dir: str | None, preset: str, train_limit: int | None, epochs: int,
                    run_id: str | None = None, baseline: str | None = None) -> dict:
    """A run through run_job, as the dashboard's worker does it (a new run unless run_id is given)."""
    from cnnkit.presets import get_preset
    from cnnkit.store import RunStore
    from cnnkit.training import run_job

    store = RunStore(runs_dir)
    if run_id is None:
        spec = _bench_spec(get_preset(preset), train_limit, epochs).updated({"baseline": baseline})
        run_id = store.create(spec).run_id
    marks: list[float] = []

    def hook(progress: dict) -> None:  # CPU time at each epoch end, as cnnkit_training
        if progress.get("phase") == "epoch_end" and progress.get("model") == "cnn":
            marks.append(time.process_time())

    meta = run_job(store, run_id, data_dir=data_dir, hook=hook)
    cnn = meta["models"]["cnn"]
    n = meta["data_summary"]["train"]
    cpu = [0.0] + [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return {"run_id": run_id, "status": meta["status"], "images_per_second": cnn["images_per_second"],
            "cpu_ms_per_image": [1000 * c / n for c in cpu], "test_accuracy": cnn["test_accuracy"], **rss_mib()}


def bare_training_child(data_dir: str | None, preset: str, train_limit: int | None, epochs: int) -> dict:
    """The same model, data pipeline and fit as run_job, with no callback reporting anything."""
    from cnnkit.presets import get_preset
    from cnnkit.training import build_compiled, configure_determinism, make_dataset, prepare_data

    spec = _bench_spec(get_preset(preset), train_limit, epochs)
    prepared = prepare_data(spec, data_dir)
    configure_determinism(spec.training.seed)  # as run_job: op determinism has its own cost
    model = build_compiled("cnn", spec.layers, spec, prepared)
    timer = EpochTimer()
    model.fit(make_dataset(prepared.x_train, prepared.y_train, spec.training.batch_size, shuffle=True,
                           seed=spec.training.seed), epochs=epochs, verbose=0, callbacks=[timer])
    n = len(prepared.y_train)
    return {"images_per_second": [n / s for s in timer.seconds],
            "cpu_ms_per_image": [1000 * c / n for c in timer.cpu_seconds], **rss_mib()}


DASHBOARD_PRESET = "moroney-cnn"


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def dashboard_cpu(server: StreamlitServer) -> dict:
    """CPU seconds used so far by the Streamlit server and by the browser this process started."""
    browser = [pid for pid in _descendants(os.getpid()) if "chrom" in _cmdline(pid)]
    return {"server": _cpu_seconds(server.proc.pid) + sum(_cpu_seconds(p) for p in _descendants(server.proc.pid)),
            "browser": sum(_cpu_seconds(pid) for pid in browser)}


def _live_side(server: StreamlitServer, browser, runs_dir: str, spec, params: dict) -> dict:
    """run_job in a child while the Train page shows it live; CPU of server and browser meanwhile."""
    from cnnkit.store import RunStore

    run_id = RunStore(runs_dir).create(spec).run_id
    page = browser.new_page()
    try:
        goto_when_up(page, f"{server.url}/Train?run={run_id}", time.perf_counter() + 120)
        wait_rendered(page, "Train")
        before = dashboard_cpu(server)
        result = run_child("train_run", {**params, "runs_dir": runs_dir, "run_id": run_id})
        after = dashboard_cpu(server)
        result["charts_shown"] = page.locator(".js-plotly-plot").count()
    finally:
        page.close()
    wall = result["child_seconds"]
    result["server_core_share"] = (after["server"] - before["server"]) / wall
    result["browser_core_share"] = (after["browser"] - before["browser"]) / wall
    return result


def bench_dashboard(opts: Options, app_dir: Path | None = None) -> Section:
    section = Section("2. Cost of the live dashboard: Train page open in Chromium vs no callback, no browser")
    why_not = browser_available()
    if why_not or not (REPO_ROOT / "app.py").exists():
        section.lines.append(f"Skipped: {why_not or 'no app.py'}.")
        return section
    if not opts.quick and not opts.real_data:
        section.lines.append(SKIP_NO_DATA)
        return section
    from playwright.sync_api import sync_playwright

    from cnnkit.presets import get_preset

    train_limit, epochs, reps = (600, 2, 1) if opts.quick else (20_000, 4, 3)
    spec = _bench_spec(get_preset(DASHBOARD_PRESET), train_limit, epochs)
    params = {"data_dir": opts.data_dir, "preset": DASHBOARD_PRESET, "train_limit": train_limit, "epochs": epochs}
    sides = {"live": [], "callback": [], "bare": []}
    loads = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as runs_dir, \
            StreamlitServer(runs_dir, opts.data_dir, app_dir) as server, sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            for _ in range(reps):  # A B C A B C …
                loads.append(load_average())
                sides["live"].append(_live_side(server, browser, runs_dir, spec, params))
                loads.append(load_average())
                sides["callback"].append(run_child("train_run", {**params, "runs_dir": runs_dir}))
                loads.append(load_average())
                sides["bare"].append(run_child("bare", params))
        finally:
            browser.close()
    # pooled: every epoch after the first of every run, so one slow epoch moves the median little
    ips = {side: median(v for r in runs for v in r["images_per_second"][1:]) for side, runs in sides.items()}
    titles = {"live": "run_job (live callback) + Train page open in Chromium",
              "callback": "run_job (live callback), no browser", "bare": "model.fit, no callback, no browser"}
    cpu = {side: median(v for r in runs for v in r["cpu_ms_per_image"][1:]) for side, runs in sides.items()}
    rows = [[titles[side], len(runs), ips[side], f"{100 * (1 - ips[side] / ips['bare']):+.1f}%", cpu[side],
             "; ".join(", ".join(f"{v:,.0f}" for v in r["images_per_second"]) for r in runs)]
            for side, runs in sides.items()]
    section.lines += table(["side", "runs", "img/s (median)", "slower than bare", "trainer CPU ms/img",
                            "every run (img/s per epoch)"], rows)
    live = sides["live"]
    server_share = median(r["server_core_share"] for r in live)
    browser_share = median(r["browser_core_share"] for r in live)
    slower = 100 * (1 - ips["live"] / ips["bare"])
    callback_cpu = 100 * (cpu["callback"] / cpu["bare"] - 1)
    # CPU accounting, robust to the other users' load: the trainer's own extra CPU per image, plus
    # the share of the machine the server and the browser take from a training that uses it all.
    estimate = callback_cpu + 100 * (server_share + browser_share) / (os.cpu_count() or 1)
    section.lines += ["", f"**CPU accounting (robust to the other users of the machine): about {estimate:.0f}% "
                      f"slower.** The live callback adds {callback_cpu:+.1f}% CPU per training image; while "
                      f"the run was shown, the Streamlit server used {100 * server_share:.0f}% of one core and "
                      f"Chromium {100 * browser_share:.0f}% (medians), i.e. "
                      f"{100 * (server_share + browser_share) / (os.cpu_count() or 1):.0f}% of this "
                      f"{os.cpu_count()}-core machine, which a training that keeps every core busy loses. "
                      f"Wall clock: the live side was {slower:.1f}% slower than bare training (goal ≤ 5%), the "
                      f"callback alone {100 * (1 - ips['callback'] / ips['bare']):.1f}% — epochs here swing "
                      f"between ~2,000 and ~4,000 img/s with the other users' load, so these are noisy. "
                      f"{DASHBOARD_PRESET}, {train_limit:,} training images, {epochs} epochs; img/s and CPU "
                      f"= medians over all epochs after the first of all runs; the three sides take turns. "
                      f"Plotly charts on the page at the end: {[r['charts_shown'] for r in live]}. Load average "
                      f"before each side: {[round(v, 2) for v in loads]}."]
    section.data = {**sides, "slower_percent": slower, "server_core_share": server_share,
                    "browser_core_share": browser_share, "estimated_percent": estimate}
    return section


# ---------------------------------------------------------------------------
# The levers one by one (not part of "all": `python -m cnnkit bench levers`)


def slices_dataset(x, y, batch_size: int, *, shuffle: bool, seed: int):
    """The input pipeline cnnkit had before: one tensor per image through the shuffle buffer."""
    from cnnkit.tf_import import tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def lever_child(preset: str, data_dir: str | None, train_limit: int | None, epochs: int, precision: str,
                steps_per_execution: int, pipeline: str, threads: list[int] | None) -> dict:
    """train_one with one combination of levers (no run folder: the levers, not the reporting)."""
    os.environ["CNNKIT_PRECISION"] = precision
    from cnnkit.tf_import import tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    from cnnkit import training
    from cnnkit.presets import get_preset

    if pipeline == "slices":
        training.make_dataset = slices_dataset
    spec = _bench_spec(get_preset(preset), train_limit, epochs)
    prepared = training.prepare_data(spec, data_dir)
    marks: list[float] = []
    outcome = training.train_one("cnn", spec.layers, spec, prepared, None,
                                 lambda p: p.get("phase") == "epoch_end" and marks.append(time.process_time()),
                                 steps_per_execution)
    n = len(prepared.y_train)
    cpu = [0.0] + [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return {"images_per_second": outcome.report.images_per_second, "cpu_ms_per_image": [1000 * c / n for c in cpu],
            "test_accuracy": outcome.test_accuracy, **rss_mib()}


LEVERS = {
    "moroney-cnn": [("before: float32, per-image shuffle", "float32", 1, "slices", None),
                    ("+ index-gather pipeline", "float32", 1, "gather", None),
                    ("+ bfloat16 compute (adopted)", "mixed_bfloat16", 1, "gather", None),
                    ("+ 4 steps per execution", "mixed_bfloat16", 4, "gather", None),
                    ("+ threads intra 2 / inter 1", "mixed_bfloat16", 1, "gather", [2, 1])],
    "dense-128": [("before: float32, per-image shuffle", "float32", 1, "slices", None),
                  ("+ index-gather pipeline", "float32", 1, "gather", None),
                  ("+ 16 steps per execution (adopted)", "float32", 16, "gather", None),
                  ("+ bfloat16 compute", "mixed_bfloat16", 16, "gather", None)],
}


def bench_levers(opts: Options) -> Section:
    section = Section("Levers, one at a time (cnnkit's train_one, no run folder)")
    if not opts.quick and not opts.real_data:
        section.lines.append(SKIP_NO_DATA)
        return section
    train_limit, epochs, reps = (600, 2, 1) if opts.quick else (12_000, 3, 2)
    rows, raw = [], {}
    for preset, variants in LEVERS.items():
        results = {label: [] for label, *_ in variants}
        loads = []
        for _ in range(reps):  # round robin over the variants, so all meet the same load
            for label, precision, spe, pipeline, threads in variants:
                loads.append(load_average())
                results[label].append(run_child("lever", {
                    "preset": preset, "data_dir": opts.data_dir, "train_limit": train_limit, "epochs": epochs,
                    "precision": precision, "steps_per_execution": spe, "pipeline": pipeline, "threads": threads}))
        base = median(steady(r["cpu_ms_per_image"]) for r in results[variants[0][0]])
        base_ips = median(steady(r["images_per_second"]) for r in results[variants[0][0]])
        for label, *_ in variants:
            runs = results[label]
            cpu = median(steady(r["cpu_ms_per_image"]) for r in runs)
            ips = median(steady(r["images_per_second"]) for r in runs)
            rows.append([preset, label, ips, f"{ips / base_ips:.2f}×", cpu, f"{base / cpu:.2f}×",
                         f"{100 * median(r['test_accuracy'] for r in runs):.2f}%", median(r["peak_rss_mib"] for r in runs)])
        raw[preset] = {"results": results, "loads": loads}
    section.lines += table(["preset", "variant", "img/s", "vs before", "CPU ms/img", "CPU vs before",
                            "test acc", "peak RSS MiB"], rows)
    section.lines += ["", f"{train_limit:,} training images, {epochs} epochs, medians of {reps} runs per variant "
                      "over the epochs after the first; the variants run round-robin in fresh processes. Each "
                      "'+' row adds its lever to the row marked adopted above it or to the one before. "
                      "Accuracy after so few epochs only shows that nothing broke."]
    section.data = raw
    return section


SKIP_NO_DATA = ("Skipped: needs the real datasets. Pass --data-dir (a folder with mnist/ and "
                "fashion-mnist/ holding the IDX files) or set CNNKIT_DATA_DIR; --quick runs on the sample.")

CHILDREN = {"reference": reference_training, "cnnkit": cnnkit_training, "latency": latency_child,
            "memory": memory_child, "train_run": train_run_child, "bare": bare_training_child,
            "lever": lever_child}


# ---------------------------------------------------------------------------
# Entry point


def has_real_data(data_dir: str | None) -> bool:
    from cnnkit.data import load_raw

    try:
        return all(not load_raw(name, data_dir).source.is_sample for name in ("mnist", "fashion_mnist"))
    except DataError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


RUNNERS = {"throughput": bench_throughput, "latency": bench_latency, "memory": bench_memory,
           "dashboard": lambda opts: bench_dashboard(opts), "startup": lambda opts: bench_startup(opts),
           "levers": lambda opts: bench_levers(opts)}
EXTRAS = ("levers",)  # run only when named


def selected(which: list[str] | None) -> list[str]:
    names = list(which or ["all"])
    if "all" in names:
        return list(BENCHES) + [n for n in names if n in EXTRAS]
    unknown = [n for n in names if n not in BENCHES + EXTRAS]
    if unknown:
        raise SpecError("bench", f"unknown benchmark {unknown[0]!r}; choose from: all, "
                                 f"{', '.join(BENCHES + EXTRAS)}")
    return names


def report(sections: list[Section], *, quick: bool, machine: dict, seconds: float, loads: tuple) -> str:
    lines = ["## Benchmark report" + (" (QUICK: tiny smoke-test sizes, not results)" if quick else ""), "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')} in {seconds / 60:.1f} min: {describe_machine(machine)}.",
             f"Load average (1 min) at start / end: {loads[0]:.2f} / {loads[1]:.2f}.", ""]
    return "\n".join(lines) + "\n" + "\n".join(s.markdown() for s in sections)


def main(args) -> int:
    names = selected(getattr(args, "which", None))
    data_dir = getattr(args, "data_dir", None) or os.environ.get("CNNKIT_DATA_DIR") or None
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    opts = Options(data_dir=data_dir, quick=bool(getattr(args, "quick", False)), real_data=has_real_data(data_dir))
    started, load_start = time.perf_counter(), load_average()
    sections = []
    for name in names:
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        try:
            sections.append(RUNNERS[name](opts))
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            if os.environ.get("CNNKIT_DEBUG"):
                raise
            sections.append(Section(name, [f"Failed: {type(exc).__name__}: {exc}"], {"failed": True}))
        print(sections[-1].markdown(), file=sys.stderr, flush=True)  # each result as soon as it is known
    gpus = next((r.get("gpus") for s in sections for runs in s.data.values() if isinstance(runs, dict)
                 for r in runs.get("keras", []) if isinstance(r, dict)), None)
    text = report(sections, quick=opts.quick, machine=machine_info(gpus), seconds=time.perf_counter() - started,
                  loads=(load_start, load_average()))
    print(text)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    return 1 if any(section.data.get("failed") is True for section in sections) else 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        sys.exit(child_main(sys.argv[2:]))
    from cnnkit.cli import main as cli_main

    sys.exit(cli_main(["bench", *sys.argv[1:]]))
