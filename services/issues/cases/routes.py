"""Issue routes: report, list, read, one route per action, the events and the chain check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, StringConstraints

from services.issues.calendar.rules import Light
from services.issues.cases import actions, history, service
from services.issues.cases.rules import Action, Source, Status
from services.issues.cases.schemas import (
    ACTION_BODIES,
    ChainReport,
    EventList,
    IssueCreate,
    IssuePage,
    IssuePublic,
)
from services.issues.categories.rules import CODE_PATTERN
from services.issues.deps import ReadSessionDep, SessionDep, StateDep, statement_session
from services.kit.auth import Caller, require_scope
from services.kit.db import utcnow
from services.kit.errors import problem_docs
from services.kit.fields import TRUE_FALSE, Moment, OptionalQueryBool, QueryBool
from services.kit.identity import Scope
from services.kit.pagination import PageDep

# PostgreSQL refuses NUL in text: a filter that holds one is refused (422) instead of failing (500).
CategoryCode = Annotated[str, StringConstraints(pattern=CODE_PATTERN)]
NoNul = Annotated[str, StringConstraints(max_length=32, pattern=r"^[^\x00]*$")]

router = APIRouter(tags=["issues"])

IssuesReaderDep = Annotated[Caller, Depends(require_scope(Scope.issues_read))]
IssuesWriterDep = Annotated[Caller, Depends(require_scope(Scope.issues_write))]
IssueId = Annotated[int, Path(ge=1, le=2**62, description="The issue's `id`.")]

# The scope each action needs beside the role the rules ask for.
ACTION_SCOPES: dict[Action, Scope] = {
    Action.verify: Scope.issues_verify,
    Action.reject: Scope.issues_verify,
    Action.assign: Scope.issues_verify,
    Action.unlink: Scope.issues_verify,
    Action.accept: Scope.issues_accept,
    Action.return_: Scope.issues_accept,
}

# What `verify` and `assign` refuse beside the state and the role.
_DISPATCH_RULES = (
    " A responsible region must hold the issue's place (else 422 `responsible_cannot_see`; above the town: "
    "`responsible_level`); a responsible user must exist and be active (`responsible_user_unknown`), fix things "
    "(`responsible_user_role`) and work where the issue is (`responsible_user_cannot_see`); a new region without "
    "a user drops the previous unit's user. A deadline given must lie ahead (422 `deadline_passed`)."
)

ACTION_DOCS: dict[Action, str] = {
    Action.verify: "立案: a reported problem is real; it is assigned to the responsible unit with a deadline "
    "(the category's working days for its severity unless given). Admin, inspector, officer."
    + _DISPATCH_RULES,
    Action.reject: "Not a problem to fix here (`invalid`, `duplicate` of `duplicate_of`, `not_responsible`, "
    "`other` with a note), from `reported` or `assigned`. Never counted as fixed. Merging a probable duplicate "
    "is this with reason `duplicate` and `duplicate_of` its `probable_duplicate_of`. Admin, inspector, officer.",
    Action.assign: "派遣 (again): the responsible region or user and the deadline; from `reported` it is the "
    "立案 too. Admin, inspector, officer." + _DISPATCH_RULES,
    Action.submit: "整改完毕: at least one after photo. Each is checked with the media service: its distance "
    "from the issue's point, a capture time before the report, missing EXIF, and whether it is (a copy of) this "
    "issue's before photo, a fix handed in before and returned, or another issue's photo; the findings are kept in `evidence_flags` and the event. "
    "A photo the media service does not know, or not the caller's to use: 422 `photos_refused` naming it.",
    Action.accept: "销号, by an inspector or the office, never by the one who submitted. After photos with a "
    "distance, time or reuse flag need an `override_reason` (else 409 `evidence_flags_unresolved`).",
    Action.return_: "退回重整: rework count + 1 and a new deadline (one given must lie ahead, else 422 "
    "`deadline_passed`). Inspector or the office, not the submitter.",
    Action.request_extension: "申请延期, with a reason and the date asked for. Officer, village, grid.",
    Action.approve_extension: "The office grants the extension: the deadline moves, to `until` or the date asked "
    "for, which must be after the current deadline (else 422 `extension_too_short`).",
    Action.refuse_extension: "The office refuses the extension: the deadline stays.",
    Action.put_on_account: "挂账: cannot be fixed soon (money, construction); a plan and a target date. The office.",
    Action.resume: "Off the account again, optionally with a new deadline (ahead of now, else 422 "
    "`deadline_passed`). The office.",
    Action.supervise: "督办: marked for supervision. Inspector or the office.",
    Action.recur: "反弹: the closed problem is back; answers 201 with a new issue linked to this one.",
    Action.feedback: "群众满意度: the reporter's satisfaction (1–5) with the fix, once, after closing.",
    Action.unlink: "Not a duplicate after all: clears `probable_duplicate_of`.",
}


@router.post(
    "/v1/issues",
    response_model=IssuePublic,
    status_code=status.HTTP_201_CREATED,
    summary="Report an issue",
    description="A problem in a village or grid of the caller's subtree. Inspectors' and the office's findings "
    "(`inspection`, `covert`) start `assigned` with a deadline; citizen, grid, hotline and integration reports "
    "start `reported` and are verified first. Before photos are checked with the media service (they must "
    "exist and be the caller's own or in its region, else 422 `photos_refused` naming each) and pinned to the "
    "issue. A latitude without a longitude or the reverse: 422 `incomplete_position`; a category that does not "
    "exist or is retired: 422 `unknown_category`, `category_inactive`; `fields` that are not the "
    "category's extra fields (unknown keys, a required one missing, a value of the wrong type or not one of "
    "the choices): 422 `fields_do_not_fit` naming each; a region that is not a village or grid: "
    "422 `region_not_village`; a responsible region above the town: 422 `responsible_level`, one that does not hold "
    "the place or a responsible user who could not take the fix in hand: 422 `responsible_cannot_see`, "
    "`responsible_user_unknown`, `responsible_user_role`, `responsible_user_cannot_see`; a deadline that has "
    "passed: 422 `deadline_passed`. A report near an open "
    "issue of "
    "the same category (50 m) answers with `probable_duplicate_of`. Citizens may report a limited number an "
    "hour (429 with `Retry-After`).",
    responses=problem_docs(403, 429, 503),
)
async def report_issue(
    body: IssueCreate, caller: IssuesWriterDep, state: StateDep, request: Request
) -> Response:
    async with statement_session(request) as session:
        reported = await service.create(session, state, caller, body)
    return Response(
        service.Presenter(caller, utcnow(), reported.codes).json(reported.row),
        status_code=status.HTTP_201_CREATED,
        media_type="application/json",
        headers={"Location": f"/v1/issues/{reported.row['id']}"},
    )


async def _filters(
    region: Annotated[str | None, Query(max_length=32, description="Only issues under this region.")] = None,
    status: Annotated[list[Status] | None, Query(description="Any of these statuses.")] = None,
    category: Annotated[list[CategoryCode] | None, Query(max_length=20)] = None,
    source: Annotated[list[Source] | None, Query()] = None,
    severity: Annotated[list[NoNul] | None, Query(max_length=3)] = None,
    overdue: Annotated[
        OptionalQueryBool, Query(description="Open and past the deadline (or not). " + TRUE_FALSE)
    ] = None,
    light: Annotated[Light | None, Query(description="The traffic light of open issues.")] = None,
    reported_from: Annotated[Moment | None, Query()] = None,
    reported_to: Annotated[Moment | None, Query(description="Exclusive.")] = None,
    closed_from: Annotated[Moment | None, Query()] = None,
    closed_to: Annotated[Moment | None, Query(description="Exclusive.")] = None,
    q: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[^\x00]*$", description="Text in the description or address."),
    ] = None,
    mine: Annotated[QueryBool, Query(description="Reported by me or assigned to me. " + TRUE_FALSE)] = False,
) -> service.IssueFilters:
    return service.IssueFilters(
        region=region,
        status=status or (),
        category=category or (),
        source=source or (),
        severity=severity or (),
        overdue=overdue,
        light=light,
        reported_from=reported_from,
        reported_to=reported_to,
        closed_from=closed_from,
        closed_to=closed_to,
        q=q,
        mine=mine,
    )


FiltersDep = Annotated[service.IssueFilters, Depends(_filters)]


@router.get(
    "/v1/issues",
    response_model=IssuePage,
    summary="List issues",
    description="Issues in the caller's subtree (a citizen: its own reports), newest first, in cursor pages.",
    responses=problem_docs(403),
)
async def list_issues(
    session: ReadSessionDep, caller: IssuesReaderDep, page: PageDep, filters: FiltersDep
) -> Response:
    listed = await service.list_issues(session, caller, filters, page)
    return Response(listed.json(), media_type="application/json")


@router.get(
    "/v1/issues/{issue_id}", response_model=IssuePublic, summary="An issue", responses=problem_docs(403)
)
async def read_issue(issue_id: IssueId, session: ReadSessionDep, caller: IssuesReaderDep) -> Response:
    issue = await service.get_visible(session, caller, issue_id)
    shape = await service.presenter(session, caller, [issue])
    return Response(shape.json(issue), media_type="application/json")


@router.get(
    "/v1/issues/{issue_id}/events",
    response_model=EventList,
    summary="An issue's history",
    description="Every change, oldest first: who (hidden from village and grid cadres when it is the reporter), "
    "as what role, when, the note, what changed, the photos' SHA-256 and flags, and the hash chain.",
    responses=problem_docs(403),
)
async def issue_events(issue_id: IssueId, session: SessionDep, caller: IssuesReaderDep) -> EventList:
    return EventList(
        items=await history.events_of(session, caller, await service.get_visible(session, caller, issue_id))
    )


@router.get(
    "/v1/issues/{issue_id}/verify",
    response_model=ChainReport,
    summary="Check an issue's history has not been changed",
    description="Recomputes every event's hash and link: an edited, deleted, inserted or reordered row behind "
    "the API's back shows as the first event that does not hold.",
    responses=problem_docs(403),
)
async def verify_issue(issue_id: IssueId, session: SessionDep, caller: IssuesReaderDep) -> ChainReport:
    return await history.check_chain(session, await service.get_visible(session, caller, issue_id))


def _action_route(action: Action, body_type: type[BaseModel]) -> None:
    scope = ACTION_SCOPES.get(action, Scope.issues_write)
    ActorDep = Annotated[Caller, Depends(require_scope(scope))]  # noqa: N806 - a dependency alias

    async def take(
        issue_id: IssueId,
        body: body_type,  # type: ignore[valid-type]
        session: SessionDep,
        caller: ActorDep,
        state: StateDep,
    ) -> Response:
        issue, recurred = await actions.act(session, state, caller, issue_id, action, body)
        shown = recurred or issue
        shape = (await service.presenter(session, caller, [shown])).json(shown)
        if recurred is None:
            return Response(shape, media_type="application/json")
        return Response(
            shape,
            status_code=status.HTTP_201_CREATED,
            media_type="application/json",
            headers={"Location": f"/v1/issues/{recurred.id}"},
        )

    take.__name__ = f"issue_{action.name.rstrip('_')}"
    # Annotations are text here (postponed evaluation): the two that name this closure's locals are given
    # as objects, so FastAPI reads the action's own body schema and scope.
    take.__annotations__.update(body=body_type, caller=ActorDep)
    router.add_api_route(
        f"/v1/issues/{{issue_id}}/actions/{action.value}",
        take,
        methods=["POST"],
        response_model=IssuePublic,
        status_code=status.HTTP_201_CREATED if action is Action.recur else status.HTTP_200_OK,
        summary=f"Action: {action.value}",
        description=ACTION_DOCS[action]
        + " A role that may never take it: 403 `role_not_allowed`, whatever the state; not possible from the "
        "current state: 409 `action_not_allowed` naming what the caller may do; an issue outside the caller's "
        "region: 404.",
        responses=problem_docs(403, 409, 503),
    )


for _action, _body in ACTION_BODIES.items():
    _action_route(_action, _body)
