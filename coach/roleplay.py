"""Role-play: the coach plays an executive so an IT leader can rehearse a conversation, then debriefs it.

Personas and preset scenarios are ours, so a persona's description may sit in the system message; a
scenario (preset or the leader's free text) always travels as a data block in the user message, so a
free-text scenario can never become an instruction. The debrief asks for JSON constrained by a schema when
the backend enforces one; code then validates it: every item must name a catalogue principle, and the cited
passage is that principle's catalogue quote (verbatim from the corpus), never text the model wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from coach.chat import (
    DEBRIEF_HEADING,
    SMALL_MODEL_SAMPLING,
    ChatMessage,
    ChatReply,
    ChatService,
    Citation,
    Conversation,
    assemble,
    complete_sentences,
)
from coach.chat_guard import TokenCallback, guarded_stream
from coach.errors import InputError, InputTooLarge, ModelOutputError
from coach.prompts import data_block, load_prompt

if TYPE_CHECKING:
    from coach.corpus import Principle

DEBRIEF_AFTER_TURNS = 6
ROLEPLAY_ANSWER_TOKENS = 220  # two to five sentences
MAX_SCENARIO_TOKENS = 300
DEBRIEF_TRANSCRIPT_TOKENS = 1600
DEBRIEF_ATTEMPTS = 2
DEBRIEF_MAX_ITEMS = 6


class Persona(BaseModel):
    """An executive the coach can play."""

    id: str
    title: str
    cares_about: str
    pushes_back: str


class Scenario(BaseModel):
    """A preset situation to rehearse."""

    id: str
    title: str
    situation: str


PERSONAS: dict[str, Persona] = {
    p.id: p
    for p in (
        Persona(
            id="cfo", title="the Chief Financial Officer",
            cares_about="cost, return on investment, payback period, cash flow, budget discipline and audit risk",
            pushes_back="asks what it costs, what it saves and by when, and rejects benefits that are not in money",
        ),
        Persona(
            id="coo", title="the Chief Operating Officer",
            cares_about="operations running smoothly, throughput, downtime on the floor, staff productivity, suppliers",
            pushes_back="asks how the work disrupts operations, who owns it and what happens if it slips",
        ),
        Persona(
            id="ceo", title="the Chief Executive Officer",
            cares_about="strategy, growth, customers, competitors and the company's reputation",
            pushes_back="asks how this serves the strategy and customers, and loses patience with technical detail",
        ),
        Persona(
            id="bu-head", title="the head of a business unit",
            cares_about="hitting the unit's targets, its customers, and getting IT to deliver what the unit asked for",
            pushes_back="asks why IT is slow or saying no, and what the unit gets and when",
        ),
        Persona(
            id="board-member", title="a sceptical board member",
            cares_about="risk, governance, return on capital and whether management is in control",
            pushes_back="doubts the figures, asks for evidence, comparisons and what could go wrong",
        ),
        Persona(
            id="end-user", title="a frustrated end user from the sales team",
            cares_about="getting daily work done without the system getting in the way",
            pushes_back="is impatient with jargon, interrupts with how the problem hurt them, wants dates and fixes",
        ),
    )
}

SCENARIOS: dict[str, Scenario] = {
    s.id: s
    for s in (
        Scenario(id="erp-budget", title="Ask for budget to replace the ERP",
                 situation="The IT leader asks for budget to replace the company's ageing ERP system."),
        Scenario(id="outage", title="Explain last week's outage",
                 situation="The IT leader explains last week's outage of a customer-facing system and what "
                           "happens next."),
        Scenario(id="pet-project", title="Say no to a pet project",
                 situation="The IT leader must say no, or not now, to the executive's favourite project."),
        Scenario(id="cloud-migration", title="Pitch a cloud migration",
                 situation="The IT leader pitches a plan to migrate the data centre to the cloud."),
        Scenario(id="security-spend", title="Justify security spending",
                 situation="The IT leader asks for money for security work after a competitor was breached."),
        Scenario(id="late-project", title="Report a project running late",
                 situation="The IT leader reports that a major project will miss its date."),
    )
}


class DebriefPassage(BaseModel):
    """The corpus passage a debrief item cites."""

    text: str
    source: str


class DebriefItem(BaseModel):
    """One point of a debrief, tied to a catalogue principle."""

    kind: Literal["landed", "missed", "try"]
    point: str
    principle_id: str
    principle: str
    passage: DebriefPassage


class Debrief(BaseModel):
    """What landed, what did not, and what to try next."""

    items: list[DebriefItem] = Field(default_factory=list)
    persona: str | None = None
    scenario: str | None = None
    dropped: int = 0
    model: str = ""
    timings: dict[str, float] = Field(default_factory=dict)

    def principle_ids(self) -> list[str]:
        """The principles the debrief is tied to, each once, in order."""
        return list(dict.fromkeys(item.principle_id for item in self.items))

    def as_message(self) -> ChatMessage:
        """The debrief as a saved assistant message: grouped points, each citing its principle's passage."""
        numbers = {pid: n for n, pid in enumerate(self.principle_ids(), 1)}
        lines = [DEBRIEF_HEADING + (f" with {PERSONAS[self.persona].title}" if self.persona in PERSONAS else "")]
        for kind, heading in DEBRIEF_HEADINGS.items():
            points = [f"- {i.point} ({i.principle} [{numbers[i.principle_id]}])" for i in self.items if i.kind == kind]
            lines += [f"\n{heading}:", *points] if points else []
        firsts = {item.principle_id: item for item in reversed(self.items)}
        citations = [Citation(n=n, text=firsts[pid].passage.text, source=firsts[pid].passage.source,
                              doc_id=Path(firsts[pid].passage.source).stem, title=firsts[pid].principle)
                     for pid, n in numbers.items()]
        return ChatMessage(role="assistant", content="\n".join(lines), citations=citations)


