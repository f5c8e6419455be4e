"""Rewards and vouchers (志愿服务爱心兑换): what I may redeem now and why not the rest,
redeeming one (a confirmation first), my voucher (code, QR, time left) and cancelling it.

The same services as the API: ``rewards.list_rewards``/``get_reward`` (with the
resident's eligibility), ``redemptions.redeem`` and ``cancel`` run through the ledger's
idempotency (one redemption per form, however often it is sent),
``redemption_views.resident_voucher`` and ``member_redemptions`` to read them back.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter

from timebank import web
from timebank.community import service as community
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.redemption import redemption_views, redemptions, rewards
from timebank.resident import common
from timebank.resident.common import when
from timebank.web import forms, messages, templating
from timebank.web.i18n import N_
from timebank.web.qr import qr_svg
from timebank.web.templating import render, see_other

RESIDENT = access(Role.RESIDENT)
REWARDS_PAGE = 50
VOUCHERS_SHOWN = 50
STALE_FORM = N_("This form has expired. Please look at it again and confirm.")


def _reward_item(request: Request, view: dict[str, Any], names: dict[uuid.UUID, str]) -> dict[str, Any]:
    eligibility = view.get("eligibility") or {
        "may_redeem": False,
        "reasons": [],
        "price_points": view["price_points"],
    }
    limit = view.get("limit")
    return {
        **view,
        "merchant_name": names.get(uuid.UUID(view["merchant_id"]), ""),
        "may_redeem": eligibility["may_redeem"],
        "reasons": eligibility["reasons"],
        "why": messages.eligibility(eligibility["reasons"], templating.gettext(request)),
        "price": eligibility["price_points"],
        "limit_words": None if limit is None else (common.LIMIT_PERIOD.get(limit["period"]), limit["count"]),
        "until": when(view.get("valid_until")),
    }


def _left(expires_at: datetime) -> tuple[int, str]:
    """Seconds left and their "m:ss" (as site.js's countdown writes it)."""
    left = max(0, int((expires_at - datetime.now(UTC)).total_seconds()))
    h, rest = divmod(left, 3600)
    m, s = divmod(rest, 60)
    return left, (f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}")


def spaced(code: str | None) -> str:
    """ABCD2345 → "ABCD 2345": read out in two halves."""
    return "" if not code else " ".join(code[i : i + 4] for i in range(0, len(code), 4))


class RewardPages(Controller):
    path = "/me/rewards"

    @get("/", opt=RESIDENT)
    async def rewards(
        self, request: Request, cursor: str | None = Parameter(query="cursor", default=None, max_length=40)
    ) -> Response[Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            items, next_cursor = await rewards.list_rewards(
                conn, who, merchant_id=None, active=True, cursor=web.uuid_cursor(cursor), limit=REWARDS_PAGE
            )
            names = await community.party_names(
                conn, who.community_id, {uuid.UUID(i["merchant_id"]) for i in items}
            )
            balances = await common.balances(conn, request)
        shown = [_reward_item(request, i, names) for i in items]
        return render(
            request,
            "resident/rewards.html",
            may=[i for i in shown if i["may_redeem"]],
            may_not=[i for i in shown if not i["may_redeem"]],
            points=balances["POINT"],
            next_cursor=next_cursor,
            first_page=cursor is None,
        )

    async def _confirm_page(
        self, request: Request, reward_id: uuid.UUID, status: int = 200, error: str | None = None
    ) -> Response[Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            view = await rewards.get_reward(conn, who, reward_id)
            names = await community.party_names(conn, who.community_id, [uuid.UUID(view["merchant_id"])])
            balances = await common.balances(conn, request)
        item = _reward_item(request, view, names)
        return render(
            request,
            "resident/reward.html",
            status,
            reward=item,
            points=balances["POINT"],
            idem=common.new_idem(),
            error=error,
        )

    @get("/{reward_id:uuid}", opt=RESIDENT)
    async def reward(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        """The confirmation ("Redeem X for N points?"): the reward, my price, the button."""
        return await self._confirm_page(request, reward_id)

    @post("/{reward_id:uuid}/redeem", opt=RESIDENT, status_code=303)
    async def redeem(self, request: Request, reward_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        idem = common.checked_idem(values)
        if idem is None:
            return await self._confirm_page(request, reward_id, 400, _(STALE_FORM))
        who, signer = web.principal(request), request.app.state.signer
        member = common.member_id(request)

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.redeem(
                conn, who, reward_id, member, token=None, signer=signer, claim=claim
            )

        async def replay(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await redemption_views.redemption_answer(conn, community_id, tx_id, signer)

        body = {"reward_id": str(reward_id), "member_id": str(member)}
        status, answer, _replayed = await common.run_once(request, idem, body, action, replay)
        if status >= 400:
            return await self._confirm_page(request, reward_id, status, common.refusal(request, answer))
        return see_other(f"/me/vouchers/{answer['id']}")


class VoucherPages(Controller):
    path = "/me/vouchers"

    @get("/", opt=RESIDENT)
    async def vouchers(self, request: Request) -> Response[Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            items, _ = await redemption_views.member_redemptions(
                conn, who, common.member_id(request), None, VOUCHERS_SHOWN
            )
            names = await community.party_names(
                conn, who.community_id, {uuid.UUID(i["merchant_id"]) for i in items}
            )
        now = datetime.now(UTC)
        shown = []
        for item in items:
            expires = when(item["expires_at"])
            open_ = item["status"] == "held" and expires > now
            status = item["status"] if open_ or item["status"] != "held" else "expired"
            shown.append(
                {
                    **item,
                    "open": open_,
                    "status_words": common.VOUCHER_STATUS.get(status, status),
                    "merchant_name": names.get(uuid.UUID(item["merchant_id"]), ""),
                    "created": when(item["created_at"]),
                    "expires": expires,
                }
            )
        return render(
            request,
            "resident/vouchers.html",
            open_vouchers=[v for v in shown if v["open"]],
            earlier=[v for v in shown if not v["open"]],
        )

    async def _voucher(self, request: Request, redemption_id: uuid.UUID) -> dict[str, Any]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            view = await redemption_views.resident_voucher(conn, who, redemption_id, request.app.state.signer)
            names = await community.party_names(conn, who.community_id, [uuid.UUID(view["merchant_id"])])
        expires = when(view["expires_at"])
        seconds_left, left = _left(expires)
        open_ = view["status"] == "held" and seconds_left > 0
        status = view["status"] if open_ or view["status"] != "held" else "expired"
        return {
            **view,
            "open": open_,
            "status_words": common.VOUCHER_STATUS.get(status, status),
            "merchant_name": names.get(uuid.UUID(view["merchant_id"]), ""),
            "expires": expires,
            "left": left,
            "spaced_code": spaced(view.get("code")) if open_ else "",
            "resolved": when(view.get("resolved_at")),
        }

    @get("/{redemption_id:uuid}", opt=RESIDENT)
    async def voucher(
        self,
        request: Request,
        redemption_id: uuid.UUID,
        done: str | None = Parameter(query="done", default=None, max_length=20),
    ) -> Response[Any]:
        _ = templating.gettext(request)
        voucher = await self._voucher(request, redemption_id)
        qr = None
        if voucher["open"] and voucher.get("qr"):
            label = _("QR code of the voucher %(code)s") % {"code": voucher["spaced_code"]}
            # a first drawing of a long token takes tens of ms: not on the event loop
            qr = await asyncio.to_thread(qr_svg, voucher["qr"], label)
        notice = _("The voucher is cancelled. Your points are back.") if done == "cancelled" else None
        return render(request, "resident/voucher.html", voucher=voucher, qr=qr, notice=notice)

    async def _cancel_page(
        self, request: Request, redemption_id: uuid.UUID, status: int = 200, error: str | None = None
    ) -> Response[Any]:
        voucher = await self._voucher(request, redemption_id)
        return render(
            request, "resident/cancel.html", status, voucher=voucher, idem=common.new_idem(), error=error
        )

    @get("/{redemption_id:uuid}/cancel", opt=RESIDENT)
    async def cancel_form(self, request: Request, redemption_id: uuid.UUID) -> Response[Any]:
        """The confirmation ("Cancel this voucher?") before the points come back."""
        return await self._cancel_page(request, redemption_id)

    @post("/{redemption_id:uuid}/cancel", opt=RESIDENT, status_code=303)
    async def cancel(self, request: Request, redemption_id: uuid.UUID) -> Response[Any]:
        values = await forms.read_form(request)
        _ = templating.gettext(request)
        idem = common.checked_idem(values)
        if idem is None:
            return await self._cancel_page(request, redemption_id, 400, _(STALE_FORM))
        who, signer = web.principal(request), request.app.state.signer

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.cancel(conn, who, redemption_id, signer=signer, claim=claim)

        async def replay(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await redemption_views.redemption_answer(conn, community_id, tx_id, signer)

        status, answer, _replayed = await common.run_once(request, idem, {}, action, replay)
        if status >= 400:  # (another's voucher: the page answers 404, as the API does)
            return await self._cancel_page(request, redemption_id, status, common.refusal(request, answer))
        return see_other(f"/me/vouchers/{redemption_id}?done=cancelled")
