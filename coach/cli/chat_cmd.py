"""`coach chat`: interactive scenario chat and role-play, or one turn with ``--message``.

A thin shell over ``coach.chat``/``coach.roleplay``: it reads lines, streams the answer, prints citations and
saves sessions. One-shot mode saves every turn so ``--session ID`` can continue the conversation later.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
from typing import Any

from coach import chat
from coach.chat import ChatReply, ChatService, Conversation
from coach.config import Settings, load_settings
from coach.errors import CoachError, InputError
from coach.roleplay import DEBRIEF_HEADINGS, PERSONAS, SCENARIOS, Debrief, find_persona, start_roleplay

HELP = """Commands:
  /roleplay PERSONA [SCENARIO]  rehearse with an executive (no arguments: list personas and scenarios)
  /chat                         back to coaching chat
  /debrief                      debrief the role-play so far
  /save                         show this conversation's session id (every turn is saved as you go)
  /quit                         leave
Anything else is a message to the coach. Paste a message of several lines whole: lines that arrive
together are sent as one message."""


def register(subparsers: Any) -> None:
    """Add the `chat` sub-command."""
    parser = subparsers.add_parser("chat", help="talk through a leadership scenario or rehearse with an executive")
    parser.add_argument("--message", "-m", help="send one message and exit (omit for an interactive chat)")
    parser.add_argument("--persona", help=f"role-play persona: {', '.join(PERSONAS)}")
    parser.add_argument("--scenario", help=f"role-play scenario: {', '.join(SCENARIOS)}, or your own words")
    parser.add_argument("--session", help="continue a saved chat or role-play by id")
    parser.add_argument("--debrief", action="store_true", help="debrief the role-play (after --message if given)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (one-shot only)")
    parser.add_argument("--user", help="save and continue sessions as this user's (default: COACH_USER)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run one-shot or interactive chat."""
    service = ChatService(load_settings(user=args.user))
    conversation = initial_conversation(service, args)
    if args.message is None and not args.debrief:
        return interactive(service, conversation)
    return one_shot(service, conversation, args)


def initial_conversation(service: ChatService, args: argparse.Namespace) -> Conversation:
    """A saved conversation, a new role-play, or a new chat."""
    if args.session:
        conversation = load_conversation(service.settings, args.session)
        if args.persona:
            raise InputError("--persona cannot change a saved conversation.", hint="Start a new one without --session.")
        return conversation
    if args.persona:
        return start_roleplay(args.persona, args.scenario)
    if args.scenario:
        raise InputError("--scenario needs --persona.", hint=f"Choose a persona: {', '.join(PERSONAS)}.")
    return Conversation()


def load_conversation(settings: Settings, session_id: str) -> Conversation:
    """A saved chat or role-play of this user (`--user`/COACH_USER; none: anyone's), ready to continue."""
    return chat.load_conversation(settings, session_id, user_id=settings.user)


def save_conversation(settings: Settings, conversation: Conversation, debrief: Debrief | None = None) -> str:
    """Save the conversation (with its debrief, if given) as this user's session; returns its id."""
    return chat.save_conversation(settings, conversation, user_id=settings.user, debrief=debrief)


def one_shot(service: ChatService, conversation: Conversation, args: argparse.Namespace) -> int:
    """Send one message (and/or debrief), save the session, print text or JSON."""
    reply = None
    if args.message is not None:
        stream = None if args.json else print_token
        reply = service.turn(conversation, args.message, on_token=stream)
        save_conversation(service.settings, conversation)
        reply.session_id = conversation.session_id
    report = service.debrief(conversation) if args.debrief else None
    if report is not None:
        save_conversation(service.settings, conversation, report)
    if args.json:
        print(json.dumps(reply_json(conversation, reply, report), ensure_ascii=False, indent=2))
        return 0
    if reply is not None:
        print()
        print_footer(reply)
    if report is not None:
        print_debrief(report)
    print(f"session: {conversation.session_id}", file=sys.stderr)
    return 0


