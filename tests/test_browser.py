"""JupyterLab in a real browser: open notebooks in headless Chromium, run them from the Run menu, read the page.

The server runs on copies of the notebooks (outputs cleared) in a temporary folder, with its own Jupyter
config, data, runtime, settings and workspace folders, so it neither saves over ``notebooks/`` nor reads or
writes the user's Jupyter state. It listens on 127.0.0.1 only, on a free port, behind a random token.
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

import beyond_backprop

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e \".[dev]\" brings it")

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ENV = "BEYOND_BACKPROP_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
NOTEBOOKS = {"D1": "D1_dladmm_convergence.ipynb",  # image data (Fashion-MNIST, MNIST subset)
             "C1": "C1_mdlam_convergence.ipynb"}   # graph data (Cora)
BROKEN = "broken.ipynb"
SERVER_START_S = 120
KERNEL_START_S = 120
RUN_ALL_MS = 240_000
SHUTDOWN_S = 20
ERROR_PATTERN = re.compile(r"Traceback \(most recent call last\)|^\s*Cell In\[\d+\], line \d+", re.MULTILINE)

# One entry per code cell of the visible notebook: its prompt and its outputs as they are rendered.
READ_CELLS_JS = """() => [...document.querySelectorAll(
        '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')].map(cell => ({
    prompt: cell.querySelector('.jp-InputPrompt').innerText.trim(),
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(out => ({
        mime: out.dataset.mimeType || '',
        text: out.innerText,
        images: [...out.querySelectorAll('img')].map(img => img.complete ? img.naturalWidth : 0),
    })),
}))"""
RUN_FINISHED_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
        .map(p => p.innerText.trim());
    return prompts.length > 0 && /\\d/.test(prompts[0]) && !prompts.some(p => p.includes('*'));
}"""


def find_chromium() -> str | None:
    """``$BEYOND_BACKPROP_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    return os.environ.get(CHROMIUM_ENV) or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def data_root() -> str | None:
    """The data root as an absolute path: ``$BEYOND_BACKPROP_DATA`` (relative to this folder), else ../shared/data."""
    given = os.environ.get("BEYOND_BACKPROP_DATA")
    if given:
        return str(Path(given).resolve())
    beside = ROOT.parent / "shared" / "data"
    return str(beside) if beside.is_dir() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_without_outputs(source: Path, target: Path) -> None:
    """Copy a notebook with every output and execution count cleared, so whatever shows comes from this run."""
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, target)


def write_broken_notebook(target: Path) -> None:
    """A notebook whose second cell raises: what the browser shows for it must read as an error."""
    sources = ("print('before')", "raise ValueError('broken on purpose')", "print('after')")
    cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, target)


@dataclass
class Lab:
    url: str
    token: str
    outputs: Path
    log: Path

    def api(self, path: str) -> list | dict:
        request = urllib.request.Request(f"{self.url}/api/{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)


def server_environment(home: Path, outputs: Path) -> dict[str, str]:
    """The caller's environment with Jupyter's state in ``home``, an absolute data root, outputs in ``outputs``."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                 "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
        env[name] = str(home / name.lower())
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    # no news feed, no update check: the machine may be offline and the toast would cover the notebook
    notification = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    # the kernel imports the beyond_backprop this test imported
    package_parent = str(Path(beyond_backprop.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_parent, env.get("PYTHONPATH"))))
    env["BEYOND_BACKPROP_OUTPUT"] = str(outputs)
    data = data_root()
    if data:
        env["BEYOND_BACKPROP_DATA"] = data
    return env


