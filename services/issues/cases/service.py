"""What the lifecycle does: take a report, act on an issue, keep every change as a chained event.

Every read starts from "issues in the caller's region subtree" (a citizen: its own reports), so an issue
outside is simply not found. Each action loads the issue (locked on PostgreSQL; a version column catches
a concurrent change anywhere), asks the rules whether the state and the role allow it, applies it, and
appends one event holding the hash of the one before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from pydantic_core import PydanticUndefined, to_json
from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from services.issues.calendar.rules import Light
from services.issues.cases import evidence, history, timing
from services.issues.cases.history import HIDES_REPORTER
from services.issues.cases.models import Issue, IssueCounter, IssueEvent
from services.issues.cases.rules import (
    GENESIS,
    OPEN_STATUSES,
    RESPONSIBLE,
    Action,
    CaseState,
    Source,
    Status,
    actions_for,
    initial_status,
    issue_code,
)
from services.issues.cases.schemas import (
    IssueCreate,
)
from services.issues.categories.service import active_category
from services.issues.deps import IssuesState
from services.issues.regions.models import Level, Region
from services.issues.regions.rules import valid_code as valid_region_code
from services.issues.regions.service import county_above
from services.issues.regions.service import get_visible as visible_region
from services.issues.users.models import User
from services.kit.auth import Caller, in_subtree, in_subtree_param, subtree_param
from services.kit.db import DriverStatement, utcnow
from services.kit.errors import BadRequest, FieldError, NotFound, Problem, UnprocessableEntity
from services.kit.geo import distance_m
from services.kit.identity import Role, codes_in_path
from services.kit.pagination import PageParams, decode_cursor, encode_cursor

ISSUE_REGION_LEVELS = frozenset({Level.village, Level.grid})
RESPONSIBLE_LEVELS = frozenset({Level.town, Level.zone, Level.village, Level.grid})


class TooManyReports(Problem):
    status, code, title = 429, "too_many_reports", "Too many requests"


def _not_found(what: str | int) -> NotFound:
    return NotFound(f"issue {what} not found", code="issue_not_found")


def visible_to(caller: Caller) -> ColumnElement[bool]:
    """Issues in the caller's subtree; a citizen sees only its own reports."""
    condition = in_subtree(col(Issue.region_path), caller)
    if caller.role is Role.citizen:
        condition = and_(condition, col(Issue.reporter) == str(caller.subject))
    return condition


async def get_visible(session: AsyncSession, caller: Caller, issue_id: int, *, lock: bool = False) -> Issue:
    statement = select(Issue).where(col(Issue.id) == issue_id, visible_to(caller))
    if lock and session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update()
    issue = (await session.execute(statement)).scalar_one_or_none()
    if issue is None:
        raise _not_found(issue_id)
    return issue


def state_of(issue: Issue) -> CaseState:
    return CaseState(
        status=Status(issue.status),
        extension_pending=issue.extension_pending,
        on_account=issue.on_account,
        supervised=issue.supervised,
        has_feedback=issue.satisfaction is not None,
        probable_duplicate=issue.probable_duplicate_of is not None,
    )


# ---- the public shape ----


_OPEN_VALUES = frozenset(s.value for s in OPEN_STATUSES)


