"""The rewrite pipeline on the real embedded model: offline, every fact kept or flagged, feedback cited."""

from __future__ import annotations

import time

import pytest

from coach.config import load_settings
from coach.corpus import load_documents, normalise_space
from coach.rewrite import rewrite_draft
from coach.rewrite_models import RewriteRequest
from coach.verify import copy_ratio

# Synthetic (written for this test): a short incident note full of jargon.
DRAFT = """Incident INC-2291 summary

On May 12, 2026 the VPN concentrator in the Leeds DC failed over to the standby unit at 08:40 UTC after a
firmware bug caused a memory leak. Remote users saw auth timeouts for 35 minutes; about 40% of login attempts
failed. MTTR was within SLA. Firmware 9.3.2 is now applied to both units."""


@pytest.mark.real_model
def test_embedded_model_rewrites_keeping_every_fact_or_flagging_it() -> None:
    settings = load_settings(backend="local")
    started = time.perf_counter()
    result = rewrite_draft(settings, RewriteRequest(draft=DRAFT, audience="coo", kind="incident"))
    seconds = time.perf_counter() - started
    print(f"\nembedded rewrite: {seconds:.1f} s, first token {result.timings.first_token_ms} ms, "
          f"copy {result.copy_ratio}, flags {[f.kind for f in result.flags]}\n{result.rewrite}")
    for fact in result.facts.draft:
        assert fact in result.rewrite or fact in result.facts.missing
    assert set(result.facts.added) <= {f.excerpt for f in result.flags if f.kind == "added_figure"}
    assert result.review_required
    assert copy_ratio(DRAFT, result.rewrite) < 0.9 and result.rewrite.strip() != DRAFT.strip()
    assert len(result.feedback) >= 2
    corpus = " ".join(normalise_space(d.text) for d in load_documents(settings))
    assert all(normalise_space(item.passage.text) in corpus for item in result.feedback)
