"""`coach eval` measures facts kept/flagged/dropped against the line's own facts, copying and citations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_rewrite import good_reply, small_handle

from coach.cli import main
from coach.config import load_settings
from coach.errors import InputError
from coach.evaluation import EvalCase, load_cases, markdown_report, run_eval, summary

DRAFT = ("On March 3, 2026 the order API was down for 2 hours and 15 minutes, from 09:10 to 11:25 UTC. "
         "About 35% of checkout requests failed with HTTP 503 errors.")


def test_eval_counts_kept_and_silently_dropped_facts_exactly() -> None:
    handle, _ = small_handle(good_reply)
    case = EvalCase(id="x1", kind="incident", text=DRAFT, facts=["09:10", "About 35%", "a fact not in the draft"])
    rows = run_eval(load_settings(), [case], handle=handle)
    row = rows[0]
    assert (row.facts, row.kept, row.flagged, row.dropped) == (3, 2, 0, 1)
    assert row.citations_valid and row.feedback >= 2 and row.invented_unflagged == 0
    totals = summary(rows)
    assert totals["dropped"] == 1 and totals["missing_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert "| x1 |" in markdown_report(rows)


def test_a_bad_eval_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "ok"}) + "\n{not json}\n")
    with pytest.raises(InputError, match=r"cases.jsonl:2"):
        load_cases(path)


def test_eval_command_prints_a_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COACH_BACKEND", "fake")
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps({"id": "c1", "kind": "incident", "text": DRAFT}) + "\n")
    assert main(["eval", str(path), "--json", "--out", str(tmp_path / "r.md")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["drafts"] == 1 and report["rows"][0]["id"] == "c1"
    assert (tmp_path / "r.md").read_text().startswith("| id |")
