"""Bias audit: MetricFrame tables, gap tests (a planted gap is found, noise is not), clustered
resampling, the demographic profile statistics and the reweighting mitigation, on synthetic
predictions (no model, no real data)."""

import gzip

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from face_sentiment.labels import FER2013_CLASSES
from face_sentiment.responsible import bias_audit as ba


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


def test_grouped_refit_scores_each_person_with_a_head_that_never_saw_them():
    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(20), 20)
    groups = np.where(people < 10, "young", "old")
    # Each person's label is fixed and their features are a one-hot of who they are: a head
    # that saw a person's photos gets them all right, one that did not can only guess.
    person_label = rng.integers(0, 3, 20)
    labels = person_label[people]
    features = np.eye(20)[people] + rng.normal(0, 0.05, (400, 20))
    original = labels.copy()
    original[(groups == "old") & (rng.random(400) < 0.5)] = 0
    table = ba.mitigate_by_grouped_refit(features, labels, groups, people, original, "old",
                                         folds=5, resamples=20, permutations=20)
    assert list(table.index) == ["original model", "refit, unweighted",
                                 "refit, group x class balanced", "refit, balanced + 'old' x3"]
    assert table.loc["original model", "accuracy"] == pytest.approx(np.mean(original == labels))
    assert table.loc["original model", "worst_group"] == "old"
    assert (table.iloc[1:].accuracy < 0.75).all()  # leaking people across folds would give 1.0
    assert np.isfinite(table.gap_ci_high).all()


def test_folder_mitigation_needs_faces_and_clusters():
    inputs = _inputs()
    with pytest.raises(ValueError, match="faces and clusters"):
        ba.mitigate_folder_attribute(inputs, _ByGrey(), "g")


# --- the shared audit (CLI `report` and notebook 06) -------------------------------------------

