"""HTTP routes of the transparency log: keys, checkpoints, proofs (public) and receipts."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, get

from timebank import schemas, web
from timebank.core.access import KEY_PREFIX, PUBLIC, READERS, Principal, access
from timebank.core.roles import Role
from timebank.log import proofs, receipts, registry
from timebank.log.keys import Signer
from timebank.schemas import problems
from timebank.security import lookup_key

NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"
# OpenAPI: no key needed; a key, if sent, names the default community.
OPTIONAL_KEY: list[dict[str, list[str]]] = [{}, {"apiKey": []}]


def signer(request: Request) -> Signer:
    return request.app.state.signer


async def _optional_principal(request: Request) -> Principal | None:
    """Public routes take a key only to default the log to the key's community."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    state = request.app.state
    return await lookup_key(state.engine, state.key_cache, key)


async def _community(request: Request, community_id: uuid.UUID | None) -> uuid.UUID:
    return proofs.log_community(None if community_id else await _optional_principal(request), community_id)


class LogController(Controller):
    """Keys, checkpoints and proofs reveal only hashes: anyone may fetch them."""

    path = "/v1/log"
    tags = ["transparency log"]

    @get(
        "/keys",
        opt=PUBLIC,
        security=OPTIONAL_KEY,
        responses=problems(public=True),
        summary="Public signing keys, current and retired (JWK set)",
    )
    async def keys(self, request: Request) -> Response[schemas.KeySet]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await registry.key_set(conn))

    @get(
        "/checkpoint",
        opt=PUBLIC,
        security=OPTIONAL_KEY,
        media_type=NOTE_MEDIA_TYPE,
        responses=problems(404, public=True),
        summary="The latest signed checkpoint of a community's log (C2SP tlog-checkpoint)",
    )
    async def checkpoint(self, request: Request, community_id: uuid.UUID | None = None) -> Response[str]:
        cid = await _community(request, community_id)
        async with web.engine(request).connect() as conn:
            note = await proofs.checkpoint_note(conn, cid, None)
        return Response(note, media_type=NOTE_MEDIA_TYPE)

    @get(
        "/checkpoints",
        opt=PUBLIC,
        security=OPTIONAL_KEY,
        responses=problems(404, public=True),
        operation_class=schemas.documented(answers={NOTE_MEDIA_TYPE: schemas.TEXT}),
        summary="With size=: the kept checkpoint of that size (text/plain); without: the list of kept checkpoints",
    )
    async def checkpoints(
        self,
        request: Request,
        community_id: uuid.UUID | None = None,
        size: schemas.TreeSize = None,
        cursor: schemas.IntCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.CheckpointPage]:
        cid = await _community(request, community_id)
        async with web.engine(request).connect() as conn:
            if size is not None:
                return Response(await proofs.checkpoint_note(conn, cid, size), media_type=NOTE_MEDIA_TYPE)
            items, next_cursor = await proofs.checkpoints_page(
                conn, cid, web.int_cursor(cursor), web.page_limit(request, limit)
            )
        return web.json_response({"items": items, "next_cursor": next_cursor})

    @get(
        "/proof/inclusion",
        opt=PUBLIC,
        security=OPTIONAL_KEY,
        responses=problems(404, public=True),
        summary="Inclusion proof of an entry in a tree size",
    )
    async def inclusion(
        self,
        request: Request,
        community_id: uuid.UUID | None = None,
        index: schemas.TreeSize = None,
        transaction_id: uuid.UUID | None = None,
        size: schemas.TreeSize = None,
    ) -> Response[schemas.InclusionProof]:
        cid = await _community(request, community_id)
        async with web.engine(request).connect() as conn:
            body = await proofs.inclusion_proof(
                conn, cid, index=index, transaction_id=transaction_id, size=size
            )
        return web.json_response(body)

    @get(
        "/proof/consistency",
        opt=PUBLIC,
        security=OPTIONAL_KEY,
        responses=problems(404, public=True),
        summary="Consistency proof between two tree sizes",
    )
    async def consistency(
        self,
        request: Request,
        first: schemas.ProofSize,
        second: schemas.ProofSize,
        community_id: uuid.UUID | None = None,
    ) -> Response[schemas.ConsistencyProof]:
        cid = await _community(request, community_id)
        async with web.engine(request).connect() as conn:
            body = await proofs.consistency_proof(conn, cid, first, second)
        return web.json_response(body)


class ReceiptController(Controller):
    path = "/v1/transactions"
    tags = ["transparency log"]

    @get(
        "/{tx_id:uuid}/receipt",
        opt=access(*READERS, Role.DISTRICT_ADMIN),
        responses=problems(404),
        summary="A transaction's signed receipt, with its inclusion proof once integrated",
    )
    async def receipt(self, request: Request, tx_id: uuid.UUID) -> Response[schemas.Receipt]:
        cfg = web.settings(request)
        async with web.engine(request).connect() as conn:
            body = await receipts.receipt(
                conn, web.principal(request), tx_id, signer(request), cfg.log_origin
            )
        return web.json_response(body)
