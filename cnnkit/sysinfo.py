"""Cheap facts about this machine and its processes.

Everything here answers in milliseconds and never imports TensorFlow (or any big library):
the Home page must paint at once, and the store asks about processes on every listing. The
CPU, memory and processes are read from /proc (one reader for each file), GPU presence from
the NVIDIA driver's files. Without /proc (not Linux) the answers are "unknown", never an error.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

# The flags that mean bfloat16 arithmetic in hardware (else TensorFlow emulates it, slowly).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# The packages a benchmark or reproduction report names, with their versions.
REPORT_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "streamlit", "playwright")


# -- the CPU and memory ---------------------------------------------------------------------


def cpu_count() -> int:
    """CPUs this process may use (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpuinfo(key: str) -> str | None:
    """The value of the first `key : value` line of /proc/cpuinfo (the first CPU's), or None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The first CPU's feature flags (avx2, avx512_bf16, …); empty without /proc/cpuinfo."""
    return set((_cpuinfo("flags") or "").split())


def cpu_has_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_FLAGS)


def memory_gib() -> float | None:
    """RAM this machine lets us use, in GiB: MemTotal of /proc/meminfo, or the container's
    cgroup limit when that is lower (a 1 GB Community Cloud box shows the host's MemTotal);
    None if unknown."""
    total = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) / 2**20
    except (OSError, IndexError, ValueError):
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = int(Path(limit_file).read_text(encoding="utf-8").strip()) / 2**30  # "max": no limit
        except (OSError, ValueError):
            continue
        total = limit if total is None else min(total, limit)
    return total


def load_average() -> float:
    """The 1-minute load average (the machine is shared: reports say how busy it was)."""
    return os.getloadavg()[0]


def machine_ticks(stat_text: str | None = None) -> tuple[int, int]:
    """(busy, all) CPU clock ticks of the whole machine since boot, from /proc/stat's first line
    ("cpu user nice system idle iowait irq softirq steal …"): idle and iowait are not busy.
    (0, 0) without /proc."""
    try:
        if stat_text is None:
            with open("/proc/stat", encoding="ascii") as handle:
                stat_text = handle.readline()
        ticks = [int(value) for value in stat_text.split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time (0–1) that was busy between two `machine_ticks` readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total > 0 else 0.0


# -- processes --------------------------------------------------------------------------------


def proc_stat_fields(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None without /proc or the process).

    The command name is cut off at its *last* ")": it may itself hold spaces and parentheses.
    So fields[0] is the state (field 3 of proc(5)), fields[1] the parent pid, fields[11] and
    fields[12] utime and stime, fields[19] the start time in clock ticks after boot.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds process `pid` has used so far (0 if it is gone)."""
    fields = proc_stat_fields(pid)
    try:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0
    except (IndexError, ValueError):
        return 0.0


def rss_mib(pid: int | str = "self") -> dict:
    """A process's resident memory now and its peak (VmHWM), in MiB (None if unknown); this
    process by default."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return {"rss_mib": out.get("VmRSS"), "peak_rss_mib": out.get("VmHWM")}


def anonymous_mib(pid: int | str = "self") -> float | None:
    """A process's anonymous memory in MiB (smaps_rollup's Anonymous: its heap, arrays and
    tensors): what it costs beyond the library files it maps, such as TensorFlow's, whose
    pages the kernel shares with every other process that maps them and can drop and re-read."""
    try:
        fields = dict(line.split(":", 1) for line in
                      Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8").splitlines()[1:])
        return int(fields["Anonymous"].split()[0]) / 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


# -- GPUs and libraries -----------------------------------------------------------------------


def gpu_description(proc_file: str = "/proc/driver/nvidia/version") -> str | None:
    """A one-line description of an NVIDIA driver if there is one, else None.

    Whether TensorFlow will *use* the GPU also depends on the installed build (tensorflow-cpu
    never does); the Home page says so instead of importing TensorFlow to find out.
    """
    try:
        first = Path(proc_file).read_text(encoding="utf-8", errors="replace").splitlines()[0]
        return first.strip() or "NVIDIA driver present"
    except (OSError, IndexError):
        pass
    if shutil.which("nvidia-smi"):
        return "nvidia-smi found (NVIDIA GPU likely)"
    return None


def package_version(name: str) -> str | None:
    """The installed version of distribution `name` (from its metadata, no import), else None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def tensorflow_build() -> str:
    """Which TensorFlow distribution is installed, from its metadata (no import)."""
    for dist in ("tensorflow-cpu", "tensorflow", "tensorflow-gpu"):
        version = package_version(dist)
        if version:
            return f"{dist} {version}"
    return "not installed"


def versions() -> dict[str, str]:
    names = ("streamlit", "keras", "numpy", "plotly")
    out = {"tensorflow": tensorflow_build()}
    out.update({name: package_version(name) or "not installed" for name in names})
    return out


def machine_info(gpus: list[str] | None = None) -> dict:
    """CPU, cores, memory, GPUs (if TensorFlow is loaded here or `gpus` is given), versions.

    GPUs are only listed when TensorFlow is already imported: this never imports it.
    """
    if gpus is None and "tensorflow" in sys.modules:
        gpus = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": cpu_count(),
        "memory_gib": memory_gib(),
        "bf16": cpu_has_bf16(),
        "gpus": gpus,
        "python": platform.python_version(),
        "versions": {name: package_version(name) or "not installed" for name in REPORT_PACKAGES},
    }


def describe_machine(info: dict) -> str:
    """One line for a report: "<cpu>, 2 cores, 8 GiB RAM, no GPU; Python …, TensorFlow …"."""
    packages = info.get("versions", {})
    tf_version = next((v for k, v in packages.items() if k.startswith("tensorflow") and v != "not installed"),
                      "?")
    gpus = info.get("gpus")
    gpu_text = "GPU: not checked" if gpus is None else (f"GPU: {', '.join(gpus)}" if gpus else "no GPU")
    memory = info.get("memory_gib")
    return (f"{info.get('cpu')}, {info.get('usable_cores')} cores"
            f"{f', {memory:.0f} GiB RAM' if memory else ''}, {gpu_text}; Python {info.get('python')}, "
            f"TensorFlow {tf_version}, Keras {packages.get('keras')}, NumPy {packages.get('numpy')}, "
            f"Streamlit {packages.get('streamlit')}")


# -- where each dataset would load from -------------------------------------------------------


