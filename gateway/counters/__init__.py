"""Counters that expire, for admission's rate limits and accounts' login throttle.

``Limiter`` keeps moving windows and dated counters in a ``limits`` storage (``memory://``, or
``redis://`` shared by every instance). A package of its own, below both ``gateway.accounts``
and ``gateway.admission``, so that neither imports the other to count.
"""

from gateway.counters.limiter import Limiter

__all__ = ["Limiter"]
