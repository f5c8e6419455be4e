"""`timebank tour`: the README's short tour, run step by step against a running service.

Each step sends what the README shows and prints what the answer says; a step whose
answer is not what the README documents stops the tour with exit status 1. It runs on
any day (the dates come from the service's clock, in the community's time zone) and
any number of times on the same data (every Idempotency-Key, name and reward title
carries this run's id). What it writes (a receipt, the published keys, a certificate)
goes to a scratch folder it names, never the working directory.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import httpx

from timebank.cli.base import main
from timebank.cli.serve import DEMO_FILE
from timebank.core.settings import get_settings


class TourFailed(click.ClickException):
    """A step answered otherwise than the README says."""


def tour_dates(today: date) -> dict[str, date]:
    """The tour's dates for a day in the community's zone: a service two days ago (never
    in the future, whatever the day), a certificate of the year up to today and the
    statement of the last 30 days (both hold the service and today's redemption)."""
    return {
        "service_day": today - timedelta(days=2),
        "certificate_from": today - timedelta(days=365),
        "statement_from": today - timedelta(days=30),
        "to": today,
    }


class Tour:
    def __init__(self, url: str, admin_key: str, scratch: Path, out: Any = click.echo) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=30)
        self.admin = {"Authorization": f"Bearer {admin_key}"}
        self.run = secrets.token_hex(3)  # this run's id: keys, names and titles are new each time
        self.scratch = scratch
        self.say = out
        self.step = 0

    # --- plumbing -----------------------------------------------------------------------

    def title(self, text: str) -> None:
        self.step += 1
        self.say(f"\n{self.step}. {text}")

    def show(self, text: str) -> None:
        self.say(f"   {text}")

    def key(self, n: int) -> dict[str, str]:
        return {"Idempotency-Key": f"tour-{self.run}-{n}"}

    def call(self, method: str, path: str, want: int, auth: dict[str, str] | None = None, **kw: Any) -> Any:
        headers = {**(self.admin if auth is None else auth), **kw.pop("headers", {})}
        r = self.http.request(method, path, headers=headers, **kw)
        if r.status_code != want:
            raise TourFailed(f"{method} {path} answered {r.status_code}, not {want}: {r.text[:500]}")
        return r

    def bearer(self, role: str, subject_id: str | None = None) -> dict[str, str]:
        body = {"role": role, **({"subject_id": subject_id} if subject_id else {})}
        return {"Authorization": f"Bearer {self.call('POST', '/v1/api-keys', 201, json=body).json()['key']}"}

    # --- the steps ----------------------------------------------------------------------

    def community(self) -> None:
        self.title("The community and its system accounts (GET /v1/community)")
        r = self.call("GET", "/v1/community", 200)
        c = r.json()
        self.community_id, self.zone = c["id"], ZoneInfo(c["timezone"])
        self.today = parsedate_to_datetime(r.headers["date"]).astimezone(self.zone).date()
        self.dates = tour_dates(self.today)
        self.issuance = c["accounts"]["issuance"]["HOUR"]
        self.issuance_points = c["accounts"]["issuance"]["POINT"]
        self.show(f"{c['name']} ({c['id']}), time zone {c['timezone']}; today there is {self.today}")
        self.show("system accounts: " + ", ".join(sorted(c["accounts"])))

    def members(self) -> None:
        self.title("Two residents, each with an HOUR and a POINT account (POST /v1/members)")
        self.liu = self.call("POST", "/v1/members", 201, json={"display_name": f"刘阿姨 {self.run}"}).json()
        self.zhou = self.call("POST", "/v1/members", 201, json={"display_name": f"小周 {self.run}"}).json()
        for m in (self.liu, self.zhou):
            self.show(f"{m['display_name']}: member id {m['id']}, HOUR account {m['accounts']['HOUR']}")

    def credit_and_replay(self) -> None:
        self.title("Credit 3 hours to 刘阿姨, then send the same request again")
        body = {
            "from_account": self.issuance,
            "to_account": self.liu["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 180,
            "kind": "adjustment",
        }
        first = self.call("POST", "/v1/transfers", 201, json=body, headers=self.key(1))
        again = self.call("POST", "/v1/transfers", 201, json=body, headers=self.key(1))
        if again.headers.get("idempotent-replayed") != "true" or again.json()["id"] != first.json()["id"]:
            raise TourFailed("the same request with the same key was not answered as a replay")
        self.show(f"transaction {first.json()['id']}: 180 minutes")
        self.show("sent again: the same answer, Idempotent-Replayed: true; nothing moved twice")

    def hold_and_post(self) -> None:
        self.title("刘阿姨 gives 小周 an hour: a two-phase hold, then its posting")
        body = {
            "from_account": self.liu["accounts"]["HOUR"],
            "to_account": self.zhou["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 60,
            "pending": {"timeout_seconds": 600},
        }
        hold = self.call("POST", "/v1/transfers", 201, json=body, headers=self.key(2)).json()
        posted = self.call("POST", f"/v1/transactions/{hold['id']}/post", 201, headers=self.key(3)).json()
        self.hold_id = posted["id"]
        self.show(f"hold {hold['id']} ({hold['phase']}), posted by {posted['id']} ({posted['phase']})")

    def too_much(self) -> None:
        self.title("Too much: a problem, and nothing changes")
        body = {
            "from_account": self.zhou["accounts"]["HOUR"],
            "to_account": self.liu["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 999,
        }
        r = self.call("POST", "/v1/transfers", 422, json=body, headers=self.key(4))
        if not r.json()["type"].endswith("/insufficient-funds"):
            raise TourFailed(f"expected insufficient-funds, got {r.json()['type']}")
        self.show(f"422 {r.headers['content-type'].split(';')[0]}: {r.json()['type']}")

    def balances(self) -> None:
        self.title("Balances and entries of 刘阿姨's HOUR account")
        acc = self.liu["accounts"]["HOUR"]
        b = self.call("GET", f"/v1/accounts/{acc}", 200).json()
        entries = self.call("GET", f"/v1/accounts/{acc}/entries?limit=10", 200).json()["items"]
        self.show(f"posted {b['posted']}, pending {b['pending']}, available {b['available']} (minutes)")
        self.show(f"{len(entries)} entries, newest first")
        if b["posted"] != 120:
            raise TourFailed(f"刘阿姨 should have 120 minutes, has {b['posted']}")

    def resident_key(self) -> None:
        self.title("A key for 刘阿姨: she sees only her own accounts")
        self.liu_auth = self.bearer("resident", self.liu["id"])
        self.call("GET", f"/v1/accounts/{self.zhou['accounts']['HOUR']}", 404, auth=self.liu_auth)
        self.show("her key reads her accounts; 小周's answer 404")

    def audit(self) -> None:
        self.title("The whole ledger checked (timebank audit)")
        done = subprocess.run(
            [sys.executable, "-m", "timebank.cli", "audit"], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise TourFailed(f"timebank audit failed:\n{done.stdout}{done.stderr}")
        self.show((done.stdout.strip().splitlines() or ["audit clean"])[-1])

    def receipt(self) -> None:
        self.title("A signed receipt, checked offline with the published keys")
        from timebank.log import verify as v

        deadline = time.monotonic() + 15
        while True:  # the proof arrives when the log integrates the transaction
            receipt = self.call("GET", f"/v1/transactions/{self.hold_id}/receipt", 200).json()
            if receipt.get("inclusion") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        keys = self.call("GET", "/v1/log/keys", 200).json()
        (self.scratch / "receipt.json").write_text(json.dumps(receipt, ensure_ascii=False, indent=1))
        (self.scratch / "keys.json").write_text(json.dumps(keys))
        report = v.verify_receipt(receipt, v.load_jwks(keys))
        self.show(f"saved {self.scratch / 'receipt.json'} and {self.scratch / 'keys.json'}")
        self.show(
            "verified: signature, leaf hash" + (", inclusion, checkpoint" if not report.skipped else "")
        )
        self.show(
            f"(the same: timebank verify {self.scratch / 'receipt.json'} --keys {self.scratch / 'keys.json'})"
        )

    def service(self) -> None:
        self.title("Volunteer service: recorded by the demo organisation, approved by an admin")
        org = self.call("GET", "/v1/organisations", 200).json()["items"][0]
        recorder = self.bearer("recorder", org["id"])
        day = self.dates["service_day"]
        start = datetime(day.year, day.month, day.day, 9, tzinfo=self.zone)
        body = {
            "member_id": self.liu["id"],
            "activity": "陪老人聊天",
            "category": "志愿服务",
            "place": "日间照料中心",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(hours=2)).isoformat(),
        }
        record = self.call("POST", "/v1/service-records", 201, auth=recorder, json=body).json()
        self.call("POST", f"/v1/service-records/{record['id']}/approve", 201, headers=self.key(5))
        m = self.call("GET", f"/v1/members/{self.liu['id']}", 200).json()
        self.show(f"record {record['id']} on {day}: {record['minutes']} minutes, approved")
        self.show(f"刘阿姨: lifetime {m['lifetime_minutes']} minutes, star level {m['star_level']}")
        period = f"from={self.dates['certificate_from']}&to={self.dates['to']}"
        pdf = self.call("GET", f"/v1/members/{self.liu['id']}/certificate?{period}&format=pdf", 200)
        (self.scratch / "cert.pdf").write_bytes(pdf.content)
        self.show(f"certificate of service saved to {self.scratch / 'cert.pdf'} ({len(pdf.content):,} bytes)")

    def redemption(self) -> None:
        self.title("爱心兑换: a reward, a redemption, the merchant's confirmation")
        points = self.call("GET", f"/v1/accounts/{self.liu['accounts']['POINT']}", 200).json()["available"]
        if points < 10:  # a record typed in after the fact may earn hours only (policy)
            gift = {
                "from_account": self.issuance_points,
                "to_account": self.liu["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 10 - points,
                "kind": "adjustment",
            }
            self.call("POST", "/v1/transfers", 201, json=gift, headers=self.key(7))
            self.show(f"刘阿姨 had {points} points; the community adds {10 - points} (an adjustment)")
        merchant = self.call("GET", "/v1/merchants", 200).json()["items"][0]
        shop = self.bearer("merchant", merchant["id"])
        body = {"title": f"导览体验券 {self.run}", "price_points": 10, "stock": 20}
        reward = self.call("POST", "/v1/rewards", 201, auth=shop, json=body).json()
        listed = self.call("GET", "/v1/rewards", 200, auth=self.liu_auth).json()["items"]
        mine = next(r for r in listed if r["id"] == reward["id"])
        self.show(
            f"{mine['title']}: price_points {mine['price_points']}, "
            f"eligibility.may_redeem {mine['eligibility']['may_redeem']}"
        )
        held = self.call(
            "POST",
            "/v1/redemptions",
            201,
            auth=self.liu_auth,
            headers=self.key(6),
            json={"reward_id": reward["id"], "member_id": self.liu["id"]},
        ).json()
        done = self.call(
            "POST", f"/v1/redemptions/{held['id']}/confirm", 201, auth=shop, json={"code": held["code"]}
        )
        self.show(f"voucher code {held['code']} confirmed: {done.json()['status']}")
        period = f"from={self.dates['statement_from']}&to={self.dates['to']}"
        csv = self.call("GET", f"/v1/merchants/{merchant['id']}/statement?{period}&format=csv", 200)
        if reward["title"] not in csv.text:
            raise TourFailed("the statement does not list the redemption just confirmed")
        self.show(f"statement {period}: {csv.headers['content-type']}, lists the redemption")

    def public_log(self) -> None:
        self.title("The community's public log: its latest signed checkpoint, no key needed")
        r = self.call("GET", f"/v1/log/checkpoint?community_id={self.community_id}", 200, auth={})
        self.show(r.text.strip().splitlines()[0] + " …")

    def all(self) -> None:
        for step in (
            self.community,
            self.members,
            self.credit_and_replay,
            self.hold_and_post,
            self.too_much,
            self.balances,
            self.resident_key,
            self.audit,
            self.receipt,
            self.service,
            self.redemption,
            self.public_log,
        ):
            step()


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The running service.")
@click.option("--admin-key", envvar="TIMEBANK_ADMIN_KEY", help="An admin key (default: the demo's).")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path), help="Where files go.")
def tour(url: str, admin_key: str | None, scratch: Path | None) -> None:
    """Run the README's short tour against a running service, printing what each step shows."""
    if admin_key is None:
        demo = get_settings().data_dir / DEMO_FILE
        if not demo.exists():
            raise click.UsageError(f"no --admin-key and no demo keys in {demo}: start `serve` first")
        admin_key = json.loads(demo.read_text())["admin_key"]
    folder = scratch or Path(tempfile.mkdtemp(prefix="timebank-tour-"))
    folder.mkdir(parents=True, exist_ok=True)
    t = Tour(url, admin_key, folder)
    click.echo(f"the tour of {url} (run {t.run}; files in {folder})")
    t.all()
    click.echo(f"\ndone: {t.step} steps answered as documented")
