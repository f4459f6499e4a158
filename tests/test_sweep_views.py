"""cnnkit.views.sweeps: the tables' text, the cost sentence and the best configuration by hand, and
the figures' data read back against the trials and summaries they were drawn from."""

import math

import pytest

from cnnkit.runs.stats import ConfigSummary, compare_paired, summarize, summarize_trials
from cnnkit.views import sweeps


def trial(index, config, seed, accuracy, status="finished", progress=None, seconds=None, params=None):
    return {"run_id": f"run-{index}", "index": index, "config": config, "seed": seed, "status": status,
            "test_accuracy": accuracy, "seconds": seconds, "params": params, "progress": progress}


def config_summary(config, label, values, seconds=None, params=None):
    return ConfigSummary(config, label, summarize(values), seconds, params)


# ---------------------------------------------------------------------------
# Tables and words


def test_trial_rows():
    trials = [trial(0, {"variant": "A"}, 1, 0.98123), trial(1, {"variant": "B"}, 1, None, "running", 0.4),
              trial(2, {"training.learning_rate": 0.001, "layers": [{}, {}]}, 2, None, "queued"),
              trial(3, {}, 3, None, "failed")]
    rows = sweeps.trial_rows(trials)
    assert rows[0] == {"#": 1, "configuration": "A", "seed": 1, "status": "finished", "test accuracy": "98.12%",
                       "run_id": "run-0"}
    assert rows[1]["status"] == "running 40%" and rows[1]["test accuracy"] == "–"
    assert rows[2]["configuration"] == "training.learning_rate=0.001, layers=<2 layers>"
    assert rows[2]["status"] == "queued"
    assert rows[3]["configuration"] == "base" and rows[3]["#"] == 4


def test_summary_rows():
    rows = sweeps.summary_rows([config_summary({"variant": "A"}, "A", [0.98, 0.99, 0.97], 31.25, 12544),
                                config_summary({}, "", [0.975])])
    half = 4.3027 * 0.01 / math.sqrt(3) * 100  # points: 2.4841
    assert rows[0] == {"configuration": "A", "n": 3, "mean": "98.00%", "std (pt)": "1.00",
                       "95% CI (pt)": f"{98 - half:.2f} to {98 + half:.2f}", "mean time (s)": "31.2",
                       "params": "12,544"}
    assert rows[0]["95% CI (pt)"] == "95.52 to 100.48"
    assert rows[1] == {"configuration": "base", "n": 1, "mean": "97.50%", "std (pt)": "–", "95% CI (pt)": "–",
                       "mean time (s)": "–", "params": "–"}


def test_the_cost_sentence_by_hand():
    a = config_summary({"variant": "A"}, "A", [0.98, 0.97], seconds=31.0, params=100_000)
    b = config_summary({"variant": "B"}, "B", [0.99, 0.98], seconds=41.0, params=112_544)
    comparison = compare_paired({1: 0.98, 2: 0.97}, {1: 0.99, 2: 0.981})
    # 41 / 31 = 1.32…; 112,544 − 100,000 = 12,544
    assert sweeps.verdict_lines(comparison, [a, b]) == [
        comparison.verdict, "B costs 1.3× the training time of A (41 s vs 31 s per run) and 12,544 more parameters"]
    fewer = config_summary({"variant": "B"}, "B", [0.99], seconds=15.0, params=99_000)
    assert sweeps.cost_text(a, fewer) == \
        "B costs 0.5× the training time of A (15 s vs 31 s per run) and 1,000 fewer parameters"
    same = config_summary({"variant": "B"}, "B", [0.99], seconds=None, params=100_000)
    assert sweeps.cost_text(a, same) == "B has the same number of parameters as A"
    unknown = config_summary({"variant": "B"}, "B", [0.99])
    assert sweeps.cost_text(a, unknown) is None
    assert sweeps.verdict_lines(comparison, [a, unknown]) == [comparison.verdict]


def test_best_configuration_breaks_a_tie_with_fewer_parameters():
    big = config_summary({"layers[0].filters": 64}, "big", [0.99, 0.98], params=50_000)
    small = config_summary({"layers[0].filters": 16}, "small", [0.98, 0.99], params=8_000)
    worse = config_summary({"layers[0].filters": 8}, "worse", [0.97, 0.98], params=2_000)
    assert sweeps.best_configuration([big, small, worse]) is small
    assert sweeps.best_configuration([worse, big]) is big
    assert sweeps.best_configuration([]) is None


# ---------------------------------------------------------------------------
# Figures


GRID = [{"training.learning_rate": lr, "training.optimizer": opt, "dataset.train_limit": 400}
        for lr in (0.001, 0.01, 0.1) for opt in ("adam", "sgd")]


def grid_trials():
    """Each configuration twice; accuracy a known function of the settings and the seed."""
    trials = []
    for config in GRID:
        for seed in (1, 2):
            accuracy = 0.95 + 10 * config["training.learning_rate"] / 100 + (config["training.optimizer"] == "sgd") \
                / 100 + seed / 1000
            trials.append(trial(len(trials), config, seed, accuracy, seconds=20.0, params=1000))
    return trials


