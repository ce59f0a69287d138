"""The wrk Lua script of the deployment's load and soak benchmarks (issue 13, items 3-4):
a fixed mix of owner queries, police bulk verify and signed insurer events, optionally
paced to a target rate.

**The mix** is a cycle of 50 requests per wrk thread: 45 owner queries (90 %), 4 police
verify calls (8 %), 1 event (2 %), interleaved, so the shares are exact over any run
longer than a few cycles.

**Signing in Lua.** Each event is a new policy (a ``policy_no`` never used, so it is
``201 accepted``, never a duplicate), signed as the request leaves (DESIGN §5.1): the
timestamp is the clock's second, the nonce ``<run tag>-<thread>-<seq>-<random>`` is
unique per run and thread, and the HMAC-SHA256 (with the body's SHA-256) is computed by
the pure-LuaJIT SHA-256 below (wrk embeds LuaJIT, whose ``bit`` library gives the 32-bit
operations). A pre-signed pool would go stale after the 300 s skew window; this stays
valid for a run of any length, and costs the client ~0.1 ms per event.

An event's body is a template (the issue event of a vehicle of the demo fleet generator
under another seed, which the loaded fleet does not hold) with the policy number filled
in; the templates are cycled, so each template vehicle receives a new policy every
``templates`` events (reported as duplicate cover on that vehicle, still accepted).

**Pacing** (the soak): ``rate`` requests/s in all, ``rate / threads`` per thread. wrk has
no fixed-rate mode; its ``delay()`` hook, called before each request of a connection,
returns how long that connection waits. Each thread hands out send slots evenly spaced at
its share of the rate (``CLOCK_MONOTONIC`` through LuaJIT's FFI): a connection waits
until the next free slot. A thread that falls behind (every connection busy) does not
burst to catch up: the achieved rate is then lower, and the benchmark reports it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CYCLE = "QQQQQQQQQQQVQQQQQQQQQQQQVQQQQQQQQQQQIQQQQQQQVQQQQV"  # 45 Q, 4 V, 1 I
assert len(CYCLE) == 50 and CYCLE.count("Q") == 45 and CYCLE.count("V") == 4

PATHS = {"Q": "/v1/coverage/query", "V": "/v1/coverage/verify", "I": "/v1/policy-events"}
KINDS = {"Q": "owner_query", "V": "police_verify", "I": "ingest"}


@dataclass(frozen=True)
class EventTemplate:
    """One event's JSON, split around its ``policy_no`` value."""

    insurer: str
    prefix: str
    suffix: str


def template_of(event: dict[str, object]) -> EventTemplate:
    marker = "\x00POLICY\x00"
    text = json.dumps({**event, "policy_no": marker}, ensure_ascii=False, separators=(",", ":"))
    prefix, suffix = text.split(json.dumps(marker), 1)
    return EventTemplate(str(event["insurer_code"]), prefix + '"', '"' + suffix)


SHA256_LUA = r"""
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit, tohex = bit.rshift, bit.lshift, bit.ror, bit.tobit, bit.tohex
local byte, char, rep, concat = string.byte, string.char, string.rep, table.concat
local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
local W = {}

local function be32(v)  -- four bytes, big-endian
  return char(band(rshift(v, 24), 255), band(rshift(v, 16), 255), band(rshift(v, 8), 255),
    band(v, 255))
end

-- SHA-256 of a byte string: the 32-byte digest as a string.
local function sha256(msg)
  local h0, h1, h2, h3 = 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a
  local h4, h5, h6, h7 = 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
  local bits = #msg * 8
  local hi = math.floor(bits / 4294967296)
  local lo = bits % 4294967296
  msg = msg .. "\128" .. rep("\0", (55 - #msg) % 64) .. be32(hi) .. be32(lo)
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = byte(msg, chunk + i * 4, chunk + i * 4 + 3)
      W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 63 do
      local x, y = W[i - 15], W[i - 2]
      local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
      local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
      W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
    end
    local a, b, c, d, e, f, g, h = h0, h1, h2, h3, h4, h5, h6, h7
    for i = 0, 63 do
      local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
      local ch = bxor(band(e, f), band(bnot(e), g))
      local t1 = tobit(h + S1 + ch + K[i + 1] + W[i])
      local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
      local maj = bxor(band(a, b), band(a, c), band(b, c))
      h, g, f, e = g, f, e, tobit(d + t1)
      d, c, b, a = c, b, a, tobit(t1 + S0 + maj)
    end
    h0, h1, h2, h3 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d)
    h4, h5, h6, h7 = tobit(h4 + e), tobit(h5 + f), tobit(h6 + g), tobit(h7 + h)
  end
  local out = {}
  for i, v in ipairs({h0, h1, h2, h3, h4, h5, h6, h7}) do
    out[i] = be32(v)
  end
  return concat(out)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", byte(c)) end))
end

-- HMAC-SHA256 (RFC 2104), lowercase hex.
local function hmac_sha256_hex(key, msg)
  if #key > 64 then key = sha256(key) end
  key = key .. rep("\0", 64 - #key)
  local ipad, opad = {}, {}
  for i = 1, 64 do
    local k = byte(key, i)
    ipad[i] = char(bxor(k, 0x36))
    opad[i] = char(bxor(k, 0x5c))
  end
  return hex(sha256(concat(opad) .. sha256(concat(ipad) .. msg)))
end
"""


