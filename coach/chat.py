"""Scenario chat: multi-turn coaching grounded in retrieved passages, cited inline as [1], [2].

Design decisions:
- The system message is a fixed template. The leader's words, retrieved passages, the memory summary and a
  free-text role-play scenario only ever reach the model inside ``data_block`` delimiters in user messages.
- Citations are checked by code after generation: a ``[n]`` that does not name a passage retrieved for *this*
  turn is removed from the answer and reported in ``dropped_citations``. Numbers in earlier assistant turns are
  stripped from the history so the model does not reuse them for different passages.
- When retrieval finds nothing relevant, the coach says so in a fixed sentence written by code (a 1.5B model
  cannot be trusted to admit it) and every citation the model still writes is dropped.
- Memory is a token budget counted with tiktoken: the system message and the current turn always fit; the
  newest earlier turns fill what is left; older turns become an extractive summary made by code, not by the
  model (a summarising call would cost seconds per turn on a 2-core CPU and a small model's summaries drift).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field

from coach.chat_guard import (
    CITATION_RE,
    StreamGuard,
    TokenCallback,
    guarded_stream,
    leaks_instructions,
    strip_citations,
)
from coach.errors import InputError, InputTooLarge
from coach.prompts import data_block, load_prompt

if TYPE_CHECKING:
    from coach.config import Settings
    from coach.corpus import Principle
    from coach.index import CorpusIndex, Passage
    from coach.models import ChatModelHandle
    from coach.roleplay import Debrief


MAX_MESSAGE_TOKENS = 1500
MAX_MESSAGE_CHARS = MAX_MESSAGE_TOKENS * 12  # refuse absurd pastes before tokenising them
MESSAGE_OVERHEAD_TOKENS = 4  # role markers per chat message
PROMPT_BUDGET_SMALL = 3200  # the embedded model reads ~80 tok/s: keep prompts short
PROMPT_BUDGET_LARGE = 12000
ANSWER_TOKENS_SMALL = 300
ANSWER_TOKENS_LARGE = 700
SUMMARY_TOKENS = 250
SUMMARY_LINE_TOKENS = 40
RETRIEVE_K = 4
RETRIEVE_K_SMALL = 3  # each passage costs the embedded model ~2.5 s of prompt processing
# Mild DRY (llama.cpp only) curbs the small model's habit of repeating whole paragraphs.
SMALL_MODEL_SAMPLING = {"dry_multiplier": 0.5, "dry_base": 1.75, "dry_allowed_length": 3}
PASSAGE_TOKENS = 180
# Scores are cosine similarities with MiniLM (higher is closer). Measured on the shipped essays: on-topic
# questions reach a best passage of 0.26-0.68, off-topic ones (Kubernetes, bread, salary) 0.02-0.21.
MIN_COVERAGE_SCORE = 0.24  # the best passage must reach this, or the corpus does not cover the question
MIN_PASSAGE_SCORE = 0.20  # weaker passages are not offered to the model at all

NOT_COVERED_NOTE = (
    "The essays and your organisation's documents do not cover this directly, so what follows is general "
    "advice without a source.\n\n"
)
INSTRUCTIONS_REFUSAL = "I keep my instructions to myself, but I'm glad to keep working on your situation."



class Citation(BaseModel):
    """A retrieved passage that an answer cites as ``[n]``."""

    n: int
    text: str
    source: str
    doc_id: str
    title: str = ""


class ChatMessage(BaseModel):
    """One turn of a conversation as stored in a session."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant"]
    content: str
    citations: list[Citation] = Field(default_factory=list)


class Conversation(BaseModel):
    """A chat or role-play conversation: its mode, role-play setting and turns so far."""

    session_id: str | None = None
    mode: Literal["chat", "roleplay"] = "chat"
    persona: str | None = None
    scenario: str | None = None
    messages: list[ChatMessage] = Field(default_factory=list)
    debrief: ChatMessage | None = None  # the latest role-play debrief: saved last, never fed back to the model
    principles: list[str] = Field(default_factory=list)  # the debrief's principle ids

    def user_turns(self) -> int:
        """How many messages the leader has sent."""
        return sum(1 for m in self.messages if m.role == "user")


