"""A community with a little history for the operations and journal pages' tests (over
HTTP and in a browser): two members, transfers, a donation, a reversal, a hold and its
release, points lots expiring soon, and staff (an admin, a board member) who sign in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.people.pages import add_person

PASSWORD = "staff-password-1"


@dataclass
class Ledger:
    t: Any
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    tx: dict[str, str] = field(default_factory=dict)  # what each made transaction was
    logins: dict[str, str] = field(default_factory=dict)

    def account(self, name: str, asset: str = "HOUR") -> str:
        return self.members[name]["accounts"][asset]

    async def move(self, label: str, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.t.transfer(body)
        assert r.status_code == 201, r.text
        self.tx[label] = r.json()["id"]
        return r.json()

    async def policy_months(self, months: int) -> None:
        c, admin = self.t.client, self.t.auth()
        policy = (await c.get("/v1/community/policy", headers=admin)).json()["policy"]
        policy["points_expiry"] = {"kind": "months_after_credit", "months": months}
        r = await c.put("/v1/community/policy", json=policy, headers=admin)
        assert r.status_code == 200, r.text

    async def setup(self) -> Ledger:
        t = self.t
        for name in ("王秀兰", "李建国"):
            self.members[name] = await t.member(name)
        wang, li = "王秀兰", "李建国"
        self.tx["fund"] = (await t.fund(self.account(wang), "HOUR", 600))["id"]
        # points lots expiring in about one, two and twelve months
        for months, points in ((1, 40), (2, 25), (12, 100)):
            await self.policy_months(months)
            self.tx[f"points-{months}"] = (await t.fund(self.account(wang, "POINT"), "POINT", points))["id"]
        for label, minutes, memo in (("small", 60, "买菜"), ("big", 150, "陪诊")):
            await self.move(
                label,
                {
                    "from_account": self.account(wang),
                    "to_account": self.account(li),
                    "asset": "HOUR",
                    "amount": minutes,
                    "memo": memo,
                },
            )
        fund = t.accounts["fund"]["HOUR"]
        await self.move(
            "donation",
            {
                "from_account": self.account(wang),
                "to_account": fund,
                "asset": "HOUR",
                "amount": 30,
                "kind": "donation",
            },
        )
        r = await t.client.post(
            f"/v1/transactions/{self.tx['small']}/reverse",
            json={"reason": "记错了"},
            headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        self.tx["reversal"] = r.json()["id"]
        await self.move(
            "hold",
            {
                "from_account": self.account(li),
                "to_account": self.account(wang),
                "asset": "HOUR",
                "amount": 45,
                "pending": {"timeout_seconds": 3600},
            },
        )
        r = await t.client.post(
            f"/v1/transactions/{self.tx['hold']}/void",
            headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        self.tx["void"] = r.json()["id"]
        tag = uuid.uuid4().hex[:8]
        self.logins["admin"] = f"ops-admin-{tag}"
        self.logins["auditor"] = f"ops-board-{tag}"
        await add_person(t, "admin", None, "社工 小陈", self.logins["admin"], PASSWORD)
        await add_person(t, "auditor", self.members[li]["id"], "监事 老李", self.logins["auditor"], PASSWORD)
        return self
