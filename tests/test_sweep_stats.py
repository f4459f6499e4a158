"""cnnkit.runs.stats against hand computations and the printed Student-t table: the summary of
one configuration, the paired comparison of two, the verdicts in words, a sweep's trials grouped."""

import math

import pytest

from cnnkit.runs.stats import (
    TOO_FEW,
    Comparison,
    ConfigSummary,
    Summary,
    compare_paired,
    incomplete_beta,
    summarize,
    summarize_trials,
    t_critical,
)

# Two-sided Student t quantiles as printed in the tables (Fisher & Yates; NIST handbook, 1.3.6.7.2)
T_TABLE = [(1, 0.95, 12.7062), (2, 0.95, 4.3027), (4, 0.95, 2.7764), (9, 0.95, 2.2622), (29, 0.95, 2.0452),
           (1000, 0.95, 1.9623), (5, 0.99, 4.0321), (10, 0.90, 1.8125), (3, 0.50, 0.7649), (20, 0.99, 2.8453)]


@pytest.mark.parametrize(("df", "confidence", "table"), T_TABLE)
def test_t_critical_matches_the_printed_table(df, confidence, table):
    assert round(t_critical(df, confidence), 4) == table


def test_t_critical_tends_to_the_normal_quantile():
    assert round(t_critical(10**7), 4) == 1.9600  # z(0.975) = 1.959964


def test_t_critical_with_one_degree_of_freedom_is_the_cauchy_quantile():
    # t with 1 df is the Cauchy distribution: the two-sided quantile is tan(π·confidence/2)
    for confidence in (0.5, 0.9, 0.99, 0.999):
        assert t_critical(1, confidence) == pytest.approx(math.tan(math.pi * confidence / 2), rel=1e-9)


@pytest.mark.parametrize(("df", "confidence"), [(0, 0.95), (-1, 0.95), (3, 0.0), (3, 1.0)])
def test_t_critical_refuses_what_has_no_quantile(df, confidence):
    with pytest.raises(ValueError):
        t_critical(df, confidence)


def test_incomplete_beta_known_closed_forms():
    for x in (0.01, 0.3, 0.5, 0.9):
        assert incomplete_beta(x, 1, 1) == pytest.approx(x)              # uniform
        assert incomplete_beta(x, 3, 1) == pytest.approx(x ** 3)         # I_x(a, 1) = x^a
        assert incomplete_beta(x, 1, 2) == pytest.approx(1 - (1 - x) ** 2)
    assert incomplete_beta(0.5, 7.5, 7.5) == pytest.approx(0.5)          # symmetric
    assert incomplete_beta(0.0, 2, 3) == 0.0 and incomplete_beta(1.0, 2, 3) == 1.0


# ---------------------------------------------------------------------------
# One configuration


def test_summarize_three_values_by_hand():
    summary = summarize([0.98, 0.99, 0.97])
    # mean 0.98; deviations ±0.01 and 0: variance (0.0001 + 0 + 0.0001) / 2 = 0.0001, std 0.01
    half = 4.3027 * 0.01 / math.sqrt(3)  # t(0.975, 2 df) from the table
    assert summary.n == 3
    assert summary.mean == pytest.approx(0.98)
    assert summary.std == pytest.approx(0.01)
    assert summary.ci95 == pytest.approx((0.98 - half, 0.98 + half), abs=1e-6)
    assert summary.to_dict() == {"n": 3, "mean": summary.mean, "std": summary.std, "ci95": list(summary.ci95)}


def test_summarize_one_value_has_no_spread_and_no_interval():
    summary = summarize([0.975])
    assert (summary.n, summary.mean, summary.std, summary.ci95) == (1, 0.975, 0.0, None)
    assert summary.to_dict()["ci95"] is None


def test_summarize_identical_values_is_exactly_flat():
    summary = summarize([0.9812] * 4)
    assert summary.std == 0.0 and summary.ci95 == (0.9812, 0.9812)


def test_summarize_nothing_is_an_error():
    with pytest.raises(ValueError):
        summarize([])


# ---------------------------------------------------------------------------
# A against B