def _lua(text: str) -> str:
    """A Lua string literal; non-ASCII bytes pass through (Lua strings are bytes)."""
    return (
        '"'
        + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        + '"'
    )


def _table(items: Sequence[str]) -> str:
    return "{\n" + ",\n".join("  " + item for item in items) + "\n}"


def mix_script(
    path: Path,
    *,
    queries: Sequence[str],
    verifies: Sequence[str],
    templates: Sequence[EventTemplate],
    keys: dict[str, tuple[str, str]],
    police_token: str,
    run_tag: str,
    threads: int,
    rate: float = 0.0,
    cycle: str = CYCLE,
) -> Path:
    """Write the Lua script: ``queries`` and ``verifies`` are JSON bodies, ``keys`` the
    insurers' ``{code: (key_id, secret)}``, ``rate`` the total requests/s (0: as fast
    as the connections go). ``cycle`` is the order of kinds (``Q``, ``V``, ``I``)."""
    interval_ms = 1000.0 * threads / rate if rate > 0 else 0.0
    lua_keys = _table(
        [
            f"[{_lua(code)}] = {{{_lua(key_id)}, {_lua(secret)}}}"
            for code, (key_id, secret) in keys.items()
        ]
    )
    lua_templates = _table(
        [f"{{{_lua(t.insurer)}, {_lua(t.prefix)}, {_lua(t.suffix)}}}" for t in templates]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""-- generated by bench/wrk_mix.py (see its docstring): the load and soak mix
local ffi = require("ffi")
{SHA256_LUA}
local queries = {_table([_lua(b) for b in queries])}
local verifies = {_table([_lua(b) for b in verifies])}
local templates = {lua_templates}
local keys = {lua_keys}
local police = {_lua("Bearer " + police_token)}
local run_tag = {_lua(run_tag)}
local cycle = {_lua(cycle)}
local interval_ms = {interval_ms!r}

ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} ctplhub_timespec;
int clock_gettime(int clk_id, ctplhub_timespec *tp);
]]
local clock = ffi.new("ctplhub_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

local q_requests, v_requests = {{}}, {{}}
local qi, vi, ti, ci, seq = 0, 0, 0, 0, 0
local nq, nv, nt, nc = #queries, #verifies, #templates, #cycle
local next_slot = nil

function init(args)
  local json = {{["Content-Type"] = "application/json"}}
  for k = 1, nq do q_requests[k] = wrk.format("POST", "/v1/coverage/query", json, queries[k]) end
  local bearer = {{["Content-Type"] = "application/json", ["Authorization"] = police}}
  for k = 1, nv do
    v_requests[k] = wrk.format("POST", "/v1/coverage/verify", bearer, verifies[k])
  end
  math.randomseed(os.time() + (tid or 0) * 7919)
  qi = ((tid or 0) * 7919) % nq
  vi = ((tid or 0) * 104729) % nv
  ti = ((tid or 0) * 7) % nt
  ci = ((tid or 0) * 13) % nc
end

local function event_request()
  seq = seq + 1
  ti = ti % nt + 1
  local t = templates[ti]
  local key = keys[t[1]]
  local policy_no = "LD" .. run_tag .. "T" .. (tid or 0) .. "N" .. seq
  local body = t[2] .. policy_no .. t[3]
  local stamp = tostring(os.time())
  local nonce = run_tag .. "-" .. (tid or 0) .. "-" .. seq .. "-"
    .. string.format("%08x", math.random(0, 0x7fffffff))
  local signed = "POST\\n/v1/policy-events\\n" .. stamp .. "\\n" .. nonce .. "\\n"
    .. hex(sha256(body))
  local headers = {{
    ["Content-Type"] = "application/json",
    ["X-CTPL-Key"] = key[1],
    ["X-CTPL-Timestamp"] = stamp,
    ["X-CTPL-Nonce"] = nonce,
    ["X-CTPL-Signature"] = hmac_sha256_hex(key[2], signed),
  }}
  return wrk.format("POST", "/v1/policy-events", headers, body)
end

function request()
  ci = ci % nc + 1
  local kind = cycle:sub(ci, ci)
  if kind == "Q" then
    qi = qi % nq + 1
    return q_requests[qi]
  elseif kind == "V" then
    vi = vi % nv + 1
    return v_requests[vi]
  end
  return event_request()
end

if interval_ms > 0 then
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then next_slot = now end
    local wait = next_slot - now
    next_slot = next_slot + interval_ms
    return math.floor(wait)
  end
end
""",
        encoding="utf-8",
    )
    return path


def selftest_script(path: Path, cases: Sequence[tuple[str, str]]) -> Path:
    """A wrk script whose ``init`` prints ``sha256_hex(msg)`` and ``hmac(key, msg)`` for
    each (key, msg), then exits: compared with Python's in ``bench_load.py --selftest``."""
    lines = "\n".join(
        f"io.write(hex(sha256({_lua(msg)})), ' ', hmac_sha256_hex({_lua(key)}, {_lua(msg)}), '\\n')"
        for key, msg in cases
    )
    path.write_text(
        f"{SHA256_LUA}\nfunction init(args)\n{lines}\nio.flush()\nos.exit(0)\nend\n",
        encoding="utf-8",
    )
    return path
