"""Issue requests and answers: the report, one body per action, the public shape, events and the chain check."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.issues.calendar.rules import Light
from services.issues.cases.rules import Action, RejectReason, Source, Status
from services.issues.categories.models import Severity
from services.kit.fields import JSON_INT, Moment
from services.kit.geo import BOTH_OR_NEITHER, Latitude, Longitude
from services.kit.media import PhotoId
from services.kit.pagination import envelope_example
from services.kit.text import PLAIN_TEXT

RegionCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$")]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


_PHOTO = "3f1c2a9b8e7d4c6f9a0b1c2d3e4f5a6b"


class IssueCreate(BaseModel):
    """A problem found in a village or grid (群众随手拍, 网格巡查, 督查检查, 暗访, 12345 …)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "category": "luan-dui-fang",
                "region": "370282103201",
                "source": "inspection",
                "severity": "normal",
                "description": "村东头路边堆放建筑垃圾约2立方米",
                "latitude": 36.4312,
                "longitude": 120.4471,
                "address": "前庄村东首，村道北侧",
                "before_photo_ids": [_PHOTO],
                "fields": {},
            },
            "allOf": BOTH_OR_NEITHER,
        },
    )

    category: Annotated[str, StringConstraints(min_length=1, max_length=32)] = Field(
        description="A category code of `GET /v1/categories`."
    )
    region: RegionCode = Field(description="The village or grid the problem is in (in the caller's subtree).")
    source: Source
    severity: Severity = Severity.normal
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), PLAIN_TEXT
    ]
    latitude: Latitude | None = Field(default=None, description="WGS-84, as `wx.getLocation` gives it.")
    longitude: Longitude | None = None
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), PLAIN_TEXT] | None = (
        None
    )
    before_photo_ids: list[PhotoId] = Field(default_factory=list, max_length=9)
    fields: dict[str, Any] = Field(default_factory=dict, description="The category's extra fields.")
    responsible_region: RegionCode | None = Field(
        default=None,
        description="Who is to fix it (default: the issue's region); for reports that start assigned.",
    )
    responsible_user_id: int | None = Field(default=None, ge=1)
    deadline: Moment | None = Field(
        default=None, description="Set by hand; default: the category's working days for the severity."
    )


class PhotoEvidence(BaseModel):
    """A photo as an event recorded it: its content hash and what the checks found."""

    id: str
    sha256: str
    flags: list[dict[str, Any]] = Field(default_factory=list)


class IssuePublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 1104,
                "code": "370282-2026-001104",
                "status": "assigned",
                "category": "luan-dui-fang",
                "severity": "normal",
                "source": "inspection",
                "region": "370282103201",
                "responsible_region": "370282103201",
                "responsible_user_id": None,
                "description": "村东头路边堆放建筑垃圾约2立方米",
                "address": "前庄村东首，村道北侧",
                "latitude": 36.4312,
                "longitude": 120.4471,
                "fields": {},
                "before_photo_ids": [_PHOTO],
                "after_photo_ids": [],
                "evidence_flags": [],
                "reporter": "user:12",
                "reported_at": "2026-11-03T09:12:00+08:00",
                "deadline": "2026-11-10T23:59:59.999999+08:00",
                "light": "green",
                "overdue": False,
                "submitted_at": None,
                "closed_at": None,
                "closed_late": None,
                "rejected_at": None,
                "reject_reason": None,
                "rework_count": 0,
                "extension_count": 0,
                "extension_pending": False,
                "on_account": False,
                "account_plan": None,
                "account_target": None,
                "supervised": False,
                "probable_duplicate_of": None,
                "duplicate_of": None,
                "recurrence_of": None,
                "satisfaction": None,
                "allowed_actions": ["submit", "request_extension"],
            }
        }
    )

    id: int
    code: str = Field(description="Per county and year, gap-free: `370282-2026-001104`.")
    status: Status
    category: str
    severity: Severity
    source: Source
    region: str
    responsible_region: str | None
    responsible_user_id: int | None
    description: str
    address: str | None
    latitude: float | None
    longitude: float | None
    fields: dict[str, Any]
    before_photo_ids: list[str]
    after_photo_ids: list[str]
    evidence_flags: list[dict[str, Any]] = Field(
        description="What the checks found on the last submission's after photos: `far_from_issue`, "
        "`taken_before_report`, `reuses_before_photo`, `reuses_photo_of_issue` block acceptance without an "
        "`override_reason`; `no_exif` is shown only."
    )
    reporter: str | None = Field(description="Hidden (null) from village and grid cadres.")
    reported_at: datetime
    deadline: datetime | None
    light: Light | None = Field(description="The traffic light while open: green < 80 % of the time used.")
    overdue: bool = Field(description="Open and past its deadline (逾期).")
    submitted_at: datetime | None
    closed_at: datetime | None
    closed_late: bool | None
    rejected_at: datetime | None
    reject_reason: RejectReason | None
    rework_count: int
    extension_count: int
    extension_pending: bool
    on_account: bool
    account_plan: str | None
    account_target: datetime | None
    supervised: bool
    probable_duplicate_of: str | None = Field(description="The code of an open issue this one is probably.")
    duplicate_of: str | None
    recurrence_of: str | None
    satisfaction: int | None
    allowed_actions: list[Action] = Field(description="What the caller may do to the issue now.")