A5 = {1: 0.980, 2: 0.975, 3: 0.990, 4: 0.985, 5: 0.970}
DIFF5 = {1: 0.004, 2: 0.006, 3: 0.002, 4: 0.005, 5: 0.003}
B5 = {seed: A5[seed] + DIFF5[seed] for seed in A5}


def test_compare_paired_by_hand():
    comparison = compare_paired(A5, B5, "A", "B")
    # differences 0.004, 0.006, 0.002, 0.005, 0.003: mean 0.004; squared deviations 0, 4, 4, 1, 1 (×1e-6)
    std = math.sqrt(10e-6 / 4)
    half = 2.7764 * std / math.sqrt(5)  # t(0.975, 4 df)
    assert comparison.n == 5
    assert comparison.mean_difference == pytest.approx(0.004)
    assert comparison.std == pytest.approx(std)
    assert comparison.ci95 == pytest.approx((0.004 - half, 0.004 + half), abs=1e-6)
    assert comparison.verdict == "B is better by 0.40 pt (95% CI 0.20–0.60) over 5 seeds"
    assert comparison.to_dict() == {"a_label": "A", "b_label": "B", "n": 5,
                                    "mean_difference": comparison.mean_difference, "std": comparison.std,
                                    "ci95": list(comparison.ci95), "verdict": comparison.verdict}


def test_a_better_reads_as_a_better_with_its_own_interval():
    comparison = compare_paired(B5, A5, "wide", "narrow")
    assert comparison.mean_difference == pytest.approx(-0.004)
    assert comparison.verdict == "wide is better by 0.40 pt (95% CI 0.20–0.60) over 5 seeds"


def test_an_interval_across_zero_is_no_detectable_difference():
    a = {1: 0.98, 2: 0.98, 3: 0.98}
    b = {1: 0.982, 2: 0.977, 3: 0.984}
    # differences 0.002, −0.003, 0.004: mean 0.001; squared deviations 1, 16, 9 (×1e-6) → variance 13e-6
    half = 4.3027 * math.sqrt(13e-6) / math.sqrt(3)
    comparison = compare_paired(a, b)
    assert comparison.ci95 == pytest.approx((0.001 - half, 0.001 + half), abs=1e-6)  # (−0.80, 1.00) pt
    assert comparison.verdict == "no detectable difference at 3 seeds: the interval spans 0 (−0.80 to 1.00 pt)"


def test_the_same_difference_on_every_seed_is_said_plainly():
    a = {1: 0.98, 2: 0.97, 3: 0.96}
    b = {1: 0.99, 2: 0.98, 3: 0.97}  # + 1 pt each time (up to float noise in b − a)
    comparison = compare_paired(a, b)
    assert comparison.std == 0.0
    assert comparison.ci95[0] == comparison.ci95[1] == pytest.approx(0.01)
    assert comparison.verdict.startswith("B is better by 1.00 pt on every one of the 3 seeds")
    assert "95% CI is that one value" in comparison.verdict
    assert compare_paired(a, dict(a)).verdict == "no difference at 3 seeds: A and B scored the same on every seed"


def test_one_paired_seed_is_too_few():
    comparison = compare_paired({1: 0.98, 2: 0.97}, {2: 0.99, 3: 0.96})
    assert comparison.n == 1 and comparison.mean_difference == pytest.approx(0.02)
    assert comparison.ci95 is None and comparison.verdict == TOO_FEW
    assert TOO_FEW == "too few seeds to compare (need at least 2 paired seeds)"
    nothing = compare_paired({1: 0.98}, {2: 0.99})
    assert (nothing.n, nothing.mean_difference, nothing.ci95, nothing.verdict) == (0, None, None, TOO_FEW)


def test_only_the_seeds_both_have_are_paired():
    a = {1: 0.970, 2: 0.980, 3: 0.985}
    b = {2: 0.986, 3: 0.987, 4: 0.999}
    comparison = compare_paired(a, b)
    assert comparison.n == 2
    assert comparison.mean_difference == pytest.approx((0.006 + 0.002) / 2)
    assert comparison.std == pytest.approx(math.sqrt(2 * 0.002 ** 2))  # deviations ±0.002, 1 df


