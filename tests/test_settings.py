"""cnnkit.settings: every CNNKIT_* variable, parsed in one place; the README names the same ones."""

import re
from dataclasses import fields
from pathlib import Path

import pytest

from cnnkit import settings
from cnnkit.errors import WorkspaceError
from cnnkit.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def parse(**env) -> Settings:
    return Settings.from_env(env)


def test_defaults_without_any_variable():
    s = parse()
    assert s == Settings()
    assert (s.runs_dir, s.workspaces, s.max_jobs, s.precision, s.offline) == ("runs", "shared", 1, "auto", False)
    assert s.max_job_minutes == 0 and s.session_days == 7 and s.test_hold_at is None
    assert repr(s) == "Settings()"


def test_each_kind_of_value_is_parsed():
    s = parse(CNNKIT_DATA_DIR=" /data ", CNNKIT_OFFLINE="Yes", CNNKIT_WORKSPACES=" Session ",
              CNNKIT_MAX_JOBS="3", CNNKIT_MAX_PARAMS="1e6", CNNKIT_MAX_JOB_MINUTES="1.5",
              CNNKIT_PRECISION="float32", CNNKIT_QUICK_TRAIN_LIMIT="500", CNNKIT_TEST_HOLD_AT="2:40",
              CNNKIT_DEBUG="1", CNNKIT_SESSION_DAYS="0.5")
    assert s.data_dir == "/data" and s.offline and s.workspaces == "session"
    assert (s.max_jobs, s.max_params, s.max_job_minutes) == (3, 1_000_000, 1.5)
    assert s.precision == "float32" and s.quick_train_limit == 500 and s.test_hold_at == (2, 40)
    assert s.debug and not s.raise_errors and s.session_days == 0.5
    assert "max_jobs=3" in repr(s) and "runs_dir" not in repr(s)


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "0", ""])
def test_a_typo_in_a_cap_means_its_default(value):
    s = parse(CNNKIT_MAX_PARAMS=value, CNNKIT_MAX_EPOCHS=value, CNNKIT_PRECISION=value,
              CNNKIT_QUICK_TRAIN_EPOCHS=value, CNNKIT_TEST_HOLD_AT=value)
    d = Settings()
    assert (s.max_params, s.max_epochs, s.precision) == (d.max_params, d.max_epochs, d.precision)
    assert s.quick_train_epochs is None and s.test_hold_at is None


@pytest.mark.parametrize("value", ["Sessions", "private", "shared;session", "x" * 100])
def test_an_unknown_workspace_mode_is_refused_not_taken_for_shared(value):
    # On a public server "Sessions" silently meaning "shared" would show everyone's runs to everyone.
    with pytest.raises(WorkspaceError, match="CNNKIT_WORKSPACES must be one of shared, session"):
        parse(CNNKIT_WORKSPACES=value)


def test_get_follows_the_environment_and_parses_each_environment_once(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "2")
    first = settings.get()
    assert first.max_jobs == 2 and settings.get() is first  # the same object: parsed once
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "4")
    assert settings.get().max_jobs == 4


def test_the_repo_root_holds_the_package():
    assert (settings.REPO_ROOT / "cnnkit" / "settings.py").is_file()
    assert settings.PACKAGE_DIR == settings.REPO_ROOT / "cnnkit"


def test_every_field_has_its_variable_and_the_readme_names_the_same_ones():
    assert len(settings.VARIABLES) == len(fields(Settings))
    source = (ROOT / "cnnkit" / "settings.py").read_text()
    parsed = set(re.findall(r'env(?:\.get\(|, )"(CNNKIT_[A-Z0-9_]+)"', source))
    assert parsed == set(settings.VARIABLES)
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Settings"):]
    table = table[:table.index("\n## ", 4)]
    assert set(re.findall(r"`(CNNKIT_[A-Z0-9_]+)`", table)) == set(settings.VARIABLES)


def test_no_other_module_reads_a_cnnkit_variable():
    # Setting one for a child process (env["CNNKIT_…"] = …) is fine; reading one is settings' job.
    reads = re.compile(r"""(environ\.get|getenv)\(\s*["']CNNKIT_|environ\[["']CNNKIT_[A-Z_]+["']\](?!\s*=)""")
    offenders = []
    for path in [*ROOT.glob("cnnkit/**/*.py"), ROOT / "ui.py", ROOT / "app.py", *ROOT.glob("app_pages/*.py")]:
        if path.name == "settings.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if reads.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
