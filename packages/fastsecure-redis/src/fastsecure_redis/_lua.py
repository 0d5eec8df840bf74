"""Server-side steps of :class:`~fastsecure_redis.RedisSessionStore`, as Lua sources.

Every script touches only keys that share the user's hash tag, so each runs on one
Cluster node. Index members are session handles ``<tag>:<sha256 of the id>``; a script
turns a handle back into its session key with ``ARGV[1]`` (the key prefix). Those
derived keys are not declared in ``KEYS``, which Redis Cluster accepts because they sit
in the slot of the declared ones.
"""

from __future__ import annotations

_HELPERS = """
local prefix = ARGV[1]
local function session_key(member)
  local sep = string.find(member, ':', 1, true)
  return prefix .. '{' .. string.sub(member, 1, sep - 1) .. '}:s:' .. string.sub(member, sep + 1)
end
-- Drop index members whose session key is gone (expired natively, or deleted).
local function live_members(index)
  local live, removed = {}, 0
  for _, member in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    if redis.call('EXISTS', session_key(member)) == 1 then
      live[#live + 1] = member
    else
      redis.call('ZREM', index, member)
      removed = removed + 1
    end
  end
  return live, removed
end
"""

CREATE = (
    _HELPERS
    + """
-- KEYS: user index, session key. ARGV: prefix, member, value, ttl ms, created ms,
-- max sessions (0: no limit), evict oldest ('1') or refuse ('0').
local index, key = KEYS[1], KEYS[2]
local member, value = ARGV[2], ARGV[3]
local ttl, created, limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local existing = redis.call('GET', key)
if existing then
  -- Identical value: a retried call that already ran; anything else is an id collision.
  if existing == value then return {1} end
  return {0}
end
local live = live_members(index)
local result = {1}
if limit > 0 and #live >= limit then
  if ARGV[7] ~= '1' then return {0} end
  for i = 1, #live - limit + 1 do
    local old = session_key(live[i])
    result[#result + 1] = live[i]
    result[#result + 1] = redis.call('GET', old)
    redis.call('DEL', old)
    redis.call('ZREM', index, live[i])
  end
end
redis.call('SET', key, value, 'PX', ttl)
redis.call('ZADD', index, created, member)
if redis.call('PTTL', index) < ttl then
  redis.call('PEXPIRE', index, ttl)
end
return result
"""
)

LIST = (
    _HELPERS
    + """
-- KEYS: user index. Returns member, value, member, value... oldest first.
local live = live_members(KEYS[1])
local out = {}
for _, member in ipairs(live) do
  local value = redis.call('GET', session_key(member))
  if value then
    out[#out + 1] = member
    out[#out + 1] = value
  end
end
return out
"""
)

PRUNE = (
    _HELPERS
    + """
-- KEYS: user index. Returns how many dead members were removed.
local _, removed = live_members(KEYS[1])
return removed
"""
)

DELETE_USER = (
    _HELPERS
    + """
-- KEYS: user index. Returns how many live sessions were deleted.
local deleted = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  deleted = deleted + redis.call('DEL', session_key(member))
end
redis.call('DEL', KEYS[1])
return deleted
"""
)

ROTATE = (
    _HELPERS
    + """
-- KEYS: old session key, new session key, user index.
-- ARGV: prefix, old member, new member, fallback score.
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
if not redis.call('SET', KEYS[2], value, 'PX', ttl, 'NX') then return 0 end
redis.call('DEL', KEYS[1])
local score = redis.call('ZSCORE', KEYS[3], ARGV[2]) or ARGV[4]
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[3], score, ARGV[3])
if redis.call('PTTL', KEYS[3]) < ttl then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 1
"""
)

# The stored JSON starts with a fixed-width ``{"last_seen":"<32 chars>"`` and ends with
# ``,"metadata":<json>}``, so these two edit the value in place, one round trip, without
# decoding it in Lua (cjson would round large integers in the metadata).
TOUCH = """
-- KEYS: session key. ARGV: 32-character ISO-8601 timestamp.
local value = redis.call('GET', KEYS[1])
if not value or string.sub(value, 1, 14) ~= '{"last_seen":"' then return 0 end
redis.call('SET', KEYS[1], '{"last_seen":"' .. ARGV[1] .. string.sub(value, 47), 'KEEPTTL', 'XX')
return 1
"""