def test_axes_of_lists_what_varies_in_first_seen_order():
    assert sweeps.axes_of(grid_trials()) == ["training.learning_rate", "training.optimizer"]  # the limit is constant
    assert sweeps.axes_of([trial(0, {"variant": "A"}, 1, 0.9), trial(1, {"variant": "B"}, 1, 0.9)]) == ["variant"]
    assert sweeps.axes_of([trial(0, {}, 1, 0.9), trial(1, {}, 2, 0.9)]) == []


def test_parallel_coordinates_dimensions_are_the_configs():
    trials = grid_trials()
    trials[1].update(status="running", test_accuracy=None)  # left out
    trials[2].update(status="failed")                       # left out, whatever its accuracy
    done = [t for t in trials if t["status"] == "finished"]
    fig = sweeps.parallel_coordinates_figure(trials)
    lr, optimizer, accuracy = fig.data[0].dimensions
    assert lr.label == "training.learning_rate"
    assert list(lr.values) == [t["config"]["training.learning_rate"] for t in done]
    assert optimizer.label == "training.optimizer"
    assert list(optimizer.ticktext) == ["adam", "sgd"] and list(optimizer.tickvals) == [0, 1]
    assert [optimizer.ticktext[code] for code in optimizer.values] == [t["config"]["training.optimizer"] for t in done]
    assert list(accuracy.values) == pytest.approx([t["test_accuracy"] * 100 for t in done])
    assert list(fig.data[0].line.color) == pytest.approx([t["test_accuracy"] * 100 for t in done])


def test_parallel_coordinates_codes_whole_layer_lists():
    one, two = [{"type": "flatten"}], [{"type": "flatten"}, {"type": "dense", "units": 10}]
    trials = [trial(0, {"layers": one}, 1, 0.9), trial(1, {"layers": two}, 1, 0.95), trial(2, {"layers": one}, 2, 0.91)]
    (layers, _), = [sweeps.parallel_coordinates_figure(trials).data[0].dimensions]
    assert list(layers.values) == [0, 1, 0] and list(layers.ticktext) == ["<1 layer>", "<2 layers>"]


def test_parallel_coordinates_needs_two_finished_trials_and_an_axis():
    trials = grid_trials()[:2]
    assert sweeps.parallel_coordinates_figure([trials[0], dict(trials[1], status="running")]) is None
    same = [trial(0, {}, 1, 0.9), trial(1, {}, 2, 0.95)]
    assert sweeps.parallel_coordinates_figure(same) is None


def test_accuracy_by_value_error_bars_are_the_intervals_in_points():
    configs = [{"training.learning_rate": lr} for lr in (0.01, 0.001, 0.1)]
    values = [[0.97, 0.98, 0.99], [0.95, 0.96], [0.90]]
    summaries = [config_summary(c, "", v) for c, v in zip(configs, values, strict=True)]
    (trace,) = sweeps.accuracy_by_value_figure(summaries, "training.learning_rate").data
    by_x = sorted(zip(configs, summaries, strict=True), key=lambda pair: pair[0]["training.learning_rate"])
    assert list(trace.x) == [0.001, 0.01, 0.1]  # sorted along the axis
    assert list(trace.y) == pytest.approx([s.summary.mean * 100 for _, s in by_x])
    expected_up = [(s.summary.ci95[1] - s.summary.mean) * 100 if s.summary.ci95 else None for _, s in by_x]
    expected_down = [(s.summary.mean - s.summary.ci95[0]) * 100 if s.summary.ci95 else None for _, s in by_x]
    assert list(trace.error_y.array[:2]) == pytest.approx(expected_up[:2])
    assert list(trace.error_y.arrayminus[:2]) == pytest.approx(expected_down[:2])
    assert trace.error_y.array[2] is None and trace.error_y.arrayminus[2] is None  # one seed: no interval
    # by hand for 0.01: 0.98 ± 4.3027·0.01/√3 → 2.484 points either way
    assert trace.error_y.array[1] == pytest.approx(4.3027 * 0.01 / math.sqrt(3) * 100, abs=1e-3)


def test_accuracy_by_value_of_a_grid_draws_a_line_per_value_of_the_other_axis():
    summaries, _ = summarize_trials(grid_trials())
    fig = sweeps.accuracy_by_value_figure(summaries, "training.learning_rate")
    assert [t.name for t in fig.data] == ["training.optimizer=adam", "training.optimizer=sgd"]
    for trace, optimizer in zip(fig.data, ("adam", "sgd"), strict=True):
        assert list(trace.x) == [0.001, 0.01, 0.1]
        expected = [s.summary.mean * 100 for s in summaries if s.config["training.optimizer"] == optimizer]
        assert list(trace.y) == pytest.approx(expected)
    assert fig.layout.xaxis.type == "log"  # 0.001 to 0.1


def test_accuracy_by_value_of_a_category():
    summaries, _ = summarize_trials(grid_trials())
    fig = sweeps.accuracy_by_value_figure(summaries, "training.optimizer")
    assert fig.layout.xaxis.type == "category"
    assert [t.name for t in fig.data] == [f"training.learning_rate={lr}" for lr in ("0.001", "0.01", "0.1")]
    assert all(list(t.x) == ["adam", "sgd"] for t in fig.data)
    low, high = fig.layout.yaxis.range
    ends = [v * 100 for s in summaries for v in s.summary.ci95]
    assert low < min(ends) and high > max(ends)  # every interval shows whole