def _inputs(clusters: bool = False) -> ba.AuditInputs:
    """Two attributes over 600 images; 'ours' is worse for group b, 'other' is perfect."""
    labels, predicted, groups = _predictions({"a": 0.85, "b": 0.55})
    sensitive = pd.DataFrame({"g": groups, "h": np.tile(["x", "y"], len(groups) // 2)})
    people = np.repeat([f"p{i}" for i in range(12)], 50) if clusters else None
    return ba.AuditInputs(labels, {"ours": predicted, "other": labels.copy()}, sensitive,
                          FER2013_CLASSES, people)


def test_audit_tables_by_attribute_intersection_and_gaps():
    inputs = _inputs()
    tables = ba.audit_tables(inputs, resamples=30, permutations=30, seed=1)
    assert list(tables) == ["by g", "by h", "by g & h", "gaps"]
    assert list(tables["by g"].columns) == [(m, c) for m in ("ours", "other")
                                            for c in ("n", "accuracy", "macro_f1")]
    assert tables["by g"].loc["a", ("ours", "accuracy")] == pytest.approx(
        (inputs.labels == inputs.predicted["ours"])[:300].mean())
    assert len(tables["by g & h"]) == 4
    expected = ba.audit_models(inputs.predicted, inputs.labels, inputs.sensitive, resamples=30,
                               permutations=30, seed=1)
    pd.testing.assert_frame_equal(tables["gaps"], expected)
    without = ba.audit_tables(inputs, resamples=10, permutations=10, intersections=False)
    assert list(without) == ["by g", "by h", "gaps"]
    assert "g & h" not in without["gaps"].index.get_level_values("attribute")
    four = ba.AuditInputs(inputs.labels, inputs.predicted,
                          inputs.sensitive.assign(i=inputs.sensitive.h, j=inputs.sensitive.g),
                          FER2013_CLASSES)
    assert "by g & h & i & j" not in ba.audit_tables(four, resamples=5, permutations=5)


def test_audit_tables_resample_clusters_when_given():
    gaps = ba.audit_tables(_inputs(clusters=True), resamples=10, permutations=10)["gaps"]
    assert set(gaps.loc["g"].unit) == {"cluster"}  # each person lies in one g group
    assert set(gaps.loc["h"].unit) == {"image"}  # people span both h groups


def test_recall_by_group_and_clusters_per_group():
    inputs = _inputs(clusters=True)
    recall = ba.recall_by_group(inputs, "other")
    assert list(recall) == ["g", "h"]
    assert {"n", "accuracy", "macro_f1", "recall_happy"} <= set(recall["g"].columns)
    assert (recall["g"].filter(like="recall_") == 1.0).all().all()  # the perfect model
    people = ba.clusters_per_group(inputs)
    assert people.index.names == ["g", "h"]
    assert people.loc[("a", "x")] == 6 and people.sum() == 24  # every person in both h groups
    with pytest.raises(ValueError, match="no clusters"):
        ba.clusters_per_group(_inputs())


def test_attribute_to_mitigate_picks_the_models_largest_significant_gap():
    index = pd.MultiIndex.from_tuples([("brightness", "accuracy", "ours"),
                                       ("contrast", "accuracy", "ours"),
                                       ("sharpness", "accuracy", "fer")],
                                      names=["attribute", "metric", "model"])
    significant = pd.DataFrame({"difference": [0.05, 0.09, 0.3]}, index=index)
    assert ba.attribute_to_mitigate(significant, "ours") == "contrast"
    assert ba.attribute_to_mitigate(significant, "fer") == "sharpness"
    assert ba.attribute_to_mitigate(significant, "other") is None
    assert ba.attribute_to_mitigate(significant.iloc[:0], "ours") is None


def test_demographic_profile_tables():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({column: rng.choice(["p", "q", "r"], 90)
                          for column in ("race", "gender", "age", "label")})
    profile = ba.demographic_profile(table)
    assert list(profile) == ["predicted race", "predicted gender", "predicted age",
                             "label association (Cramér's V)",
                             "label shares within each predicted gender"]
    assert profile["predicted gender"].loc["p", ("count", "all")] == (table.gender == "p").sum()
    assert profile["label association (Cramér's V)"].attribute.tolist() == list(
        ba.DEMOGRAPHIC_COLUMNS)
    shares = profile["label shares within each predicted gender"]
    assert shares.sum(1).to_numpy() == pytest.approx(np.ones(3))


class _ByGrey:
    """Predicts class (mean grey // 30) % 7: right on the synthetic folder below."""

    name = "grey"
    classes = FER2013_CLASSES

    def predict(self, faces):
        return np.eye(7)[(faces.reshape(len(faces), -1).mean(1) // 30).astype(int) % 7]


def _folder(path):
    import cv2

    rows = [("happy", "F", "p1"), ("happy", "M", "p2"), ("sad", "F", "p1"), ("sad", "M", "p3"),
            ("angry", "M", "p2"), ("contempt", "F", "p3")]
    lines = ["path,label,gender,person"]
    for i, (label, gender, person) in enumerate(rows):
        value = 30 * FER2013_CLASSES.index(label) if label in FER2013_CLASSES else 0
        (path / f"{i}.png").parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path / f"{i}.png"), np.full((48, 48), value, np.uint8))
        lines.append(f"{i}.png,{label},{gender},{person}")
    (path / "labels.csv").write_text("\n".join(lines) + "\n")
    return path


def test_folder_inputs_score_known_labels_with_attributes_and_clusters(tmp_path):
    inputs = ba.folder_inputs(_folder(tmp_path / "set"), [_ByGrey()], cluster="person")
    assert len(inputs.labels) == 5  # contempt is not one of the model's classes
    assert list(inputs.sensitive.columns) == ["gender"]  # default: all but the cluster column
    assert (inputs.predicted["grey"] == inputs.labels).all()
    assert inputs.clusters.tolist() == ["p1", "p2", "p1", "p3", "p2"]
    assert inputs.classes == FER2013_CLASSES and "person" in inputs.table.columns
    assert inputs.faces.shape == (5, 48, 48)  # the scored rows' crops, in the labels' order
    assert (_ByGrey().predict(inputs.faces).argmax(1) == inputs.labels).all()
    with pytest.raises(ValueError, match="no column.*age"):
        ba.folder_inputs(tmp_path / "set", [_ByGrey()], ["age"])


def test_report_is_audit_tables_of_the_named_models(tmp_path, monkeypatch):
    from face_sentiment.evaluation import predictors

    monkeypatch.setattr(predictors, "load_predictors", lambda names: [_ByGrey()])
    tables = ba.report(str(_folder(tmp_path / "set")), ["grey"], cluster="person",
                       resamples=5, permutations=5)
    assert list(tables) == ["by gender", "gaps"]
    assert tables["by gender"][("grey", "accuracy")].tolist() == [1.0, 1.0]


def test_fer2013_inputs_by_image_condition(fer2013_csv):
    from face_sentiment.data.cache import load_dataset

    dataset = load_dataset(fer2013_csv)
    every = ba.fer2013_inputs([_ByGrey()], dataset)
    images, labels = dataset.select("PrivateTest")
    assert every.labels.tolist() == labels.tolist()
    assert every.predicted["grey"].tolist() == _ByGrey().predict(images).argmax(1).tolist()
    assert list(every.sensitive.columns) == ["brightness", "contrast", "sharpness"]
    assert every.clusters is None
    subset = ba.fer2013_inputs([_ByGrey()], dataset, images=2, seed=0)
    assert len(subset.labels) == len(subset.sensitive) == 2


# --- tables and findings for a reader (notebook 06) ------------------------------------------

def _tradeoff():
    return pd.DataFrame({
        "accuracy": [0.675, 0.646, 0.641], "macro_f1": [0.659, 0.636, 0.635],
        "worst_group": ["low"] * 3, "worst_group_accuracy": [0.647, 0.600, 0.593],
        "best_group": ["high"] * 3, "best_group_accuracy": [0.697, 0.681, 0.677],
        "gap": [0.050, 0.082, 0.084], "gap_ci_low": [0.019, 0.046, 0.051],
        "gap_ci_high": [0.089, 0.121, 0.122], "gap_p": [0.029, 0.001, 0.001]},
        index=pd.Index(["original model", "refit, unweighted", "refit, balanced"],
                       name="variant"))


def test_mitigation_effects_in_points_and_the_tradeoff_report():
    effects = ba.mitigation_effects(_tradeoff())
    assert effects.index.tolist() == ["refit, unweighted", "refit, balanced"]
    assert effects.accuracy_change.tolist() == pytest.approx([-2.9, -3.4])
    assert effects.gap_change.tolist() == pytest.approx([3.2, 3.4])
    assert effects.costs_accuracy.all()
    report = ba.tradeoff_report(_tradeoff())
    assert report.loc["original model", "accuracy (%)"] == pytest.approx(67.5)
    assert report.loc["original model", "worst group"] == "low (64.7%)"
    assert report.loc["original model", "gap_points_ci_high"] == pytest.approx(8.9)


def test_gap_report_largest_gaps_and_percent_tables():
    labels, predicted, groups = _predictions({"a": 0.8, "b": 0.6})
    gaps = ba.audit_models({"m": predicted, "n": labels}, labels,
                           pd.DataFrame({"g": groups}), resamples=50, permutations=50)
    report = ba.gap_report(gaps)
    row = report.loc[("g", "accuracy", "m")]
    assert row.worst.startswith("b (") and row.best.startswith("a (")
    assert row.gap_points == pytest.approx(100 * gaps.loc[("g", "accuracy", "m"), "difference"])
    assert " / " in row["p (raw / Holm)"]
    largest = ba.largest_gaps(gaps)
    assert largest.loc["m", "attribute"] == "g" and largest.loc["n", "difference"] == 0
    by_group = ba.by_group_models({"m": predicted}, labels, pd.DataFrame({"g": groups}),
                                  FER2013_CLASSES)
    percent = ba.percent_table(by_group)
    assert ("m", "accuracy (%)") in percent.columns and ("m", "n") in percent.columns
    assert percent[("m", "accuracy (%)")].tolist() == pytest.approx(
        (100 * by_group[("m", "accuracy")]).tolist())


def test_demographic_report_writes_shares_in_percent_and_p_values_out():
    table = pd.DataFrame({"race": ["a", "b"] * 50, "gender": ["f", "m"] * 50,
                          "age": ["1", "2", "2", "1"] * 25, "label": ["x", "y"] * 50,
                          "partition": ["train"] * 80 + ["val"] * 20})
    tables = ba.demographic_report(table)
    assert tables["predicted race"][("share (%)", "total")].tolist() == [50.0, 50.0]
    association = tables["label association (Cramér's V)"]
    assert association.index.name == "attribute"
    assert all(isinstance(p, str) for p in association["p"])
    assert "label shares within each predicted gender (%)" in tables


def test_every_name_is_still_imported_from_bias_audit_and_the_statistics_are_the_stats_modules():
    """The audit is split by concern (groups, gaps, inputs, demographics, mitigation,
    presentation); notebooks and the CLI still import every name from bias_audit, and the
    metric and resampling are face_sentiment.stats' own."""
    from face_sentiment import responsible, stats
    from face_sentiment.responsible import gaps, groups, mitigation

    assert [name for name in ba.__all__ if not hasattr(ba, name)] == []
    assert ba.macro_f1 is groups.macro_f1 is mitigation.macro_f1 is stats.macro_f1
    assert gaps.resample is stats.resample and gaps.cluster_units is stats.cluster_units
    assert responsible.audit is ba.audit and responsible.report is ba.report