@dataclass(frozen=True)
class Presenter:
    """Shapes issues for one caller: codes of linked issues, the light, what the caller may do.

    `fields` gives `IssuePublic`'s fields as JSON-ready values, written with pydantic-core's `to_json`
    (`json`): the rows are the stored ones, every value already what the schema says, so no model is built
    and nothing validated again (a test holds the answers to `IssuePublic`).
    """

    caller: Caller
    now: datetime
    codes: dict[int, str]
    _subject: str = field(init=False)
    _allowed_by_state: dict[tuple[Any, ...], list[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subject", str(self.caller.subject))

    def json(self, issue: Issue | dict[str, Any]) -> bytes:
        return to_json(self.fields(issue))

    def fields(self, issue: Issue | dict[str, Any]) -> dict[str, Any]:
        """The issue as `IssuePublic`'s fields (an `Issue`, or its columns as a dict)."""
        v = issue if isinstance(issue, dict) else _values_of(issue)
        assert v["id"] is not None
        open_ = v["status"] in _OPEN_VALUES
        deadline, now, codes = v["deadline"], self.now, self.codes
        light = timing.light_at(deadline, v["yellow_at"], now) if open_ else None
        return {
            "id": v["id"],
            "code": v["code"],
            "status": v["status"],
            "category": v["category"],
            "severity": v["severity"],
            "source": v["source"],
            "region": v["region_code"],
            "responsible_region": v["responsible_region_code"],
            "responsible_user_id": v["responsible_user_id"],
            "description": v["description"],
            "address": v["address"],
            "latitude": v["latitude"],
            "longitude": v["longitude"],
            "fields": v["fields"],
            "before_photo_ids": v["before_photo_ids"],
            "after_photo_ids": v["after_photo_ids"],
            "evidence_flags": v["evidence_flags"],
            "reporter": None if self.caller.role in HIDES_REPORTER else v["reporter"],
            "reported_at": v["reported_at"],
            "deadline": deadline,
            "light": light.value if light is not None else None,
            "overdue": open_ and deadline is not None and now > deadline,
            "submitted_at": v["submitted_at"],
            "closed_at": v["closed_at"],
            "closed_late": v["closed_late"],
            "rejected_at": v["rejected_at"],
            "reject_reason": v["reject_reason"] or None,
            "rework_count": v["rework_count"],
            "extension_count": v["extension_count"],
            "extension_pending": v["extension_pending"],
            "on_account": v["on_account"],
            "account_plan": v["account_plan"],
            "account_target": v["account_target"],
            "supervised": v["supervised"],
            "probable_duplicate_of": codes.get(v["probable_duplicate_of"] or 0),
            "duplicate_of": codes.get(v["duplicate_of"] or 0),
            "recurrence_of": codes.get(v["recurrence_of"] or 0),
            "satisfaction": v["satisfaction"],
            "allowed_actions": self._allowed(v),
        }

    def _allowed(self, v: dict[str, Any]) -> list[str]:
        """What this caller may do with the issue now (the same answer for every issue in the same state)."""
        mine, submitted = v["reporter"] == self._subject, v["submitter"] == self._subject
        feedback, duplicate = v["satisfaction"] is not None, v["probable_duplicate_of"] is not None
        key = (
            v["status"],
            v["extension_pending"],
            v["on_account"],
            v["supervised"],
            feedback,
            duplicate,
            mine,
            submitted,
        )
        found = self._allowed_by_state.get(key)
        if found is None:
            state = CaseState(
                status=Status(v["status"]),
                extension_pending=v["extension_pending"],
                on_account=v["on_account"],
                supervised=v["supervised"],
                has_feedback=feedback,
                probable_duplicate=duplicate,
            )
            found = self._allowed_by_state[key] = [
                a.value
                for a in actions_for(state, self.caller.role)
                if (a is not Action.feedback or mine)
                and (a not in (Action.accept, Action.return_) or not submitted)
            ]
        return found


# Every column of the issues table, by the attribute names an `Issue` and a row read from the table share.
_ISSUE_COLUMNS = tuple(Issue.__table__.columns)  # type: ignore[attr-defined]
_ISSUE_KEYS = tuple(column.key for column in _ISSUE_COLUMNS)


def _values_of(issue: Issue) -> dict[str, Any]:
    return {name: getattr(issue, name) for name in _ISSUE_KEYS}


_LINKS = ("probable_duplicate_of", "duplicate_of", "recurrence_of")


async def presenter(
    session: AsyncSession, caller: Caller, issues: Sequence[Issue | dict[str, Any]]
) -> Presenter:
    linked = {
        i
        for issue in issues
        for i in (
            (issue[k] for k in _LINKS) if isinstance(issue, dict) else (getattr(issue, k) for k in _LINKS)
        )
        if i
    }
    codes: dict[int, str] = {}
    if linked:
        rows = await session.execute(
            select(col(Issue.id), col(Issue.code)).where(col(Issue.id).in_(sorted(linked)))
        )
        codes = {issue_id: code for issue_id, code in rows.all() if issue_id is not None}
    return Presenter(caller, utcnow(), codes)


# ---- reporting ----


# The open statuses written into the statement (an `IN` list of parameters is expanded at each execution,
# and a `DriverStatement` cannot hold one); they are the partial index's own words.
_OPEN_INLINE = col(Issue.status).in_([literal_column(f"'{s.value}'") for s in OPEN_STATUSES])


# Open issues of a category in a box around a point, in a county (`ix_issues_open_nearby` on PostgreSQL).
def _nearby_where(county: Any) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Issue.county_code) == county,
        col(Issue.category) == bindparam("category"),
        _OPEN_INLINE,
        col(Issue.latitude).between(bindparam("south"), bindparam("north")),
        col(Issue.longitude).between(bindparam("west"), bindparam("east")),
    )


