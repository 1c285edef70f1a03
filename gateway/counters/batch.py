"""Admission's counters and windows in one Redis round trip (one Lua script, EVALSHA).

The ``limits`` library's Redis storage answers one question per round trip: a request with
daily quotas and two moving minutes took six before its upstream call (four increments, then
a hit and a window read per minute). ``ADMIT_LUA`` does the same steps, in the same order, with
the same keys and data structures as the library (``incr_expire.lua``,
``acquire_moving_window.lua`` and ``moving_window.lua`` of ``limits``), inside Redis:

1. each dated counter is incremented (its expiry set when it is new); the first one over its
   limit stops there;
2. then each moving minute is hit (a list of hit times, newest first, trimmed to the limit);
   the first one full stops there;
3. on a stop every counter incremented by this request is decremented again (a window already
   hit stays hit, as with the library); nothing else is touched.

So counters, windows and ``Limiter.get`` stay readable by the library and by older instances
during a rolling upgrade. ``ADD_LUA`` applies settle's corrections to several counters in one
round trip. redis-py's ``Script`` sends EVALSHA and loads the script on NOSCRIPT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

WINDOW = 60

# KEYS: n counters, then m windows. ARGV: now, n, (amount, limit, expiry) * n, limit * m.
# Answer: n counter values (0: not reached), then (allowed, remaining, reset) per window reached.
ADMIT_LUA = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local out = {}
local function incr(key, amount, expiry)
  local value = redis.call('incrby', key, amount)
  if value == amount then redis.call('expire', key, expiry) end
  return value
end
local function undo(upto)
  for j = 1, upto do
    local b = 3 + (j - 1) * 3
    incr(KEYS[j], -tonumber(ARGV[b]), ARGV[b + 2])
  end
end
for i = 1, n do
  local b = 3 + (i - 1) * 3
  local value = incr(KEYS[i], tonumber(ARGV[b]), ARGV[b + 2])
  out[i] = value
  if value > tonumber(ARGV[b + 1]) then
    undo(i)
    for j = i + 1, n do out[j] = 0 end
    return out
  end
end
for w = n + 1, #KEYS do
  local key, limit = KEYS[w], tonumber(ARGV[3 + n * 3 + (w - n - 1)])
  local entry = redis.call('lindex', key, limit - 1)
  local allowed = not (entry and tonumber(entry) >= now - 60)
  if allowed then
    redis.call('lpush', key, ARGV[1])
    redis.call('ltrim', key, 0, limit - 1)
    redis.call('expire', key, 60)
  end
  local len = redis.call('llen', key)
  local low, high, oldest, count = 0, len - 1, ARGV[1], 0
  while low <= high do
    local mid = math.floor((low + high) / 2)
    local val = redis.call('lindex', key, mid)
    if val and tonumber(val) >= now - 60 then
      oldest, count, low = val, mid + 1, mid + 1
    else
      high = mid - 1
    end
  end
  table.insert(out, allowed and 1 or 0)
  table.insert(out, limit - count)
  table.insert(out, oldest)
  if not allowed then
    undo(n)
    return out
  end
end
return out
"""

# KEYS: counters; ARGV: (amount, expiry) per counter. Answer: nothing.
ADD_LUA = """
for i = 1, #KEYS do
  local amount = tonumber(ARGV[i * 2 - 1])
  local value = redis.call('incrby', KEYS[i], amount)
  if value == amount then redis.call('expire', KEYS[i], ARGV[i * 2]) end
end
return 0
"""

Script = Callable[[list[str], list[Any]], Awaitable[Any]]
Step = tuple[str, int, int, int]  # counter key, amount, limit, expiry in seconds
Hit = tuple[bool, int, float]  # allowed, remaining, reset epoch


async def admit(
    run: Script, keys: list[str], now: float, counters: Sequence[tuple[int, int, int]],
    limits: Sequence[int],
) -> tuple[list[int], list[Hit]]:
    """Run ``ADMIT_LUA`` once: (value of each counter, each window's hit) — see the module.
    ``keys``: the counters' then the windows' (prefixed); ``counters``: (amount, limit,
    expiry) of each; ``limits``: each window's."""
    args: list[Any] = [repr(now), len(counters)]
    for counter in counters:
        args += counter
    args += limits
    out = await run(keys, args)
    n = len(counters)
    values = [int(v) for v in out[:n]]
    hits = [(bool(int(out[i])), int(out[i + 1]), float(out[i + 2]) + WINDOW)
            for i in range(n, len(out), 3)]
    return values, hits


async def add(run: Script, prefix: str, changes: Sequence[tuple[str, int, int]]) -> None:
    """Add to several counters (key, amount, expiry) in one round trip (``ADD_LUA``)."""
    args: list[Any] = []
    for _, amount, expiry in changes:
        args += [amount, expiry]
    await run([prefix + key for key, _, _ in changes], args)
