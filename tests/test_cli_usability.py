"""The command line as people use it (issue 9): the result of `train` on stdout, run names in
`runs`, help on every option, every training setting settable, and no quiet sample in `evaluate`.

Two tiny trainings (dense-128, 200 images, 1 epoch, the bundled sample) are shared by the module:
one with only the options that always existed, one with every training option set.
"""

import json
import unicodedata
from dataclasses import fields

import pytest

from cnnkit.cli import build_parser, main
from cnnkit.runs.store import RunStore
from cnnkit.specs import DatasetSpec, ExperimentSpec, TrainingSpec
from tests.test_cli import cli_env, cnnkit, last_json_line

# Every TrainingSpec field (and every DatasetSpec one but the dataset's name) away from its
# default and from the preset's, so the round trip shows each value came from the command line.
EVERY_OPTION = {"--optimizer": "sgd", "--learning-rate": "0.05", "--momentum": "0.5", "--nesterov": None,
                "--schedule": "step", "--decay-rate": "0.25", "--decay-epochs": "3", "--batch-size": "64",
                "--epochs": "1", "--seed": "7", "--weight-decay": "0.001", "--train-limit": "200",
                "--test-limit": "300", "--validation-split": "0.2", "--normalization": "standardize"}
EXPECTED_TRAINING = {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.5, "nesterov": True,
                     "schedule": "step", "decay_rate": 0.25, "decay_epochs": 3, "batch_size": 64, "epochs": 1,
                     "seed": 7, "weight_decay": 0.001}