_NEARBY_COLUMNS = (col(Issue.id), col(Issue.code), col(Issue.latitude), col(Issue.longitude))


def _nearby_json(dialect: str, county: Any) -> Any:
    """The open issues of `:category` in the box, as a JSON array of [id, code, latitude, longitude]."""
    if dialect == "postgresql":
        found: Any = func.json_agg(func.json_build_array(*_NEARBY_COLUMNS))
    else:
        found = func.json_group_array(func.json_array(*_NEARBY_COLUMNS))
    return type_coerce(select(found).where(*_nearby_where(county)).scalar_subquery(), JSON)


def _lookup(dialect: str, *, nearby: bool) -> Any:
    """A report's reads, one statement: the region `:code` if it lies in the caller's subtree (`:subtree`),
    the county it lies in, on PostgreSQL the new issue's id (`nextval`: ids need not be gap-free, codes must
    be) and (`nearby`) the open issues of the category around the point."""
    county = county_above()
    columns: list[Any] = [col(Region.code), col(Region.path), col(Region.level), county.label("county")]
    if dialect == "postgresql":
        columns.append(func.nextval(func.pg_get_serial_sequence("issues", "id")).label("issue_id"))
    if nearby:
        columns.append(_nearby_json(dialect, county).label("nearby"))
    return select(*columns).where(col(Region.code) == bindparam("code"), in_subtree_param(col(Region.path)))


# Built once (statements are cheap to run from the compiled cache, not to construct).
_LOOKUP = {
    (dialect, nearby): DriverStatement(_lookup(dialect, nearby=nearby))
    for dialect in ("postgresql", "sqlite")
    for nearby in (False, True)
}
_NEARBY_IN = {
    dialect: select(_nearby_json(dialect, bindparam("county"))) for dialect in ("postgresql", "sqlite")
}


def _dialect(session: AsyncSession) -> str:
    return "postgresql" if session.get_bind().dialect.name == "postgresql" else "sqlite"


