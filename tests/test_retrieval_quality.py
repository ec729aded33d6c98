"""Retrieval quality with the packaged MiniLM model: realistic questions must find the passage that answers them.

Each case is a question an IT leader might bring, with one or more short snippets, verbatim from the essays,
of a passage that answers it (more than one where the essays really answer it in two places). A case is a hit
when one of the top 3 passages contains one of its snippets. Run with ``-s`` to see the hit rate and timings.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from coach.config import load_settings
from coach.corpus import normalise_space
from coach.embeddings import MiniLMEmbedding
from coach.index import CorpusIndex

pytestmark = pytest.mark.real_embeddings

CASES: list[tuple[str, tuple[str, ...]]] = [
    ("the CFO is unimpressed by my uptime numbers",
     ("Uptime is just a number until we show what it achieves for the business.",)),
    ("how do I get the business to trust IT",
     ("When trust is established information can flow more freely",)),
    ("my status report has no owners or dates",
     ("introduce milestones and review",)),
    ("should we spend money to go from 99.9% to 99.99% availability",
     ("Have you run the numbers?",)),
    ("how should I report service desk performance to executives",
     ("Moved service desk speed to answer from 90sec to 60sec",)),
    ("our technology projects keep failing even though the engineering is solid",
     ("The root cause of technical failures is not technical in nature.",)),
    ("IT strategy follows vendor and industry trends instead of our company goals",
     ("the IT leadership is aligned on the vision, strategy and goals of the IT Industry leaders",)),
    ("people in other departments keep misunderstanding what I ask of them",
     ("how many ways a staff member, vendor or customer can misunderstand what is being said",
      "what is obvious to you is not obvious to everyone")),
    ("rolling out a new system to different departments without resistance",
     ("we learn how each group (persona) within the organization will best move through change",)),
    ("should I treat staff who call the help desk as customers",
     ("treat users like customers", "What about if these users where customers?")),
    ("my team does not know what a good outcome looks like",
     ("what good looks like",)),
    ("what is the difference between an IT manager and an IT leader",
     ("Employees do what a manager tells them to do because they have to.",)),
    ("how do I get people who don't report to me to do work for my project",
     ("getting people who don’t work for them to complete work for them",
      "convincing not only the people who work for them, but also large parts of the rest of the company")),
    ("I only meet business stakeholders when a project needs sign-off",
     ("I am talking about relationship development and “how are we doing” meetings.",
      "exceptional leaders understand the importance of relationships")),
    ("engineers think leadership is a logical problem to solve",
     ("Because leadership is people driven, it rarely follows exact patterns of cause and effect",)),
    ("how do I connect my team's objectives to the company's goals",
     ("it is your responsibility to help your team align their work to organizational goals",)),
    ("my emails to leadership get ignored",
     ("communication so good they are forced to take notice",)),
    ("I had to send an incident update before we knew the root cause",
     ("being comfortable with not having all of the facts",)),
    ("how fast can we push a big change through a conservative organisation",
     ("Any change can only take place at the pace your organization can digest it with",)),
    ("writing for people outside IT who don't share my context",
     ("what is obvious to you is not obvious to everyone",)),
]


@pytest.fixture(autouse=True)
def real_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    """This file measures the real model."""
    monkeypatch.setenv("COACH_EMBEDDINGS", "minilm")


def _hit(snippets: tuple[str, ...], texts: list[str]) -> bool:
    return any(normalise_space(s) in normalise_space(t) for s in snippets for t in texts)


def test_expected_passages_are_in_the_top_three() -> None:
    MiniLMEmbedding()(["warm up"])  # load the model first: we time indexing, not model loading
    index = CorpusIndex(load_settings())
    started = time.perf_counter()
    report = index.build()
    build_s = time.perf_counter() - started
    misses = []
    for question, snippets in CASES:
        passages = index.query(question, k=3)
        if not _hit(snippets, [p.text for p in passages]):
            misses.append((question, [(p.doc_id, p.position) for p in passages]))
    rate = 1 - len(misses) / len(CASES)
    timings = []
    for question, _ in CASES * 5:
        started = time.perf_counter()
        index.query(question, k=3)
        timings.append((time.perf_counter() - started) * 1000)
    print(f"\nindex build ({report.chunks} chunks, model loaded): {build_s:.2f} s")
    print(f"retrieval hit rate (top 3): {rate:.0%} of {len(CASES)}; misses: {misses}")
    print(f"query p50 {statistics.median(timings):.1f} ms, p95 {np.percentile(timings, 95):.1f} ms over {len(timings)}")
    assert len(CASES) >= 14
    assert rate >= 0.9, misses


def test_minilm_vectors_are_normalised_and_meaningful() -> None:
    vectors = np.array(MiniLMEmbedding()([
        "the CFO is unimpressed by my uptime numbers",
        "Uptime is just a number until we show what it achieves for the business.",
        "Bake the bread for forty minutes.",
    ]))
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_long_input_is_truncated_not_rejected() -> None:
    assert len(MiniLMEmbedding()(["uptime " * 2000])[0]) == 384
