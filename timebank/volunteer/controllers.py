"""HTTP routes of volunteer service: policy, records, import, approval, corrections. HTTP only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import Body, Parameter
from litestar.response import Redirect

from timebank import schemas, web
from timebank.community.service import member_exists
from timebank.core import policy as policies
from timebank.core.access import PUBLIC, READERS, access
from timebank.core.communities import community_zone
from timebank.core.problems import DomainError
from timebank.core.roles import Role
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.schemas import problems
from timebank.volunteer import approval, certificates, corrections, reading, recording
from timebank.volunteer.approval import set_policy
from timebank.volunteer.csv_import import import_answer, parse_csv
from timebank.volunteer.records import ImportTooLarge, RecordIn, record_view

RECORD_READERS = (Role.ADMIN, Role.AUDITOR, Role.RECORDER, Role.RESIDENT)
IDEMPOTENCY_KEY = Parameter(
    header="Idempotency-Key",
    required=False,
    **schemas.IDEMPOTENCY_KEY_LIMITS,
    description="Optional: a record is decided once. Without it, a retry by the same API key answers the "
    "first answer again.",
)


class RecordRejected(DomainError):
    slug, status, title = "invalid-service-record", 422, "The service record breaks a rule"


class RecordBody(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID
    activity: schemas.RequiredText
    category: schemas.CategoryName
    place: schemas.RequiredText
    started_at: schemas.DateTime
    ended_at: schemas.DateTime
    organisation_id: uuid.UUID | None = None
    beneficiary: schemas.Text | None = None
    content: schemas.Description | None = None
    external_ref: schemas.Text | None = None


class ReasonBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: schemas.Reason


def _now() -> datetime:
    return datetime.now(UTC)


class PolicyController(Controller):
    path = "/v1/community/policy"
    tags = ["community"]

    @get("/", opt=access(*READERS), responses=problems(), summary="The community's current policy")
    async def get_policy(self, request: Request) -> Response[schemas.PolicyVersion]:
        async with web.engine(request).connect() as conn:
            version, policy, row = await policies.current_policy(conn, web.principal(request).community_id)
        return web.json_response(policies.policy_view(version, policy, row))

    @put(
        "/",
        opt=access(Role.ADMIN),
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(413),
        summary="Replace the policy (a new version; omitted fields take their defaults)",
    )
    async def put_policy(
        self, request: Request, data: Annotated[dict[str, Any], Body(title="Policy")]
    ) -> Response[schemas.PolicyVersion]:
        policy = policies.decode_policy(await request.body())
        who = web.principal(request)
        async with web.engine(request).begin() as conn:
            return web.json_response(await set_policy(conn, who.community_id, policy, who.key_id))

    @get(
        "/versions",
        opt=access(Role.ADMIN, Role.AUDITOR),
        responses=problems(),
        summary="Every version of the policy, oldest first, with who changed it and when",
    )
    async def versions(self, request: Request) -> Response[schemas.PolicyHistory]:
        async with web.engine(request).connect() as conn:
            items = await policies.policy_history(conn, web.principal(request).community_id)
        return web.json_response({"items": items})


async def _with_reason(request: Request, record_id: uuid.UUID, step: Any, status: int) -> Response[Any]:
    """A step on a record that takes the admin's reason (reject, ask for a correction)."""
    data = await web.strict_body(request, ReasonBody)
    async with web.engine(request).begin() as conn:
        view = await step(conn, web.principal(request), record_id, data.reason)
    return web.json_response(view, status)


async def _decide(request: Request, record_id: uuid.UUID, key: str | None, decide: Any) -> Response[Any]:
    """An approval or a correction: idempotent, answered with the record and its transaction.

    A record is decided once anyway, so the Idempotency-Key header is optional here:
    without one, the key is the route and the deciding API key, and a retry by the
    same admin answers the first answer again.
    """
    who = web.principal(request)
    key = key or f"{request.url.path}#{who.key_id}"

    async def action(conn: Any, claim: Any) -> dict[str, Any]:
        return await decide(conn, who, record_id, claim)

    return web.signed_transaction_response(
        request,
        await run_idempotent(
            web.engine(request),
            who,
            key,
            request_hash(who, "POST", request.url.path, None),
            action,
            instance=request.url.path,
            render=approval.decision_view,
        ),
    )