EXPECTED_DATASET = {"name": "fashion_mnist", "train_limit": 200, "test_limit": 300, "validation_split": 0.2,
                    "normalization": "standardize"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return cli_env(tmp_path_factory.mktemp("keras_home"))


@pytest.fixture(scope="module")
def plain_train(tmp_path_factory, env):
    """`train` without --json, with a dense baseline: what a person types."""
    runs = tmp_path_factory.mktemp("usability_runs")
    result = cnnkit("train", "--preset", "dense-128", "--train-limit", 200, "--epochs", 1, "--baseline", "dense-128",
                    "--runs-dir", runs, env=env)
    assert result.returncode == 0, result.stderr
    (run_id,) = [p.name for p in runs.iterdir() if (p / "run.json").is_file()]
    return {"runs": runs, "result": result, "run_id": run_id,
            "meta": json.loads((runs / run_id / "run.json").read_text())}


def train_subparser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


# ---------------------------------------------------------------------------
# 1. train's result goes to stdout


def test_train_prints_its_result_on_stdout_as_plain_lines(plain_train):
    meta, run_id, runs = plain_train["meta"], plain_train["run_id"], plain_train["runs"]
    cnn, base = meta["models"]["cnn"], meta["models"]["baseline"]
    assert plain_train["result"].stdout.splitlines() == [
        f"run: {run_id}",
        "status: finished",
        f"CNN test accuracy: {cnn['test_accuracy']:.4f} (test loss {cnn['test_loss']:.4f})",
        f"dense baseline test accuracy: {base['test_accuracy']:.4f} (test loss {base['test_loss']:.4f})",
        f"folder: {(runs / run_id).resolve()}",
    ]
    assert "epoch 1" in plain_train["result"].stderr  # progress stays on stderr


def test_train_json_keeps_stdout_to_the_json_line(tmp_path, env):
    # --json is for programs: the one JSON line on stdout, the plain lines on stderr for people.
    result = cnnkit("train", "--preset", "dense-128", "--train-limit", 100, "--epochs", 1, "--json",
                    "--runs-dir", tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    out = last_json_line(result.stdout)
    assert f"run: {out['run_id']}" in result.stderr.splitlines()
    assert f"CNN test accuracy: {out['test_accuracy']:.4f} (test loss {out['test_loss']:.4f})" in result.stderr


# ---------------------------------------------------------------------------
# 2. runs shows each run's name, one line per run, whatever the name holds


def _unprintable(text: str) -> list[str]:
    """Characters a terminal acts on or hides: controls (ESC, newlines), bidi overrides, line separators."""
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]


def test_runs_lists_each_runs_name_on_one_line(tmp_path, env):
    store = RunStore(tmp_path)
    spec = ExperimentSpec.from_dict({"layers": [{"type": "flatten"}]})
    first = store.create(spec, name="digits, first try")
    store.update(first.run_id, status="finished", models={"cnn": {"test_accuracy": 0.9123, "epochs_completed": 2}})
    # The app's rename accepts these (no Cc character): a line separator and a right-to-left override.
    second = store.create(spec, name="second")
    store.rename(second.run_id, "evil\u2028second line\u202eright to left")
    # Written by hand: an escape sequence that would clear the screen, and a newline.
    third = store.create(spec)
    run_json = tmp_path / third.run_id / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "name": "\x1b[2Jwiped\nscreen"}))

    result = cnnkit("runs", "--runs-dir", tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and _unprintable(result.stdout) == [], result.stdout
    by_id = {line.split()[0]: line for line in lines}
    records = {r.run_id: r for r in RunStore(tmp_path).list()}
    assert set(by_id) == set(records)
    for run_id, line in by_id.items():
        assert f" {records[run_id].status} " in line
    assert "digits, first try" in by_id[first.run_id] and "0.9123" in by_id[first.run_id]
    assert "evil" in by_id[second.run_id] and "second line" in by_id[second.run_id]
    assert "right to left" in by_id[second.run_id]
    assert "wiped" in by_id[third.run_id] and "screen" in by_id[third.run_id]


# ---------------------------------------------------------------------------
# 3. every option of every sub-command explains itself


def test_every_option_of_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.help, "the sub-command argument itself"
    described = {choice.dest: choice.help for choice in sub._choices_actions}
    missing = [name for name in sub.choices if not described.get(name)]
    for name, subparser in sub.choices.items():
        for action in subparser._actions:
            if "-h" not in action.option_strings and not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []
    assert len(sub.choices) >= 15  # the walk saw the commands of cnnkit/cli/models.py too


def test_the_help_of_a_table_option_gives_its_range_and_condition():
    help_text = train_subparser().format_help()
    assert "--momentum" in help_text and "--optimizer sgd" in help_text  # only with sgd, it says
    assert "--decay-epochs" in help_text


# ---------------------------------------------------------------------------
# 4. every training setting from the command line, validated by name


def test_every_spec_field_has_a_train_option():
    options = {s for action in train_subparser()._actions for s in action.option_strings}
    for field in fields(TrainingSpec):
        assert f"--{field.name.replace('_', '-')}" in options, field.name
    for field in fields(DatasetSpec):
        assert f"--{field.name.replace('_', '-')}" in options or field.name == "name", field.name
    assert {"--dataset", "--lr", "--baseline", "--name"} <= options  # --lr: the old spelling still works
    assert {f.name.replace("_", "-") for f in fields(TrainingSpec)} <= {o[2:] for o in EVERY_OPTION}


def test_every_training_option_lands_in_the_runs_spec(tmp_path, env):
    argv = [item for option, value in EVERY_OPTION.items() for item in (option, value) if item is not None]
    result = cnnkit("train", "--preset", "dense-128", *argv, "--name", "every option", "--runs-dir", tmp_path,
                    env=env)
    assert result.returncode == 0, result.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished" and run["name"] == "every option"
    assert run["spec"]["training"] == EXPECTED_TRAINING
    assert {key: run["spec"]["dataset"][key] for key in EXPECTED_DATASET} == EXPECTED_DATASET
    assert json.loads((run_dir / "spec.json").read_text()) == run["spec"]
    # the spec as trained: 200 images with a 0.2 validation split, at batch 64
    assert [e["learning_rate"] for e in json.loads((run_dir / "history.json").read_text())
            if e["model"] == "cnn"] == [pytest.approx(0.05)]


def test_options_override_a_spec_file_and_all_means_every_image(tmp_path):
    from cnnkit.cli.common import load_spec

    spec = ExperimentSpec.from_dict({"layers": [{"type": "flatten"}], "name": "from a file",
                                     "dataset": {"train_limit": 500, "test_limit": 200},
                                     "training": {"optimizer": "sgd", "momentum": 0.9, "epochs": 3}})
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    parse = train_subparser().parse_args
    assert load_spec(parse(["--spec", str(path)])) == spec  # nothing given: the file as it is
    changed = load_spec(parse(["--spec", str(path), "--train-limit", "all", "--test-limit", "all",
                               "--no-nesterov", "--lr", "0.2", "--schedule", "cosine"]))
    assert (changed.dataset.train_limit, changed.dataset.test_limit) == (None, None)
    assert changed.training == TrainingSpec(optimizer="sgd", momentum=0.9, epochs=3, nesterov=False,
                                            learning_rate=0.2, schedule="cosine")
    assert changed.name == "from a file" and changed.layers == spec.layers


BAD_VALUES = {
    "momentum of 1": (["--optimizer", "sgd", "--momentum", "1"], "training.momentum"),
    "decay rate 0": (["--schedule", "step", "--decay-rate", "0"], "training.decay_rate"),
    "decay epochs 0": (["--schedule", "step", "--decay-epochs", "0"], "training.decay_epochs"),
    "weight decay 2": (["--weight-decay", "2"], "training.weight_decay"),
    "learning rate 0": (["--learning-rate", "0"], "training.learning_rate"),
    "batch size 0": (["--batch-size", "0"], "training.batch_size"),
    "seed -1": (["--seed", "-1"], "training.seed"),
    "unknown schedule": (["--schedule", "sometimes"], "--schedule"),
    "momentum not a number": (["--momentum", "much"], "--momentum"),
    "a name with a newline": (["--name", "two\nlines"], "name"),
    # Set, but the recipe would ignore it: said, not swallowed.
    "momentum with adam": (["--optimizer", "adam", "--momentum", "0.9"], "--momentum"),
    "decay epochs, constant rate": (["--schedule", "constant", "--decay-epochs", "4"], "--decay-epochs"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_bad_training_value_is_one_line_naming_the_field(case, capsys, tmp_path):
    args, field = BAD_VALUES[case]
    assert main(["train", "--preset", "dense-128", *args, "--runs-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and field in err, err
    assert list(tmp_path.iterdir()) == []  # refused before any run was created


# ---------------------------------------------------------------------------
# 5. evaluate says when it uses the bundled sample, as train does


def test_evaluate_says_it_uses_the_bundled_sample(plain_train, env):
    description = plain_train["meta"]["data_source"]["description"]
    assert "SAMPLE" in description
    said_by_train = f"data: {description}"
    assert said_by_train in plain_train["result"].stderr.splitlines()
    result = cnnkit("evaluate", "--run", plain_train["run_id"], "--runs-dir", plain_train["runs"], env=env)
    assert result.returncode == 0, result.stderr
    assert said_by_train in result.stderr.splitlines()
    assert last_json_line(result.stdout)["data_source"] == description


def test_evaluate_with_a_missing_data_dir_is_bad_input(plain_train, env, tmp_path):
    # Not a quiet fallback to the sample either.
    result = cnnkit("evaluate", "--run", plain_train["run_id"], "--runs-dir", plain_train["runs"],
                    "--data-dir", tmp_path / "nowhere", env=env)
    assert result.returncode == 2 and "is not a folder" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr

