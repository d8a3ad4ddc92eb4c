"""Notebook reports: profile parameters, papermill injection, HTML/PDF rendering, failures, index.

A throw-away project holds a tiny parameterised notebook, a notebook that raises, and a `ci`
profile. Kernels are slow to start, so few notebooks are executed: the good one once
(module-scoped, rendered to HTML and, where Chromium exists, PDF), the failing one once, and
one whose kernel dies.
"""

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from face_sentiment.reports import (
    ReportError,
    build_report,
    git_commit,
    notebook_parameters,
    notebook_paths,
    prepare_notebooks,
    write_index,
)

HAS_CHROMIUM = any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))
HAS_PRINT_CHECK = (shutil.which("node") is not None and HAS_CHROMIUM
                   and (Path(__file__).resolve().parents[1] / "pi" / "web" / "node_modules"
                        / "playwright-core").is_dir())
FAILING_SOURCE = 'raise ValueError("boom 4242")'


def write_notebook(path, cells):
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def report_project(tmp_path_factory):
    """notebooks/01-a.ipynb (parameters cell, prints n), notebooks/02-broken.ipynb (raises),
    and profiles/ci.yaml giving 01-a n = 3."""
    root = tmp_path_factory.mktemp("report-project")
    (root / "notebooks").mkdir()
    (root / "profiles").mkdir()
    write_notebook(root / "notebooks" / "01-a.ipynb", [
        new_markdown_cell("# A tiny report"),
        new_code_cell('profile = "full"\nn = 1', metadata={"tags": ["parameters"]}),
        new_code_cell("print(f'n is {n * 100 + 3 * 10 + 3}, profile is {profile}')"),
    ])
    write_notebook(root / "notebooks" / "02-broken.ipynb", [
        new_code_cell("x = 1"),
        new_code_cell(FAILING_SOURCE),
        new_code_cell("print('never reached')"),
    ])
    (root / "profiles" / "ci.yaml").write_text("notebooks:\n  01-a: {n: 3}\n")
    return root


@pytest.fixture
def in_report_project(report_project, project_root, monkeypatch):
    """Point FACE_SENTIMENT_ROOT at the report project (after conftest's own temp root)."""
    monkeypatch.setenv("FACE_SENTIMENT_ROOT", str(report_project))
    return report_project


