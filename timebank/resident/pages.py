"""The resident's pages (居民): home, history, service records and certificate,
rewards and vouchers, giving hours to a neighbour and points to the community fund.

All are for a signed-in resident (``opt=access(Role.RESIDENT)``); the member is the
person's ``subject_id``. The handlers are thin: they call the services the API's
routes call, with the person's principal (see each module).
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from timebank.resident.give import GivePages
from timebank.resident.home import ResidentPages
from timebank.resident.rewards import RewardPages, VoucherPages

PAGES: list[ControllerRouterHandler] = [ResidentPages, RewardPages, VoucherPages, GivePages]
