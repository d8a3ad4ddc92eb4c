"""Run the numbered notebooks with papermill and render them to HTML and PDF.

`make reports` calls `build_report` once per notebook (make decides which are out of date),
then `write_index`. A notebook is executed into a temporary file and renamed into `reports/`
only when it succeeded; a failure leaves `<name>.failed.ipynb` and raises with the failing
cell. PDFs are printed by headless Chromium from the HTML (Debian's `chromium`).

The HTML is written for a reader, from a copy of the executed notebook (`reader_copy`; the
executed .ipynb keeps everything): the notebook's own title; its cells tagged `summary` (the
findings, written from computed values) also shown first, under the title; no parameters
cells; code folded away (a "show code" button in the browser, never printed); no stderr
output (library log lines and warnings); paths inside the project, and the data paths the
environment names, written relative or as the variable. It loads nothing from the network.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill
from nbconvert import HTMLExporter

from face_sentiment.paths import atomic_target, project_root, reports_dir, write_atomic
from face_sentiment.profiles import load_profile

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-pdf-header-footer",
)


class ReportError(RuntimeError):
    """A notebook failed to execute or render."""


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def notebook_paths() -> list[Path]:
    """The numbered notebooks, in order."""
    return sorted(p for p in notebooks_dir().glob("[0-9][0-9]-*.ipynb"))


def notebook_parameters(notebook: Path, profile: str) -> dict:
    """Papermill parameters for one notebook: its section of the profile, plus the profile."""
    sections = load_profile(profile).get("notebooks") or {}  # an empty `notebooks:` is None
    section = sections.get(notebook.stem) or {}
    return {"profile": profile, **section}


def prepare_notebooks(profile: str, out_dir: Path) -> list[Path]:
    """Inject a profile's parameters without executing (for nbval, which executes itself)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = []
    for notebook in notebook_paths():
        target = out_dir / notebook.name
        papermill.execute_notebook(str(notebook), str(target),
                                   notebook_parameters(notebook, profile),
                                   prepare_only=True, progress_bar=False)
        prepared.append(target)
    return prepared


