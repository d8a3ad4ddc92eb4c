"""Cross-dataset evaluation: reading labelled folders (zip or directory), class bookkeeping,
per-sequence aggregation and subject-clustered intervals, on tiny synthetic folders and a stub
predictor; one test runs the shipped model on real CK+ when CKPLUS_PATH is set."""

import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import CKPLUS, REAL_MODELS

from face_sentiment.data import folder_dataset as fd
from face_sentiment.evaluation import cross_dataset as cd
from face_sentiment.evaluation import plots
from face_sentiment.labels import FER2013_CLASSES


class StubPredictor:
    """Predicts a fixed class per image from its mean grey level: (mean // 30) % 7."""

    name = "stub"
    classes = FER2013_CLASSES

    def predict(self, faces):
        chosen = (faces.reshape(len(faces), -1).mean(1) // 30).astype(int) % 7
        return np.eye(7)[chosen] * 0.9 + 0.1 / 7


def _png(value: int, size: int = 48) -> bytes:
    return cv2.imencode(".png", np.full((size, size), value, np.uint8))[1].tobytes()


def _write(folder: Path, rows: list[tuple], header: str = "path,label,subject,sequence",
           form: str = "dir", images: dict | None = None) -> Path:
    images = images or {}
    entries = {"labels.csv": (header + "\n" + "\n".join(",".join(map(str, r)) for r in rows)
                              + "\n").encode()}
    for row in rows:
        entries.setdefault(row[0], images.get(row[0], _png(30 * FER2013_CLASSES.index(row[1])
                                                            if row[1] in FER2013_CLASSES else 0)))
    if form == "zip":
        path = folder / "set.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in entries.items():
                archive.writestr(f"set/{name}", data)
        return path
    path = folder / "set"
    for name, data in entries.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    return path


ROWS = [("happy/a_1_1.png", "happy", "S1", 1), ("happy/a_1_2.png", "happy", "S1", 1),
        ("sad/b_1_1.png", "sad", "S2", 1), ("contempt/c_1_1.png", "contempt", "S2", 2),
        ("angry/d_1_1.png", "Angry", "S3", 1)]


@pytest.mark.parametrize("form", ["dir", "zip"])
def test_reads_a_folder_with_attributes(tmp_path, form):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS, form=form))
    assert len(data.images) == 5 and data.are_crops
    assert data.attributes == ["subject", "sequence"]
    assert set(data.classes) == {"happy", "sad", "contempt", "angry"}  # labels lower-cased


def test_missing_column_is_named(tmp_path):
    path = _write(tmp_path, [("happy/x.png", "S1")], header="path,subject")
    with pytest.raises(fd.DatasetError, match="missing column.*label"):
        fd.load_folder_dataset(path)


def test_missing_image_names_file_and_row(tmp_path):
    path = _write(tmp_path, ROWS)
    (path / "sad/b_1_1.png").unlink()
    with pytest.raises(fd.DatasetError, match=r"labels.csv row 4: image 'sad/b_1_1.png'"):
        fd.load_folder_dataset(path)


def test_empty_label_and_unreadable_image_name_the_row(tmp_path):
    path = _write(tmp_path, [("happy/x.png", "", "S1", 1)])
    with pytest.raises(fd.DatasetError, match="row 2: empty 'label'"):
        fd.load_folder_dataset(path)
    path = _write(tmp_path / "b", [("happy/x.png", "happy", "S1", 1)],
                  images={"happy/x.png": b"not an image"})
    with pytest.raises(fd.DatasetError, match="row 2: 'happy/x.png' is not a readable image"):
        fd.load_folder_dataset(path)


def test_extra_classes_excluded_absent_classes_left_out_of_macro_f1(tmp_path):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS))
    result = cd.score(StubPredictor(), data)
    assert result.excluded == {"contempt": 1}
    assert len(result.labels) == 4
    names = [FER2013_CLASSES[i] for i in result.present]
    assert names == ["angry", "happy", "sad"]
    values = cd.metrics(result)
    assert values["accuracy"] == 1.0 and values["macro_f1"] == 1.0  # stub is right on these
    assert list(cd.confusion(result).index) == names
    assert list(cd.confusion(result).columns) == list(FER2013_CLASSES)
    assert list(cd.per_class(result).index) == names