DEBRIEF_HEADINGS = {"landed": "What landed", "missed": "What did not land", "try": "What to try"}


class _RawItem(BaseModel):
    """A debrief item as the model writes it."""

    kind: Literal["landed", "missed", "try"]
    principle_id: str
    point: str = Field(min_length=3)


# ---- setting up a role-play ----------------------------------------------------------------------------


def find_persona(name: str) -> Persona:
    """The persona by id or a loose name ('CFO', 'board member'), else an ``InputError`` listing them."""
    key = re.sub(r"[^a-z]+", "-", name.lower()).strip("-")
    aliases = {"bu": "bu-head", "business-unit-head": "bu-head", "board": "board-member",
               "sceptical-board-member": "board-member", "skeptical-board-member": "board-member",
               "user": "end-user", "frustrated-end-user": "end-user"}
    key = aliases.get(key, key)
    if key not in PERSONAS:
        raise InputError(f"There is no persona {name!r}.", hint=f"Choose one of: {', '.join(PERSONAS)}.")
    return PERSONAS[key]


def scenario_text(scenario: str | None) -> str:
    """A preset's situation by id, or the leader's own description (validated)."""
    from coach.tokens import count_tokens

    text = (scenario or "").strip()
    if not text:
        return "An open conversation: the IT leader raises a topic of their choice."
    if text in SCENARIOS:
        return SCENARIOS[text].situation
    if count_tokens(text) > MAX_SCENARIO_TOKENS:
        raise InputTooLarge(
            f"The scenario is longer than the limit of {MAX_SCENARIO_TOKENS} tokens.",
            hint="Describe the situation in a few sentences.",
        )
    return text


def start_roleplay(persona: str, scenario: str | None = None) -> Conversation:
    """A new role-play conversation (persona and scenario checked now, not at the first turn)."""
    chosen = find_persona(persona)
    scenario_text(scenario)
    return Conversation(mode="roleplay", persona=chosen.id, scenario=(scenario or "").strip() or None)


def roleplay_system(persona: Persona) -> str:
    """The fixed role-play instructions with our persona description filled in."""
    return load_prompt("roleplay_system").fill(
        persona=persona.title, cares_about=persona.cares_about, pushes_back=persona.pushes_back
    )


# ---- a role-play turn ----------------------------------------------------------------------------------


def roleplay_reply(
    service: ChatService, conversation: Conversation, text: str, on_token: TokenCallback | None
) -> ChatReply:
    """The executive's in-character answer to the leader's message."""
    persona = find_persona(conversation.persona or "ceo")
    system = roleplay_system(persona)
    turn_prompt = load_prompt("roleplay_turn")
    scenario = data_block("SCENARIO", scenario_text(conversation.scenario))

    def render(context: str) -> str:
        return turn_prompt.fill(scenario=scenario, context=context, message=data_block("MESSAGE", text),
                                persona=persona.title)

    messages = assemble(system, conversation.messages, render, service.prompt_budget)
    stream = guarded_stream(on_token, system, None)
    generation = service.generate(messages, stream, temperature=0.7, max_tokens=ROLEPLAY_ANSWER_TOKENS,
                                  local_extra=SMALL_MODEL_SAMPLING)
    answer = strip_role_prefix(complete_sentences(generation))
    reply = ChatReply(answer=answer, grounded=False)
    service.guard_instructions(reply, system, "Let's not get sidetracked. Tell me what you actually need from me.",
                               stream)
    reply.debrief_due = conversation.user_turns() + 1 >= DEBRIEF_AFTER_TURNS
    return service.finish(reply, generation)


def strip_role_prefix(answer: str) -> str:
    """Drop a leading speaker label ('CFO:', 'Executive:') that small models like to add."""
    return re.sub(r"^\s*(?:\*\*)?[A-Z][\w .-]{0,40}?:(?:\*\*)?\s+", "", answer, count=1) or answer


# ---- debrief -------------------------------------------------------------------------------------------


