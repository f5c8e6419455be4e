"""Pages: Jinja2 through Litestar's template support, one environment for every locale.

``render`` gives a page its context: the person (``who``), the locale and its
``gettext`` (``{% trans %}`` and ``_()`` in templates), the formats of numbers and
times in the community's zone, the large-text choice, navigation for the person's role
and the URL of each static file (with its content hash, so browsers may keep them).
Litestar adds ``csrf_input``, the hidden field every form carries.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from litestar import Request
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template import TemplateConfig

from timebank.core.roles import Role
from timebank.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
LARGE_COOKIE = "tb_large"
COOKIE_YEAR = 365 * 24 * 3600

# Pages load scripts, styles and images from this service only (nothing from another
# host, so they work on an intranet); no inline script or style. The camera preview of
# the merchant counter plays a local media stream.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def _static_version() -> str:
    digest = hashlib.sha256()
    for f in sorted(STATIC.rglob("*")):
        if f.is_file():
            digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()[:10]


STATIC_VERSION = _static_version()


@pass_context
def _gettext(ctx: Any, message: str) -> str:
    return i18n.translations(ctx["lang"]).gettext(message)


@pass_context
def _ngettext(ctx: Any, singular: str, plural: str, n: int) -> str:
    return i18n.translations(ctx["lang"]).ngettext(singular, plural, n)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = lambda name: f"/static/{name}?v={STATIC_VERSION}"
    env.filters["as_datetime"] = datetime.fromisoformat  # the services' RFC 3339 strings
    return env


ENVIRONMENT = _environment()
TEMPLATE_CONFIG = TemplateConfig(instance=JinjaTemplateEngine.from_environment(ENVIRONMENT))


def page_locale(request: Request) -> str:
    who = request.scope.get("auth")
    return i18n.negotiate(
        request.cookies.get(i18n.LANG_COOKIE),
        getattr(who, "locale", None),
        request.headers.get("accept-language"),
    )


def large_text(request: Request) -> bool:
    cookie = request.cookies.get(LARGE_COOKIE)
    if cookie in ("0", "1"):
        return cookie == "1"
    return bool(getattr(request.scope.get("auth"), "large_text", False))


def formats(request: Request) -> i18n.Formats:
    who = request.scope.get("auth")
    return i18n.Formats(page_locale(request), getattr(who, "timezone", None) or "Asia/Shanghai")


def gettext(request: Request) -> Any:
    """The page's gettext, for messages made in Python (flash messages, errors)."""
    return i18n.translations(page_locale(request)).gettext


# What each role's navigation offers, in order: (path, label message id). The supervisory
# board sees the staff's pages, read-only.
NAVIGATION: dict[Role, list[tuple[str, str]]] = {
    Role.RESIDENT: [
        ("/me", i18n.N_("Home")),
        ("/me/history", i18n.N_("History")),
        ("/me/rewards", i18n.N_("Rewards")),
        ("/me/records", i18n.N_("My service")),
        ("/me/activities", i18n.N_("Activities")),
        ("/me/give", i18n.N_("Give")),
        ("/me/family", i18n.N_("Family")),
    ],
    Role.MERCHANT: [
        ("/counter", i18n.N_("Counter")),
        ("/merchant/rewards", i18n.N_("Rewards")),
        ("/merchant/statement", i18n.N_("Statement")),
    ],
    Role.ADMIN: [
        ("/staff", i18n.N_("Home")),
        ("/staff/approvals", i18n.N_("Approvals")),
        ("/staff/members", i18n.N_("Members")),
        ("/staff/organisations", i18n.N_("Organisations")),
        ("/staff/merchants", i18n.N_("Merchants")),
        ("/staff/people", i18n.N_("People")),
        ("/staff/policy", i18n.N_("Policy")),
        ("/staff/operations", i18n.N_("Operations")),
        ("/staff/journal", i18n.N_("Journal")),
        ("/staff/reports", i18n.N_("Reports")),
        ("/staff/activities", i18n.N_("Activities")),
        ("/staff/district", i18n.N_("District")),
    ],
    Role.RECORDER: [
        ("/org", i18n.N_("Record service")),
        ("/org/import", i18n.N_("Import a file")),
        ("/org/records", i18n.N_("Our records")),
        ("/org/activities", i18n.N_("Activities")),
    ],
    Role.DISTRICT_ADMIN: [
        ("/district", i18n.N_("Overview")),
        ("/district/settlements", i18n.N_("Settlements")),
        ("/district/crossings", i18n.N_("Figures")),
        ("/staff/people", i18n.N_("People")),
    ],
}


# Pages not in the menu, and the tab they belong under.
NAV_PARENTS = {
    "/staff/corrections": "/staff/approvals",
    "/staff/keys": "/staff/people",
    "/me/vouchers": "/me/rewards",
    "/me/donate": "/me/give",
    "/me/done": "/me/give",
    "/staff/family-links": "/staff/members",
}


def current_tab(path: str, nav: list[tuple[str, str]]) -> str | None:
    """The menu tab of a page: the longest menu path it is under (/me/history, not /me);
    a role's home tab only for itself."""
    for page, parent in NAV_PARENTS.items():
        if path == page or path.startswith(page + "/"):
            path = parent
    homes = {nav[0][0]} if nav else set()
    under = [h for h, _ in nav if path == h or (h not in homes and path.startswith(h + "/"))]
    return max(under, key=len, default=None)


def render(request: Request, template: str, status: int = 200, **context: Any) -> Template:
    locale = page_locale(request)
    who = request.scope.get("auth")
    nav = [] if who is None else NAVIGATION[Role.ADMIN if who.role is Role.AUDITOR else who.role]
    return Template(
        template_name=template,
        context={
            "lang": locale,
            "html_lang": i18n.HTML_LANG[locale],
            "who": who,
            "large": large_text(request),
            "fmt": formats(request),
            "nav": nav,
            "nav_current": current_tab(request.url.path, nav),
            "autonyms": i18n.AUTONYMS,
            "path": request.url.path,
            "query": request.url.query,
            **context,
        },
        status_code=status,
        headers={"Content-Security-Policy": PAGE_CSP, "Vary": "Cookie, Accept-Language"},
    )


def see_other(path: str) -> Redirect:
    """After a form: go to a page with GET (the browser's back button does not resend)."""
    return Redirect(path=path, status_code=303)


def safe_next(target: str | None, default: str = "/") -> str:
    """A return address inside this service only (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target[:500]