class ChatReply(BaseModel):
    """What one turn returns: the checked answer, its citations and what code had to correct."""

    answer: str
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Citation] = Field(default_factory=list)  # everything offered to the model, cited or not
    dropped_citations: list[int] = Field(default_factory=list)
    grounded: bool = True
    flags: list[str] = Field(default_factory=list)
    debrief_due: bool = False
    answer_replaced: bool = False  # code replaced what was streamed (the model repeated its instructions)
    model: str = ""
    timings: dict[str, float] = Field(default_factory=dict)
    session_id: str | None = None


# ---- input -------------------------------------------------------------------------------------------


def validate_message(message: str | None) -> str:
    """Return the message stripped, or raise ``InputError``/``InputTooLarge`` before any model call."""
    from coach.tokens import count_tokens

    text = (message or "").strip()
    if not text:
        raise InputError("The message is empty.", hint="Type what you want to talk about.")
    if "\x00" in text:
        raise InputError("The message contains binary data.", hint="Paste plain text.")
    if not text.isascii() and not _encodable(text):  # lone surrogates: invalid UTF-8 bytes from a terminal
        raise InputError("The message is not valid UTF-8 text.", hint="Type or paste it again as plain text.")
    if len(text) > MAX_MESSAGE_CHARS or count_tokens(text) > MAX_MESSAGE_TOKENS:
        raise InputTooLarge(
            f"The message is longer than the limit of {MAX_MESSAGE_TOKENS} tokens (about "
            f"{MAX_MESSAGE_TOKENS * 3 // 4} words).",
            hint="Shorten it, or paste only the part you want to discuss.",
        )
    return text


def _encodable(text: str) -> bool:
    """True when ``text`` can be stored as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- memory ------------------------------------------------------------------------------------------


def message_tokens(message: BaseMessage) -> int:
    """Tokens a chat message costs, role markers included."""
    from coach.tokens import count_tokens

    return count_tokens(str(message.content)) + MESSAGE_OVERHEAD_TOKENS


def prompt_tokens(messages: Sequence[BaseMessage]) -> int:
    """Tokens of a whole prompt."""
    return sum(message_tokens(m) for m in messages)


def history_messages(turns: Sequence[ChatMessage]) -> list[BaseMessage]:
    """Earlier turns as chat messages: the leader's words in data blocks, old citation numbers removed."""
    out: list[BaseMessage] = []
    for turn in turns:
        if turn.role == "user":
            out.append(HumanMessage(content=data_block("MESSAGE", turn.content)))
        else:
            out.append(AIMessage(content=strip_citations(turn.content)))
    return out


def summarise_turns(turns: Sequence[ChatMessage], budget: int = SUMMARY_TOKENS) -> str:
    """An extractive summary of dropped turns (the start of each), newest kept when over budget."""
    from coach.tokens import count_tokens, truncate_tokens

    lines: list[str] = []
    used = 0
    for turn in reversed(turns):
        who = "Leader" if turn.role == "user" else "Reply"
        line = f"{who}: {truncate_tokens(' '.join(strip_citations(turn.content).split()), SUMMARY_LINE_TOKENS)}"
        cost = count_tokens(line) + 1
        if used + cost > budget:
            break
        lines.append(line)
        used += cost
    return "\n".join(reversed(lines))


def fit_history(turns: Sequence[ChatMessage], budget: int) -> tuple[list[BaseMessage], str]:
    """The newest earlier turns that fit ``budget`` tokens, and a summary of the ones left out."""
    kept: list[BaseMessage] = []
    remaining = budget - SUMMARY_TOKENS - MESSAGE_OVERHEAD_TOKENS
    start = len(turns)
    for i in range(len(turns) - 1, -1, -1):
        message = history_messages([turns[i]])[0]
        cost = message_tokens(message)
        if cost > remaining:
            break
        kept.insert(0, message)
        remaining -= cost
        start = i
    # A history should open with the leader's turn, not a reply whose question is gone.
    while kept and isinstance(kept[0], AIMessage):
        kept.pop(0)
        start += 1
    return kept, summarise_turns(turns[:start], SUMMARY_TOKENS - 10) if start else ""


def context_block(summary: str) -> str:
    """The summary of earlier turns as a data block, or nothing."""
    return data_block("EARLIER_CONVERSATION", summary) + "\n\n" if summary else ""


def assemble(
    system: str, turns: Sequence[ChatMessage], render_turn: Callable[[str], str], budget: int
) -> list[BaseMessage]:
    """System message, as much history as fits, then the current turn rendered with the memory summary."""
    system_message = SystemMessage(content=system)
    probe = HumanMessage(content=render_turn(context_block("x")))
    fixed = message_tokens(system_message) + message_tokens(probe) + MESSAGE_OVERHEAD_TOKENS
    history, summary = fit_history(turns, max(0, budget - fixed))
    return [system_message, *history, HumanMessage(content=render_turn(context_block(summary)))]