class IssuePage(BaseModel):
    model_config = ConfigDict(json_schema_extra=envelope_example(next_cursor="WzExMDRd", limit=50))

    items: list[IssuePublic]
    next_cursor: str | None = Field(examples=["WzExMDRd"])
    limit: int = Field(examples=[50])


class EventPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "seq": 3,
                "action": "submit",
                "actor": "user:31",
                "role": "village",
                "at": "2026-11-06T16:40:12.123456+00:00",
                "note": "已清运完毕",
                "changes": {"status": ["assigned", "submitted"]},
                "photos": [{"id": _PHOTO, "sha256": "9f2c…", "flags": [{"code": "no_exif"}]}],
                "prev_hash": "2b0c…",
                "hash": "77e1…",
            }
        }
    )

    seq: int
    action: str
    actor: str | None = Field(
        description="Hidden (null) from village and grid cadres when it is the reporter."
    )
    role: str
    at: datetime
    note: str | None
    changes: dict[str, Any]
    photos: list[dict[str, Any]]
    prev_hash: str
    hash: str


class EventList(BaseModel):
    model_config = ConfigDict(json_schema_extra=envelope_example())

    items: list[EventPublic]


class ChainReport(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "code": "370282-2026-001104",
                "events": 5,
                "intact": True,
                "first_bad_seq": None,
                "reason": None,
            }
        }
    )

    code: str
    events: int
    intact: bool
    first_bad_seq: int | None = Field(description="The first event whose hash or link does not hold.")
    reason: str | None


# ---- one body per action ----


def _body(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"example": example})


class VerifyBody(BaseModel):
    """立案: a real problem; hand it to the responsible unit."""

    # No region in the example: one must hold the issue's place, which an example cannot know.
    model_config = _body({"note": "属实，交所在村整改"})
    responsible_region: RegionCode | None = None
    responsible_user_id: int | None = Field(default=None, ge=1)
    deadline: Moment | None = None
    note: Note | None = None


