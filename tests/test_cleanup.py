"""Cleaning a draft before the small model sees it: structure out, every fact left exactly as written."""

from __future__ import annotations

from coach.cleanup import clean_draft
from coach.facts import extract_facts


def test_greeting_sign_off_signature_links_and_figure_less_headings_go() -> None:
    draft = ("Hello,\n\nMaintenance\n\nWe upgrade the database on 4 May. Details: https://example.org/x\n\n"
             "Thanks,\nSam\n--\nSam Lee\nSRE")
    cleaned = clean_draft(draft)
    assert cleaned.startswith("We upgrade the database on 4 May.")
    for gone in ("Hello", "Maintenance\n", "https://", "Thanks", "Sam Lee", "SRE"):
        assert gone not in cleaned


def test_bullets_become_sentences_and_a_long_list_keeps_its_lead_in_apart() -> None:
    draft = ("We changed three things:\n\n- Local emergency backup on each instance of the service now\n"
             "- All instances will be read-only during the switch to protect data integrity\n")
    paragraphs = clean_draft(draft).split("\n\n")
    assert paragraphs == ["We changed three things:", "Local emergency backup on each instance of the service now. "
                          "All instances will be read-only during the switch to protect data integrity."]


def test_a_short_list_becomes_one_sentence_with_its_lead_in() -> None:
    draft = ("These services may be slow:\n\n- get.example.org (downloads)\n- mirrors.example.org (downloads)\n"
             "- fallback.example.org\n\nThe work ends at noon.")
    assert clean_draft(draft) == ("These services may be slow: get.example.org (downloads), mirrors.example.org "
                                  "(downloads) and fallback.example.org.\n\nThe work ends at noon.")


def test_status_blocks_are_told_oldest_first() -> None:
    draft = ("[Final Message]\nThe move finished at 12:00 UTC.\n\n[Initial Message]\nWe start at 09:00 UTC.")
    assert clean_draft(draft) == "We start at 09:00 UTC.\n\nThe move finished at 12:00 UTC."


def test_every_fact_survives_cleaning_exactly() -> None:
    draft = ("Hi all,\n\nSince the change we've seen:\n\n* more than 52% of active users with 2FA\n"
             "* 45,000 verified logins\n\nDowntime: 2 min on 8 January around 17:30 UTC.\n\nBest,\nAna")
    cleaned = clean_draft(draft)
    for fact in extract_facts(draft):
        assert fact.text in cleaned


def test_an_arrow_says_from_and_to_in_words() -> None:
    cleaned = clean_draft("This unblocks:\n\n- System daemon user: gerrit2 → gerrit (T338470)\n"
                          "- Java 11 -> 17 upgrade\n")
    assert "System daemon user: from gerrit2 to gerrit (T338470)" in cleaned
    assert "Java from 11 to 17 upgrade" in cleaned and "→" not in cleaned and "->" not in cleaned