class Place(Protocol):
    """A region as a report needs it (a `Region`, or the columns `_lookup` reads)."""

    @property
    def code(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def level(self) -> str: ...


@dataclass(frozen=True)
class Spot:
    code: str
    path: str
    level: str


@dataclass(frozen=True)
class Found:
    """What a report's lookup found: its region, the county, the new issue's id (PostgreSQL; on SQLite it
    is taken with the number, under the write lock) and the open issues of the category around the point."""

    region: Spot
    county: str
    issue_id: int | None
    nearby: list[tuple[int, str, float, float]]


async def _look_up(
    session: AsyncSession, caller: Caller, code: str, category: str, box: dict[str, float] | None
) -> Found:
    """The region a report names, in the caller's subtree (else 404), with what the report needs of the
    database before it is written."""
    if not valid_region_code(code):
        raise NotFound(f"region {code} not found", code="region_not_found")
    dialect = _dialect(session)
    params: dict[str, Any] = {"code": code, "subtree": subtree_param(caller)}
    if box is not None:
        params |= {"category": category, **box}
    row = await _LOOKUP[dialect, box is not None].first(session, params)  # Core: no entity
    if row is None:
        raise NotFound(f"region {code} not found", code="region_not_found")
    region, county = Spot(*row[:3]), row[3]
    issue_id = int(row[4]) if dialect == "postgresql" else None
    found = row[-1] if box is not None else None
    if county is None:  # a tree without a county level: its root's code, and the neighbours under it
        county = codes_in_path(region.path)[0]
        if box is not None:
            nearby_in = _NEARBY_IN[dialect]
            found = (await session.execute(nearby_in, params | {"county": county})).scalar_one()
    nearby = [
        (int(i), str(c), float(lat), float(lon))
        for i, c, lat, lon in (found or [])
        if lat is not None and lon is not None
    ]
    return Found(region, county, issue_id, nearby)


def _counter(dialect: str) -> Any:
    """The county-year's counter moved on by one, returning its new number (the row stays locked until the
    write that took it ends: codes are gap-free and unique under concurrency)."""
    upsert: Any = postgresql.insert(IssueCounter) if dialect == "postgresql" else sqlite.insert(IssueCounter)
    return upsert.values(
        county_code=bindparam("county"), year=bindparam("year"), last_number=1
    ).on_conflict_do_update(
        index_elements=[col(IssueCounter.county_code), col(IssueCounter.year)],
        set_={"last_number": IssueCounter.last_number + 1},
    )


def _code_sql(number: Any) -> Any:
    """`issue_code` in SQL: `:prefix` (county and year) and the number, six digits at least."""
    digits = cast_(number, String)
    return bindparam("prefix", type_=String) + func.lpad(digits, func.greatest(6, func.length(digits)), "0")


def _writing_report(outbox: Table | None) -> Any:
    """PostgreSQL: a report's writes as one statement, atomic on its own — the counter's next number, the
    issue with the code made of it, its first event and (`outbox`) the row that pins its photos in media.
    Parameters: the issue's columns as `i_<name>` (`i_code` unused), the event's as `e_<name>`, the outbox
    row's as `o_<name>`, and `county`, `year`, `prefix`. Returns the number (and the outbox row's id)."""
    issues, events = Issue.__table__, IssueEvent.__table__  # type: ignore[attr-defined]
    number = _counter("postgresql").returning(col(IssueCounter.last_number).label("n")).cte("number")
    issue_values = [
        _code_sql(number.c.n) if c.name == "code" else bindparam(f"i_{c.name}", type_=c.type)
        for c in issues.columns
    ]
    new_issue = (
        insert(issues)
        .from_select([c.name for c in issues.columns], select(*issue_values).select_from(number))
        .returning(issues.c.code)
        .cte("new_issue")
    )
    event_columns = [c for c in events.columns if c.name != "id"]
    event = insert(events).from_select(
        [c.name for c in event_columns],
        select(*[bindparam(f"e_{c.name}", type_=c.type) for c in event_columns]).select_from(new_issue),
    )
    returned: list[Any] = [select(number.c.n).scalar_subquery()]
    if outbox is not None:
        payload = func.json_build_object(
            "issue_code",
            new_issue.c.code,
            "region_code",
            bindparam("o_region_code", type_=String),
            "region_path",
            bindparam("o_region_path", type_=String),
            "photo_ids",
            bindparam("o_photo_ids", type_=JSON),
        )
        at = bindparam("o_at", type_=outbox.c.created_at.type)
        queued = (
            insert(outbox)
            .from_select(
                ["kind", "payload", "created_at", "due_at", "attempts"],
                select(bindparam("o_kind", type_=String), payload, at, at, literal(0)).select_from(new_issue),
            )
            .returning(outbox.c.id)
            .cte("queued")
        )
        returned.append(select(queued.c.id).scalar_subquery())
    return event.returning(*returned)


_WRITING_REPORT: dict[Table | None, DriverStatement] = {None: DriverStatement(_writing_report(None))}
_COUNTER_SQLITE = _counter("sqlite").returning(
    col(IssueCounter.last_number), select(func.coalesce(func.max(col(Issue.id)), 0) + 1).scalar_subquery()
)
_INSERT_ISSUE = insert(Issue.__table__)  # type: ignore[attr-defined]
_INSERT_EVENT = insert(IssueEvent.__table__)  # type: ignore[attr-defined]


async def _store(
    session: AsyncSession,
    state: IssuesState,
    row: dict[str, Any],
    first_event: Callable[[dict[str, Any]], dict[str, Any]],
    photo_ids: list[str],
) -> None:
    """Number the new issue (`row`, its columns), chain its first event (`first_event`, given the row once
    its id is known; it moves the row's chain head) and write both, with the outbox row that pins its
    photos; `row` gets its code (and on SQLite its id).

    PostgreSQL: one statement (`_writing_report`), so a report needs no transaction of its own. SQLite:
    the counter's upsert takes the write lock and the next id under it, then the inserts (the route's
    transaction holds them together)."""
    county, year = row["county_code"], row["reported_at"].astimezone(timing.CHINA).year
    if _dialect(session) == "sqlite":
        connection = await session.connection()  # Core, not the ORM's bulk-insert path for a mapped table
        number, row["id"] = (
            await connection.execute(_COUNTER_SQLITE, {"county": county, "year": year})
        ).one()
        row["code"] = issue_code(county, year, int(number))
        event = first_event(row)
        await connection.execute(_INSERT_ISSUE, row)
        await connection.execute(_INSERT_EVENT, event)
        if photo_ids:
            await state.outbox.enqueue(session, evidence.ATTACH, _attach_payload(row, photo_ids))
        return
    event = first_event(row)
    params = (
        {f"i_{k}": v for k, v in row.items()}
        | {f"e_{k}": v for k, v in event.items()}
        | {"county": county, "year": year, "prefix": f"{county}-{year}-"}
    )
    outbox = state.outbox.table if photo_ids else None
    if outbox is not None:
        state.outbox.check_kind(evidence.ATTACH)
        params |= {
            "o_kind": evidence.ATTACH,
            "o_region_code": row["region_code"],
            "o_region_path": row["region_path"],
            "o_photo_ids": photo_ids,
            "o_at": utcnow(),
        }
        if outbox not in _WRITING_REPORT:
            _WRITING_REPORT[outbox] = DriverStatement(_writing_report(outbox))
    written = await _WRITING_REPORT[outbox].one(session, params)
    row["code"] = issue_code(county, year, int(written[0]))
    if outbox is not None:
        state.outbox.deliver_after_commit(session, int(written[1]))


def _attach_payload(row: dict[str, Any], photo_ids: Sequence[str]) -> dict[str, Any]:
    return {
        "issue_code": row["code"],
        "region_code": row["region_code"],
        "region_path": row["region_path"],
        "photo_ids": list(photo_ids),
    }


async def next_code(session: AsyncSession, county: str, year: int) -> str:
    """The next code of a county's year, in the session's transaction (the demo's issues take theirs)."""
    dialect = _dialect(session)
    statement = _counter(dialect).returning(col(IssueCounter.last_number))
    number = (await session.execute(statement, {"county": county, "year": year})).scalar_one()
    return issue_code(county, year, int(number))


async def _region_paths(session: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(
        select(col(Region.code), col(Region.path)).where(col(Region.code).in_(sorted(codes)))
    )
    return {code: path for code, path in rows.all()}


async def _checked_photos(
    session: AsyncSession, state: IssuesState, caller: Caller, ids: Sequence[str], *, issue_code: str | None
) -> list[evidence.MediaPhoto]:
    """The photos as media knows them, if this caller may use them as evidence; else 422 and nothing stored."""
    if not ids:
        return []
    items = await evidence.fetch_photos(state.media, ids)
    paths = await _region_paths(session, {str(item.get("region_code", "")) for item in items})
    found = {str(item["id"]): evidence.MediaPhoto.of(item, paths) for item in items}
    refused = evidence.refusals(ids, found, caller, issue_code=issue_code)
    if refused:
        raise evidence.PhotosRefused(
            "; ".join(refused),
            errors=[FieldError(field="body.photo_ids", message=r, type="photo") for r in refused],
        )
    return [found[i] for i in dict.fromkeys(ids)]


async def _responsible(session: AsyncSession, caller: Caller, code: str | None, default: Place) -> Place:
    if code is None:
        return default
    region = await visible_region(session, caller, code)
    if Level(region.level) not in RESPONSIBLE_LEVELS:
        raise UnprocessableEntity(
            f"region {code} is a {region.level}: a town, 管区, village or grid is responsible",
            code="responsible_level",
        )
    if not default.path.startswith(region.path):
        # Its people see the issues in their own region only: one below the place or beside it could not.
        raise UnprocessableEntity(
            f"region {code} does not contain {default.code}, where the issue is: its people could not see it",
            code="responsible_cannot_see",
        )
    return region


async def responsible_user(session: AsyncSession, user_id: int | None, place_path: str) -> int | None:
    """The user named responsible for an issue at `place_path`, if it can take the fix in hand: an active
    user of a role that submits fixes, whose region holds the place (else it could not see the issue)."""
    if user_id is None:
        return None
    row = (
        await session.execute(
            select(col(User.role), col(User.disabled), col(Region.path))
            .join(Region, col(Region.id) == col(User.region_id))
            .where(col(User.id) == user_id)
        )
    ).one_or_none()
    if row is None or row.disabled:
        raise UnprocessableEntity(f"user {user_id} not found", code="responsible_user_unknown")
    if Role(row.role) not in RESPONSIBLE:
        raise UnprocessableEntity(
            f"user {user_id} is a {row.role}: a town, village or grid cadre (or the office) takes a fix in hand",
            code="responsible_user_role",
        )
    if not place_path.startswith(row.path):
        raise UnprocessableEntity(
            f"user {user_id} works outside the issue's place: it could not see the issue",
            code="responsible_user_cannot_see",
        )
    return user_id


async def _throttle_citizen(session: AsyncSession, state: IssuesState, caller: Caller) -> None:
    if caller.role is not Role.citizen:
        return
    since = utcnow() - timedelta(hours=1)
    rows = await session.execute(
        select(col(Issue.reported_at))
        .where(col(Issue.reporter) == str(caller.subject), col(Issue.reported_at) >= since)
        .order_by(col(Issue.reported_at))
    )
    recent = [at for (at,) in rows.all()]
    limit = state.settings.citizen_reports_per_hour
    if len(recent) >= limit:
        wait = int((recent[-limit] + timedelta(hours=1) - utcnow()).total_seconds()) + 1
        raise TooManyReports(
            f"at most {limit} reports an hour; try again later", headers={"Retry-After": str(max(1, wait))}
        )


def _box(point: tuple[float, float], distance_m_: float) -> dict[str, float]:
    """A box around the point that holds every point within `distance_m_` (an index-friendly filter)."""
    latitude, longitude = point
    degrees = distance_m_ / 111_000 * 1.5
    return {
        "south": latitude - degrees,
        "north": latitude + degrees,
        "west": longitude - degrees * 1.5,
        "east": longitude + degrees * 1.5,
    }


def _nearest(
    point: tuple[float, float], nearby: Sequence[tuple[int, str, float, float]], within_m: float
) -> tuple[int, str] | None:
    """The nearest of the open issues around the point within the duplicate distance: id and code."""
    near = [(distance_m(point, (lat, lon)), other, code) for other, code, lat, lon in nearby]
    near = [n for n in near if n[0] <= within_m]
    if not near:
        return None
    _, other, code = min(near)
    return other, code


@dataclass(frozen=True)
class Reported:
    """A new issue as stored (its columns), and the codes of the issues it links to (for its public shape)."""

    row: dict[str, Any]
    codes: dict[int, str]

    def as_issue(self) -> Issue:
        return Issue(**self.row)


# Every column of a new issue that a report does not set: the model's defaults.
_NEW_ISSUE = {
    name: (None if field.default is PydanticUndefined else field.default)
    for name, field in Issue.model_fields.items()
    if name in _ISSUE_KEYS
}


async def create(
    session: AsyncSession,
    state: IssuesState,
    caller: Caller,
    body: IssueCreate,
    *,
    recurrence_of: Issue | None = None,
) -> Reported:
    """Take a report (with `recurrence_of`, the closed issue it repeats); a refusal stores nothing.

    A report asks the database twice on PostgreSQL: one read (`_lookup`: the region in the caller's subtree
    with its county, the new id, the open issues of the category around the point) and one write
    (`_writing_report`: the number, the issue, its first event, the outbox row for its photos), atomic on
    its own, so the route needs no transaction (`statement_session`). The categories and the calendar are
    as read a moment ago (the state's `recent_*`); citizens' throttle, a responsible region and photos
    add a read each. The new issue is kept as its columns (a dict): no entity is built or dumped.
    """
    category = await active_category(session, body.category, state.recent_categories)
    field_errors = timing.field_errors(category, body.fields)
    if field_errors:
        raise UnprocessableEntity(
            "the category's fields do not fit", code="fields_do_not_fit", errors=field_errors
        )
    if (body.latitude is None) != (body.longitude is None):
        raise UnprocessableEntity("give both latitude and longitude, or neither", code="incomplete_position")
    point = None if body.latitude is None or body.longitude is None else (body.latitude, body.longitude)
    within = state.settings.duplicate_distance_m
    found = await _look_up(
        session, caller, body.region, category.code, None if point is None else _box(point, within)
    )
    region = found.region
    if Level(region.level) not in ISSUE_REGION_LEVELS:
        raise UnprocessableEntity(
            f"region {body.region} is a {region.level}: issues are reported in a village or a grid",
            code="region_not_village",
        )
    await _throttle_citizen(session, state, caller)
    status = initial_status(body.source, caller.role)
    responsible = await _responsible(session, caller, body.responsible_region, region)
    photos = await _checked_photos(session, state, caller, body.before_photo_ids, issue_code=None)
    now = utcnow()
    duplicate = None if point is None else _nearest(point, found.nearby, within)
    row = _NEW_ISSUE | {
        "id": found.issue_id,
        "code": "",  # the counter's, given by the write (`_store`)
        "category": category.code,
        "severity": body.severity.value,
        "source": body.source.value,
        "status": status.value,
        "region_code": region.code,
        "region_path": region.path,
        "county_code": found.county,
        "description": body.description,
        "address": body.address,
        "latitude": body.latitude,
        "longitude": body.longitude,
        "fields": body.fields,
        "before_photo_ids": [p.id for p in photos],
        "after_photo_ids": [],
        "evidence_flags": [],
        "reporter": str(caller.subject),
        "reporter_role": caller.role.value,
        "reported_at": now,
        "updated_at": now,
        "probable_duplicate_of": duplicate[0] if duplicate else None,
        "recurrence_of": recurrence_of.id if recurrence_of else None,
        "last_event_hash": GENESIS,
    }
    changes: dict[str, Any] = {"status": [None, status.value]}
    if status is Status.assigned:
        timing.check_ahead(body.deadline, now)
        row["deadline"], row["yellow_at"] = await timing.deadline_and_yellow(
            session,
            body.deadline,
            row["severity"],
            start=now,
            default_from=category,
            recent=state.recent_years,
        )
        row |= {
            "responsible_region_code": responsible.code,
            "responsible_region_path": responsible.path,
            "responsible_user_id": await responsible_user(session, body.responsible_user_id, region.path),
            "assigned_at": now,
        }
        if row["deadline"] is not None:
            changes["deadline"] = [None, row["deadline"].isoformat()]
    if duplicate is not None:
        changes["probable_duplicate_of"] = [None, duplicate[0]]
    records = [evidence.evidence_record(p) for p in photos]

    def first_event(numbered: dict[str, Any]) -> dict[str, Any]:
        event = history.event_values(
            numbered["id"], 1, GENESIS, caller, "report", None, changes, records, now
        )
        numbered["last_event_hash"], numbered["event_count"] = event["hash"], 1
        return event

    await _store(session, state, row, first_event, [p.id for p in photos])
    codes = {} if duplicate is None else {duplicate[0]: duplicate[1]}
    if recurrence_of is not None and recurrence_of.id is not None:
        codes[recurrence_of.id] = recurrence_of.code
    return Reported(row, codes)


async def attach_later(
    session: AsyncSession, state: IssuesState, issue: Issue, photo_ids: Sequence[str]
) -> None:
    """Pin the photos to the issue once this transaction has committed (retried until media answers)."""
    if photo_ids:
        await state.outbox.enqueue(
            session,
            evidence.ATTACH,
            {
                "issue_code": issue.code,
                "region_code": issue.region_code,
                "region_path": issue.region_path,
                "photo_ids": list(photo_ids),
            },
        )


# ---- the list ----


@dataclass(frozen=True)
class IssueFilters:
    """What a list (or an export) narrows to, always within the caller's subtree."""

    region: str | None = None
    status: Sequence[Status] = ()
    category: Sequence[str] = ()
    source: Sequence[Source] = ()
    severity: Sequence[str] = ()
    overdue: bool | None = None
    light: Light | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    closed_from: datetime | None = None
    closed_to: datetime | None = None
    q: str | None = None
    mine: bool = False


async def filtered(session: AsyncSession, caller: Caller, filters: IssueFilters) -> Select[Any]:
    """The statement of the issues the caller may see that match the filters (404 for a region outside)."""
    statement = select(Issue).where(visible_to(caller))
    if filters.region is not None:
        region = await visible_region(session, caller, filters.region)
        statement = statement.where(col(Issue.region_path).startswith(region.path, autoescape=True))
    if filters.status:
        statement = statement.where(col(Issue.status).in_([s.value for s in filters.status]))
    if filters.category:
        statement = statement.where(col(Issue.category).in_(list(filters.category)))
    if filters.source:
        statement = statement.where(col(Issue.source).in_([s.value for s in filters.source]))
    if filters.severity:
        statement = statement.where(col(Issue.severity).in_(list(filters.severity)))
    now = utcnow()
    open_ = col(Issue.status).in_([s.value for s in OPEN_STATUSES])
    if filters.overdue is not None:
        late = and_(open_, col(Issue.deadline) < now)
        # Spelled out, not `~late`: NOT over a missing deadline is unknown, which would drop reported issues.
        on_time = or_(~open_, col(Issue.deadline).is_(None), col(Issue.deadline) >= now)
        statement = statement.where(late if filters.overdue else on_time)
    if filters.light is Light.red:
        statement = statement.where(open_, col(Issue.deadline) < now)
    elif filters.light is Light.yellow:
        statement = statement.where(open_, col(Issue.yellow_at) <= now, col(Issue.deadline) >= now)
    elif filters.light is Light.green:
        statement = statement.where(open_, col(Issue.yellow_at) > now)
    if filters.reported_from is not None:
        statement = statement.where(col(Issue.reported_at) >= filters.reported_from)
    if filters.reported_to is not None:
        statement = statement.where(col(Issue.reported_at) < filters.reported_to)
    if filters.closed_from is not None:
        statement = statement.where(col(Issue.closed_at) >= filters.closed_from)
    if filters.closed_to is not None:
        statement = statement.where(col(Issue.closed_at) < filters.closed_to)
    if filters.q:
        statement = statement.where(
            or_(
                col(Issue.description).icontains(filters.q, autoescape=True),
                col(Issue.address).icontains(filters.q, autoescape=True),
            )
        )
    if filters.mine:
        mine = col(Issue.reporter) == str(caller.subject)
        if caller.user_id is not None:
            mine = or_(mine, col(Issue.responsible_user_id) == caller.user_id)
        statement = statement.where(mine)
    return statement


@dataclass(frozen=True)
class ListedIssues:
    """A page of the list as `IssuePage`'s fields, written to JSON by pydantic-core without building a
    model per issue (the shape is `IssuePage`'s, tested against it)."""

    items: list[dict[str, Any]]
    next_cursor: str | None
    limit: int

    def json(self) -> bytes:
        return to_json({"items": self.items, "next_cursor": self.next_cursor, "limit": self.limit})


async def list_issues(
    session: AsyncSession, caller: Caller, filters: IssueFilters, page: PageParams
) -> ListedIssues:
    """Newest first, in keyset pages on the id.

    One statement in two steps: the page's ids are chosen from the filter alone, then only those rows are
    read whole (`… WHERE id IN (SELECT id … ORDER BY id DESC LIMIT n + 1)`). On PostgreSQL the inner select
    is an index-only scan of `ix_issues_path_list` (the caller's subtree, with the columns lists filter on
    included), or of `ix_issues_open_list` when only open statuses are asked for: a county's list reads its
    index entries, not thousands of wide rows, for the 50 it shows (bench.issues_lifecycle).
    """
    statement = await filtered(session, caller, filters)
    key = cast(ColumnElement[int], col(Issue.id))
    ids = statement.with_only_columns(key)
    if page.cursor:
        ids = ids.where(key < _cursor_id(page.cursor))
    ids = ids.order_by(key.desc()).limit(page.limit + 1)
    connection = await session.connection()  # Core: no ORM result set-up for rows that are only shown
    result = await connection.execute(select(*_ISSUE_COLUMNS).where(key.in_(ids)).order_by(key.desc()))
    names = tuple(result.keys())  # once: `Row._asdict()` looks each row's names up again (a tenth of a page)
    rows = [dict(zip(names, row, strict=True)) for row in result.all()]
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = encode_cursor([rows[-1]["id"]]) if more and rows else None
    shape = await presenter(session, caller, rows)
    return ListedIssues([shape.fields(issue) for issue in rows], next_cursor, page.limit)


def _cursor_id(cursor: str) -> int:
    """The id a `next_cursor` of this list carries (what `paginate` accepts for an integer key), else 400."""
    (value,) = decode_cursor(cursor, 1)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("the cursor is not one this API issued", code="invalid_cursor")
    return value
