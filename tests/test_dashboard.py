"""``gist-harness dashboard``: optuna-dashboard served on a real study folder answers on localhost."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_study import FakePipeline, experiment

from harness.errors import UserError
from harness.study import run_study
from harness.study.storage import folder_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    run_study(experiment("watched"), FakePipeline(), runs_dir=runs, progress=False)
    return runs / "watched"


def test_folder_url_reads_a_run_folder_and_passes_urls_through(study_dir, tmp_path):
    assert folder_url(str(study_dir)) == f"sqlite:///{(study_dir / 'optuna.db').resolve()}"
    assert folder_url("journal:/x/study.journal") == "journal:/x/study.journal"
    assert folder_url("postgresql+psycopg://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "manifest.json").write_text(
        json.dumps({"storage_url": "postgresql+psycopg://u:***@h/db"})
    )
    with pytest.raises(UserError, match="has a password: pass the URL"):
        folder_url(str(tmp_path / "pg"))
    with pytest.raises(UserError, match="no such run folder"):
        folder_url(str(tmp_path / "missing"))


def test_dashboard_answers_http_on_localhost(study_dir):
    port = _free_port()
    command = [sys.executable, "-m", "harness", "dashboard", str(study_dir), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while time.monotonic() < deadline and studies is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    studies = json.loads(response.read())
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.5)
        assert studies is not None, "the dashboard did not answer within 60 s"
        assert [s["study_name"] for s in studies["study_summaries"]] == ["watched"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/", timeout=5) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{port}/dashboard/" in output
