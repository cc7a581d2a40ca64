"""autolr in optuna-dashboard, for real: the note and attributes, the server, a headless browser."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import optuna
import pytest

import autolr
from autolr import _dashboard, _dashboard_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def bowl(lr: float) -> float:
    loss = 1.0
    for epoch in range(6):
        if lr > 0.05:
            loss *= 3.0  # blows up: autolr stops it as diverged
        else:
            loss = 0.2 + (math.log10(lr) + 2) ** 2 * 0.1 + 0.8 * 0.5**epoch
        autolr.report(loss, step=epoch)
    return loss


@pytest.fixture
def tuned_db(db: str) -> str:
    train = autolr.tune(n_trials=8, seed=0, storage=db, lr=(1e-4, 1.0), show_progress_bar=False)(bowl)
    train.run()
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_run_records_the_recommendation_and_a_note(tuned_db: str) -> None:
    pytest.importorskip("optuna_dashboard")
    from optuna_dashboard import get_note

    result = autolr.load("bowl", storage=tuned_db)
    study = optuna.load_study(study_name="bowl", storage=tuned_db)
    assert study.user_attrs["autolr.recommended_lr"] == result.best_lr
    assert study.user_attrs["autolr.recommendation"] == result.explain()
    note = get_note(study)
    assert note.startswith(f"## autolr recommends lr = {result.best_lr:.4g}")
    assert result.explain() in note and "| lr_range |" in note and "best range" in note
    # a second run rewrites it (one note, new version), never appends
    _dashboard.record_recommendation(study)
    assert get_note(study) == note
    assert study._storage.get_study_system_attrs(study._study_id)["dashboard:note_ver"] == 2


def test_note_without_trials() -> None:
    study = optuna.create_study()
    _dashboard.record_recommendation(study, note=False)
    assert study.user_attrs["autolr.recommended_lr"] is None
    assert "No trials have run yet" in study.user_attrs["autolr.recommendation"]


def test_loopback() -> None:
    assert _dashboard_server.is_loopback("127.0.0.1") and _dashboard_server.is_loopback("localhost")
    assert not _dashboard_server.is_loopback("0.0.0.0") and not _dashboard_server.is_loopback("192.168.1.5")


def test_autolr_dashboard_command_serves_the_study(tuned_db: str) -> None:
    pytest.importorskip("optuna_dashboard")
    port = free_port()
    path = tuned_db.removeprefix("sqlite:///")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autolr", "dashboard", path, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                doc = get_json(f"http://127.0.0.1:{port}/api/studies")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard did not start in 60 s"
                time.sleep(0.3)
        names = [s["study_name"] for s in doc["study_summaries"]]  # type: ignore[index]
        assert names == ["bowl"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert f"optuna-dashboard on http://127.0.0.1:{port}/" in err and "warning" not in err


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(tuned_db: str) -> Iterator[str]:
    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    from autolr._storage import open_storage

    assert optuna_dashboard is not None
    port = free_port()  # served behind autolr's Host guard, as `autolr dashboard` serves it
    app = _dashboard_server.guarded_app(open_storage(tuned_db, create=False), host="127.0.0.1", port=port)
    server = make_server("127.0.0.1", port, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_dashboard_in_headless_chromium(served: str, tmp_path: Path) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")

    studies = get_json(f"{served}/api/studies")["study_summaries"]  # type: ignore[index]
    (study,) = studies
    sid = study["study_id"]
    detail = get_json(f"{served}/api/studies/{sid}?after=0")
    trials = detail["trials"]  # type: ignore[index]
    assert len(trials) == 8
    reasons = {
        t["number"]: a["value"] for t in trials for a in t["user_attrs"] if a["key"] == "autolr.stop_reason"
    }
    diverged = min(n for n, r in reasons.items() if r == "diverged")
    assert "autolr recommends lr" in detail["note"]["body"]  # type: ignore[index]

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{served}/dashboard", wait_until="networkidle")
            page.wait_for_selector("text=bowl", timeout=30_000)
            page.goto(f"{served}/dashboard/studies/{sid}/note", wait_until="networkidle")
            page.wait_for_selector("text=autolr recommends lr", timeout=30_000)
            page.screenshot(path=str(tmp_path / "study.png"), full_page=True)
            page.goto(f"{served}/dashboard/studies/{sid}/trials", wait_until="networkidle")
            page.get_by_text(f"Trial {diverged}", exact=True).first.click()
            page.wait_for_selector("text=autolr.stop_reason", timeout=30_000)
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "trials.png"), full_page=True)
        finally:
            browser.close()
    assert "diverged" in text and "autolr.stop_step" in text
    assert (tmp_path / "study.png").stat().st_size > 10_000
    if os.environ.get("AUTOLR_SCREENSHOTS"):
        for name in ("study.png", "trials.png"):
            Path(os.environ["AUTOLR_SCREENSHOTS"], name).write_bytes((tmp_path / name).read_bytes())
