async def test_transfer_roundtrip(tenant):
    a = await tenant.member("甲")
    b = await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 120)
    r = await tenant.transfer({"from_account": a["accounts"]["HOUR"], "to_account": b["accounts"]["HOUR"],
                               "asset": "HOUR", "amount": 20})
    assert r.status_code == 201, r.text
    assert (await tenant.balance(b["accounts"]["HOUR"]))["posted"] == 20
