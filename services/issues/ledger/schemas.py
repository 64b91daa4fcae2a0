"""The 整改台账 and the 负面清单 as spreadsheets: their Chinese columns and the names shown for statuses."""

from __future__ import annotations

from services.issues.cases.rules import Status

# One row an issue, the same columns in both sheets.
LEDGER_HEADERS = (
    "编号",
    "问题类别",
    "所在村",
    "具体位置",
    "问题描述",
    "发现时间",
    "整改时限",
    "责任单位",
    "状态",
    "销号时间",
    "用时（天）",
    "退回次数",
    "整改前照片",
    "整改后照片",
)

STATUS_NAMES: dict[Status, str] = {
    Status.reported: "待立案",
    Status.assigned: "整改中",
    Status.submitted: "待验收",
    Status.closed: "已销号",
    Status.rejected: "不予立案",
}

LEDGER_TITLE = "整改台账"
NEGATIVE_LIST_TITLE = "负面清单"

# What the CSV answer starts with (the OpenAPI example of the 200).
CSV_EXAMPLE = "\ufeff" + ",".join(LEDGER_HEADERS) + "\r\n"
