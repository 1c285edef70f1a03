"""Admission: maintenance, blocked accounts, allowed models, balances and rate limits.

``Admission.admit`` runs once per chat request, right after planning, and answers a ``Ticket``
(or raises the refusal); ``Admission.settle`` runs when the request ends. Counters live in a
``limits`` storage named by ``limits.storage`` (``memory://`` here, ``redis://`` shared):

- requests per minute, per user (the tier's) and per key (the key's own limit): a moving window
  (``MovingWindowRateLimiter``); a refusal is 429 ``rate_limit_exceeded``;
- requests per day, credits per day, tokens per day and per month, per user: counters whose key
  holds the UTC date (or month), so they reset at 00:00 UTC; a refusal is 429 with its own
  ``code`` (``daily_limit_exceeded``, ``daily_credits_exhausted``, ``daily_token_limit_exceeded``,
  ``monthly_token_limit_exceeded``) and ``Retry-After`` until the reset.

Counters are incremented first and rolled back on refusal, so N concurrent requests against a
limit of K let exactly K through. Tokens are reserved from an estimate (prompt bytes / 4 plus
``max_tokens`` or ``accounts.output_reserve_tokens``) and corrected from real usage at settle.

The balance of a prepaid tier is reserved through ``gateway.balances.BalanceBook``: in this
process with no ``await`` between check and reservation, or in Redis by one Lua script.

With Redis every counter lives there under ``<limits.redis_prefix>limits:…`` (the ``limits``
library's keys and structures), so all instances count together; one Lua script does all of a
request's counting in one round trip (``gateway.counters.batch``), and settle's corrections
are one more. When
Redis cannot be reached, ``limits.redis_failure`` decides: ``"open"`` counts in this process
(a ``memory://`` storage) until it is back, ``"closed"`` refuses with 503.
"""

from gateway.admission.admit import Admission, Ticket
from gateway.counters import Limiter

__all__ = ["Admission", "Limiter", "Ticket"]