def execute(notebook: Path, profile: str, out_dir: Path) -> Path:
    """Execute one notebook with papermill into out_dir; on failure keep `.failed.ipynb`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    staging = out_dir / f".{notebook.stem}.running.ipynb"
    try:
        papermill.execute_notebook(
            str(notebook), str(staging), notebook_parameters(notebook, profile),
            cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
            log_output=False,
        )
    except Exception as error:  # a cell error, or a dead kernel (nbclient.DeadKernelError)
        failed = out_dir / f"{notebook.stem}.failed.ipynb"
        if staging.exists():
            staging.replace(failed)
        if isinstance(error, papermill.PapermillExecutionError):
            detail = f"cell {error.exec_count}:\n{error.source}\n{error.ename}: {error.evalue}"
        else:
            detail = f"{type(error).__name__}: {error}"
        raise ReportError(f"{notebook.name} failed in {detail}\n(outputs so far: {failed})"
                          ) from error
    staging.replace(target)
    (out_dir / f"{notebook.stem}.failed.ipynb").unlink(missing_ok=True)  # an earlier failure
    return target


# The environment variables whose values (a user's data paths) a report shows by name.
DATA_VARIABLES = ("FER2013_PATH", "FERPLUS_PATH", "CKPLUS_PATH", "TAIWAN_FACES_PATH",
                  "LFW_EXPRESSIONS_PATH", "FAIRFACE_DEMOGRAPHICS_PATH", "FACE_VIDEO_PATH")
HIDDEN_TAGS = {"parameters", "injected-parameters"}
SUMMARY_TAG = "summary"
# Code is folded on screen (the button shows it) and never printed; tables and figures are
# sized for an A4 page.
READER_STYLE = """<style>
.jp-CodeCell .jp-Cell-inputWrapper, .jp-InputPrompt, .jp-OutputPrompt { display: none; }
body.show-code .jp-CodeCell .jp-Cell-inputWrapper { display: flex; }
#show-code { position: fixed; top: .5em; right: .5em; font: 12px sans-serif; }
.jp-RenderedHTMLCommon table { font-size: 11px; }
.jp-OutputArea-output, .jp-RenderedHTMLCommon { overflow-x: visible; }
.jp-RenderedImage img { max-width: 100%; height: auto; }
.summary-box { border-left: 4px solid #3b6ea5; background: #f3f7fb; padding: .2em 1em; }
@media print {
  #show-code, body.show-code .jp-CodeCell .jp-Cell-inputWrapper { display: none !important; }
  @page { size: A4; margin: 12mm; }
  .jp-RenderedHTMLCommon table { font-size: 10px; }
  pre { white-space: pre-wrap; word-break: break-word; }
  .jp-Cell { break-inside: avoid-page; }
  h1, h2, h3 { break-after: avoid-page; }
}
</style>"""
READER_SCRIPT = """<button id="show-code" type="button">show code</button>
<script>document.getElementById("show-code").addEventListener("click", function () {
  document.body.classList.toggle("show-code");
  this.textContent = document.body.classList.contains("show-code") ? "hide code" : "show code";
});</script>"""
# Log records that reach stdout (Python logging's default format, absl/glog's C++ prefix).
LOG_LINE = re.compile(r"^(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL):[\w.]+:|[IWEF]\d{4} \d\d:\d\d)")
# Scripts the lab template loads from a CDN (require.js, MathJax; mermaid only for diagrams).
_NETWORK_SCRIPTS = (re.compile(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>\s*'),
                    re.compile(r'<script type="module">(?:(?!</script>).)*?import\("https?://'
                               r".*?</script>\s*", re.S))


def notebook_title(notebook: nbformat.NotebookNode) -> str:
    """The first markdown heading, e.g. '06 · Bias audit'."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "Face Sentiment report"


def _path_replacements() -> list[tuple[str, str]]:
    root = str(project_root())
    pairs = [(os.environ[name], f"${name}") for name in DATA_VARIABLES
             if os.environ.get(name, "").startswith("/")]
    pairs += [(root + "/", ""), (root, ".")]
    return sorted(pairs, key=lambda pair: -len(pair[0]))  # longest first


def _relative_text(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return text


def reader_copy(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as a reader gets it (see the module docstring)."""
    notebook = copy.deepcopy(notebook)
    replacements = _path_replacements()
    cells = []
    for cell in notebook.cells:
        if HIDDEN_TAGS & set(cell.metadata.get("tags", [])):
            continue
        if cell.cell_type == "code":
            cell.outputs = [out for out in cell.outputs
                            if not (out.output_type == "stream" and out.get("name") == "stderr")]
            for out in cell.outputs:
                if out.output_type == "stream":  # (emptied streams are dropped below)
                    kept = [line for line in out.text.splitlines(keepends=True)
                            if not LOG_LINE.match(line)]
                    out.text = _relative_text("".join(kept), replacements)
                for kind in ("text/plain", "text/html", "text/markdown"):
                    if kind in out.get("data", {}):
                        out.data[kind] = _relative_text(out.data[kind], replacements)
            cell.outputs = [out for out in cell.outputs
                            if out.output_type != "stream" or out.text.strip()]
        cells.append(cell)
    summary = [copy.deepcopy(cell) for cell in cells
               if SUMMARY_TAG in cell.metadata.get("tags", [])]
    for number, cell in enumerate(summary):  # a copy needs its own id (nbformat 4.5)
        if "id" in cell:
            cell["id"] = f"summary-copy-{number}"
    if summary and cells and cells[0].cell_type == "markdown":
        heading = nbformat.v4.new_markdown_cell("## Summary\n\n(The findings, computed in "
                                                "this run; repeated at the end.)")
        cells[1:1] = [heading, *summary]
    notebook.cells = cells
    return notebook


def to_html(executed: Path) -> Path:
    """Render an executed notebook to a self-contained HTML file beside it, for a reader."""
    notebook = reader_copy(nbformat.read(executed, as_version=4))
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(
        notebook, resources={"metadata": {"name": notebook_title(notebook)}})
    for pattern in _NETWORK_SCRIPTS:
        body = pattern.sub("", body)
    body = body.replace("</head>", READER_STYLE + "\n</head>", 1)
    body = body.replace("</body>", READER_SCRIPT + "\n</body>", 1)
    return write_atomic(executed.with_suffix(".html"), body)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise ReportError("PDF rendering needs Chromium: `sudo apt-get install chromium` "
                      "(or `make system-deps`), or pass --no-pdf")


def to_pdf(html_file: Path, timeout_s: int = 180) -> Path:
    """Print an HTML file to PDF with headless Chromium."""
    target = html_file.with_suffix(".pdf")
    with atomic_target(target) as staging, tempfile.TemporaryDirectory() as profile_dir:
        command = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
                   f"--print-to-pdf={staging}", html_file.resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0 or staging.stat().st_size == 0:
            raise ReportError(
                f"Chromium could not print {html_file} to PDF:\n{result.stderr[-2000:]}")
    return target


# What a reader must never see in a report: tracebacks, warnings, log lines, machine paths.
MACHINE_OUTPUT = re.compile(
    r"Traceback \(most recent call last\)|\w+Warning: |^(?:DEBUG|INFO|WARNING|ERROR):"
    r"|^[IWEF]\d{4} \d\d:\d\d|(?<![\w.$])/(?:home|root|work|tmp|usr|opt|mnt|var)/[\w.-]+",
    re.M)
# In the checkout this module belongs to (the reports' project root may be another folder).
PRINT_CHECK = Path(__file__).resolve().parents[2] / "pi" / "web" / "tests" / "print-layout.mjs"


def machine_output(notebook: nbformat.NotebookNode) -> list[str]:
    """Lines of a reader copy's outputs that are machine output (MACHINE_OUTPUT)."""
    found = []
    for number, cell in enumerate(notebook.cells, 1):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [str(out.get("data", {}).get(kind, ""))
                                              for kind in ("text/plain", "text/html")]
            for text in texts:
                for match in MACHINE_OUTPUT.finditer(text):
                    line = text[text.rfind("\n", 0, match.start()) + 1:].split("\n", 1)[0]
                    found.append(f"cell {number}: {line.strip()[:120]}")
    return found


def print_layout_problems(html_files: list[Path]) -> dict[str, list[str]]:
    """Tables, figures and text blocks wider than an A4 page, per file, measured in headless
    Chromium (pi/web/tests/print-layout.mjs; needs `make web-deps`). Raises ReportError when
    the browser check cannot run."""
    script = PRINT_CHECK
    web = script.parents[1]
    if not shutil.which("node") or not (web / "node_modules" / "playwright-core").is_dir():
        raise ReportError("the print-layout check needs Node and playwright-core: "
                          "`make web-deps`")
    result = subprocess.run(["node", str(script.relative_to(web)),
                             *(str(Path(f).resolve()) for f in html_files)],
                            cwd=web, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise ReportError(f"print-layout check failed: {result.stderr.strip()[-1000:]}")
    return json.loads(result.stdout)


def check_report(executed: Path, html_file: Path) -> list[str]:
    """What a reviewer would flag in a rendered report: machine output and cut tables or
    figures (the print check needs Node and playwright-core; without them it is recorded as
    not run). Written beside it as <name>.checks.json and shown in the index."""
    problems = machine_output(reader_copy(nbformat.read(executed, as_version=4)))
    try:
        layout = print_layout_problems([html_file])
        print_check = "checked"
    except ReportError as error:
        layout, print_check = {}, f"not run: {error}"
    problems += [item if item.startswith("markdown") else f"wider than the page: {item}"
                 for items in layout.values() for item in items]
    write_atomic(html_file.with_suffix(".checks.json"), json.dumps(
        {"problems": problems, "print_layout": print_check}, indent=2) + "\n")
    return problems


def build_report(notebook: Path, profile: str, out_dir: Path | None = None,
                 pdf: bool = True, check: bool = True) -> list[Path]:
    """Execute, render to HTML and (optionally) PDF, check the result; return the files
    written. Problems the check finds are printed and listed in the index."""
    out_dir = out_dir or reports_dir()
    executed = execute(notebook, profile, out_dir)
    html_file = to_html(executed)
    files = [executed, html_file] + ([to_pdf(html_file)] if pdf else [])
    if check:
        for problem in check_report(executed, html_file):
            print(f"{html_file.name}: {problem}", file=sys.stderr)
    return files


def git_commit() -> str:
    """Short commit of the checkout, with '-dirty' when tracked files have changes;
    $FACE_SENTIMENT_COMMIT when set (the container images: .git is not in their build context,
    containers/podman.sh passes the commit as a build argument)."""
    if commit := os.environ.get("FACE_SENTIMENT_COMMIT", "").strip():
        return commit
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project_root(), capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def headline(executed: Path) -> str:
    """A report's stated result: the first sentence of its summary cell's output."""
    if not executed.exists():
        return ""
    for cell in nbformat.read(executed, as_version=4).cells:
        if SUMMARY_TAG not in cell.metadata.get("tags", []):
            continue
        for out in cell.get("outputs", []):
            if out.get("name") == "stderr":
                continue
            text = out.get("data", {}).get("text/markdown") or out.get("text", "")
            for line in str(text).splitlines():
                line = line.strip().lstrip("-*> ").replace("**", "").replace("`", "")
                if line and not line.startswith("#"):
                    sentence = re.split(r"(?<=[.!?])\s", line, maxsplit=1)[0]
                    return sentence[:240]
    return ""


def write_index(profile: str, data_sha256: str, out_dir: Path | None = None) -> Path:
    """reports/index.html: every rendered notebook with its stated result, links to its HTML,
    PDF and executed notebook, its print check, the date, commit and data hash; then the
    monitoring reports."""
    out_dir = out_dir or reports_dir()
    rows = []
    for notebook in notebook_paths():
        html_file = out_dir / f"{notebook.stem}.html"
        if not html_file.exists():
            continue
        pdf_file = html_file.with_suffix(".pdf")
        built = dt.datetime.fromtimestamp(html_file.stat().st_mtime, dt.UTC)
        pdf_link = f'<a href="{pdf_file.name}">PDF</a>' if pdf_file.exists() else "(no PDF)"
        checks = html_file.with_suffix(".checks.json")
        found = json.loads(checks.read_text()) if checks.exists() else None
        status = ("not checked" if found is None else
                  f"{len(found['problems'])} problem(s): see {checks.name}" if found["problems"]
                  else "clean" if found["print_layout"] == "checked"
                  else "no machine output; print layout not checked (make web-deps)")
        executed = out_dir / notebook.name
        rows.append(f"<tr><td><b>{html.escape(notebook_title(nbformat.read(notebook, 4)))}</b>"
                    f"<br>{html.escape(headline(executed))}</td>"
                    f'<td><a href="{html_file.name}">HTML</a></td><td>{pdf_link}</td>'
                    f'<td><a href="{executed.name}">notebook</a></td>'
                    f"<td>{built:%Y-%m-%d %H:%M} UTC</td><td>{html.escape(status)}</td></tr>")
    monitoring = sorted((out_dir / "monitoring").glob("**/*.html"))
    monitoring_items = "".join(
        f'<li><a href="{html.escape(str(p.relative_to(out_dir)))}">'
        f"{html.escape(str(p.relative_to(out_dir / 'monitoring')))}</a></li>" for p in monitoring)
    now = dt.datetime.now(dt.UTC)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Face Sentiment reports</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.3em 1em;text-align:left}}code{{background:#eee;padding:0 .3em}}</style></head>
<body><h1>Face Sentiment workbench: reports</h1>
<p>Generated {now:%Y-%m-%d %H:%M} UTC from commit <code>{html.escape(git_commit())}</code>
with profile <code>{html.escape(profile)}</code>.<br>
FER2013 source sha256: <code>{html.escape(data_sha256)}</code>.<br>
Reproduce with <code>make reports PROFILE={html.escape(profile)}</code>.</p>
<table><tr><th>report and its result</th><th>HTML</th><th>PDF</th><th>executed</th>
<th>built</th><th>print check</th></tr>
{chr(10).join(rows)}
</table>
<h2>Monitoring</h2>
{f"<ul>{monitoring_items}</ul>" if monitoring_items else
 "<p>No monitoring report yet: <code>make monitor</code> writes them.</p>"}
</body></html>
"""
    target = write_atomic(out_dir / "index.html", page)
    write_atomic(out_dir / "index.json", json.dumps(
        {"generated": now.isoformat(), "commit": git_commit(), "profile": profile,
         "data_sha256": data_sha256}, indent=2))
    return target
