"""Bias audit: MetricFrame tables, gap tests (a planted gap is found, noise is not), clustered
resampling, the demographic profile statistics and the reweighting mitigation, on synthetic
predictions (no model, no real data)."""

import gzip

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from face_sentiment import bias_audit as ba
from face_sentiment.labels import FER2013_CLASSES


def _predictions(accuracy_by_group: dict[str, float], per_group: int = 300, seed: int = 0):
    """Labels, predictions and groups where each group is right with the given probability."""
    rng = np.random.default_rng(seed)
    labels, predicted, groups = [], [], []
    for group, accuracy in accuracy_by_group.items():
        y = rng.integers(0, 7, per_group)
        right = rng.random(per_group) < accuracy
        labels.append(y)
        predicted.append(np.where(right, y, (y + rng.integers(1, 7, per_group)) % 7))
        groups += [group] * per_group
    return np.concatenate(labels), np.concatenate(predicted), np.array(groups)


def test_macro_f1_matches_scikit_learn():
    labels, predicted, _ = _predictions({"a": 0.6})
    present = tuple(range(7))
    assert ba.macro_f1(labels, predicted, present) == pytest.approx(
        f1_score(labels, predicted, average="macro"))


def test_metric_frame_by_group_and_intersection():
    labels, predicted, groups = _predictions({"a": 0.9, "b": 0.5})
    sensitive = pd.DataFrame({"g": groups, "h": np.tile(["x", "y"], len(groups) // 2)})
    frame = ba.group_metrics(labels, predicted, sensitive, FER2013_CLASSES)
    table = ba.by_group_table(frame)
    assert len(table) == 4 and table["n"].sum() == len(labels)
    assert {"accuracy", "macro_f1", "recall_happy"} <= set(table.columns)
    by_g = ba.by_group_table(ba.group_metrics(labels, predicted, sensitive[["g"]],
                                              FER2013_CLASSES))
    assert by_g.loc["a", "accuracy"] == pytest.approx((labels == predicted)[:300].mean())


def test_planted_gap_is_significant_and_its_interval_covers_it():
    labels, predicted, groups = _predictions({"a": 0.8, "b": 0.6})
    result = ba.gap_test(labels, predicted, groups, resamples=300, permutations=300)
    assert result["worst_group"] == "b" and result["best_group"] == "a"
    assert result["difference_p"] < 0.01 and result["ratio_p"] < 0.01
    assert result["difference_ci_low"] <= result["difference"] <= result["difference_ci_high"]
    assert result["difference_ci_low"] > 0.05  # planted 0.2, n = 300 per group


def test_no_gap_is_not_significant():
    labels, predicted, groups = _predictions({"a": 0.7, "b": 0.7, "c": 0.7}, seed=3)
    result = ba.gap_test(labels, predicted, groups, resamples=200, permutations=500)
    assert result["difference_p"] > 0.05


def test_clustered_test_accounts_for_people():
    """Two groups of two people each: a person-level effect is not a group effect."""
    labels, predicted, _ = _predictions({"p1": 0.9, "p2": 0.5, "p3": 0.9, "p4": 0.5}, 200)
    people = np.repeat(["p1", "p2", "p3", "p4"], 200)
    groups = np.repeat(["a", "a", "b", "b"], 200)
    groups[:200], groups[200:400] = "a", "b"
    groups[400:600], groups[600:] = "a", "b"  # a = {p1, p3}, b = {p2, p4}: a real gap
    image_level = ba.gap_test(labels, predicted, groups, resamples=100, permutations=300)
    clustered = ba.gap_test(labels, predicted, groups, resamples=100, permutations=300,
                            clusters=people)
    assert clustered["unit"] == "cluster" and image_level["unit"] == "image"
    assert image_level["difference_p"] < 0.01
    # Only 4 people: the smallest p a person-level permutation can give is far larger.
    assert clustered["difference_p"] > image_level["difference_p"]


def test_audit_models_side_by_side():
    labels, predicted, groups = _predictions({"a": 0.8, "b": 0.6})
    sensitive = pd.DataFrame({"g": groups, "h": np.tile(["x", "y"], len(groups) // 2)})
    table = ba.audit_models({"ours": predicted, "other": labels}, labels, sensitive,
                            resamples=50, permutations=50)
    assert set(table.index.get_level_values("attribute")) == {"g", "h", "g & h"}
    assert set(table.index.get_level_values("model")) == {"ours", "other"}
    assert (table.xs("other", level="model").difference == 0).all()  # perfect model


def test_holm_adjustment_by_hand():
    # sorted 0.005 0.01 0.03 0.04 -> x4 x3 x2 x1 = 0.02 0.03 0.06 0.04 -> monotone 0.06 for the last
    adjusted = ba.holm(np.array([0.01, 0.04, 0.03, 0.005]))
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(ba.holm(np.array([0.5, 0.9])), [1.0, 1.0])  # capped at 1
    assert ba.holm(np.array([])).shape == (0,)


def test_audit_holm_adjusts_within_each_model_and_significant_reads_it():
    labels, predicted, groups = _predictions({"a": 0.8, "b": 0.6})
    sensitive = pd.DataFrame({"g": groups, "h": np.tile(["x", "y"], len(groups) // 2)})
    table = ba.audit_models({"ours": predicted, "other": labels}, labels, sensitive,
                            resamples=20, permutations=200)
    for model in ("ours", "other"):
        rows = table.xs(model, level="model")
        np.testing.assert_allclose(rows.difference_p_holm, ba.holm(rows.difference_p.to_numpy()))
        assert (rows.difference_p_holm >= rows.difference_p).all()
    # a p-value just under 5% alone is significant, but not after adjusting for six tests
    fake = pd.DataFrame({"difference_p": [0.04, 0.5], "difference_p_holm": [0.08, 0.5]})
    assert len(ba.significant(fake)) == 0 and len(ba.significant(fake, adjusted=False)) == 1
    assert ba.significant(table).index.get_level_values("model").unique().tolist() == ["ours"]


def test_cramers_v_and_representation():
    table = pd.DataFrame({"gender": ["F"] * 50 + ["M"] * 50,
                          "label": ["happy"] * 50 + ["angry"] * 50, "race": ["x"] * 100,
                          "age": ["20-29"] * 100, "partition": ["train"] * 80 + ["val"] * 20})
    assert ba.cramers_v(table, "gender")["cramers_v"] == pytest.approx(0.98, abs=0.03)
    shares = ba.representation(table, "gender")
    assert shares.loc["F", ("count", "total")] == 50
    assert shares.loc["F", ("share", "total")] == pytest.approx(0.5)


def test_demographics_missing_names_variable_and_source(monkeypatch, tmp_path):
    monkeypatch.delenv(ba.DEMOGRAPHICS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="FAIRFACE_DEMOGRAPHICS_PATH.*2312.14626"):
        ba.locate_demographics()
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"age,race,gender,label,partition\n20-29,White,Male,sad,train\n"))
    monkeypatch.setenv(ba.DEMOGRAPHICS_ENV, str(path))
    assert len(ba.load_demographics()) == 1


def test_group_weights_balance_cells_and_upweight():
    groups = np.array(["a"] * 6 + ["b"] * 2)
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    weights = ba.group_weights(groups, labels)
    totals = pd.Series(weights).groupby([groups, labels]).sum()
    assert totals.to_numpy() == pytest.approx(np.full(4, totals.iloc[0]))
    up = ba.group_weights(groups, labels, {"b": 3.0})
    assert up[groups == "b"].sum() / up[groups == "a"].sum() == pytest.approx(3.0)


def test_mitigation_tradeoff_table():
    rng = np.random.default_rng(0)
    groups = np.repeat(["low", "high"], 200)
    labels = rng.integers(0, 3, 400)
    features = np.eye(3)[labels] + rng.normal(0, 0.8, (400, 3))
    features[groups == "low"] += rng.normal(0, 1.5, (200, 3))  # a harder group
    train, test = (features[::2], labels[::2], groups[::2]), (features[1::2], labels[1::2],
                                                             groups[1::2])
    table = ba.mitigate_by_reweighting(train, test, np.zeros(200, int), "low",
                                       resamples=20, permutations=20)
    assert len(table) == 4 and table.loc["original model", "accuracy"] < 0.5
    assert (table.iloc[1:].accuracy > 0.5).all()