class RejectBody(BaseModel):
    """Not a problem to fix here: never counted as fixed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"reason": "duplicate", "duplicate_of": "370282-2026-001090", "note": "与1090号重复"},
            # What the action refuses with 422 (`note_required`, `duplicate_of_required`), said in the schema.
            "allOf": [
                {
                    "if": {"properties": {"reason": {"const": reason}}, "required": ["reason"]},
                    "then": {
                        "required": [needed],
                        "properties": {needed: {"type": "string", "minLength": 1}},
                    },
                }
                for reason, needed in (("other", "note"), ("duplicate", "duplicate_of"))
            ],
        },
    )
    reason: RejectReason
    duplicate_of: Annotated[str, StringConstraints(max_length=40)] | None = Field(
        default=None,
        description="With `duplicate`: the code of the issue this one repeats (else 422 `duplicate_of_required`).",
    )
    note: Note | None = Field(default=None, description="Required with `other` (else 422 `note_required`).")


class AssignBody(BaseModel):
    """派遣 (again): the responsible unit or person, and the deadline."""

    # No region in the example: one must hold the issue's place, which an example cannot know.
    model_config = _body({"note": "改派所在村整改"})
    responsible_region: RegionCode | None = None
    responsible_user_id: int | None = Field(default=None, ge=1)
    deadline: Moment | None = None
    note: Note | None = None


class SubmitBody(BaseModel):
    """整改完毕: at least one after photo, checked against the issue."""

    model_config = _body({"after_photo_ids": [_PHOTO], "note": "已清运完毕"})
    after_photo_ids: list[PhotoId] = Field(min_length=1, max_length=9)
    note: Note | None = None


class AcceptBody(BaseModel):
    """销号: by someone other than the submitter, never by the village or grid."""

    model_config = _body({"note": "现场核查已整改", "override_reason": None})
    note: Note | None = None
    override_reason: Note | None = Field(
        default=None, description="Needed when the after photos carry a distance, time or reuse flag."
    )


class ReturnBody(BaseModel):
    """退回重整: rework count + 1 and a new deadline."""

    model_config = _body({"note": "垃圾未清理干净", "deadline": None})
    note: Note
    deadline: Moment | None = Field(
        default=None, description="Default: the category's working days from now."
    )


class RequestExtensionBody(BaseModel):
    model_config = _body({"reason": "需协调铲车，雨天无法施工", "until": "2026-11-20T23:59:59+08:00"})
    reason: Note
    until: Moment


class ApproveExtensionBody(BaseModel):
    model_config = _body({"until": None, "note": "同意延期"})
    until: Moment | None = Field(default=None, description="Default: what was asked for.")
    note: Note | None = None


class RefuseExtensionBody(BaseModel):
    model_config = _body({"note": "不符合延期条件"})
    note: Note


class PutOnAccountBody(BaseModel):
    """挂账: cannot be fixed soon (money, construction); stays visible with a plan and a target date."""

    model_config = _body({"plan": "纳入2027年村内道路硬化项目", "target_date": "2027-06-30"})
    plan: Note
    target_date: date


class ResumeBody(BaseModel):
    model_config = _body({"note": "资金已到位", "deadline": None})
    note: Note | None = None
    deadline: Moment | None = None


class SuperviseBody(BaseModel):
    """督办."""

    model_config = _body({"note": "列入区整治办督办"})
    note: Note


class RecurBody(BaseModel):
    """反弹: the closed problem is back; a new issue linked to this one."""

    model_config = _body({"description": "原处再次堆放垃圾", "before_photo_ids": [_PHOTO], "note": None})
    description: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), PLAIN_TEXT]
        | None
    ) = None
    before_photo_ids: list[PhotoId] = Field(default_factory=list, max_length=9)
    note: Note | None = None


class FeedbackBody(BaseModel):
    """群众满意度: the reporter's word on the fix."""

    model_config = _body({"satisfaction": 5, "comment": "处理及时"})
    satisfaction: Annotated[int, Field(ge=1, le=5), JSON_INT]
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), PLAIN_TEXT] | None = (
        None
    )


class UnlinkBody(BaseModel):
    """Not a duplicate after all."""

    model_config = _body({"note": "非同一问题"})
    note: Note | None = None


ACTION_BODIES: dict[Action, type[BaseModel]] = {
    Action.verify: VerifyBody,
    Action.reject: RejectBody,
    Action.assign: AssignBody,
    Action.submit: SubmitBody,
    Action.accept: AcceptBody,
    Action.return_: ReturnBody,
    Action.request_extension: RequestExtensionBody,
    Action.approve_extension: ApproveExtensionBody,
    Action.refuse_extension: RefuseExtensionBody,
    Action.put_on_account: PutOnAccountBody,
    Action.resume: ResumeBody,
    Action.supervise: SuperviseBody,
    Action.recur: RecurBody,
    Action.feedback: FeedbackBody,
    Action.unlink: UnlinkBody,
}