UPDATE = """
-- KEYS: session key. ARGV: metadata as JSON.
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local at = string.find(value, ',"metadata":', 1, true)
if not at then return 0 end
redis.call('SET', KEYS[1], string.sub(value, 1, at - 1) .. ',"metadata":' .. ARGV[1] .. '}',
  'KEEPTTL', 'XX')
return 1
"""

# --- token state ----------------------------------------------------------------------
# Every token key shares one hash tag, so the generation marker and the entries it guards
# live (and are lost) together, and each script runs on one Cluster node. A family's keys
# are ``<tokens>a:<family>`` (allow-list: its current refresh jti), ``f:`` (revoked) and
# ``o:`` (its user, as text); ``uf:<user>`` is a user's index, a sorted set of family ids
# scored by expiry (ms). Scripts derive a family's or a user's keys from the token prefix
# (``ARGV``), in the declared keys' slot. The index lives as long as its longest family.

_FAMILY_HELPERS = """
local tokens = ARGV[1]
-- The family leaves its user's index (logout, reuse): the index lists live logins.
local function unlist(owner_key, family)
  local owner = redis.call('GET', owner_key)
  if owner then
    redis.call('ZREM', tokens .. 'uf:' .. owner, family)
    redis.call('DEL', owner_key)
  end
end
"""

START_FAMILY = """
-- KEYS: generation, family (allow-list). ARGV: candidate generation, refresh jti, ttl ms.
-- The generation is created once (SET NX), whoever gets here first; everyone reads it.
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return redis.call('GET', KEYS[1])
"""

START_USER_FAMILY = """
-- KEYS: generation, family (allow-list), family owner, user index.
-- ARGV: candidate generation, refresh jti, ttl ms, user, family id, expiry ms, prune ms.
-- START_FAMILY, and the family listed under its user in the same step: a revoke of the
-- user runs wholly before (the family is live, listed) or after (it is ended).
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[3])
-- Entries past their expiry by more than any clock skew go (O(log n)); the rest stay
-- for cleanup, which checks each against its family key instead of a clock.
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[5])
if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
end
return redis.call('GET', KEYS[1])
"""

ROTATE_REFRESH = (
    _FAMILY_HELPERS
    + """
-- KEYS: generation, family (allow-list), family revocation, family owner.
-- ARGV: token prefix, token generation, presented jti, new jti, family ttl ms,
-- revocation ttl ms, family id, new expiry ms.
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 'stale' end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'revoked' end
local current = redis.call('GET', KEYS[2])
if not current then return 'unknown' end
if current ~= ARGV[3] then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[6])
  unlist(KEYS[4], ARGV[7])
  return 'reused'
end
redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
-- The family lives on: so do its owner and its entry in the user's index.
local owner = redis.call('GET', KEYS[4])
if owner then
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  local index = tokens .. 'uf:' .. owner
  redis.call('ZADD', index, ARGV[8], ARGV[7])
  if redis.call('PTTL', index) < tonumber(ARGV[5]) then
    redis.call('PEXPIRE', index, ARGV[5])
  end
end
return 'rotated'
"""
)

REVOKE_FAMILY = (
    _FAMILY_HELPERS
    + """
-- KEYS: family (allow-list), family revocation, family owner.
-- ARGV: token prefix, revocation ttl ms, family id.
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
unlist(KEYS[3], ARGV[3])
return 1
"""
)

REVOKE_USER = """
-- KEYS: user index. ARGV: token prefix, revocation ttl ms.
-- Every listed family is revoked (its access tokens too, even where the allow-list entry
-- already expired) and forgotten; returns how many were still live logins.
local tokens, ended = ARGV[1], 0
for _, family in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  ended = ended + redis.call('DEL', tokens .. 'a:' .. family)
  redis.call('SET', tokens .. 'f:' .. family, '1', 'PX', ARGV[2])
  redis.call('DEL', tokens .. 'o:' .. family)
end
redis.call('DEL', KEYS[1])
return ended
"""

PRUNE_USER = """
-- KEYS: user index. ARGV: token prefix. Drops families whose allow-list entry is gone
-- (expired, ended); returns how many.
local tokens, removed = ARGV[1], 0
for _, family in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('EXISTS', tokens .. 'a:' .. family) == 0 then
    redis.call('ZREM', KEYS[1], family)
    redis.call('DEL', tokens .. 'o:' .. family)
    removed = removed + 1
  end
end
return removed
"""
