"""What a refusal means, in words a resident or a shop assistant understands.

The domain services raise errors with a stable type (``slug``) and an English detail
for API clients; a page shows the sentence below for the type, in the page's
language, and falls back to the general one (never to a stack trace or a bare code).
"""

from __future__ import annotations

from collections.abc import Callable

from timebank.core.problems import DomainError
from timebank.web.i18n import N_

BY_TYPE = {
    "insufficient-funds": N_("There is not enough in your account for this."),
    "wrong-voucher-code": N_("This code is not right. Check it with the resident and try again."),
    "voucher-used": N_("This voucher was already used, cancelled or has expired. Nothing was changed."),
    "voucher-expired": N_("This voucher has expired. Nothing was changed."),
    "reward-unavailable": N_("You may not redeem this reward now."),
    "not-found": N_("We could not find that. It may have been removed, or belong to another community."),
    "forbidden": N_("You may not do that with your account."),
    "sign-in-refused": N_("The login or the password is not right."),
    "sign-in-link-not-usable": N_(
        "This sign-in link cannot be used. Ask your community's staff for a new one."
    ),
    "login-taken": N_("Another person already signs in with this login."),
    "idempotency-conflict": N_("This form was already sent with other values. Please start again."),
    "too-many-requests": N_("Too many tries. Please wait a few minutes and try again."),
    "invalid-request": N_("Some of what you entered is not valid. Please check it."),
    "database-unavailable": N_("The service is busy right now. Nothing was changed; please try again soon."),
    # (a settlement's page says its own sentence: timebank/districts/pages.py)
    "four-eyes": N_(
        "The admin who asked for a correction cannot decide it. Another admin must approve or refuse it."
    ),
    "record-already-resolved": N_(
        "This record was already approved, rejected or corrected. Nothing was changed."
    ),
    "check-in-token-expired": N_(
        "This code has expired. Scan the code the organiser shows now, or type its 6 digits."
    ),
    "check-in-token-foreign": N_("This code is for another activity. Scan the code of this activity."),
    "check-in-token-invalid": N_(
        "This code is not right. Scan the organiser's code again, or type its 6 digits."
    ),
    "check-in-outside-radius": N_(
        "Your phone is too far from the place of the activity. Check in when you are there."
    ),
    "not-signed-up": N_("You have no place at this activity. Ask the organiser."),
    "check-in-outside-time": N_(
        "Check-in is open from an hour before the activity starts to an hour after it ends."
    ),
    "activity-cancelled": N_("This activity was cancelled."),
    "attendance-record-refused": N_(
        "Your hours could not be recorded (they overlap another record, or pass the daily limit). "
        "Ask the organiser."
    ),
    "signup-closed": N_("Sign-up for this activity is not open now."),
    "star-level-too-low": N_("This activity needs a higher star level."),
    "invalid-activity": N_("Some of what you entered is not valid. Please check the times and the place."),
    "conflict": N_("That cannot be done now. Nothing was changed."),
    "crossing-limit": N_(
        "This would take a community past its limit in the district. Nothing was sent; "
        "try a smaller amount, or after the district settles."
    ),
    "not-in-district": N_("That community is not in this community's district. Nothing was sent."),
}
GENERAL = N_("That could not be done. Nothing was changed.")

# Why a resident may not redeem a reward (``redemption.rules`` reasons).
ELIGIBILITY = {
    "not_active": N_("The shop no longer offers it."),
    "not_valid_yet": N_("It is not offered yet."),
    "no_longer_valid": N_("Its offer has ended."),
    "star_level": N_("It needs a higher star level."),
    "out_of_stock": N_("It is out of stock."),
    "limit_reached": N_("You have reached the limit for this period."),
    "insufficient_points": N_("You do not have enough points."),
}


def explain(error: DomainError | str, gettext: Callable[[str], str]) -> str:
    slug = error if isinstance(error, str) else error.slug
    return gettext(BY_TYPE.get(slug, GENERAL))


def eligibility(reasons: list[str], gettext: Callable[[str], str]) -> list[str]:
    return [gettext(ELIGIBILITY.get(r, GENERAL)) for r in reasons]


# What an entry of an account's history was, by its transaction's kind (and, for a
# transfer, its direction on the account): the resident's history and the staff's
# member page say it alike.
KIND_WORDS = {
    "service_credit": N_("Volunteer service"),
    "donation": N_("Donation to the community fund"),
    "redemption": N_("Reward redeemed"),
    "expiry": N_("Points expired"),
    "reversal": N_("Correction"),
    "adjustment": N_("Adjustment by staff"),
}
TRANSFER_IN = N_("From a neighbour")
TRANSFER_OUT = N_("To a neighbour")
CROSSING_IN = N_("From another community")
CROSSING_OUT = N_("To another community")

# A service record's status in words.
RECORD_STATUS = {
    "submitted": N_("Waiting for approval"),
    "approved": N_("Approved"),
    "rejected": N_("Not approved"),
    "reversed": N_("Withdrawn after a correction"),
}


def entry_words(kind: str, incoming: bool) -> str:
    """The message id of what an entry was (translate it where it is shown)."""
    if kind == "transfer":
        return TRANSFER_IN if incoming else TRANSFER_OUT
    if kind == "crossing":  # 通存通兑: through the district
        return CROSSING_IN if incoming else CROSSING_OUT
    return KIND_WORDS.get(kind, kind)


# Family links (亲情账户): what their refusals mean.
BY_TYPE.update(
    {
        "family-code-not-usable": N_(
            "This family code is not right, was already used, or has expired. Check it with your relative, "
            "or ask them for a new one. Nothing was changed."
        ),
        "family-code-own": N_(
            "This is your own family code. Give it to your relative to enter on their phone."
        ),
        "family-code-tries": N_("Too many family codes that were not right. Please try again in an hour."),
        "family-codes-open": N_(
            "You already have 5 family codes nobody has used. Withdraw one, or wait until they expire."
        ),
        "family-already-linked": N_("You are already linked with this relative."),
        "family-not-in-district": N_(
            "Your community and your relative's are not in the same district, so you cannot be linked. "
            "Ask the staff."
        ),
        "family-link-not-live": N_(
            "This family link is not confirmed yet, or has ended. Nothing was changed."
        ),
        "family-action-not-granted": N_("Your relative has not allowed you to do this for them."),
    }
)
