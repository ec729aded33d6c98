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


def test_eval_warms_the_model_once_before_the_first_draft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Like the app at start: the first draft must not carry the model's start-up in its time and budget."""
    import coach.cli.eval_cmd as eval_cmd
    import coach.evaluation as evaluation

    monkeypatch.setenv("COACH_BACKEND", "fake")
    events: list[str] = []
    handles: list[object] = []
    monkeypatch.setattr(eval_cmd, "warm_up", lambda handle: (events.append("warm"), handles.append(handle)))
    real = evaluation.rewrite_draft

    def rewrite(settings, request, handle=None, **kw):  # type: ignore[no-untyped-def]
        events.append("rewrite")
        handles.append(handle)
        return real(settings, request, handle=handle, **kw)

    monkeypatch.setattr(evaluation, "rewrite_draft", rewrite)
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(json.dumps({"id": f"c{n}", "kind": "incident", "text": DRAFT}) + "\n" for n in (1, 2)))
    assert main(["eval", str(path), "--json"]) == 0
    assert events == ["warm", "rewrite", "rewrite"]
    assert handles[0] is not None and all(h is handles[0] for h in handles)
