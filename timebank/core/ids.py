"""Identifiers for rows written in time order: UUID version 7 (RFC 9562, section 5.7).

A transaction's id is the key of ``transactions`` and is indexed again by ``entries``
and ``log_leaves``. Random (version 4) ids land on a random leaf of each of those
indexes, so once an index outgrows memory every posting reads and dirties pages all
over it (and writes each one whole to the WAL after a checkpoint): throughput falls as
the ledger grows. A version 7 id starts with the time in milliseconds, so new ids land
at the right edge of the index, where the pages are already in memory. The 74 other
bits are random: ids stay unguessable and unique. (Python has ``uuid.uuid7`` only from
3.14.)
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A new UUID version 7: 48 bits of Unix time in ms, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 of them used
    value = (ms & 0xFFFF_FFFF_FFFF) << 80  # unix_ts_ms
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a (12 bits)
    value |= 0b10 << 62  # variant (RFC 9562)
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF  # rand_b (62 bits)
    return uuid.UUID(int=value)
