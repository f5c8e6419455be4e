"""Certificates of service: numbered, signed, public check by number, PDF with CJK text
and a QR code that decodes to the check URL, offline verification, tamper detection."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pypdfium2 as pdfium
import zxingcpp
from click.testing import CliRunner

from timebank.cli import main as cli
from timebank.log.verify import VerificationError, load_jwks, verify_certificate

DAY = datetime(2026, 3, 2, tzinfo=UTC)


async def volunteer_with_service(t):
    org = await t.party("organisations", "华锦志愿服务队")
    recorder = await t.key("recorder", org["id"])
    member = await t.member("王阿姨")
    for n, hours in enumerate((2, 3, 1.5)):
        start = DAY + timedelta(days=n)
        r = await t.client.post(
            "/v1/service-records",
            headers=t.auth(recorder),
            json={
                "member_id": member["id"],
                "activity": ["陪老人聊天", "修水管", "法律咨询"][n],
                "category": "volunteer_service",
                "place": "活动室",
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(hours=hours)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        if n < 2:  # the third stays submitted: not on the certificate
            a = await t.client.post(
                f"/v1/service-records/{r.json()['id']}/approve",
                headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
            )
            assert a.status_code == 201, a.text
    return member


async def test_a_certificate_is_signed_numbered_and_checkable_by_anyone(tenant, tmp_path):
    t = tenant
    member = await volunteer_with_service(t)
    url = f"/v1/members/{member['id']}/certificate?from=2026-03-01&to=2026-03-31"
    r = await t.client.get(url, headers=t.auth())
    assert r.status_code == 200, r.text
    signed = r.json()
    cert = signed["certificate"]
    assert (
        cert["volunteer"]["name"] == "王阿姨"
        and cert["total_minutes"] == 300
        and cert["total_hours"] == "5.00"
    )
    assert [a["activity"] for a in cert["activities"]] == ["陪老人聊天", "修水管"]
    assert (
        cert["period"] == {"from": "2026-03-01", "to": "2026-03-31"}
        and cert["issuer"] == cert["community"]["name"]
    )
    assert cert["number"].startswith("TB-") and cert["verify_url"].endswith(
        "/v1/certificates/" + cert["number"]
    )
    keys = load_jwks((await t.client.get("/v1/log/keys")).json())
    verify_certificate(signed, keys)
    # The same period again: the same certificate, not a new number.
    assert (await t.client.get(url, headers=t.auth())).json() == signed
    # Anyone can check it by number, without a key.
    public = await t.client.get(f"/v1/certificates/{cert['number']}")
    assert public.status_code == 200 and public.json() == signed
    assert (await t.client.get("/v1/certificates/TB-2026-NOSUCHCERT")).status_code == 404
    # Offline, with only the published keys.
    (tmp_path / "keys.json").write_text((await t.client.get("/v1/log/keys")).text)
    (tmp_path / "cert.json").write_text(json.dumps(signed, ensure_ascii=False))
    ok = CliRunner().invoke(
        cli, ["verify", str(tmp_path / "cert.json"), "--keys", str(tmp_path / "keys.json")]
    )
    assert ok.exit_code == 0 and "certificate verified" in ok.output, ok.output
    # A tampered certificate fails, offline too.
    forged = json.loads(json.dumps(signed))
    forged["certificate"]["total_minutes"] = 3000
    try:
        verify_certificate(forged, keys)
        raise AssertionError("a forged certificate verified")
    except VerificationError as exc:
        assert cert["number"] in str(exc)
    (tmp_path / "forged.json").write_text(json.dumps(forged, ensure_ascii=False))
    bad = CliRunner().invoke(
        cli, ["verify", str(tmp_path / "forged.json"), "--keys", str(tmp_path / "keys.json")]
    )
    assert bad.exit_code == 1 and "FAIL" in bad.output and "changed" in bad.output


async def test_the_pdf_shows_chinese_text_and_a_qr_code_of_the_check_url(tenant):
    t = tenant
    member = await volunteer_with_service(t)
    url = f"/v1/members/{member['id']}/certificate?from=2026-03-01&to=2026-03-31"
    number = (await t.client.get(url, headers=t.auth())).json()["certificate"]["number"]
    r = await t.client.get(url + "&format=pdf", headers=t.auth())
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    doc = pdfium.PdfDocument(r.content)
    page = doc[0]
    text = page.get_textpage().get_text_range()
    for words in ("志愿服务证明", "王阿姨", "5.00", "陪老人聊天", number):
        assert words in text, (words, text[:300])
    assert b"/FontFile" in r.content  # the CJK font is embedded, not left to the reader's machine
    image = page.render(scale=2).to_pil()
    codes = [c.text for c in zxingcpp.read_barcodes(image)]
    assert codes == [f"http://timebank.test/v1/certificates/{number}"]


async def test_who_may_have_a_certificate(tenant, other_tenant):
    t = tenant
    member = await volunteer_with_service(t)
    own = await t.key("resident", member["id"])
    neighbour = await t.member("邻居")
    other = await t.key("resident", neighbour["id"])
    url = f"/v1/members/{member['id']}/certificate?from=2026-03-01&to=2026-03-31"
    assert (await t.client.get(url, headers=t.auth(own))).status_code == 200
    assert (await t.client.get(url, headers=t.auth(other))).status_code == 404
    assert (await t.client.get(url, headers=other_tenant.auth())).status_code == 404
    auditor = await t.key("auditor", neighbour["id"])
    assert (await t.client.get(url, headers=t.auth(auditor))).status_code == 403
    bad = await t.client.get(
        f"/v1/members/{member['id']}/certificate?from=2026-03-31&to=2026-03-01", headers=t.auth()
    )
    assert bad.status_code == 400
    assert (
        await t.client.get(
            f"/v1/members/{member['id']}/certificate?from=soon&to=2026-03-01", headers=t.auth()
        )
    ).status_code == 400