# ---- citations ---------------------------------------------------------------------------------------


def check_citations(answer: str, passages: Sequence[Passage]) -> tuple[str, list[Citation], list[int]]:
    """Keep ``[n]`` only when passage n was retrieved for this turn; return answer, citations, dropped numbers."""
    used: dict[int, Citation] = {}
    dropped: list[int] = []

    def replace(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(passages)]
        dropped.extend(n for n in numbers if n not in valid)
        for n in valid:
            used.setdefault(n, citation_for(n, passages[n - 1]))
        return "".join(f"[{n}]" for n in valid)

    cleaned = CITATION_RE.sub(replace, answer)
    if dropped:
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned, [used[n] for n in sorted(used)], sorted(set(dropped))


def citation_for(n: int, passage: Passage) -> Citation:
    """A citation carrying the passage text verbatim and its source."""
    return Citation(n=n, text=passage.text, source=passage.source, doc_id=passage.doc_id, title=passage.title)


def passages_block(passages: Sequence[Passage]) -> str:
    """Numbered passages in one data block, each cut to a token budget."""
    from coach.tokens import truncate_tokens

    if not passages:
        return data_block("PASSAGES", "(none: the library has nothing relevant to this message)")
    # Number and text only: with titles and file names the 1.5B model turned each passage into a heading.
    parts = [f"[{n}] {truncate_tokens(' '.join(p.text.split()), PASSAGE_TOKENS)}" for n, p in enumerate(passages, 1)]
    return data_block("PASSAGES", "\n\n".join(parts))


def drop_repeated_sentences(text: str) -> str:
    """Remove sentences the answer already said (the 1.5B model sometimes loops on a paragraph)."""
    seen: set[str] = set()
    out: list[str] = []
    for piece in re.split(r"(?<=[.!?])(?=\s)", text):
        key = " ".join(re.findall(r"[a-z0-9]+", piece.lower()))
        if key and key in seen and len(key.split()) >= 4:
            continue
        seen.add(key)
        out.append(piece)
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()


def complete_sentences(generation: Any) -> str:
    """The answer without repeated sentences, cut back to its last full sentence if it ran out of tokens."""
    text = drop_repeated_sentences(str(generation.text).strip())
    if getattr(generation, "finish_reason", None) != "length":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?:\[\d+\])*[\"')\]]?(?=\s|$)", text)]
    return text[: ends[-1]] if ends and ends[-1] > len(text) // 2 else text + " …"


# ---- leaks -------------------------------------------------------------------------------------------


# ---- the service -------------------------------------------------------------------------------------


