"""Run the numbered notebooks with papermill and render them to HTML and PDF.

`make reports` calls `build_report` once per notebook (make decides which are out of date),
then `write_index`. A notebook is executed into a temporary file and renamed into `reports/`
only when it succeeded; a failure leaves `<name>.failed.ipynb` and raises with the failing
cell. PDFs are printed by headless Chromium from the HTML (Debian's `chromium`).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import shutil
import subprocess
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


def to_html(executed: Path) -> Path:
    """Render an executed notebook to a standalone HTML file beside it."""
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nbformat.read(executed, as_version=4))
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


def build_report(notebook: Path, profile: str, out_dir: Path | None = None,
                 pdf: bool = True) -> list[Path]:
    """Execute, render to HTML and (optionally) PDF; return the files written."""
    out_dir = out_dir or reports_dir()
    executed = execute(notebook, profile, out_dir)
    html_file = to_html(executed)
    return [executed, html_file] + ([to_pdf(html_file)] if pdf else [])


def git_commit() -> str:
    """Short commit of the checkout, with '-dirty' when tracked files have changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project_root(), capture_output=True,
                              text=True, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_index(profile: str, data_sha256: str, out_dir: Path | None = None) -> Path:
    """reports/index.html: every rendered notebook with the date, commit and data hash."""
    out_dir = out_dir or reports_dir()
    rows = []
    for notebook in notebook_paths():
        html_file = out_dir / f"{notebook.stem}.html"
        if not html_file.exists():
            continue
        pdf_file = html_file.with_suffix(".pdf")
        built = dt.datetime.fromtimestamp(html_file.stat().st_mtime, dt.UTC)
        pdf_link = f'<a href="{pdf_file.name}">PDF</a>' if pdf_file.exists() else "(no PDF)"
        rows.append(f"<tr><td>{html.escape(notebook.stem)}</td>"
                    f'<td><a href="{html_file.name}">HTML</a></td><td>{pdf_link}</td>'
                    f"<td>{built:%Y-%m-%d %H:%M} UTC</td></tr>")
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
<table><tr><th>notebook</th><th>HTML</th><th>PDF</th><th>built</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""
    target = write_atomic(out_dir / "index.html", page)
    write_atomic(out_dir / "index.json", json.dumps(
        {"generated": now.isoformat(), "commit": git_commit(), "profile": profile,
         "data_sha256": data_sha256}, indent=2))
    return target