def reply_json(conversation: Conversation, reply: ChatReply | None, report: Debrief | None) -> dict[str, Any]:
    """The one-shot JSON document."""
    out: dict[str, Any] = {"session_id": conversation.session_id, "mode": conversation.mode,
                           "persona": conversation.persona, "scenario": conversation.scenario}
    if reply is not None:
        out.update(reply.model_dump(include={"answer", "dropped_citations", "grounded", "flags", "debrief_due",
                                             "model", "timings"}))
        out["citations"] = [c.model_dump() for c in reply.citations]
        out["passages"] = [c.model_dump() for c in reply.passages]
    if report is not None:
        out["debrief"] = report.model_dump()
    return out


def print_token(text: str) -> None:
    """Stream a piece of the answer."""
    sys.stdout.write(text)
    sys.stdout.flush()


def print_footer(reply: ChatReply) -> None:
    """Citations and corrections under a streamed answer."""
    if reply.answer_replaced:  # the stream stopped before the withheld part: show only what replaces it
        print(reply.answer)
    for citation in reply.citations:
        excerpt = " ".join(citation.text.split())
        excerpt = excerpt if len(excerpt) <= 240 else excerpt[:239] + "…"
        print(f"  [{citation.n}] {citation.title or citation.source} ({citation.source}): {excerpt}")
    for flag in reply.flags:
        print(f"  note: {flag}")


def print_debrief(report: Debrief) -> None:
    """The debrief as text, grouped by kind."""
    for kind, heading in DEBRIEF_HEADINGS.items():
        items = [item for item in report.items if item.kind == kind]
        if not items:
            continue
        print(f"\n{heading}:")
        for item in items:
            print(f"  - {item.point}\n    principle: {item.principle} ({item.principle_id})")
            print(f"    \"{item.passage.text}\" ({item.passage.source})")


def print_choices() -> None:
    """Personas and preset scenarios."""
    print("Personas: " + ", ".join(f"{p.id} ({p.title})" for p in PERSONAS.values()))
    print("Scenarios: " + ", ".join(f"{s.id} ({s.title})" for s in SCENARIOS.values()))
    print("Or describe your own scenario: /roleplay cfo we need two more engineers for the payments team")


def interactive(service: ChatService, conversation: Conversation) -> int:
    """Read messages and commands until /quit or end of input."""
    print("coach chat: type a message, or /help for commands.")
    state = {"conversation": conversation, "debriefed": False}
    reader = MessageReader(sys.stdin)
    while True:
        message = reader.read("\nyou> ")
        if message is None:  # end of input
            print()
            return 0
        line = message.strip()
        if not line:
            continue  # an empty message: just ask again, no model call
        try:
            if line.startswith("/"):
                if handle_command(service, state, line) == "quit":
                    return 0
                continue
            talk(service, state, line)
        except CoachError as exc:
            print(f"coach: {exc}", file=sys.stderr)


COMMANDS = ("/roleplay", "/chat", "/debrief", "/save", "/quit", "/exit", "/q", "/help")
PERSONA_MAX_WORDS = 4  # 'sceptical board member', 'business unit head'
PASTE_GAP_S = 0.05  # lines arriving closer together than this are one paste


def is_command(line: str) -> bool:
    """Whether a line is one of the slash commands (a pasted '/etc/hosts' is not)."""
    return line.strip().split(" ", 1)[0] in COMMANDS