class ChatService:
    """Scenario chat and role-play over one model handle, one index and the principle catalogue."""

    def __init__(
        self,
        settings: Settings,
        *,
        handle: ChatModelHandle | None = None,
        index: CorpusIndex | None = None,
        principles: list[Principle] | None = None,
    ) -> None:
        self.settings = settings
        self._handle = handle
        self._index = index
        self._principles = principles

    @property
    def handle(self) -> ChatModelHandle:
        """The chat model, opened on first use."""
        if self._handle is None:
            from coach.models import open_chat_model

            self._handle = open_chat_model(self.settings)
        return self._handle

    @property
    def index(self) -> CorpusIndex:
        """The corpus index (essays and organisation documents), opened on first use."""
        if self._index is None:
            from coach.index import open_index

            index = open_index(self.settings)
            if not index.stats()["chunks"]:  # first run: an empty index would make every answer "not covered"
                index.build()
            self._index = index
        return self._index

    @property
    def principles(self) -> list[Principle]:
        """The principle catalogue, loaded on first use."""
        if self._principles is None:
            from coach.corpus import load_principles

            self._principles = load_principles(self.settings)
        return self._principles

    @property
    def small(self) -> bool:
        """Whether the backend gets the small-model strategy (short prompts)."""
        return bool(self.handle.profile.small)

    @property
    def prompt_budget(self) -> int:
        """Token budget of a whole prompt for this backend."""
        return PROMPT_BUDGET_SMALL if self.small else PROMPT_BUDGET_LARGE

    def turn(self, conversation: Conversation, message: str, on_token: TokenCallback | None = None) -> ChatReply:
        """One turn of chat or role-play; the conversation gets both the message and the reply."""
        text = validate_message(message)
        if conversation.mode == "roleplay":
            from coach.roleplay import roleplay_reply

            reply = roleplay_reply(self, conversation, text, on_token)
        else:
            reply = self.chat_reply(conversation, text, on_token)
        conversation.session_id = conversation.session_id or new_session_id()
        conversation.messages.append(ChatMessage(role="user", content=text))
        conversation.messages.append(ChatMessage(role="assistant", content=reply.answer, citations=reply.citations))
        reply.session_id = conversation.session_id
        return reply

    def retrieve(self, conversation: Conversation, text: str) -> tuple[list[Passage], float]:
        """Passages relevant to the message (and the leader's previous one, for short follow-ups)."""
        started = time.perf_counter()
        previous = [m.content for m in conversation.messages if m.role == "user"][-1:]
        query = " ".join([*previous, text]) if is_follow_up(text) else text
        found = self.index.query(query, k=RETRIEVE_K_SMALL if self.small else RETRIEVE_K)
        covered = bool(found) and max(p.score for p in found) >= MIN_COVERAGE_SCORE
        passages = [p for p in found if p.score >= MIN_PASSAGE_SCORE] if covered else []
        return passages, (time.perf_counter() - started) * 1000

    def chat_reply(self, conversation: Conversation, text: str, on_token: TokenCallback | None) -> ChatReply:
        """A grounded coaching answer with checked citations."""
        passages, retrieval_ms = self.retrieve(conversation, text)
        system = load_prompt("chat_system").fill()
        turn_prompt = load_prompt("chat_turn")

        def render(context: str) -> str:
            return turn_prompt.fill(
                context=context, passages=passages_block(passages), message=data_block("MESSAGE", text)
            )

        messages = assemble(system, conversation.messages, render, self.prompt_budget)
        if not passages and on_token:
            on_token(NOT_COVERED_NOTE)
        stream = guarded_stream(on_token, system, len(passages))
        generation = self.generate(messages, stream, local_extra=SMALL_MODEL_SAMPLING)
        answer, citations, dropped = check_citations(complete_sentences(generation), passages)
        reply = ChatReply(answer=answer, citations=citations, dropped_citations=dropped, grounded=bool(passages),
                          passages=[citation_for(n, p) for n, p in enumerate(passages, 1)])
        if dropped:
            reply.flags.append(f"removed citations to passages that were not retrieved: {dropped}")
        if not passages:
            reply.answer = NOT_COVERED_NOTE + answer
        self.guard_instructions(reply, system, INSTRUCTIONS_REFUSAL, stream)
        return self.finish(reply, generation, retrieval_ms)

    def generate(self, messages: list[BaseMessage], on_token: TokenCallback | None, **options: Any) -> Any:
        """Call the model with explicit sampling settings."""
        from coach.models import GenerationOptions, generate

        defaults: dict[str, Any] = {
            "max_tokens": ANSWER_TOKENS_SMALL if self.small else ANSWER_TOKENS_LARGE,
            "temperature": 0.4,
            "top_p": 0.9,
        }
        return generate(self.handle, messages, GenerationOptions(**{**defaults, **options}), on_token=on_token)

    @staticmethod
    def guard_instructions(reply: ChatReply, system: str, replacement: str, stream: StreamGuard | None) -> None:
        """Replace an answer that repeats the system instructions; then let the stream show its last words."""
        if leaks_instructions(reply.answer, system) or (stream is not None and stream.leaked):
            reply.answer, reply.citations, reply.answer_replaced = replacement, [], True
            reply.flags.append("the answer repeated the coach's instructions and was withheld")
        if stream is not None:
            stream.finish(withheld=reply.answer_replaced)

    def finish(self, reply: ChatReply, generation: Any, retrieval_ms: float = 0.0) -> ChatReply:
        """Attach the model name and timings."""
        reply.model = str(getattr(generation, "model", "") or self.settings.model_label)
        reply.timings = {
            "retrieval_ms": round(retrieval_ms, 1),
            "first_token_ms": float(getattr(generation, "first_token_ms", 0.0) or 0.0),
            "total_ms": float(getattr(generation, "total_ms", 0.0) or 0.0),
        }
        return reply

    def debrief(self, conversation: Conversation) -> Any:
        """A role-play debrief (see ``coach.roleplay.debrief``)."""
        from coach.roleplay import debrief

        return debrief(self, conversation)