def wait_until_answering(lab: Lab, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}; its log:\n{lab.log.read_text()[-3000:]}")
        try:
            lab.api("status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                log = lab.log.read_text()[-3000:]
                pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s; its log:\n{log}")
            time.sleep(0.3)


def shut_down(server: subprocess.Popen) -> None:
    """SIGTERM (the server stops its kernels), wait, SIGKILL the process group if it hangs."""
    server.terminate()
    try:
        server.wait(timeout=SHUTDOWN_S)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=SHUTDOWN_S)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium found: apt-get install chromium, or set {CHROMIUM_ENV} to a Chromium executable")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{CHROMIUM_ENV}={path} is not an executable file: point it at a Chromium or Chrome binary")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("jupyterlab")
    root, outputs = base / "notebooks", base / "outputs"
    root.mkdir()
    for name in NOTEBOOKS.values():
        copy_without_outputs(ROOT / "notebooks" / name, root / name)
    write_broken_notebook(root / BROKEN)
    port, token = free_port(), secrets.token_hex(24)
    lab = Lab(url=f"http://127.0.0.1:{port}", token=token, outputs=outputs, log=base / "server.log")
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:  # CI containers run as root
        command.append("--allow-root")
    with lab.log.open("w") as log:
        server = subprocess.Popen(command, env=server_environment(base / "jupyter", outputs), cwd=root,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_answering(lab, server)
        yield lab
    finally:
        shut_down(server)


@pytest.fixture(scope="module")
def browser(chromium):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def kernel_state(lab: Lab, notebook: str) -> str | None:
    sessions = [s for s in lab.api("sessions") if s["path"] == notebook and s.get("kernel")]
    return sessions[0]["kernel"]["execution_state"] if sessions else None


def wait_for_idle_kernel(page, lab: Lab, notebook: str) -> None:
    """Wait until the notebook's kernel is idle; if JupyterLab asks which kernel to start, take its proposal."""
    choose = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    deadline = time.monotonic() + KERNEL_START_S
    while kernel_state(lab, notebook) != "idle":
        if time.monotonic() > deadline:
            pytest.fail(f"the kernel of {notebook} was not idle within {KERNEL_START_S} s "
                        f"(state {kernel_state(lab, notebook)}); server log:\n{lab.log.read_text()[-3000:]}")
        if choose.is_visible():
            choose.click()
        page.wait_for_timeout(300)


def run_in_jupyterlab(browser, lab: Lab, notebook: str, screenshot: Path) -> list[dict]:
    """Open ``notebook`` in its own workspace, Run → Run All Cells, wait, screenshot; the rendered code cells."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    try:
        page.set_default_timeout(30_000)
        page.goto(f"{lab.url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?token={lab.token}")
        page.locator(".jp-NotebookPanel .jp-CodeCell").first.wait_for()
        wait_for_idle_kernel(page, lab, notebook)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.wait_for_function(RUN_FINISHED_JS, timeout=RUN_ALL_MS, polling=500)
        wait_for_idle_kernel(page, lab, notebook)
        images = page.locator(".jp-OutputArea-output[data-mime-type='image/png'] img")
        if images.count():
            images.first.scroll_into_view_if_needed()
        page.screenshot(path=screenshot)
        return page.evaluate(READ_CELLS_JS)
    finally:
        page.close()


def error_outputs(cells: list[dict]) -> list[str]:
    """The rendered outputs that are Python errors (a traceback), not warnings or progress bars on stderr."""
    return [out["text"] for cell in cells for out in cell["outputs"]
            if out["mime"] == "application/vnd.jupyter.stderr" and ERROR_PATTERN.search(out["text"])]


def printed_text(cells: list[dict]) -> str:
    return "\n".join(out["text"] for cell in cells for out in cell["outputs"]
                     if out["mime"] == "application/vnd.jupyter.stdout")


@pytest.mark.parametrize("notebook_id", sorted(NOTEBOOKS))
def test_notebook_runs_in_jupyterlab(notebook_id, browser, lab, tmp_path):
    notebook = NOTEBOOKS[notebook_id]
    cells = run_in_jupyterlab(browser, lab, notebook, tmp_path / f"{notebook_id}.png")

    assert error_outputs(cells) == [], f"{notebook} shows an error in JupyterLab"
    unrun = [i for i, cell in enumerate(cells) if not re.fullmatch(r"\[\d+\]:", cell["prompt"])]
    assert unrun == [], f"code cells {unrun} of {notebook} did not run (prompts {[c['prompt'] for c in cells]})"
    widths = [width for cell in cells for out in cell["outputs"] if out["mime"] == "image/png"
              for width in out["images"]]
    assert widths and all(width > 0 for width in widths), f"{notebook}: no figure rendered as an image ({widths})"

    ledger = json.loads((lab.outputs / notebook_id / "claims.json").read_text())
    printed = printed_text(cells)
    for claim in ledger["claims"]:
        line = re.compile(rf"^{re.escape(claim['id'])}\s+{re.escape(claim['verdict'])}\s+measured ", re.MULTILINE)
        assert line.search(printed), f"{notebook}: the claims table lacks {claim['id']} {claim['verdict']}"


def test_an_error_shows_as_an_error(browser, lab, tmp_path):
    """The check above can fail: a cell that raises is seen as an error, and Run All stops there."""
    cells = run_in_jupyterlab(browser, lab, BROKEN, tmp_path / "broken.png")

    assert len(error_outputs(cells)) == 1
    assert "ValueError: broken on purpose" in error_outputs(cells)[0]
    assert [cell["prompt"] for cell in cells] == ["[1]:", "[2]:", "[ ]:"]
