"""Certificates of volunteer service (志愿服务证明): numbered, signed, printable, checkable.

A certificate states a volunteer's approved service over a period: who, when, how
many hours, which activities, issued by which community and when. It is signed with
the same Ed25519 keys as receipts (JCS bytes of the ``certificate`` object), kept,
and checkable by anyone: ``GET /v1/certificates/{number}`` (the QR code on the PDF
points there) or offline with ``timebank verify``. Asking again for the same period
and the same service returns the same certificate and number.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as parties
from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.problems import BadRequest, Forbidden, NotFound
from timebank.core.roles import Role
from timebank.log.keys import Signer
from timebank.log.verify import b64, jcs
from timebank.volunteer import queries

MAX_DAYS = 3660
# Unambiguous letters and digits (no 0/O, 1/I/L): numbers are read aloud and typed.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_number(issued: date) -> str:
    """Random, so that numbers cannot be enumerated to read other volunteers' certificates."""
    return f"TB-{issued.year}-" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


def _activities(rows: list[Any], organisations: dict[uuid.UUID, str], tz: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            "date": r.started_at.astimezone(tz).date().isoformat(),
            "activity": r.activity,
            "category": r.category,
            "organisation": organisations[r.organisation_id],
            "minutes": r.minutes,
            "record_id": str(r.id),
        }
        for r in rows
    ]


async def _content(
    conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID, period_from: date, period_to: date
) -> dict[str, Any]:
    """What a certificate states (without number, issuer and date): the same service, the same content."""
    tz = await community_zone(conn, community_id)
    start = datetime.combine(period_from, time(0), tz)
    end = datetime.combine(period_to + timedelta(days=1), time(0), tz)
    rows = await queries.approved_in_period(conn, member_id, start, end)
    names = await parties.display_names(conn, [member_id, *(r.organisation_id for r in rows)])
    activities = _activities(rows, names, tz)
    total = sum(a["minutes"] for a in activities)
    return {
        "community": {
            "id": str(community_id),
            "name": (await parties.community_by_id(conn, community_id)).name,
        },
        "volunteer": {"member_id": str(member_id), "name": names[member_id]},
        "period": {"from": period_from.isoformat(), "to": period_to.isoformat()},
        "total_minutes": total,
        "total_hours": str((Decimal(total) / 60).quantize(Decimal("0.01"))),
        "activities": activities,
    }


async def issue(
    conn: AsyncConnection,
    principal: Principal,
    member_id: uuid.UUID,
    period_from: date,
    period_to: date,
    signer: Signer,
    public_url: str,
) -> dict[str, Any]:
    """The signed certificate of a member's approved service in [from, to] (local dates)."""
    if principal.role not in (Role.ADMIN, Role.RESIDENT):
        raise Forbidden("certificates are issued by admins, or to a resident for themself")
    await member_exists(conn, principal, member_id)
    if period_to < period_from or (period_to - period_from).days > MAX_DAYS:
        raise BadRequest(f"the period is from <= to, at most {MAX_DAYS} days")
    content = await _content(conn, principal.community_id, member_id, period_from, period_to)
    content_hash = hashlib.sha256(jcs(content)).digest()
    existing = await queries.certificate_by_content(conn, member_id, content_hash)
    if existing is not None:
        return signed_view(existing)
    issued_at = datetime.now(await community_zone(conn, principal.community_id))
    number = new_number(issued_at.date())
    certificate = {
        "type": "timebank.certificate.v1",
        "number": number,
        **content,
        "issuer": content["community"]["name"],
        "issued_at": rfc3339(issued_at),
        "verify_url": f"{public_url.rstrip('/')}/v1/certificates/{number}",
    }
    await queries.insert_certificate(
        conn,
        {
            "number": number,
            "community_id": principal.community_id,
            "member_id": member_id,
            "period_from": period_from,
            "period_to": period_to,
            "content_hash": content_hash,
            "document": certificate,
            "kid": signer.kid,
            "signature": b64(signer.sign(jcs(certificate))),
            "issued_by": principal.key_id,
            "issued_at": issued_at,
        },
    )
    stored = await queries.certificate_by_content(conn, member_id, content_hash)
    assert stored is not None
    return signed_view(stored)