class MessageReader:
    """Reads the leader's input: a line, plus the lines already waiting behind it, as one message.

    A paste arrives as many lines at once; ``input()`` would make each line a turn (a model call and a saved
    turn each, and the size limit applied line by line). Lines that arrive within ``PASTE_GAP_S`` of each
    other are one message instead; a slash command always stands alone. Without a file descriptor to poll
    (a test's StringIO, or a platform without ``select`` on stdin) every line is a message, as before.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.fd = _pollable_fd(stream)
        self.pending = b""
        self.eof = False

    def read(self, prompt: str) -> str | None:
        """The next message or command, or None at the end of input."""
        sys.stdout.write(prompt)
        sys.stdout.flush()
        first = self._next_line(wait=None)
        if first is None or is_command(first) or self.fd is None:
            return first
        lines = [first]
        while (line := self._next_line(wait=PASTE_GAP_S)) is not None:
            if is_command(line):  # a command typed or piped after the paste is read on its own
                self.pending = line.encode("utf-8", "surrogateescape") + b"\n" + self.pending
                break
            lines.append(line)
        return "\n".join(lines)

    def _next_line(self, wait: float | None) -> str | None:
        """A complete line (``wait`` None: block for it; else give up after ``wait`` s with nothing new)."""
        if self.fd is None:
            line = self.stream.readline()
            return line.rstrip("\r\n") if line else None
        while b"\n" not in self.pending and not self.eof:
            if not select.select([self.fd], [], [], wait)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            self.pending += chunk
            self.eof = not chunk
        if not self.pending:
            return None
        line, _, self.pending = self.pending.partition(b"\n")
        return line.rstrip(b"\r").decode("utf-8", "surrogateescape")  # bad bytes: refused by validate_message


def _pollable_fd(stream: Any) -> int | None:
    """The stream's file descriptor when ``select`` can poll it (POSIX), else None."""
    if os.name != "posix":
        return None
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def handle_command(service: ChatService, state: dict[str, Any], line: str) -> str | None:
    """Run a slash command; return "quit" to leave."""
    command, _, rest = line.partition(" ")
    conversation: Conversation = state["conversation"]
    if command in ("/quit", "/exit", "/q"):
        return "quit"
    if command == "/help":
        print(HELP)
    elif command == "/roleplay":
        if not rest.strip():
            print_choices()
            return None
        persona, scenario = persona_and_scenario(rest)
        state["conversation"], state["debriefed"] = start_roleplay(persona, scenario or None), False
        print(f"Role-play with {PERSONAS[state['conversation'].persona].title}. Open the conversation.")
    elif command == "/chat":
        state["conversation"] = Conversation()
        print("Coaching chat. What's the situation?")
    elif command == "/debrief":
        debrief(service, state)
    elif command == "/save":  # every turn is saved already; a save that failed is tried again here
        if not conversation.messages:
            print("Nothing to save yet: every turn is saved as you go.")
            return None
        if state.get("unsaved"):
            keep(service, state)
        print(f"saved: {conversation.session_id}")
    else:
        print(f"Unknown command {command}.\n{HELP}")
    return None


def persona_and_scenario(rest: str) -> tuple[str, str]:
    """Split '/roleplay' arguments: the longest leading words naming a persona ('board member'), then the scenario."""
    words = rest.split()
    for count in range(min(len(words), PERSONA_MAX_WORDS), 0, -1):
        try:
            persona = find_persona(" ".join(words[:count]))
        except InputError:
            continue
        return persona.id, " ".join(words[count:])
    return find_persona(words[0]).id, ""  # raises, listing the personas


def talk(service: ChatService, state: dict[str, Any], line: str) -> None:
    """One streamed turn, saved; a debrief follows automatically once a role-play is long enough."""
    conversation: Conversation = state["conversation"]
    speaker = "coach" if conversation.mode == "chat" else conversation.persona
    sys.stdout.write(f"\n{speaker}> ")
    reply = service.turn(conversation, line, on_token=print_token)
    print()
    print_footer(reply)
    keep(service, state)
    if reply.debrief_due and not state["debriefed"]:
        print("\n(That is enough to debrief. Here is how it went; keep going if you like.)")
        debrief(service, state)


def debrief(service: ChatService, state: dict[str, Any]) -> None:
    """Debrief the role-play, print it and save it with the conversation."""
    report = service.debrief(state["conversation"])
    print_debrief(report)
    state["debriefed"] = True
    state["unsaved"] = True
    save_conversation(service.settings, state["conversation"], report)
    state["unsaved"] = False


def keep(service: ChatService, state: dict[str, Any]) -> None:
    """Save the conversation now (a failure is reported and remembered, so /save can try again)."""
    state["unsaved"] = True
    save_conversation(service.settings, state["conversation"])
    state["unsaved"] = False
