"""With the network closed (a new network namespace holding only loopback), index, doctor and a completion work.

Nothing selects the backend: no COACH_BACKEND, no key, no server URL (the autouse fixture removes them from the
environment), so the test also proves that the embedded model is the default.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COACH = str(Path(sys.executable).with_name("coach"))


def _offline(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run from a temp dir: a developer's ./.streamlit/secrets.toml could otherwise pick the backend.
    return subprocess.run(["unshare", "-n", "sh", "-c", f"ip link set lo up && {command}"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=900, check=False)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.real_model
@pytest.mark.real_embeddings
@pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -n` and `ip` (run as root) to close the network")
def test_index_doctor_and_a_rewrite_work_with_the_network_closed(tmp_path: Path) -> None:
    env = {**os.environ, "COACH_EMBEDDINGS": "minilm"}
    assert not {"COACH_BACKEND", "OPENAI_API_KEY", "COACH_BASE_URL"} & set(env)
    index = _offline(f"{COACH} index --json", env, tmp_path)
    assert index.returncode == 0, index.stderr
    assert json.loads(index.stdout)["added"] > 0
    again = _offline(f"{COACH} index --json", env, tmp_path)
    assert json.loads(again.stdout)["added"] == 0
    doctor = _offline(f"{COACH} doctor --json", env, tmp_path)
    report = json.loads(doctor.stdout)
    assert doctor.returncode == 0 and report["ok"] is True and report["model_file_verified"] is True, doctor.stderr
    assert report["backend"] == "local", report
    draft = tmp_path / "draft.txt"
    draft.write_text("The payroll API was down for 20 minutes on June 2, 2026 because a TLS cert expired.\n")
    rewrite = _offline(f"{COACH} rewrite {draft} --audience cfo --json --no-save", env, tmp_path)
    assert rewrite.returncode == 0, rewrite.stderr
    assert "20 minutes" in json.loads(rewrite.stdout)["rewrite"]