# ---------------------------------------------------------------------------
# A sweep's trials


def trial(index, config, seed, accuracy, status="finished", seconds=None, params=None):
    return {"run_id": f"run-{index}", "index": index, "config": config, "seed": seed, "status": status,
            "test_accuracy": accuracy, "seconds": seconds, "params": params, "progress": None}


def test_summarize_trials_skips_unfinished_and_groups_in_first_seen_order():
    lr1, lr2, lr3 = ({"training.learning_rate": v} for v in (0.01, 0.001, 0.1))
    trials = [trial(0, lr1, 1, 0.97, seconds=30.0, params=1000), trial(1, lr2, 1, 0.95, seconds=32.0, params=1000),
              trial(2, lr1, 2, 0.99, seconds=34.0, params=1000), trial(3, lr2, 2, 0.50, status="failed"),
              trial(4, lr2, 3, None, status="running"), trial(5, lr3, 1, None, status="stopped"),
              trial(6, lr2, 4, 0.96, seconds=None, params=None)]
    summaries, comparison = summarize_trials(trials)
    assert [s.config for s in summaries] == [lr1, lr2]  # lr3 has nothing finished
    assert [s.label for s in summaries] == ["training.learning_rate=0.01", "training.learning_rate=0.001"]
    assert summaries[0].summary.n == 2 and summaries[0].summary.mean == pytest.approx(0.98)
    assert summaries[1].summary.n == 2 and summaries[1].summary.mean == pytest.approx(0.955)  # not the failed 0.50
    assert summaries[0].seconds == pytest.approx(32.0) and summaries[1].seconds == pytest.approx(32.0)
    assert summaries[0].params == 1000
    assert comparison is None  # three configurations in the sweep, even if one has finished nothing yet
    assert summaries[0].to_dict() == {"config": lr1, "n": 2, "mean": summaries[0].summary.mean,
                                      "std": summaries[0].summary.std, "ci95": list(summaries[0].summary.ci95),
                                      "seconds": summaries[0].seconds, "params": 1000}


def test_summarize_trials_compares_exactly_two_configurations():
    a, b = {"variant": "A"}, {"variant": "B"}
    trials = [trial(i, a, seed, A5[seed]) for i, seed in enumerate(A5)]
    trials += [trial(10 + i, b, seed, B5[seed]) for i, seed in enumerate(B5)]
    summaries, comparison = summarize_trials(trials)
    assert [s.label for s in summaries] == ["A", "B"]
    assert isinstance(comparison, Comparison)
    assert comparison.verdict == compare_paired(A5, B5).verdict == \
        "B is better by 0.40 pt (95% CI 0.20–0.60) over 5 seeds"
    one_config = summarize_trials([t for t in trials if t["config"] == a])
    assert len(one_config[0]) == 1 and one_config[1] is None


def test_summarize_trials_pairs_by_seed_and_accepts_a_labeller():
    a, b = {"training.optimizer": "adam"}, {"training.optimizer": "sgd"}
    trials = [trial(0, a, 1, 0.970), trial(1, a, 2, 0.980), trial(2, a, 3, 0.985),
              trial(3, b, 2, 0.986), trial(4, b, 3, 0.987), trial(5, b, 4, 0.999)]
    summaries, comparison = summarize_trials(trials, label_of=lambda config: config["training.optimizer"].upper())
    assert [s.label for s in summaries] == ["ADAM", "SGD"]
    assert (comparison.a_label, comparison.b_label, comparison.n) == ("ADAM", "SGD", 2)
    assert comparison.mean_difference == pytest.approx(0.004)


def test_every_class_has_a_repr_that_says_what_it_holds():
    summary = Summary(3, 0.98, 0.01, (0.955, 1.005))
    assert "n=3" in repr(summary) and "0.9800" in repr(summary)
    assert "B − A" in repr(compare_paired(A5, B5))
    assert "lr=1" in repr(ConfigSummary({"lr": 1}, "lr=1", summary, None, None))
