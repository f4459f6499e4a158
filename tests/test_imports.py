"""The floor plan, as rules over folders (not a hand-kept list of modules):

- nothing under cnnkit/ imports streamlit;
- only cnnkit/model/ imports TensorFlow or Keras, anywhere in a file (a function-local import
  counts too);
- the package has no import circle, and no module is over 500 lines;
- every module outside cnnkit/model/ imports in a fresh interpreter without loading
  TensorFlow, Keras or Streamlit (checked for real, since an import can pull in another).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnnkit"
HEAVY = ("tensorflow", "keras", "streamlit")
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file names in an import statement, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def internal_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in package_files()}
    return {name: {m for m in imported_modules(path) if m in modules and m != name}
            for name, path in modules.items()}


def heavy_modules_after(code: str) -> list[str]:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CNNKIT_OFFLINE": "1"},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_nothing_in_the_package_imports_streamlit():
    offenders = [str(p.relative_to(ROOT)) for p in package_files()
                 if any(m.split(".")[0] == "streamlit" for m in imported_modules(p))]
    assert offenders == []


def test_only_the_model_folder_imports_tensorflow_or_keras():
    offenders = [str(p.relative_to(ROOT)) for p in package_files()
                 if p.parent != PACKAGE / "model"
                 and any(m.split(".")[0] in ("tensorflow", "keras") for m in imported_modules(p))]
    assert offenders == []


def test_the_rules_see_an_import_inside_a_function(tmp_path):
    # The folder rules are only worth something if a hidden import is found.
    path = tmp_path / "sneaky.py"
    path.write_text("def f():\n    import keras\n    from tensorflow import nn\n")
    assert {"keras", "tensorflow", "tensorflow.nn"} <= imported_modules(path)


def test_the_package_has_no_import_circle():
    graph = internal_graph()
    state: dict[str, str] = {}
    circles = []

    def visit(name, trail):
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                circles.append(trail[trail.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, trail + [dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def test_no_module_is_over_500_lines_and_the_top_level_stays_small():
    long = {str(p.relative_to(ROOT)): n for p in package_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
    top_modules = [p.name for p in PACKAGE.glob("*.py")]
    sub_packages = [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()]
    assert len(top_modules) <= 12, top_modules
    assert {"data", "model", "runs", "views", "lab"} <= set(sub_packages)


def test_every_module_outside_model_imports_no_tensorflow_keras_or_streamlit():
    names = [module_name(p) for p in package_files()
             if p.parent != PACKAGE / "model" and p.name != "__main__.py"]
    assert len(names) > 20  # the walk found the package
    assert heavy_modules_after("\n".join(f"import {name}" for name in names)) == []


def test_cli_commands_without_models_import_no_tensorflow():
    code = ("import io, contextlib\nfrom cnnkit.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['presets', '--json']) == 0\n"
            "    assert main(['summary', '--preset', 'chollet-cnn', '--json']) == 0\n"
            "    assert main(['runs', '--runs-dir', 'no-such-dir-for-the-import-test']) == 0")
    assert heavy_modules_after(code) == []


def test_the_probe_sees_a_heavy_module_when_it_is_imported():
    # The checks above are only worth something if they can fail. (Streamlit, not TensorFlow:
    # same probe, a fraction of the start-up time.)
    assert "streamlit" in heavy_modules_after("import streamlit")