def test_restricted_protocol_only_picks_present_classes(tmp_path):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS))
    result = cd.score(StubPredictor(), data)
    result.probabilities[:] = 0.01
    result.probabilities[:, FER2013_CLASSES.index("neutral")] = 0.9  # absent from the set
    result.probabilities[:, FER2013_CLASSES.index("sad")] = 0.5
    assert (result.predicted == FER2013_CLASSES.index("neutral")).all()
    assert (result.restricted().predicted == FER2013_CLASSES.index("sad")).all()


def test_aggregate_per_sequence_averages_frames(tmp_path):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS))
    result = cd.aggregate(cd.score(StubPredictor(), data), ["subject", "sequence"])
    assert len(result.labels) == 3  # S1/1 (two frames), S2/1, S3/1
    assert result.probabilities.sum(1) == pytest.approx(np.ones(3))


def test_metrics_interval_resamples_subjects_when_clustered(tmp_path):
    """The interval is stats.accuracy_interval's, over images or over `cluster` values."""
    from face_sentiment.stats import accuracy_interval

    result = cd.score(StubPredictor(), fd.load_folder_dataset(_write(tmp_path, ROWS)))
    result.probabilities[0] = np.eye(7)[FER2013_CLASSES.index("neutral")]  # one S1 frame wrong
    correct, subjects = result.correct, result.table["subject"].to_numpy()
    clustered = cd.metrics(result, "subject", resamples=300, seed=2)
    assert (clustered["accuracy"], clustered["accuracy_ci_low"], clustered["accuracy_ci_high"]) \
        == accuracy_interval(correct, 300, seed=2, clusters=subjects)
    plain = cd.metrics(result, resamples=300, seed=2)
    assert (plain["accuracy"], plain["accuracy_ci_low"], plain["accuracy_ci_high"]) == \
        accuracy_interval(correct, 300, seed=2)
    table, _ = cd.evaluate([StubPredictor()], fd.load_folder_dataset(_write(tmp_path / "b", ROWS)),
                           cluster="subject", resamples=300, seed=2)
    assert list(table["restricted"]) == [False, True]


def test_accuracy_by_subject_and_its_histogram(tmp_path):
    import matplotlib.pyplot as plt

    result = cd.score(StubPredictor(), fd.load_folder_dataset(_write(tmp_path, ROWS)))
    result.probabilities[0] = np.eye(7)[FER2013_CLASSES.index("neutral")]  # S1: one of two
    by_subject = cd.accuracy_by(result, "subject")
    assert by_subject.to_dict() == {"S1": 0.5, "S2": 1.0, "S3": 1.0}
    figure = plots.plot_accuracy_by({"stub": result, "again": result}, "subject")
    assert figure.axes[0].get_ylabel() == "subjects"
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["stub", "again"]
    plt.close("all")


