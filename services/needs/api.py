"""HTTP routes of the needs service: authorities, buyer groups, needs and market dialogues.

Concurrency: every response carrying a buyer group or a need has `ETag: W/"<version>"`.
PATCH (and close) honour `If-Match` (412 when it names another version); without If-Match
the change applies to whatever version is current.

Who may do what: an operator everything; a buyer group reads and changes itself, publishes
needs for itself, changes and closes its own needs, and co-signs other groups' needs. Open
needs are public; a closed need is visible to its owning group, its co-signers and operators.
A group co-signing its own need gets 409, like any other change the need's state forbids.

Market dialogues: the need's owning and co-signing groups open and answer; invited suppliers
(any registered supplier when the dialogue is open to all) ask and respond; operators read.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.contracts.cpv import normalize_cpv
from services.contracts.nuts import normalize_nuts
from services.contracts.vocab import FocusArea, Procedure
from services.infra.alert_settings import PublicAlertSettings
from services.infra.auth import (
    OperatorDep,
    Principal,
    PrincipalDep,
    TokenOut,
    authenticate,
    fresh_token_description,
    issue_token,
)
from services.infra.etags import IfMatch, etag
from services.infra.http import RuntimeDep
from services.needs import handlers, repository, rules
from services.needs.handlers import Dialogues, Needs
from services.needs.models import (
    AUTHORITY_EXAMPLE,
    DIALOGUE_EXAMPLE,
    GROUP_EXAMPLE,
    NEED_EXAMPLE,
    NEED_PATCH_EXAMPLE,
    AnswerIn,
    AuthorityIn,
    AuthorityOut,
    BuyerGroupCreated,
    BuyerGroupIn,
    BuyerGroupOut,
    BuyerGroupPatch,
    CloseIn,
    DialogueIn,
    DialogueOut,
    DialogueParticipant,
    DialogueRecord,
    Named,
    NeedIn,
    NeedOut,
    NeedPage,
    NeedPatch,
    QuestionIn,
    QuestionOut,
    RecordInput,
    RecordQuestion,
    RecordSupplier,
    ResponseIn,
    ResponseOut,
    SharedBranch,
    SimilarNeed,
    error_responses,
)
from services.needs.record import render_html

router = APIRouter(prefix="/v1")


def _needs(runtime: RuntimeDep) -> Needs:
    return Needs(lambda: runtime.pool, runtime.settings, runtime.schema)


NeedsDep = Annotated[Needs, Depends(_needs)]

_optional_bearer = HTTPBearer(auto_error=False, description="A token issued by Innomatch")


async def _optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return await authenticate(request, credentials.credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(_optional_principal)]


# Authorities.


def _authority_out(authority: rules.Authority) -> AuthorityOut:
    return AuthorityOut.model_validate(authority, from_attributes=True)


@router.post(
    "/authorities",
    status_code=201,
    tags=["authorities"],
    summary="Register a contracting authority",
    responses=error_responses(401, 403, 409, 413, 422),
)
async def create_authority(
    body: Annotated[AuthorityIn, Body(openapi_examples={"authority": {"value": AUTHORITY_EXAMPLE}})],
    _: OperatorDep,
    needs: NeedsDep,
) -> AuthorityOut:
    authority = await needs.create_authority(body.org_number, body.name, body.level, body.region)
    return _authority_out(authority)


@router.get(
    "/authorities",
    tags=["authorities"],
    summary="All contracting authorities",
    responses=error_responses(401, 403),
)
async def list_authorities(_: OperatorDep, needs: NeedsDep) -> list[AuthorityOut]:
    return [_authority_out(a) for a in await needs.authorities()]


# Buyer groups.


def _group_out(group: rules.BuyerGroup) -> BuyerGroupOut:
    return BuyerGroupOut(
        id=group.id,
        name=group.name,
        focus_area=FocusArea(group.focus_area),
        members=[_authority_out(m) for m in group.members],
        alerts=PublicAlertSettings.of(group.alerts),
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def _with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


@router.post(
    "/buyer-groups",
    status_code=201,
    tags=["buyer groups"],
    summary="Form a buyer group of authorities",
    description=(
        "Returns the group's bearer token once. Publishes buyer_group.created (members and alert "
        "settings, for the notifier)."
    ),
    responses=error_responses(401, 403, 413, 422),
)
async def create_group(
    body: Annotated[BuyerGroupIn, Body(openapi_examples={"group": {"value": GROUP_EXAMPLE}})],
    _: OperatorDep,
    needs: NeedsDep,
    request: Request,
    response: Response,
) -> BuyerGroupCreated:
    group = await needs.create_group(body)
    issued = issue_token(request, Principal("buyer_group", group.id))
    _with_etag(response, group.version)
    response.headers["Location"] = f"/v1/buyer-groups/{group.id}"
    return BuyerGroupCreated(
        **_group_out(group).model_dump(), token=issued.token, token_expires_at=issued.expires_at
    )


@router.post(
    "/buyer-groups/{group_id}/token",
    tags=["buyer groups"],
    summary="A fresh token for a buyer group",
    description=fresh_token_description("group"),
    responses=error_responses(401, 403, 404),
)
async def refresh_group_token(
    group_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, request: Request
) -> TokenOut:
    group = await needs.group(principal, str(group_id))
    return TokenOut.of(issue_token(request, Principal("buyer_group", group.id)))


@router.get(
    "/buyer-groups/{group_id}",
    tags=["buyer groups"],
    summary="A buyer group",
    responses=error_responses(401, 403, 404),
)
async def get_group(
    group_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, response: Response
) -> BuyerGroupOut:
    group = await needs.group(principal, str(group_id))
    _with_etag(response, group.version)
    return _group_out(group)


@router.patch(
    "/buyer-groups/{group_id}",
    tags=["buyer groups"],
    summary="Change a buyer group's name, members or alert settings (JSON merge patch)",
    description=(
        "`member_authority_ids` replaces the whole membership; `alerts` is merged field by field. "
        "When the members change, the open needs the group owns or co-signs are republished "
        "(need.updated) with the levels of the authorities now behind them."
    ),
    responses=error_responses(401, 403, 404, 412, 413, 422),
)
async def patch_group(
    group_id: uuid.UUID,
    body: BuyerGroupPatch,
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> BuyerGroupOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    group = await needs.patch_group(principal, str(group_id), patch, if_match)
    _with_etag(response, group.version)
    return _group_out(group)


# Needs.


def _need_out(need: rules.Need) -> NeedOut:
    return NeedOut(
        **need.state.model_dump(),
        authority_count=need.backing.count,
        authorities_by_level=dict(need.backing.by_level),
    )


def _answer(response: Response, need: rules.Need) -> NeedOut:
    _with_etag(response, need.state.version)
    return _need_out(need)


@router.post(
    "/buyer-groups/{group_id}/needs",
    status_code=201,
    tags=["needs"],
    summary="Publish a need of a buyer group",
    description="Publishes need.published with the full need.",
    responses=error_responses(401, 403, 404, 413, 422),
)
async def publish_need(
    group_id: uuid.UUID,
    body: Annotated[NeedIn, Body(openapi_examples={"need": {"value": NEED_EXAMPLE}})],
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
) -> NeedOut:
    need = await needs.publish_need(principal, str(group_id), body)
    response.headers["Location"] = f"/v1/needs/{need.state.id}"
    return _answer(response, need)


@router.get(
    "/needs",
    tags=["needs"],
    summary="Open needs, newest first (public)",
    description=(
        "Filters combine with AND. `cpv` matches a need with that code or a code below it (the "
        "check digit is optional). `region` matches a need that covers the region: one of the "
        "need's regions lies within it or contains it (SE matches a need for SE11, and so does "
        "SE110). `q` matches needs whose title or description contain every word of it, "
        "ignoring case. Pages follow `next_cursor` until it is null."
    ),
    responses=error_responses(422),
)
async def list_needs(
    needs: NeedsDep,
    focus_area: FocusArea | None = None,
    cpv: Annotated[str | None, Query(examples=["34144900-7", "34000000"])] = None,
    region: Annotated[str | None, Query(examples=["SE11"])] = None,
    procedure: Procedure | None = None,
    q: Annotated[str | None, Query(max_length=200, examples=["elbussar"])] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> NeedPage:
    errors: list[dict[str, Any]] = []

    def check(name: str, value: str | None, normalize: Any) -> Any:
        if value is None:
            return None
        try:
            return normalize(value)
        except ValueError as exc:
            errors.append({"loc": ("query", name), "msg": str(exc), "type": "value_error"})
            return None

    after = check("cursor", cursor, rules.decode_cursor)
    filters = repository.NeedFilter(
        focus_area=focus_area.value if focus_area else None,
        procedure=procedure.value if procedure else None,
        cpv=check("cpv", cpv, normalize_cpv),
        region=check("region", region, normalize_nuts),
        terms=rules.query_terms(q or ""),
        after=after,
    )
    if errors:
        raise RequestValidationError(errors)
    items, next_cursor = await needs.open_needs(filters, limit)
    return NeedPage(items=[_need_out(n) for n in items], next_cursor=next_cursor)


@router.get(
    "/needs.ocds.json",
    tags=["needs"],
    summary="Open needs as open data: an OCDS 1.1 release package (public)",
    description=(
        "Every open need as a release of the Open Contracting Data Standard 1.1, at the planning "
        "stage (tag `planning`, tender status `planning`): CPV items with NUTS delivery locations, "
        "the budget in SEK, the buyer groups and their authorities as parties, and the answered "
        "questions of the need's market dialogues as `tender.enquiries` (enquiries extension, "
        "`threadID` the dialogue) without their askers. The ocid is "
        "`<INNOMATCH_OCDS_OCID_PREFIX>-<need id>`."
    ),
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {}}}},
)
async def needs_ocds(needs: NeedsDep, request: Request) -> JSONResponse:
    return JSONResponse(await needs.ocds_package(str(request.url)))


@router.get(
    "/needs/{need_id}",
    tags=["needs"],
    summary="A need (public while open)",
    description="A closed need is shown only to its owning group, its co-signers and operators.",
    responses=error_responses(401, 404),
)
async def get_need(
    need_id: uuid.UUID, principal: OptionalPrincipalDep, needs: NeedsDep, response: Response
) -> NeedOut:
    return _answer(response, await needs.need(principal, str(need_id)))


@router.patch(
    "/needs/{need_id}",
    tags=["needs"],
    summary="Change an open need (JSON merge patch)",
    description="Fields sent replace the stored ones. Publishes need.updated with the full need.",
    responses=error_responses(401, 403, 404, 409, 412, 413, 422),
)
async def patch_need(
    need_id: uuid.UUID,
    body: Annotated[NeedPatch, Body(openapi_examples={"patch": {"value": NEED_PATCH_EXAMPLE}})],
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    return _answer(response, await needs.patch_need(principal, str(need_id), patch, if_match))


@router.post(
    "/needs/{need_id}/close",
    tags=["needs"],
    summary="Close an open need",
    description="Publishes need.closed with the full need and the reason.",
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def close_need(
    need_id: uuid.UUID,
    body: CloseIn,
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    return _answer(response, await needs.close_need(principal, str(need_id), body.reason, if_match))


@router.post(
    "/needs/{need_id}/cosign",
    tags=["needs"],
    summary="Co-sign another group's open need",
    description=(
        "The calling buyer group joins the need; its authorities count behind it. Co-signing "
        "again changes nothing. 409 when the need is closed or is the group's own. Publishes "
        "need.updated with the full need."
    ),
    responses=error_responses(401, 403, 404, 409),
)
async def cosign_need(
    need_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, response: Response
) -> NeedOut:
    return _answer(response, await needs.cosign_need(principal, str(need_id)))


@router.get(
    "/needs/{need_id}/similar",
    tags=["needs"],
    summary="Open needs of other groups about the same things",
    description=(
        "Needs of other buyer groups that share a CPV division or group, or significant words, "
        "best first, each with the score and what they share: candidates for joining forces."
    ),
    responses=error_responses(401, 403, 404),
)
async def similar_needs(need_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep) -> list[SimilarNeed]:
    return [
        SimilarNeed(
            need=_need_out(other),
            score=sim.score,
            shared_cpv_branches=[
                SharedBranch(code=e.code, label_sv=e.label_sv, label_en=e.label_en)
                for e in handlers.shared_branches(sim)
            ],
            shared_words=sim.shared_words,
        )
        for sim, other in await needs.similar_needs(principal, str(need_id))
    ]


# Market dialogues.


def _dialogues(runtime: RuntimeDep) -> Dialogues:
    return Dialogues(lambda: runtime.pool, runtime.settings, runtime.schema)


DialoguesDep = Annotated[Dialogues, Depends(_dialogues)]

_ANONYMITY = (
    "Askers are anonymous between suppliers: no supplier is ever shown who asked a question. "
    "They are not anonymous towards the buyer's own record (`GET /v1/dialogues/{id}/record`), "
    "because answers to a request for information can become public documents (allmänna "
    "handlingar) held by the authority under Swedish public-access law (offentlighetsprincipen)."
)
_CLOSED = "409 once `closes_at` has passed: nothing is asked, answered or submitted after it."


def _named(ident: str, name: str | None) -> Named:
    return Named(id=ident, name=name)


def _dialogue_out(d: rules.Dialogue) -> DialogueOut:
    return DialogueOut(
        id=d.id,
        need_id=d.need_id,
        need_title=d.need_title,
        buyer_groups=[_named(g, d.group_names.get(g)) for g in d.groups],
        title=d.title,
        agenda=d.agenda,
        open=d.open_to_all,
        closes_at=d.closes_at,
        status="closed" if d.status == "closed" else "open",
        suppliers=[_participant_out(s) for s in d.suppliers],
        version=d.version,
        opened_at=d.opened_at,
        updated_at=d.updated_at,
    )


def _participant_out(s: rules.DialogueSupplier) -> DialogueParticipant:
    return DialogueParticipant.model_validate(s, from_attributes=True)


def _question_out(q: rules.Question, principal: Principal | None) -> QuestionOut:
    mine = principal is not None and principal.kind == "supplier" and principal.id == q.asked_by
    return QuestionOut(
        id=q.id,
        question=q.question,
        asked_at=q.asked_at,
        answer=q.answer,
        answered_at=q.answered_at,
        mine=mine,
    )


@router.post(
    "/needs/{need_id}/dialogues",
    status_code=201,
    tags=["dialogues"],
    summary="Open a market dialogue about a need",
    description=(
        "For the need's owning buyer group or a co-signing one, while the need is open. Invitees "
        'are `{"supplier_ids": [...]}` (404 naming any supplier that is not registered) or '
        '`{"shortlist_top": N}` (the need\'s N best current matches, as the matcher published '
        'them on the matches topic; 409 when it has none yet); `"open": true` lets any '
        "registered supplier join by taking part, with or without invitees. Publishes "
        "dialogue.opened and dialogue.supplier_invited for each invited supplier."
    ),
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
async def open_dialogue(
    need_id: uuid.UUID,
    body: Annotated[DialogueIn, Body(openapi_examples={"dialogue": {"value": DIALOGUE_EXAMPLE}})],
    principal: PrincipalDep,
    dialogues: DialoguesDep,
    response: Response,
) -> DialogueOut:
    dialogue = await dialogues.open(principal, str(need_id), body)
    response.headers["Location"] = f"/v1/dialogues/{dialogue.id}"
    return _dialogue_out(dialogue)


@router.get(
    "/needs/{need_id}/dialogues",
    tags=["dialogues"],
    summary="A need's market dialogues that the caller may read, newest first",
    description=(
        "Dialogues open to all for anyone; the others for the need's buyer groups, their "
        "invited or joined suppliers and operators. Empty when there are none."
    ),
    responses=error_responses(422),
)
async def need_dialogues(
    need_id: uuid.UUID, principal: OptionalPrincipalDep, dialogues: DialoguesDep
) -> list[DialogueOut]:
    return [_dialogue_out(d) for d in await dialogues.of_need(principal, str(need_id))]


@router.get(
    "/dialogues/{dialogue_id}",
    tags=["dialogues"],
    summary="A market dialogue: its groups, suppliers and deadline",
    description=(
        "For the need's buyer groups, the invited or joined suppliers and operators; for anyone "
        "when the dialogue is open to all. Another supplier gets 403."
    ),
    responses=error_responses(401, 403, 404),
)
async def get_dialogue(
    dialogue_id: uuid.UUID, principal: OptionalPrincipalDep, dialogues: DialoguesDep
) -> DialogueOut:
    return _dialogue_out(await dialogues.dialogue(principal, str(dialogue_id)))


@router.post(
    "/dialogues/{dialogue_id}/questions",
    status_code=201,
    tags=["dialogues"],
    summary="A participating supplier asks a question",
    description=(
        "An invited supplier asks; in a dialogue open to all, any registered supplier may ask, "
        f"and so joins it. Another supplier gets 403. {_CLOSED} {_ANONYMITY}"
    ),
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
async def ask_question(
    dialogue_id: uuid.UUID, body: QuestionIn, principal: PrincipalDep, dialogues: DialoguesDep
) -> QuestionOut:
    return _question_out(await dialogues.ask(principal, str(dialogue_id), body.question), principal)


@router.post(
    "/dialogues/{dialogue_id}/questions/{question_id}/answer",
    tags=["dialogues"],
    summary="A buyer group answers a question, for every participant",
    description=(
        "For the need's buyer groups; a question is answered once (409 after that). The answer "
        "goes to every participant without naming who asked, and dialogue.question_answered is "
        f"published. {_CLOSED}"
    ),
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
async def answer_question(
    dialogue_id: uuid.UUID,
    question_id: uuid.UUID,
    body: AnswerIn,
    principal: PrincipalDep,
    dialogues: DialoguesDep,
) -> QuestionOut:
    answered = await dialogues.answer(principal, str(dialogue_id), str(question_id), body.answer)
    return _question_out(answered, principal)


@router.get(
    "/dialogues/{dialogue_id}/questions",
    tags=["dialogues"],
    summary="The dialogue's questions and answers, oldest first, never naming who asked",
    description=(
        "Every participant sees every answered question; an unanswered one only the need's "
        "buyer groups, operators and the supplier that asked it (`mine`). In a dialogue open to "
        f"all, anyone sees the answered questions. {_ANONYMITY}"
    ),
    responses=error_responses(401, 403, 404),
)
async def list_questions(
    dialogue_id: uuid.UUID, principal: OptionalPrincipalDep, dialogues: DialoguesDep
) -> list[QuestionOut]:
    return [_question_out(q, principal) for q in await dialogues.questions(principal, str(dialogue_id))]


@router.post(
    "/dialogues/{dialogue_id}/responses",
    status_code=201,
    tags=["dialogues"],
    summary="A supplier accepts, declines, or submits written input",
    description=(
        '`{"response": "accept"}`, `{"response": "decline"}` or `{"response": "input", "text": '
        "...}`; the text is at most 20 KB in UTF-8 (422 naming `text` and how far beyond). A "
        "supplier may respond again: the latest accept or decline counts, and every written "
        f"input is kept. In a dialogue open to all, responding joins it. {_CLOSED}"
    ),
    responses=error_responses(401, 403, 404, 409, 413, 422),
)
async def respond(
    dialogue_id: uuid.UUID, body: ResponseIn, principal: PrincipalDep, dialogues: DialoguesDep
) -> ResponseOut:
    supplier_id, at = await dialogues.respond(principal, str(dialogue_id), body.response, body.text)
    return ResponseOut(dialogue_id=str(dialogue_id), supplier_id=supplier_id, response=body.response, at=at)


def _record(
    d: rules.Dialogue, questions: list[rules.Question], inputs: list[rules.WrittenInput]
) -> DialogueRecord:
    def supplier(ident: str) -> Named:
        s = d.participant(ident)
        return _named(ident, s.name if s else None)

    active = {q.asked_by for q in questions} | {i.supplier_id for i in inputs}
    return DialogueRecord(
        dialogue=_dialogue_out(d),
        suppliers=[
            RecordSupplier(
                **_participant_out(s).model_dump(),
                took_part=s.supplier_id in active or s.joined_at is not None or s.response == "accepted",
            )
            for s in d.suppliers
        ],
        questions=[
            RecordQuestion(
                id=q.id,
                question=q.question,
                asked_by=supplier(q.asked_by),
                asked_at=q.asked_at,
                answer=q.answer,
                answered_by=None
                if q.answered_by is None
                else _named(q.answered_by, d.group_names.get(q.answered_by)),
                answered_at=q.answered_at,
            )
            for q in questions
        ],
        written_inputs=[
            RecordInput(supplier=supplier(i.supplier_id), text=i.text, submitted_at=i.submitted_at)
            for i in inputs
        ],
        generated_at=datetime.now(UTC),
    )


@router.get(
    "/dialogues/{dialogue_id}/record",
    tags=["dialogues"],
    summary="The record of a dialogue, to keep with the procurement documents (JSON or HTML)",
    description=(
        "For the need's buyer groups and operators: who was invited, who took part, every "
        "question with who asked it and its answer, and the written inputs, with times. JSON by "
        "default; HTML with `?format=html` or `Accept: text/html` (`format` wins). " + _ANONYMITY
    ),
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"application/json": {}, "text/html": {}}},
    },
    response_model=DialogueRecord,
)
async def dialogue_record(
    dialogue_id: uuid.UUID,
    principal: PrincipalDep,
    dialogues: DialoguesDep,
    request: Request,
    format: Literal["json", "html"] | None = None,
) -> Response:
    record = _record(*await dialogues.record(principal, str(dialogue_id)))
    wants_html = format == "html" or (format is None and "text/html" in request.headers.get("accept", ""))
    if wants_html:
        return HTMLResponse(render_html(record))
    return JSONResponse(record.model_dump(mode="json"))
