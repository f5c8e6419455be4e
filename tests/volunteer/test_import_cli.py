"""`timebank import records FILE`: the CSV import from the command line, with progress."""

from __future__ import annotations

import json


async def test_import_records_from_the_command_line(database_url, tenant, tmp_path, run_cli):
    t = tenant
    org = await t.party("organisations", "命令行志愿队")
    member = (
        await t.client.post(
            "/v1/members", json={"display_name": "赵大爷", "external_ref": "C-1"}, headers=t.auth()
        )
    ).json()
    csv = (
        "member_ref,activity,category,place,started_at,ended_at\n"
        "C-1,义诊,culture_health,广场,2026-10-01 09:00,2026-10-01 11:00\n"
        "C-1,义诊,culture_health,广场,2026-10-02 09:00,2026-10-02 10:30\n"
        "C-404,义诊,culture_health,广场,2026-10-03 09:00,2026-10-03 10:00\n"
    )
    path = tmp_path / "records.csv"
    path.write_text(csv, encoding="utf-8")
    args = ("import", "records", str(path), "--community", t.id, "--organisation", org["id"], "--chunk", "2")
    first = run_cli(*args, url=database_url)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["accepted"] == 2 and summary["duplicates"] == 0
    assert [(r["line"], "C-404" in r["reason"]) for r in summary["rejected"]] == [(4, True)]
    assert "importing" in first.stderr  # the progress bar
    again = json.loads(run_cli(*args, url=database_url).stdout)
    assert again["accepted"] == 0 and again["duplicates"] == 2
    listed = (await t.client.get(f"/v1/members/{member['id']}/service-records", headers=t.auth())).json()[
        "items"
    ]
    assert sorted(r["minutes"] for r in listed) == [90, 120]
    bad = run_cli(
        "import",
        "records",
        str(path),
        "--community",
        "00000000-0000-0000-0000-000000000000",
        url=database_url,
    )
    assert bad.returncode != 0 and "no community" in bad.stderr
