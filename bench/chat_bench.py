"""Chat speed on the embedded model: a 3-turn scenario chat, a 3-turn role-play and its debrief.

    flock /tmp/coach-model.lock .venv/bin/python bench/chat_bench.py [--json]

Default settings on the embedded backend and the real index (built first if it is empty). Nothing is saved.
Per turn it reports:
- ``first_token_ms``: from sending the message to the model's first token (retrieval and prompt included);
- ``first_shown_ms``: to the first text the leader sees (the stream guard holds back the last words);
- ``total_ms``: the whole turn.
The first chat turn is the cold one (empty prompt cache); the other five turns are summarised as warm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coach.chat import ChatService, Conversation  # noqa: E402
from coach.config import load_settings  # noqa: E402
from coach.errors import CoachError  # noqa: E402
from coach.roleplay import start_roleplay  # noqa: E402

CHAT = [
    "My CIO wants a cloud migration plan and the COO thinks IT is a cost centre. How do I pitch it?",
    "How should I report our uptime figures in that pitch?",
    "What should I avoid saying?",
]
ROLEPLAY = [
    "I'd like budget to replace our ERP. The current one is 15 years old and out of vendor support.",
    "Month-end close takes 10 days today; the new system should bring it to 4, freeing finance staff time.",
    "We estimate $2.1M over two years, with payback in about 30 months.",
]


def timed_turn(service: ChatService, conversation: Conversation, message: str, label: str) -> dict[str, Any]:
    """One turn with its timings in milliseconds."""
    shown: list[float] = []

    def on_token(_piece: str) -> None:
        if not shown:
            shown.append(time.perf_counter())

    started = time.perf_counter()
    reply = service.turn(conversation, message, on_token=on_token)
    total = (time.perf_counter() - started) * 1000
    generation_after_first = reply.timings["total_ms"] - reply.timings["first_token_ms"]
    return {
        "scenario": label,
        "turn": conversation.user_turns(),
        "first_token_ms": round(total - generation_after_first, 1),
        "first_shown_ms": round((shown[0] - started) * 1000, 1) if shown else None,
        "total_ms": round(total, 1),
        "retrieval_ms": reply.timings["retrieval_ms"],
        "words": len(reply.answer.split()),
        "citations": [c.n for c in reply.citations],
    }


def run() -> dict[str, Any]:
    """Open the model, run both scripts and the debrief; every figure in milliseconds."""
    settings = load_settings(backend="local")
    service = ChatService(settings)
    started = time.perf_counter()
    _ = service.handle, service.index  # load the model and open (or build) the index before timing turns
    load_ms = (time.perf_counter() - started) * 1000
    turns = []
    chat = Conversation()
    turns += [timed_turn(service, chat, message, "chat") for message in CHAT]
    roleplay = start_roleplay("cfo", "erp-budget")
    turns += [timed_turn(service, roleplay, message, "roleplay cfo") for message in ROLEPLAY]
    started = time.perf_counter()
    report = service.debrief(roleplay)
    debrief_ms = (time.perf_counter() - started) * 1000
    return {"model": service.handle.profile.name, "load_ms": round(load_ms, 1), "turns": turns,
            "cold": turns[0], "warm": summary(turns[1:]),
            "debrief": {"total_ms": round(debrief_ms, 1), "items": len(report.items)}}


def summary(turns: list[dict[str, Any]]) -> dict[str, float]:
    """p50 and max of each timing over ``turns``."""
    out = {}
    for key in ("first_token_ms", "first_shown_ms", "total_ms"):
        values = [t[key] for t in turns if t[key] is not None]
        out[f"{key}_p50"] = round(statistics.median(values), 1) if values else 0.0
        out[f"{key}_max"] = round(max(values), 1) if values else 0.0
    return out


def seconds(ms: float | None) -> str:
    """Milliseconds as seconds with one decimal ('-' when missing)."""
    return "-" if ms is None else f"{ms / 1000:.1f} s"


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table, then the summary lines."""
    lines = [f"Embedded model {result['model']}, model load and index open {seconds(result['load_ms'])}", "",
             "| scenario | turn | first token | first text shown | total | words | cited |",
             "|---|---|---|---|---|---|---|"]
    for t in result["turns"]:
        lines.append(f"| {t['scenario']} | {t['turn']} | {seconds(t['first_token_ms'])} | "
                     f"{seconds(t['first_shown_ms'])} | {seconds(t['total_ms'])} | {t['words']} | "
                     f"{t['citations'] or '-'} |")
    cold, warm = result["cold"], result["warm"]
    lines += ["",
              f"cold (first chat turn): first token {seconds(cold['first_token_ms'])}, "
              f"total {seconds(cold['total_ms'])}",
              f"warm (other 5 turns): first token p50 {seconds(warm['first_token_ms_p50'])}, "
              f"max {seconds(warm['first_token_ms_max'])}; first text shown p50 {seconds(warm['first_shown_ms_p50'])}; "
              f"total p50 {seconds(warm['total_ms_p50'])}, max {seconds(warm['total_ms_max'])}",
              f"debrief: {seconds(result['debrief']['total_ms'])}, {result['debrief']['items']} items"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print a table, or JSON with ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    try:
        result = run()
    except CoachError as error:
        print(f"chat bench: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