def debrief_schema(principle_ids: list[str]) -> dict[str, Any]:
    """The JSON schema of the debrief answer, principle ids restricted to the catalogue."""
    item = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["landed", "missed", "try"]},
            "principle_id": {"type": "string", "enum": principle_ids},
            "point": {"type": "string", "minLength": 3, "maxLength": 300},
        },
        "required": ["kind", "principle_id", "point"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item, "minItems": 1, "maxItems": DEBRIEF_MAX_ITEMS}},
        "required": ["items"],
        "additionalProperties": False,
    }


def transcript(conversation: Conversation, persona: Persona, budget: int = DEBRIEF_TRANSCRIPT_TOKENS) -> str:
    """The rehearsal as text, newest turns kept when it is over budget."""
    from coach.tokens import count_tokens

    lines: list[str] = []
    used = 0
    for message in reversed(conversation.messages):
        who = "IT leader" if message.role == "user" else persona.title
        line = f"{who}: {message.content}"
        used += count_tokens(line) + 1
        if used > budget:
            break
        lines.append(line)
    return "\n".join(reversed(lines))


def catalogue_text(principles: list[Principle]) -> str:
    """The catalogue as the model sees it: id, name and one-line statement."""
    return "\n".join(f"- {p.id}: {p.name}. {p.statement}" for p in principles)


def debrief_messages(conversation: Conversation, persona: Persona, principles: list[Principle]) -> list[Any]:
    """System instructions plus one user message with the catalogue, scenario and transcript as data."""
    from langchain_core.messages import HumanMessage, SystemMessage

    request = load_prompt("debrief_request").fill(
        catalogue=data_block("PRINCIPLES", catalogue_text(principles)),
        scenario=data_block("SCENARIO", scenario_text(conversation.scenario)),
        transcript=data_block("TRANSCRIPT", transcript(conversation, persona)),
        persona=persona.title,
    )
    return [SystemMessage(content=load_prompt("debrief_system").fill()), HumanMessage(content=request)]


def parse_debrief(text: str) -> list[_RawItem]:
    """Items from the model's JSON (code fences and surrounding prose tolerated); invalid items skipped."""
    match = re.search(r"\{.*\}|\[.*\]", text, re.DOTALL)
    if not match:
        return []
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return []
    raw = data.get("items", []) if isinstance(data, dict) else data
    items: list[_RawItem] = []
    for entry in raw if isinstance(raw, list) else []:
        try:
            items.append(_RawItem.model_validate(entry))
        except ValidationError:
            continue
    return items


def resolve_items(raw: list[_RawItem], principles: list[Principle], sources: dict[str, str]) -> list[DebriefItem]:
    """Items whose principle is in the catalogue, each with that principle's verbatim quote and source."""
    by_id = {p.id: p for p in principles}
    items = []
    for entry in raw[:DEBRIEF_MAX_ITEMS]:
        principle = by_id.get(entry.principle_id.strip())
        if principle is None:
            continue
        passage = DebriefPassage(text=principle.quote, source=sources.get(principle.source, principle.source))
        items.append(DebriefItem(kind=entry.kind, point=entry.point.strip(), principle_id=principle.id,
                                 principle=principle.name, passage=passage))
    return items


def document_sources(service: ChatService) -> dict[str, str]:
    """Document id -> source file name, for citing a principle's essay (ids themselves if unavailable)."""
    try:
        from coach.corpus import load_documents

        return {d.id: d.source for d in load_documents(service.settings)}
    except Exception:  # the citation still names the document id; never fail a debrief over a label
        return {}


def debrief(service: ChatService, conversation: Conversation) -> Debrief:
    """Debrief a role-play: what landed, what did not, what to try, each tied to a catalogue principle."""
    if conversation.mode != "roleplay" or not conversation.user_turns():
        raise InputError("There is nothing to debrief yet.", hint="Start a role-play and say a few things first.")
    persona = find_persona(conversation.persona or "ceo")
    principles = service.principles
    messages = debrief_messages(conversation, persona, principles)
    schema = debrief_schema([p.id for p in principles])
    use_schema = bool(service.handle.profile.supports_json_schema)
    sources = document_sources(service)
    total_ms, first_ms = 0.0, 0.0
    for _attempt in range(DEBRIEF_ATTEMPTS):
        try:
            generation = service.generate(messages, None, temperature=0.2, max_tokens=700,
                                          json_schema=schema if use_schema else None)
        except ModelOutputError:  # truncated or unparsable JSON: ask once more
            continue
        total_ms += float(generation.total_ms or 0.0)
        first_ms = first_ms or float(generation.first_token_ms or 0.0)
        raw = parse_debrief(generation.text)
        items = resolve_items(raw, principles, sources)
        if items:
            return Debrief(items=items, persona=persona.id, scenario=conversation.scenario,
                           dropped=len(raw) - len(items),
                           model=str(generation.model or service.settings.model_label),
                           timings={"first_token_ms": first_ms, "total_ms": total_ms})
    raise ModelOutputError(
        "The model's debrief did not name any principle from the catalogue.",
        hint="Try /debrief again, or use a stronger model.", attempts=DEBRIEF_ATTEMPTS,
    )
