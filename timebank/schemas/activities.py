"""Request limits and response shapes of activities: sign-ups, check-in, attendance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import Parameter

from timebank.schemas.limits import (
    DATETIME_PATTERN,
    MAX_CATEGORY,
    MAX_CODE,
    MAX_TOKEN,
    PARAM_PATTERN,
    ZERO_MIN,
)
from timebank.schemas.openapi import Out

MAX_CAPACITY = 100_000
MAX_RADIUS_M = 100_000
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]
RadiusM = Annotated[int, msgspec.Meta(ge=1, le=MAX_RADIUS_M)]
Capacity = Annotated[int, msgspec.Meta(ge=1, le=MAX_CAPACITY)]
MinStar = Annotated[int, msgspec.Meta(ge=0, le=5, extra_json_schema=ZERO_MIN)]
ScanToken = Annotated[str, msgspec.Meta(max_length=MAX_TOKEN)]
ScanCode = Annotated[str, msgspec.Meta(max_length=MAX_CODE)]
ActivityCursor = Annotated[
    str | None,
    Parameter(max_length=100, pattern=PARAM_PATTERN, description="next_cursor of the previous page"),
]
ActivityCategory = Annotated[
    str | None,
    Parameter(max_length=MAX_CATEGORY, pattern=PARAM_PATTERN, description="a category's code or name"),
]
StartsFrom = Annotated[
    datetime | None,
    Parameter(query="from", schema_extra={"pattern": DATETIME_PATTERN}, description="starting at or after"),
]
StartsBefore = Annotated[
    datetime | None,
    Parameter(query="to", schema_extra={"pattern": DATETIME_PATTERN}, description="starting before"),
]
SignupState = Literal["signed_up", "waiting", "withdrawn"]


class Activity(Out):
    id: str
    organisation_id: str | None
    title: str
    category: str
    description: str | None
    place: str
    lat: float | None
    lon: float | None
    radius_m: int | None
    starts_at: str
    ends_at: str
    capacity: int
    signup_opens_at: str | None
    signup_closes_at: str | None
    min_star: int | None
    status: Literal["published", "cancelled"]
    cancel_reason: str | None
    created_at: str
    signed_up: int
    waiting: int
    places_left: int
    my_signup: SignupState | None = None  # a resident's own sign-up, on GET of one activity


class ActivityPage(Out):
    items: list[Activity]
    next_cursor: str | None


class Signup(Out):
    activity_id: str
    member_id: str
    status: SignupState
    position: int
    signed_up_at: str
    withdrawn_at: str | None
    late_withdrawal: bool
    checked_in_at: str | None
    check_in_manual: bool
    checked_out_at: str | None
    check_out_manual: bool
    record_id: str | None
    promoted: list[str] | None = None  # on a withdrawal: who moved up from the waiting list


class CheckInCode(Out):
    url: str
    code: str
    expires_at: str
    refresh_seconds: int


class ScanResult(Out):
    result: Literal["checked_in", "already_checked_in", "checked_out", "already_checked_out"]
    attendance: Signup


class AttendanceItem(Signup):
    display_name: str = ""
    state: Literal[
        "signed_up", "waiting", "withdrawn", "no_show", "present", "needs_end_time", "attended"
    ] = "signed_up"


class Attendance(Out):
    activity_id: str
    ended: bool
    counts: dict[str, int]
    items: list[AttendanceItem]


class MemberActivity(Signup):
    title: str = ""
    starts_at: str = ""
    ends_at: str = ""


class MemberActivities(Out):
    member_id: str
    no_shows: int
    items: list[MemberActivity]
