"""The cheap modules stay cheap: importing them never loads TensorFlow, Keras or Streamlit.

Checked in a fresh interpreter, since this test process may already have TensorFlow loaded.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LIGHT_MODULES = ["specs", "shapes", "presets", "data", "drawing", "store", "jobs", "analysis", "limits", "cli"]
HEAVY = ("tensorflow", "keras", "streamlit")


def heavy_modules_after(code: str) -> list[str]:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "CNNKIT_OFFLINE": "1"},
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_light_modules_import_no_tensorflow_keras_or_streamlit():
    code = "\n".join(f"import cnnkit.{name}" for name in LIGHT_MODULES)
    assert heavy_modules_after(code) == []


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