class ServiceRecordController(Controller):
    path = "/v1/service-records"
    tags = ["service records"]

    @post(
        "/",
        opt=access(Role.ADMIN, Role.RECORDER),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses={**problems(413, 422), **schemas.EXISTING_RECORD},
        summary="Record a volunteer's service (status submitted); a known external_ref returns its record",
    )
    async def create(self, request: Request, data: RecordBody) -> Response[schemas.ServiceRecord]:
        data = await web.strict_body(request, RecordBody)
        item = RecordIn(**msgspec.structs.asdict(data))
        async with web.engine(request).begin() as conn:
            out = await recording.record_many(conn, web.principal(request), [item], now=_now())
        if out.rejected:
            raise RecordRejected(out.rejected[0]["reason"])
        view = {k: v for k, v in out.accepted[0].items() if k != "line"}
        return web.json_response(view, 200 if view["duplicate"] else 201)

    @post(
        "/import",
        opt=access(Role.ADMIN, Role.RECORDER),
        status_code=200,
        responses=problems(413),
        operation_class=schemas.documented(body={"text/csv": schemas.TEXT}, body_description="the CSV file"),
        summary="Import records from CSV (UTF-8, header row; Chinese or English column names)",
        description="The body is the CSV file itself (Content-Type: text/csv), at most "
        "TIMEBANK_IMPORT_MAX_BYTES bytes and TIMEBANK_IMPORT_MAX_ROWS records (20,000 by default); a larger "
        "file is a 413 and records nothing. Each row is checked like POST /v1/service-records; rows without "
        "external_ref get one derived from their content, so the same file imported again creates nothing "
        "twice. Column names: see docs/api.md.",
    )
    async def import_csv(
        self, request: Request, organisation_id: uuid.UUID | None = None
    ) -> Response[schemas.ImportResult]:
        who = web.principal(request)
        cfg = web.settings(request)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cfg.import_max_bytes:  # refuse before reading it
            raise ImportTooLarge(
                f"the file has {declared} bytes; an import takes at most {cfg.import_max_rows} records and "
                f"{cfg.import_max_bytes} bytes: split the file"
            )
        body = await request.body()
        async with web.engine(request).connect() as conn:
            tz = await community_zone(conn, who.community_id)
        # Parsing is CPU work in proportion to the file: off the event loop, which keeps answering.
        rows, unreadable = await asyncio.to_thread(
            parse_csv, body, tz, max_rows=cfg.import_max_rows, max_bytes=cfg.import_max_bytes
        )
        for row in rows:
            row.organisation_id = row.organisation_id or organisation_id
        async with web.engine(request).begin() as conn:
            out = await recording.record_many(
                conn, who, rows, now=_now(), derive_refs=True, max_rows=cfg.import_max_rows
            )
        rejected = sorted(out.rejected + unreadable, key=lambda r: r["line"])
        # Encoded (and the rows let go of) in a worker thread: megabytes, 100,000s of objects.
        body = await asyncio.to_thread(import_answer, out.accepted, rejected, rows)
        return Response(body, media_type="application/json")

    @get(
        "/",
        opt=access(*RECORD_READERS),
        responses=problems(404),
        summary="Service records, newest first (residents: their own; recorders: their organisation's)",
    )
    async def list_(
        self,
        request: Request,
        member_id: uuid.UUID | None = None,
        organisation_id: uuid.UUID | None = None,
        status: schemas.RecordStatus | None = None,
        category: schemas.CategoryQuery = None,
        since: schemas.Since = None,
        until: schemas.Until = None,
        cursor: schemas.RecordCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.ServiceRecordPage]:
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            items, nxt = await reading.records_page(
                conn,
                web.principal(request),
                member_id=member_id,
                organisation_id=organisation_id,
                status=status,
                category=category,
                since=since,
                until=until,
                cursor=cursor,
                limit=n,
            )
        return web.json_response({"items": items, "next_cursor": nxt})

    @get(
        "/{record_id:uuid}", opt=access(*RECORD_READERS), responses=problems(404), summary="A service record"
    )
    async def get_one(self, request: Request, record_id: uuid.UUID) -> Response[schemas.ServiceRecord]:
        async with web.engine(request).connect() as conn:
            return web.json_response(
                record_view(await reading.get_record(conn, web.principal(request), record_id))
            )

    @post(
        "/{record_id:uuid}/approve",
        opt=access(Role.ADMIN),
        status_code=201,
        responses=problems(404, 409, 422),
        summary="Approve: one transaction credits the volunteer's HOUR minutes and POINT points",
    )
    async def approve(
        self, request: Request, record_id: uuid.UUID, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[schemas.Decision]:
        return await _decide(request, record_id, idempotency_key, approval.approve)

    @post(
        "/{record_id:uuid}/reject",
        opt=access(Role.ADMIN),
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Reject a submitted record, with a reason",
    )
    async def reject(
        self, request: Request, record_id: uuid.UUID, data: ReasonBody
    ) -> Response[schemas.ServiceRecord]:
        return await _with_reason(request, record_id, approval.reject, 200)

    @post(
        "/{record_id:uuid}/reversal",
        opt=access(Role.ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Ask for the correction of an approved record (another admin decides)",
    )
    async def request_reversal(
        self, request: Request, record_id: uuid.UUID, data: ReasonBody
    ) -> Response[schemas.Correction]:
        return await _with_reason(request, record_id, corrections.request_reversal, 201)

    @post(
        "/{record_id:uuid}/reversal/approve",
        opt=access(Role.ADMIN),
        status_code=201,
        responses=problems(404, 409, 422),
        summary="Second admin: approve the correction (a reversal transaction referencing the credit)",
    )
    async def approve_reversal(
        self, request: Request, record_id: uuid.UUID, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[schemas.Decision]:
        return await _decide(request, record_id, idempotency_key, corrections.approve_reversal)

    @post(
        "/{record_id:uuid}/reversal/reject",
        opt=access(Role.ADMIN),
        status_code=200,
        responses=problems(404, 409),
        summary="Second admin: turn the correction down",
    )
    async def reject_reversal(self, request: Request, record_id: uuid.UUID) -> Response[schemas.Correction]:
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await corrections.reject_reversal(conn, web.principal(request), record_id)
            )


class CertificateController(Controller):
    path = "/v1/certificates"
    tags = ["service records"]

    @get(
        "/{number:str}",
        opt=PUBLIC,
        security=[{}],
        responses=problems(404, public=True),
        summary="Check a certificate of service by its number (public: the QR code on the PDF points here)",
        description="A browser (an Accept that prefers text/html, as when the QR code is opened) is sent "
        "with 303 to the community's in-browser verifier, /p/{community_id}/verify?certificate={number}, "
        "if the community publishes its public page (policy public_page).",
    )
    async def check(
        self, request: Request, number: schemas.CertificateNumber
    ) -> Response[schemas.SignedCertificate]:
        browser = request.accept.best_match(["application/json", "text/html"]) == "text/html"
        async with web.engine(request).connect() as conn:
            signed = await certificates.by_number(conn, number[:40])
            community_id = signed["certificate"]["community"]["id"]
            if browser:  # unless the community has not published its public page
                _version, policy, _row = await policies.current_policy(conn, uuid.UUID(community_id))
                browser = policy.public_page
        if browser:
            # A browser opened the QR code: the community's verifier checks it in the browser.
            return Redirect(
                f"/p/{community_id}/verify?certificate={quote(signed['certificate']['number'], safe='')}",
                status_code=303,
                headers={"Vary": "Accept"},
            )
        return web.json_response(signed, headers={"Vary": "Accept"})


class MemberRecordsController(Controller):
    path = "/v1/members"
    tags = ["members"]

    @get(
        "/{member_id:uuid}/service-records",
        opt=access(*RECORD_READERS),
        responses=problems(404),
        summary="A member's service history, newest first",
    )
    async def history(
        self,
        request: Request,
        member_id: uuid.UUID,
        status: schemas.RecordStatus | None = None,
        category: schemas.CategoryQuery = None,
        since: schemas.Since = None,
        until: schemas.Until = None,
        cursor: schemas.RecordCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.ServiceRecordPage]:
        who = web.principal(request)
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            await member_exists(conn, who, member_id)
            items, nxt = await reading.records_page(
                conn,
                who,
                member_id=member_id,
                status=status,
                category=category,
                since=since,
                until=until,
                cursor=cursor,
                limit=n,
            )
        return web.json_response({"items": items, "next_cursor": nxt})

    @get(
        "/{member_id:uuid}/certificate",
        opt=access(Role.ADMIN, Role.RESIDENT),
        responses=problems(404),
        operation_class=schemas.documented(answers={"application/pdf": schemas.BINARY}),
        summary="Issue a numbered, signed certificate of approved service over a period (JSON, or PDF with format=pdf)",
    )
    async def certificate(
        self,
        request: Request,
        member_id: uuid.UUID,
        from_: schemas.DateFrom,
        to: schemas.DateTo,
        format: Literal["json", "pdf"] = "json",
    ) -> Response[schemas.SignedCertificate]:
        who = web.principal(request)
        public_url = web.settings(request).public_url or str(request.base_url)
        async with web.engine(request).begin() as conn:
            signed = await certificates.issue(
                conn, who, member_id, from_, to, request.app.state.signer, public_url
            )
        if format == "pdf":
            number = signed["certificate"]["number"]
            return Response(
                certificates.render_pdf(signed),
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{number}.pdf"'},
            )
        return web.json_response(signed)
