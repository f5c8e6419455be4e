"""Response shapes of the people routes (people who sign in, their sign-in links)."""

from __future__ import annotations

from timebank.schemas.openapi import Out


class Person(Out):
    id: str
    role: str
    subject_id: str | None
    display_name: str
    login: str | None
    has_password: bool
    locale: str | None
    large_text: bool
    created_at: str
    disabled_at: str | None


class PersonList(Out):
    items: list[Person]


class SignInLink(Out):
    id: str
    person_id: str
    expires_at: str
    used_at: str | None
    revoked_at: str | None
    created_at: str


class SignInLinkCreated(Out):
    id: str
    person_id: str
    display_name: str
    expires_at: str
    used_at: str | None
    revoked_at: str | None
    created_at: str
    token: str
    path: str
    url: str


class SignInLinkList(Out):
    items: list[SignInLink]