FOLLOW_UP_RE = re.compile(r"^(and|but|also|what about|how about|what if)\b", re.IGNORECASE)


def is_follow_up(text: str) -> bool:
    """A short continuation ("And to the board?") that needs the previous question to be retrieved well."""
    # Only very short or explicitly continuing messages: a new off-topic question must not borrow the
    # previous question's coverage (measured: "What is the best Kubernetes ingress controller?" did).
    return len(text.split()) <= 5 or bool(FOLLOW_UP_RE.match(text.strip()))


def new_session_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex  # the session store's id format


# ---- sessions ----------------------------------------------------------------------------------------
# A role-play's persona and scenario are stored in the session's ``audience`` and ``kind`` fields (the
# executive is the audience; the scenario is the kind of conversation), so the session schema needs no change.


# A debrief is stored as the conversation's final assistant message, opening with DEBRIEF_HEADING and citing
# its principles' passages, and its principle ids become the session's principles.

DEBRIEF_HEADING = "Debrief of this rehearsal"


def to_session_fields(conversation: Conversation) -> dict[str, Any]:
    """The session-store fields of a conversation (its debrief, if any, as the last message)."""
    turns = [*conversation.messages, *([conversation.debrief] if conversation.debrief else [])]
    messages = [
        {"role": m.role, "content": m.content, "citations": [c.model_dump() for c in m.citations] or None}
        for m in turns
    ]
    return {"type": conversation.mode, "audience": conversation.persona, "kind": conversation.scenario,
            "messages": messages, "principles": list(conversation.principles)}


def from_session(session: Any) -> Conversation:
    """A conversation from a saved chat or role-play session (validated again on the way in)."""
    if session.type not in ("chat", "roleplay"):
        raise InputError(f"Session {session.id} is a {session.type}, not a chat.",
                         hint="Pick a chat or role-play session.")
    messages = [
        ChatMessage.model_validate({"role": m.role, "content": m.content,
                                    "citations": [c.model_dump() for c in (m.citations or [])]})
        for m in session.messages if m.role in ("user", "assistant")
    ]
    debrief = messages.pop() if is_debrief(session, messages) else None
    return Conversation(session_id=session.id, mode=session.type, persona=session.audience, scenario=session.kind,
                        messages=messages, debrief=debrief, principles=list(session.principles) if debrief else [])


def is_debrief(session: Any, messages: list[ChatMessage]) -> bool:
    """Whether the saved role-play ends with its debrief (see ``to_session_fields``)."""
    last = messages[-1] if messages else None
    return (session.type == "roleplay" and bool(session.principles) and last is not None
            and last.role == "assistant" and last.content.startswith(DEBRIEF_HEADING))


def save_conversation(
    settings: Settings, conversation: Conversation, user_id: str | None = None, debrief: Debrief | None = None
) -> str:
    """Save (or update) the conversation as a session of ``user_id`` (None: single-user mode); returns its id.

    With ``debrief``, it replaces the conversation's earlier debrief and its principles become the session's.
    """
    if debrief is not None:
        conversation.debrief, conversation.principles = debrief.as_message(), debrief.principle_ids()
    conversation.session_id = conversation.session_id or new_session_id()
    _save_session(settings, conversation.session_id, to_session_fields(conversation), user_id)
    return conversation.session_id


def _save_session(settings: Settings, session_id: str, fields: dict[str, Any], user_id: str | None) -> None:
    """The one place that writes to the session store (an existing session keeps its rating and notes)."""
    from coach.sessions import SessionStore

    SessionStore(settings, user_id=user_id).save_fields(session_id, fields)


def load_conversation(settings: Settings, session_id: str, user_id: str | None = None) -> Conversation:
    """A saved chat or role-play of ``user_id`` (None: anyone's, single-user mode), ready to continue."""
    from coach.errors import StorageError
    from coach.sessions import SessionStore

    session = SessionStore(settings, user_id=user_id).get(session_id.strip())
    if session is None:
        raise StorageError(f"No session {session_id}.", hint="`coach sessions list` shows the ids.")
    return from_session(session)


def chat_turn(
    settings: Settings, conversation: Conversation, message: str, on_token: TokenCallback | None = None
) -> ChatReply:
    """One turn of scenario chat or role-play with the configured model and index."""
    return ChatService(settings).turn(conversation, message, on_token)
