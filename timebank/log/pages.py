"""Receipts as pages link to them: ``GET /receipts/{id}`` downloads the signed receipt.

The same JSON as ``GET /v1/transactions/{id}/receipt`` (``receipts.receipt`` with the
signed-in person's principal, so a person gets only the receipts of transactions
that touch their own accounts, staff those of their community), as a file
``receipt-<id>.json`` that ``timebank verify`` checks offline.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import READERS, access
from timebank.log import receipts


class ReceiptPages(Controller):
    path = "/receipts"

    @get("/{tx_id:uuid}", opt=access(*READERS))
    async def download(self, request: Request, tx_id: uuid.UUID) -> Response[Any]:
        cfg = web.settings(request)
        async with web.engine(request).connect() as conn:
            body = await receipts.receipt(
                conn, web.principal(request), tx_id, request.app.state.signer, cfg.log_origin
            )
        return Response(
            content=json.dumps(body, ensure_ascii=False, indent=2).encode(),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="receipt-{tx_id}.json"',
                "Cache-Control": "private, no-store",
            },
        )


PAGES: list[ControllerRouterHandler] = [ReceiptPages]