@pytest.fixture(scope="module")
def built(report_project):
    """The one successful execution: 01-a under the ci profile, into reports/."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACE_SENTIMENT_ROOT", str(report_project))
        out_dir = report_project / "reports"
        files = build_report(report_project / "notebooks" / "01-a.ipynb", "ci", out_dir,
                             pdf=HAS_CHROMIUM)
    return out_dir, files


def test_notebook_paths_are_the_numbered_notebooks_in_order(in_report_project):
    (in_report_project / "notebooks" / "scratch.ipynb").write_text("{}")
    try:
        assert [p.name for p in notebook_paths()] == ["01-a.ipynb", "02-broken.ipynb"]
    finally:
        (in_report_project / "notebooks" / "scratch.ipynb").unlink()


def test_notebook_parameters_merge_profile_and_section(in_report_project):
    notebooks = in_report_project / "notebooks"
    assert notebook_parameters(notebooks / "01-a.ipynb", "ci") == {"profile": "ci", "n": 3}
    # A notebook without a section still learns the profile name.
    assert notebook_parameters(notebooks / "02-broken.ipynb", "ci") == {"profile": "ci"}
    with pytest.raises(FileNotFoundError, match="available: \\['ci'\\]"):
        notebook_parameters(notebooks / "01-a.ipynb", "full")
    # A profile with an empty `notebooks:` section (YAML null) gives just the profile name.
    (in_report_project / "profiles" / "bare.yaml").write_text("training: {}\nnotebooks:\n")
    assert notebook_parameters(notebooks / "01-a.ipynb", "bare") == {"profile": "bare"}


def test_prepare_notebooks_injects_without_executing(in_report_project, tmp_path):
    out_dir = tmp_path / "nbval"
    prepared = prepare_notebooks("ci", out_dir)
    assert prepared == [out_dir / "01-a.ipynb", out_dir / "02-broken.ipynb"]
    notebook = nbformat.read(prepared[0], as_version=4)
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "n = 3" in injected[0].source and 'profile = "ci"' in injected[0].source
    # It follows the notebook's own parameters cell, which it overrides.
    sources = [c.source for c in notebook.cells]
    assert sources.index(injected[0].source) == sources.index('profile = "full"\nn = 1') + 1
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    # The source notebooks are untouched.
    original = nbformat.read(in_report_project / "notebooks" / "01-a.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in original.cells)


@pytest.mark.slow  # `built`: a kernel runs the notebook, then HTML and PDF are made
def test_build_report_writes_executed_notebook_and_html(built):
    out_dir, files = built
    assert files[:2] == [out_dir / "01-a.ipynb", out_dir / "01-a.html"]
    assert all(path.exists() and path.stat().st_size > 0 for path in files)
    executed = nbformat.read(files[0], as_version=4)
    printed = "".join(output.get("text", "") for cell in executed.cells
                      if cell.cell_type == "code" for output in cell.outputs)
    # n * 100 + 33 is 333 only if papermill injected n = 3 (the notebook's default gives 133).
    assert "n is 333, profile is ci" in printed
    assert "n is 333" in files[1].read_text(encoding="utf-8")
    # Staging files are gone: nothing hidden or .tmp is left in the output folder.
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


@pytest.mark.slow
@pytest.mark.skipif(not HAS_CHROMIUM, reason="headless Chromium is not installed")
def test_build_report_prints_a_pdf(built):
    out_dir, files = built
    assert len(files) == 3 and files[2] == out_dir / "01-a.pdf"
    data = files[2].read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 1000


@pytest.mark.slow  # a kernel runs the notebook
def test_failing_notebook_raises_with_the_cell_and_keeps_the_failed_copy(
        in_report_project, tmp_path):
    out_dir = tmp_path / "reports"
    with pytest.raises(ReportError) as error:
        build_report(in_report_project / "notebooks" / "02-broken.ipynb", "ci", out_dir,
                     pdf=False)
    message = str(error.value)
    assert "02-broken.ipynb" in message
    assert FAILING_SOURCE in message
    assert "ValueError: boom 4242" in message
    failed = out_dir / "02-broken.failed.ipynb"
    assert str(failed) in message
    assert sorted(p.name for p in out_dir.iterdir()) == ["02-broken.failed.ipynb"]
    executed = nbformat.read(failed, as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"


@pytest.mark.slow  # a kernel starts and dies
def test_dead_kernel_is_a_report_error_too(in_report_project, tmp_path):
    dead = write_notebook(tmp_path / "03-dead.ipynb", [new_code_cell("import os\nos._exit(1)")])
    out_dir = tmp_path / "reports"
    with pytest.raises(ReportError, match="03-dead.ipynb"):
        build_report(dead, "ci", out_dir, pdf=False)
    assert sorted(p.name for p in out_dir.iterdir()) == ["03-dead.failed.ipynb"]


@pytest.mark.slow  # `built`
def test_write_index_lists_rendered_notebooks_with_commit_and_data_hash(
        built, in_report_project):
    out_dir, _ = built
    index = write_index("ci", "feedc0ffee1234", out_dir)
    assert index == out_dir / "index.html"
    page = index.read_text(encoding="utf-8")
    assert '<td><b>A tiny report</b><br></td><td><a href="01-a.html">HTML</a></td>' in page
    assert '<a href="01-a.ipynb">notebook</a>' in page
    # the print and machine-output checks found nothing
    assert ("<td>clean</td>" if HAS_PRINT_CHECK else "print layout not checked") in page
    assert ('<a href="01-a.pdf">PDF</a>' if HAS_CHROMIUM else "(no PDF)") in page
    assert "02-broken" not in page  # never rendered
    assert "feedc0ffee1234" in page
    assert f"<code>{git_commit()}</code>" in page
    assert "make reports PROFILE=ci" in page
    meta = json.loads((out_dir / "index.json").read_text())
    assert meta["commit"] == git_commit()
    assert (meta["profile"], meta["data_sha256"]) == ("ci", "feedc0ffee1234")
    assert not list(out_dir.glob("*.tmp"))


def test_git_commit_marks_uncommitted_changes(project_root):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=project_root, check=True, capture_output=True)

    git("init", "-q")
    (project_root / "notes.txt").write_text("one\n")
    git("add", "notes.txt")
    git("commit", "-q", "-m", "one")
    clean = git_commit()
    assert len(clean) >= 7 and not clean.endswith("-dirty")
    (project_root / "untracked.txt").write_text("ignored: not part of the code\n")
    assert git_commit() == clean
    (project_root / "notes.txt").write_text("two\n")
    assert git_commit() == f"{clean}-dirty"


def test_git_commit_comes_from_the_environment_in_a_container(monkeypatch):
    monkeypatch.setenv("FACE_SENTIMENT_COMMIT", "abc1234-dirty")
    assert git_commit() == "abc1234-dirty"


def test_git_commit_outside_a_checkout_is_unknown(project_root):
    assert git_commit() == "unknown"


# ------------------------------------------------------------------------------------------
# What a reader gets: reader_copy, the HTML, the print-layout and machine-output checks



def _reader_notebook(root: Path) -> nbformat.NotebookNode:
    stream = {"output_type": "stream", "name": "stdout",
              "text": f"WARNING:tensorflow:retracing\nsaved {root}/reports/x.csv\n"}
    stderr = {"output_type": "stream", "name": "stderr", "text": "INFO: XNNPACK\n"}
    data = {"output_type": "execute_result", "execution_count": 3, "metadata": {},
            "data": {"text/plain": "read /data/fer2013.csv.gz"}}
    return new_notebook(cells=[
        new_markdown_cell("# 07 · A report\n\nWhat it shows."),
        new_code_cell("profile = 'full'", metadata={"tags": ["parameters"]}),
        new_code_cell("profile = 'ci'", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("work()", outputs=[nbformat.from_dict(stream), nbformat.from_dict(stderr),
                                         nbformat.from_dict(data)]),
        new_code_cell("findings()", metadata={"tags": ["summary"]}, outputs=[nbformat.from_dict(
            {"output_type": "display_data", "metadata": {},
             "data": {"text/markdown": "Accuracy is 67.5%."}})]),
    ])


def test_reader_copy_keeps_what_a_reader_needs(project_root, monkeypatch):
    from face_sentiment.reports import machine_output, notebook_title, reader_copy

    monkeypatch.setenv("FER2013_PATH", "/data/fer2013.csv.gz")
    original = _reader_notebook(project_root)
    reader = reader_copy(original)
    assert notebook_title(reader) == "07 · A report"
    tags = [c.metadata.get("tags", []) for c in reader.cells]
    assert ["parameters"] not in tags and ["injected-parameters"] not in tags
    # the summary is shown under the title and stays at the end
    assert [c.source for c in reader.cells].count("findings()") == 2
    assert reader.cells[2].source == "findings()"
    work = reader.cells[-2]
    assert [o.output_type for o in work.outputs] == ["stream", "execute_result"]
    assert work.outputs[0].text == "saved reports/x.csv\n"
    assert work.outputs[1].data["text/plain"] == "read $FER2013_PATH"
    assert machine_output(reader) == []
    assert len(machine_output(original)) >= 2  # the log line and the project path
    assert len(original.cells[3].outputs) == 3  # the executed notebook keeps everything


def test_html_is_self_contained_and_titled(project_root, tmp_path):
    from face_sentiment.reports import to_html

    executed = tmp_path / "07-a.ipynb"
    nbformat.write(_reader_notebook(project_root), executed)
    page = to_html(executed).read_text(encoding="utf-8")
    assert "<title>07 · A report</title>" in page
    assert 'src="http' not in page and 'import("http' not in page
    assert "show code" in page and "Accuracy is 67.5%." in page
    assert ".jp-CodeCell .jp-Cell-inputWrapper" in page  # code hidden, prose kept


def test_the_headline_is_the_summarys_first_sentence(project_root, tmp_path):
    from face_sentiment.reports import headline

    executed = tmp_path / "07-a.ipynb"
    notebook = _reader_notebook(project_root)
    notebook.cells[-1].outputs[0].data["text/markdown"] = (
        "### Findings\n\n**Accuracy is 67.5%** (66.0-69.0). Below fer on Taiwan.")
    nbformat.write(notebook, executed)
    assert headline(executed) == "Accuracy is 67.5% (66.0-69.0)."
    assert headline(tmp_path / "absent.ipynb") == ""


def test_report_tables_are_designed_for_print():
    import pandas as pd

    from face_sentiment.notebook import format_number, merge_intervals, report_table

    assert [format_number(v) for v in (3589.0, 0.66312, 127.169998, 12345.6, float("nan"))] \
        == ["3589", "0.663", "127", "12,346", "-"]
    frame = pd.DataFrame({"n": [3589.0], "accuracy": [0.6331], "accuracy_ci_low": [0.61],
                          "accuracy_ci_high": [0.65]})
    assert merge_intervals(frame).to_dict("records") == [
        {"n": 3589.0, "accuracy": "0.633 (0.61-0.65)"}]
    wide = pd.DataFrame([range(16)], columns=[f"column_{i}" for i in range(16)])
    assert report_table(wide).count("<table") == 3  # 7 + 7 + 2 columns


@pytest.mark.skipif(not HAS_PRINT_CHECK, reason="needs node, playwright-core (make web-deps) "
                                                "and Chromium")
def test_print_layout_check_finds_cut_tables(tmp_path):
    import pandas as pd

    from face_sentiment.notebook import report_table
    from face_sentiment.reports import READER_STYLE, print_layout_problems

    wide = pd.DataFrame([[0.123456] * 18], columns=[f"balanced_accuracy_{i}" for i in range(18)])
    raw, designed = tmp_path / "raw.html", tmp_path / "designed.html"
    for path, table in ((raw, wide.to_html()), (designed, report_table(wide))):
        path.write_text(f"<html><head>{READER_STYLE}</head><body>"
                        f'<div class="jp-RenderedHTMLCommon">{table}</div></body></html>')
    hidden = tmp_path / "hidden.html"
    hidden.write_text('<html><body><div class="jp-MarkdownCell" style="display:none">'
                      "<h1>Findings</h1></div></body></html>")
    found = print_layout_problems([raw, designed, hidden])
    assert found[str(raw)] and "table" in found[str(raw)][0]
    assert found[str(designed)] == []
    assert found[str(hidden)] == ["markdown cell not shown: Findings"]