def test_plot_confusions_draws_one_shared_matrix_per_model(tmp_path):
    """Rows: the dataset's classes (with their image counts); columns: all model classes."""
    import matplotlib.pyplot as plt

    result = cd.score(StubPredictor(), fd.load_folder_dataset(_write(tmp_path, ROWS)))
    figure = plots.plot_confusions({"stub": result, "again": result})
    matrices = [ax for ax in figure.axes if ax.get_title()]
    assert len(matrices) == 2
    ax = matrices[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["angry (1)", "happy (2)", "sad (1)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(FER2013_CLASSES)
    cells = np.array([float(t.get_text()) for t in ax.texts]).reshape(3, 7)
    assert cells == pytest.approx(cd.confusion(result).to_numpy(), abs=0.005)
    plt.close("all")


def test_load_available_loads_present_sets_and_says_why_others_are_skipped(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setenv("CKPLUS_PATH", str(_write(tmp_path, ROWS)))
    monkeypatch.setenv("TAIWAN_FACES_PATH", str(tmp_path / "nowhere"))
    monkeypatch.setenv("LFW_EXPRESSIONS_PATH", str(tmp_path / "nowhere"))
    loaded, lines = cd.load_available()
    assert list(loaded) == ["ckplus"] and len(loaded["ckplus"].table) == 5
    assert lines[0].startswith("ckplus: 5 images from ")
    assert lines[1].startswith("skipped: ") and "LFW_EXPRESSIONS_PATH" in lines[1]
    assert lines[2].startswith("skipped: ") and "TAIWAN_FACES_PATH" in lines[2]


def test_photos_go_through_detection(tmp_path, monkeypatch):
    """Large images are photographs: each is detected and aligned (one face module), and a
    photograph with no face found gets none (only crops are taken whole)."""
    from face_sentiment.live import faces as faces_module

    big = cv2.imencode(".png", np.full((300, 400, 3), 120, np.uint8))[1].tobytes()
    rows = [("happy/p.png", "happy", "S1", 1), ("sad/q.png", "sad", "S1", 2)]
    data = fd.load_folder_dataset(_write(tmp_path, rows, images={"happy/p.png": big,
                                                                 "sad/q.png": big}))
    assert not data.are_crops
    found = faces_module.Face((50, 50, 150, 150), 0.9, detector="haar")

    class ScriptedDetector:
        name = "scripted"
        calls = iter([[found], []])

        def detect(self, image):
            return next(self.calls)

    monkeypatch.setattr(faces_module, "create_detector", lambda name: ScriptedDetector())
    crops = cd.dataset_faces(data)
    assert crops.found.tolist() == [True, False] and crops.faces.shape == (1, 48, 48)
    assert crops.sources.tolist() == ["detector", ""]
    result = cd.score(StubPredictor(), data, crops)
    assert result.no_face == 1 and len(result.labels) == 1


def test_locate_names_the_variable_and_the_source(monkeypatch):
    monkeypatch.delenv("CKPLUS_PATH", raising=False)
    with pytest.raises(FileNotFoundError, match="CKPLUS_PATH.*jeffcohn.net"):
        fd.locate("ckplus")
    monkeypatch.setenv("CKPLUS_PATH", "/nonexistent/ck.zip")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fd.locate("ckplus")


def test_locate_finds_data_raw(project_root, monkeypatch):
    monkeypatch.delenv("TAIWAN_FACES_PATH", raising=False)  # .ci/run sets it
    target = project_root / "data" / "raw" / "taiwan_faces"
    target.mkdir()
    assert fd.locate("taiwan") == target


@pytest.mark.real_data
@pytest.mark.tensorflow
@pytest.mark.skipif(not CKPLUS or not (REAL_MODELS / "face_sentiment.keras").exists(),
                    reason="needs CKPLUS_PATH (CK+ 48x48 crops) and models/face_sentiment.keras")
def test_shipped_model_beats_chance_on_ckplus():
    from face_sentiment.evaluation.predictors import load_predictor

    data = fd.load_folder_dataset(CKPLUS, "ckplus")
    result = cd.score(load_predictor(str(REAL_MODELS / "face_sentiment.keras")), data)
    assert result.excluded == {"contempt": 54}
    # Six classes present; chance is ~1/6. Measured 0.65 (provisional model); floor 0.45.
    assert cd.metrics(result)["accuracy"] > 0.45


@pytest.mark.tensorflow
def test_release_scores_leave_out_the_people_a_run_trained_on(project_root, tmp_path,
                                                              monkeypatch):
    from face_sentiment.data.photos import person_folds
    from face_sentiment.evaluation import predictors

    monkeypatch.setattr(predictors, "load_predictor", lambda reference: StubPredictor())
    monkeypatch.setenv("CKPLUS_PATH", str(_write(tmp_path / "ck", ROWS)))
    monkeypatch.setenv("TAIWAN_FACES_PATH", str(tmp_path / "nowhere"))
    people = [(f"happy/p{i}.png", "happy", f"person{i % 6}") for i in range(18)]
    monkeypatch.setenv("LFW_EXPRESSIONS_PATH",
                       str(_write(tmp_path / "lfw", people, header="path,label,person")))
    trained = {"run_name": "tuned", "seed": 3, "photo_sets": ["lfw_expressions"],
               "photo_folds": 3, "photo_holdout_fold": 1}
    scores = cd.release_scores({"ours": "a", "theirs": "b"}, trained, resamples=50)
    assert list(scores) == ["ckplus", "lfw_expressions"]  # Taiwan absent: skipped
    assert scores["ckplus"]["rows"] == "all 5 images"
    assert scores["ckplus"]["ours"]["n"] == 3  # per sequence; contempt left out
    held_out = int((person_folds([p[2] for p in people], 3, seed=3) == 1).sum())
    assert scores["lfw_expressions"]["rows"].startswith(f"the {held_out} images of held-out")
    assert scores["lfw_expressions"]["theirs"]["n"] == held_out == 6
    assert {"balanced_accuracy", "balanced_accuracy_ci_low"} <= set(scores["ckplus"]["ours"])


def test_cross_validated_model_scores_each_person_with_the_fold_model_that_never_saw_them(
        tmp_path, monkeypatch):
    from face_sentiment.data.photos import person_folds
    from face_sentiment.evaluation import predictors

    class FoldStub(StubPredictor):
        def __init__(self, fold):
            self.fold, self.name = fold, f"fold{fold}"

        def predict(self, faces):
            return np.tile(np.eye(7)[self.fold], (len(faces), 1))  # says its own fold

    settings = {f"m{k}": {"seed": 2, "photo_sets": ["lfw_expressions"], "photo_folds": 3,
                          "photo_holdout_fold": k} for k in range(3)}
    monkeypatch.setattr(cd, "training_settings", lambda model: settings[model])
    monkeypatch.setattr(predictors, "load_predictor", lambda model: FoldStub(int(model[1])))
    people = [(f"happy/p{i}.png", "happy", f"person{i % 7}") for i in range(21)]
    dataset = fd.load_folder_dataset(_write(tmp_path, people, header="path,label,person"),
                                     "lfw_expressions")
    model = cd.CrossValidatedModel(["m0", "m1", "m2"])
    result = cd.score(model, dataset)
    expected = person_folds(result.table["person"], 3, seed=2)
    assert np.array_equal(result.probabilities.argmax(1), expected)  # each by its fold's model
    other = fd.load_folder_dataset(_write(tmp_path / "ck", ROWS), "ckplus")
    assert set(cd.score(model, other).probabilities.argmax(1)) == {0}  # unseen set: the first
    with pytest.raises(ValueError, match="one model per person fold"):
        cd.CrossValidatedModel(["m0", "m1"])


class _Named(StubPredictor):
    def __init__(self, name, wrong_class=None):
        self.name, self.wrong_class = name, wrong_class

    def predict(self, faces):
        probabilities = super().predict(faces)
        if self.wrong_class is not None:  # every face answered as this class
            probabilities = np.full_like(probabilities, 0.01)
            probabilities[:, self.wrong_class] = 0.9
        return probabilities


def test_reader_table_percent_and_restricted_rows_only_where_they_differ(tmp_path):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS))
    table, _ = cd.evaluate([StubPredictor()], data, resamples=50)
    reader = cd.reader_table(table)
    # the stub only predicts classes the set has: the restricted row equals the open one
    assert list(reader.index) == [("stub", "open")]
    assert reader.loc[("stub", "open"), "accuracy (%)"] == pytest.approx(100.0)
    assert {"accuracy (%)_ci_low", "balanced_accuracy (%)_ci_high", "macro_f1 (%)"} <= set(
        reader.columns)
    neutral = _Named("neutral", FER2013_CLASSES.index("neutral"))  # a class the set lacks
    table, _ = cd.evaluate([neutral], data, resamples=50)
    assert list(cd.reader_table(table).index) == [("neutral", "open"),
                                                  ("neutral", "restricted")]


def test_versus_gives_ours_minus_theirs_in_points_and_weaker_classes(tmp_path):
    data = fd.load_folder_dataset(_write(tmp_path, ROWS))
    happy = FER2013_CLASSES.index("happy")
    _, results = cd.evaluate([StubPredictor(), _Named("always-happy", happy)], data,
                             resamples=50)
    row = cd.versus(results, "subject", resamples=100).iloc[0]
    assert row.baseline == "always-happy" and row.n == 4
    assert row.accuracy == 1.0 and row.baseline_accuracy == 0.5  # 2 of 4 rows are happy
    assert row.difference_points == pytest.approx(50.0)
    assert row.difference_points_ci_low <= 50.0 <= row.difference_points_ci_high
    assert row.balanced_difference_points == pytest.approx(100 * (1 - 1 / 3))
    assert row.majority_class == "happy" and row.majority_share == 0.5
    assert row.chance == pytest.approx(1 / 3)
    reverse = cd.weaker_classes({"always-happy": results["always-happy"],
                                 "stub": results["stub"]})
    assert [cls for cls, _, _ in reverse["stub"]] == ["angry", "sad"]
    assert cd.weaker_classes(results)["always-happy"] == []
