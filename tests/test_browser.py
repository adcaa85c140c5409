"""Notebook 05 in a real browser: JupyterLab + headless Debian Chromium driven by Playwright.

Starts JupyterLab on a free local port over a temporary copy of the notebook (so the committed
file never gets outputs), runs every cell in smoke mode, moves the explorer's frame slider with
the keyboard and checks that the picture the browser shows changed. A screenshot goes to
``outputs/browser/notebook05.png``. Needs ``/usr/bin/chromium`` (``make browser-deps``); never
runs ``playwright install``.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "05_evaluation_visualization.ipynb"
SCREENSHOT = REPO / "outputs" / "browser" / "notebook05.png"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: run `make browser-deps` "
                                 "(apt-get install chromium)")]

# JS: draw the explorer's <img> into a canvas and return its pixels as a data URL (what the user sees)
_IMG_PIXELS = """img => { const c = document.createElement('canvas'); c.width = img.naturalWidth;
  c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0); return c.toDataURL('image/png'); }"""


_LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server over a temp copy of notebook 05 (EDVR_SMOKE=1 for its kernels)."""
    served = tmp_path / "served"  # only the notebook in the file browser; logs and settings stay outside
    served.mkdir()
    shutil.copy(NOTEBOOK, served / NOTEBOOK.name)
    # every cell attached and rendered (JupyterLab 4 otherwise skips off-screen cells), no news pop-up
    for ext, setting in _LAB_SETTINGS.items():
        dest = tmp_path / ".lab_settings" / ext
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(json.dumps(setting))
    port, token = _free_port(), "edvr-browser-test"
    env = dict(os.environ, EDVR_SMOKE="1", JUPYTER_CONFIG_DIR=str(tmp_path / ".jupyter_config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / ".lab_settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / ".ws"))
    cmd = [str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={served}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "lab.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield {"url": url, "token": token, "log": tmp_path / "lab.log"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its kernels (own session)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_notebook05_explorer_in_real_browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['url']}/lab/tree/{NOTEBOOK.name}?token={lab['token']}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
            # the status bar reads "No Kernel | Initializing" (with an 'idle' indicator!) until the kernel is up
            page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"ipykernel\) \| Idle")).first.wait_for(
                timeout=90_000)
            # Run > Run All Cells, through the menu like a user
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
            # the first code cell gets an execution count: the cells really run
            page.locator(".jp-CodeCell .jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).first.wait_for(
                state="attached", timeout=60_000)
            # the explorer appears, then the last cell prints the REDS4 config
            img = page.locator(".widget-image").first
            img.wait_for(state="attached", timeout=240_000)
            page.get_by_text("name: EDVR_M_x4_SR_REDS4").first.wait_for(timeout=240_000)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            stderr_text = " ".join(errors.all_inner_texts())
            assert "Traceback" not in stderr_text and "Error" not in stderr_text, stderr_text[:2000]
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
            before = img.evaluate(_IMG_PIXELS)
            info_before = page.locator(".widget-html", has_text="left: LR input frame").first.inner_text()

            # move the frame slider with the keyboard (the notebook left it on the last frame)
            slider = page.locator(".widget-slider", has_text="frame (t)").first
            handle = slider.locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            handle.click()
            handle.press("Home")
            page.wait_for_function("([img, old]) => { const c = document.createElement('canvas');"
                                   " c.width = img.naturalWidth; c.height = img.naturalHeight;"
                                   " c.getContext('2d').drawImage(img, 0, 0);"
                                   " return img.complete && c.toDataURL('image/png') !== old; }",
                                   arg=[img.element_handle(), before], timeout=30_000)
            after = img.evaluate(_IMG_PIXELS)
            assert after != before
            assert slider.locator(".widget-readout").inner_text().strip() == "0"
            info_after = page.locator(".widget-html", has_text="left: LR input frame").first.inner_text()
            assert "frame 0" in info_after and info_after != info_before
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            img.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