def signed_view(row: Any) -> dict[str, Any]:
    return {"certificate": row.document, "kid": row.kid, "signature": row.signature}


async def by_number(conn: AsyncConnection, number: str) -> dict[str, Any]:
    row = await queries.certificate_by_number(conn, number)
    if row is None:
        raise NotFound(f"no certificate {number}")
    return signed_view(row)


@lru_cache(maxsize=1)
def _font() -> Path:
    import pylopdf_fonts_zh_cn  # a data-only wheel with Noto Sans SC (SIL OFL 1.1)

    return Path(pylopdf_fonts_zh_cn.__file__).parent / "NotoSansSC-Regular.otf"


CATEGORY_NAMES = {
    "volunteer_service": "志愿服务",
    "neighbour_aid": "邻里互助",
    "day_care": "日间照料",
    "legal_aid": "法律援助",
    "culture_health": "文体健康",
}


def _activity_table(pdf: Any, activities: list[dict[str, Any]]) -> None:
    """The activities, one row each (the first 40; the electronic certificate has them all)."""
    from fpdf.fonts import FontFace

    heading = FontFace(emphasis="", fill_color=(235, 235, 235))  # the font has no bold face
    with pdf.table(
        col_widths=(25, 60, 25, 55, 20),
        text_align=("LEFT", "LEFT", "LEFT", "LEFT", "RIGHT"),
        headings_style=heading,
    ) as table:
        table.row(["日期", "服务项目", "类别", "志愿服务组织", "分钟"])
        shown = activities[:40]
        for a in shown:
            category = CATEGORY_NAMES.get(a["category"], a["category"])
            table.row([a["date"], a["activity"], category, a["organisation"], str(a["minutes"])])
    if len(activities) > len(shown):
        pdf.cell(0, 7, f"……另有 {len(activities) - len(shown)} 项，见电子证明", new_x="LMARGIN", new_y="NEXT")


def _seal(pdf: Any, signed: dict[str, Any]) -> None:
    """The QR code of the check URL, beside the issuer, the date and the signing key."""
    import qrcode

    cert = signed["certificate"]
    y = pdf.get_y()
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=2)
    qr.add_data(cert["verify_url"])
    pdf.image(qr.make_image().get_image(), x=pdf.l_margin, y=y, w=40, h=40)
    pdf.set_xy(pdf.l_margin + 46, y + 4)
    pdf.set_font("NotoSansSC", size=11)
    pdf.multi_cell(
        0,
        7,
        f"出具单位：{cert['issuer']}\n出具时间：{cert['issued_at'][:10]}\n"
        f"扫码或用 timebank verify 核验本证明（签名密钥 {signed['kid'][:12]}…）",
        new_x="LMARGIN",
        new_y="NEXT",
    )


def render_pdf(signed: dict[str, Any]) -> bytes:
    """A printable A4 certificate with the CJK font embedded and a QR code of its check URL."""
    from fpdf import FPDF

    cert = signed["certificate"]
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.add_page()
    pdf.add_font("NotoSansSC", fname=str(_font()))
    pdf.set_font("NotoSansSC", size=24)
    pdf.cell(0, 16, "志愿服务证明", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("NotoSansSC", size=10)
    pdf.cell(0, 6, f"证明编号 No. {cert['number']}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("NotoSansSC", size=13)
    period = cert["period"]
    pdf.multi_cell(
        0,
        8,
        f"兹证明志愿者 {cert['volunteer']['name']} 于 {period['from']} 至 {period['to']} 期间，"
        f"在{cert['community']['name']}参加志愿服务 {len(cert['activities'])} 次，"
        f"累计服务时长 {cert['total_hours']} 小时（{cert['total_minutes']} 分钟）。",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    pdf.set_font("NotoSansSC", size=10)
    _activity_table(pdf, cert["activities"])
    pdf.ln(6)
    _seal(pdf, signed)
    return bytes(pdf.output())
