"""Checks that Ioto's ClickHouse SQL works on a current ClickHouse release (chdb, in process).

Only ClickHouse 18.16 installs as a server on the test machines, while users run current releases.
This runs, against one fresh chdb database, every statement the ClickHouse usage adapter sends,
in the order `ioto migrate` and the adapter send them:

1. `migrate()`: the database (the adapter's own CREATE DATABASE, then `USE` as the client's
   `database` setting does), `ioto_schema_migrations`, and every migration of the `CLICKHOUSE`
   list in `migrations/src/lib.rs`, split on ';' at line ends with `{{TTL expr}}` rendered as a
   TTL clause and `{{DATABASE}}` as the database's name, exactly as
   `UsageMigration::statements_in(ttl_supported = true, database)` does.
2. Every write: `insert_rows(table, &rows)` sends `INSERT INTO table(`col`,…) FORMAT RowBinary`
   (the `clickhouse` crate's text) with a RowBinary body encoded from the Rust row struct's field
   types; the rows are read back.
3. Every read and maintenance statement, with `?` bound the way the `clickhouse` crate binds
   (strings quoted, numbers bare) to plausible sample values. Each SELECT's result columns are
   compared with the Rust row struct it is decoded into (count, order, RowBinary-compatible types),
   then it is run with `FORMAT RowBinary` and the bytes are decoded with that struct.
4. The materialized views: every cube holds the totals of the rows written.

The statements come from the Rust sources themselves (every `.query(` and client `.insert(` site
in the files under analytics/src that use the `clickhouse` crate). SQL that Rust assembles from
pieces at run time is assembled here by hand in MANUAL (one function per Rust function, using the
current text of each Rust literal), and every SQL-looking literal and every query site of those
files must be used by a check: one that is not is reported as a failure, so nothing is skipped
silently.

Prints one line per statement (`--quiet`: failures and the summary only) naming the Rust source
line it comes from; exits non-zero when anything fails. `--src DIR` reads the Rust from a copy
(to try this script on altered sources without touching the tree).

Not covered: the no-TTL rendering and the drop_expired path as 18.16 gets them (the Rust tests
run those against the 18.16 server), and ClickHouse's old query analyzer (24.1-24.2 and older
releases' default), which chdb's ClickHouse no longer has.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import pathlib
import re
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import chdb
from chdb import session as chs

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADAPTER_DIR = ROOT / "analytics" / "src" / "clickhouse"
MIGRATIONS_RS = ROOT / "migrations" / "src" / "lib.rs"
MIGRATIONS_DIR = ROOT / "migrations" / "clickhouse"
DB = "ioto_compat"  # passes the adapter's check_identifier

# ---------------------------------------------------------------------------------------------
# Sample values. Times are relative to today so that the adapter's `now() - 7 * 86400` windows and
# the tables' TTLs keep the rows: one session from day D1 23:50 UTC to D2 00:05 UTC.
# ---------------------------------------------------------------------------------------------
UTC = dt.timezone.utc
TODAY = dt.datetime.now(UTC).date()
D1 = TODAY - dt.timedelta(days=2)
D2 = TODAY - dt.timedelta(days=1)


def at(day: dt.date, hh: int, mm: int) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC).timestamp())


def days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


START, EVENT1, EVENT2 = at(D1, 23, 50), at(D1, 23, 55), at(D2, 0, 5)
LOW_DAY, HIGH_DAY = D1 - dt.timedelta(days=62), TODAY + dt.timedelta(days=2)
LOW, HIGH = at(LOW_DAY, 0, 0), at(HIGH_DAY, 0, 0)
TENANT = "0b6f3c6e-3f0a-4c1e-9d7a-2f4f5b9a1c11"
CUSTOMER = "5d2a8e4b-7c1f-4b9e-8a3d-6e0f1c2b3a44"
DEVICE = "9c1e2d3f-4a5b-4c6d-8e7f-0a1b2c3d4e55"
ICCID = "89490200001234567892"

# Values for columns and fields by name, as the adapter sends them (strings; times are u32 seconds,
# dates u16 days when written as RowBinary).
BY_NAME: dict[str, object] = {
    "tenant_id": TENANT,
    "customer_id": CUSTOMER,
    "device_id": DEVICE,
    "iccid": ICCID,
    "session_id": "s-1",
    "cdr_id": "cdr-1",
    "mcc_mnc": "262-01",
    "network": "262-01",
    "rat": "LTE",
    "ip_address": "10.0.0.1",
    "cell_id": "",
    "name": "usage_daily",
    "version": 1,
}
TIME_FIELDS = {"started_at": START, "event_time": EVENT1, "start": START, "end": EVENT2, "at": START,
               "hour": at(D1, 23, 0)}
DATE_FIELDS = {"day": days(D1), "month": days(D1.replace(day=1))}

# Rows written through the adapter's inserts (fields not named here take the values above).
# Two updates of one session across midnight and one CDR, as the ingest worker writes them.
WRITES: dict[str, list[dict[str, object]]] = {
    "session_updates": [
        {"event_time": EVENT1, "hour": at(D1, 23, 0), "day": days(D1), "month": days(D1.replace(day=1)),
         "terminated": 0, "total_in": 100, "total_out": 10, "delta_in": 100, "delta_out": 10},
        {"event_time": EVENT2, "hour": at(D2, 0, 0), "day": days(D2), "month": days(D2.replace(day=1)),
         "terminated": 1, "total_in": 150, "total_out": 30, "delta_in": 50, "delta_out": 20},
    ],
    "cdrs": [{"bytes_in": 150, "bytes_out": 30, "rating_group": 1}],
    "device_telemetry": [{"temperature_c": 20.5, "humidity_pct": None, "battery_pct": 87.0,
                          "light_lux": None, "latitude": 52.52, "longitude": 13.405}],
}
# What every cube holds afterwards.
CUBES = [
    ("live_session_states", "SELECT total_in, total_out, terminated FROM live_session_states FINAL", "150,30,1"),
    ("usage_hourly", "SELECT sum(bytes_in), sum(bytes_out), count() FROM usage_hourly FINAL", "150,30,2"),
    ("usage_monthly", "SELECT sum(bytes_in), sum(bytes_out) FROM usage_monthly FINAL", "150,30"),
    ("usage_daily", "SELECT sum(bytes_up), sum(bytes_down) FROM usage_daily", "150,30"),
    ("billing_daily", "SELECT sum(bytes_in), sum(bytes_out), sum(records) FROM billing_daily", "150,30,1"),
    ("billing_monthly", "SELECT sum(bytes_in), sum(bytes_out), sum(records) FROM billing_monthly", "150,30,1"),
    ("customer_usage_daily", "SELECT sum(bytes_in), sum(bytes_out) FROM customer_usage_daily", "150,30"),
    ("customer_usage_monthly", "SELECT sum(bytes_in), sum(bytes_out) FROM customer_usage_monthly", "150,30"),
    ("device_telemetry", "SELECT count(), sum(battery_pct) FROM device_telemetry FINAL", "1,87"),
]


# ---------------------------------------------------------------------------------------------
# A small Rust lexer: string literals (decoded, with their lines) and the code with comments and
# literal contents blanked out, so that regular expressions only ever see code.
# ---------------------------------------------------------------------------------------------
@dataclass
class Lit:
    file: pathlib.Path
    start: int
    end: int
    line: int
    value: str
    in_format: bool = False
    claimed: bool = False

    @property
    def loc(self) -> str:
        return f"{rel(self.file)}:{self.line}"


CHAR_LIT = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]+\}|.)|[^\\'\n])'")


def decode_escapes(body: str) -> str:
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n in "\r\n":  # line continuation: the newline and the next line's indentation go
            i += 2
            while i < len(body) and body[i] in " \t\r\n":
                i += 1
        elif n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            out.append(chr(int(body[i + 2:i + 4], 16)))
            i += 4
        elif n == "u":
            m = re.match(r"u\{([0-9a-fA-F_]+)\}", body[i + 1:])
            out.append(chr(int(m.group(1).replace("_", ""), 16)))
            i += 1 + m.end()
        else:
            raise ValueError(f"unknown escape \\{n}")
    return "".join(out)


def lex(path: pathlib.Path) -> tuple[str, str, list[Lit]]:
    src = path.read_text()
    masked = list(src)
    lits: list[Lit] = []

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if masked[k] != "\n":
                masked[k] = " "

    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == "'":
            m = CHAR_LIT.match(src, i)
            if m:
                blank(i + 1, m.end() - 1)
                i = m.end()
            else:  # a lifetime
                i += 1
        elif (m := re.compile(r'b?r(#*)"').match(src, i)) and not (i and (src[i - 1].isalnum() or src[i - 1] == "_")):
            close = '"' + m.group(1)
            j = src.index(close, m.end())
            value, end = src[m.end():j], j + len(close)
            lits.append(Lit(path, i, end, src.count("\n", 0, i) + 1, value))
            blank(i, end)
            masked[i], masked[end - 1] = '"', '"'
            i = end
        elif c == '"' or (c == "b" and src.startswith('b"', i) and not (i and (src[i - 1].isalnum() or src[i - 1] == "_"))):
            j = i + (2 if c == "b" else 1)
            body_start = j
            while src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            lits.append(Lit(path, i, j + 1, src.count("\n", 0, i) + 1, decode_escapes(src[body_start:j])))
            blank(i, j + 1)
            masked[i], masked[j] = '"', '"'
            i = j + 1
        else:
            i += 1
    return src, "".join(masked), lits


def rel(path: pathlib.Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


class Unresolved(Exception):
    pass


def render_format(template: str, resolve: Callable[[str], str]) -> str:
    """A `format!` string with its arguments: `{{`/`}}` unescaped, `{name}` / `{}` (numbered 0, 1,
    … as strings) replaced by `resolve`."""
    out, i, pos = [], 0, 0
    while i < len(template):
        if template.startswith("{{", i) or template.startswith("}}", i):
            out.append(template[i])
            i += 2
        elif template[i] == "{":
            j = template.index("}", i)
            name = template[i + 1:j].split(":")[0].strip()
            if name == "":
                name, pos = str(pos), pos + 1
            out.append(resolve(name))
            i = j + 1
        else:
            out.append(template[i])
            i += 1
    return "".join(out)


def closing_paren(code: str, open_pos: int) -> int:
    """Index of the `)` matching the `(` at open_pos, in blanked code."""
    depth = 0
    for k in range(open_pos, len(code)):
        if code[k] in "([{":
            depth += 1
        elif code[k] in ")]}":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError("unbalanced parentheses")


def split_args(text: str) -> list[str]:
    args, depth, cur = [], 0, []
    for ch in text:
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        args.append("".join(cur).strip())
    return args


# Literals that look like (pieces of) SQL. Every one of them must be used by a check.
SQL_LIKE = re.compile(
    r"\?|\b(SELECT|INSERT|ALTER|OPTIMIZE|CREATE|DROP|SYSTEM|TRUNCATE|RENAME|DETACH|ATTACH|KILL|SHOW|"
    r"DESCRIBE|EXISTS|WITH|FROM|WHERE|AND|OR|ORDER BY|GROUP BY|HAVING|LIMIT|UNION|JOIN|FINAL|PREWHERE|"
    r"SETTINGS|FORMAT|VALUES)\b|\bto(U?Int\d+|Date|DateTime|YYYY\w*|StartOf\w+)\(|"
    r"\b(sum|argMax|argMin|any|min|max|count|uniq\w*)\("
)


@dataclass
class Site:
    """One `.query(` (or client `.insert(`) call in the Rust source."""
    src: "RustFile"
    pos: int
    line: int
    fn: str
    lit: Lit | None  # the SQL literal passed directly (possibly through `&format!`)
    args: list[str]  # format! arguments
    var: str | None  # the argument when it is not a literal
    kind: str = "query"
    claimed: bool = False

    @property
    def loc(self) -> str:
        return f"{rel(self.src.path)}:{self.line}"


class RustFile:
    def __init__(self, path: pathlib.Path):
        self.path = path
        self.src, self.code, self.lits = lex(path)
        self.lit_at = {l.start: l for l in self.lits}
        self.fns = [(m.start(), m.group(1)) for m in re.finditer(r"\bfn\s+(\w+)", self.code)]
        self.consts: dict[str, Lit] = {}
        for m in re.finditer(r"\bconst\s+(\w+)\s*:\s*&(?:'static\s+)?str\s*=\s*", self.code):
            if self.code[m.end()] == '"':
                self.consts[m.group(1)] = self.lit_at[m.end()]
        self.structs: dict[str, list[tuple[str, str]]] = {}
        for m in re.finditer(r"\bstruct\s+(\w+)\s*(?:<[^>{]*>)?\s*\{([^}]*)\}", self.code):
            body = m.group(2)
            if "#[serde(" in self.src[m.start(2):m.end(2)]:
                raise SystemExit(f"{path}: struct {m.group(1)} renames fields with serde; teach this script")
            fields = [(f.group(1), " ".join(f.group(2).split()))
                      for f in re.finditer(r"(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*([^,]+?)\s*(?:,|$)", body.strip())]
            self.structs[m.group(1)] = fields
        for l in self.lits:
            before = self.code[:l.start].rstrip()
            l.in_format = before.endswith("format!(")
        self.used: list[Lit] = []  # literals looked up by `literal()` (for MANUAL's report)
        self.sites: list[Site] = []
        for m in re.finditer(r"\.query\(", self.code):
            self.sites.append(self._site(m.end(), "query"))
        for m in re.finditer(r"\bclient\s*\.\s*(insert|inserter)\(", self.code):
            self.sites.append(self._site(m.end(), m.group(1)))

    def line_of(self, pos: int) -> int:
        return self.src.count("\n", 0, pos) + 1

    def fn_at(self, pos: int) -> tuple[str, int]:
        """Name of the function around pos, and where the next function starts."""
        name, end = "?", len(self.code)
        for k, (start, fname) in enumerate(self.fns):
            if start < pos:
                name = fname
                end = self.fns[k + 1][0] if k + 1 < len(self.fns) else len(self.code)
        return name, end

    def fn_body(self, fn: str) -> tuple[int, int]:
        for k, (start, fname) in enumerate(self.fns):
            if fname == fn:
                return start, self.fns[k + 1][0] if k + 1 < len(self.fns) else len(self.code)
        raise KeyError(fn)

    def _site(self, pos: int, kind: str) -> Site:
        fn, _ = self.fn_at(pos)
        p = pos
        while self.code[p].isspace():
            p += 1
        lit, args, var = None, [], None
        m = re.compile(r"&?\s*format!(\()\s*").match(self.code, p)
        if self.code[p] == '"':
            lit = self.lit_at[p]
        elif m and self.code[m.end()] == '"':
            lit = self.lit_at[m.end()]
            close = closing_paren(self.code, m.start(1))
            rest = self.code[lit.end:close].strip()
            args = split_args(rest[1:]) if rest.startswith(",") else []
        else:
            var = self.code[p:closing_paren(self.code, pos - 1)].strip()
            if var.lstrip("&") in self.consts:  # `.query(SOME_CONST)`
                lit, var = self.consts[var.lstrip("&")], None
        return Site(self, pos, self.line_of(pos), fn, lit, args, var, kind)

    def fetch_after(self, pos: int) -> str | None:
        """The row type of the first `fetch*::<T>` after pos in the same function (None for
        `.execute()`)."""
        _, end = self.fn_at(pos)
        m = re.compile(r"\.(fetch_all|fetch_one|fetch_optional|fetch_bytes|fetch|execute)\b").search(self.code, pos, end)
        if not m:
            raise ValueError("no fetch/execute follows the query in the same function")
        if m.group(1) == "execute":
            return None
        if m.group(1) == "fetch_bytes":
            raise ValueError("fetch_bytes is not supported by this script")
        t = re.compile(r"\s*::\s*<").match(self.code, m.end())
        if not t:
            raise ValueError(f"the row type of `.{m.group(1)}` is inferred, not written as `::<T>`: cannot tell it")
        depth, k = 1, t.end()
        while depth:
            depth += {"<": 1, ">": -1}.get(self.code[k], 0)
            k += 1
        return " ".join(self.code[t.end():k - 1].split())

    def literal(self, fn: str, text: str, *, prefix: bool = False) -> Lit:
        """The literal of fn whose decoded text is `text` (or starts with it)."""
        a, b = self.fn_body(fn)
        found = [l for l in self.lits if a <= l.start < b and (l.value.startswith(text) if prefix else l.value == text)]
        if len(found) != 1:
            raise LookupError(f"{len(found)} literals {'starting with' if prefix else 'equal to'} {text!r} in fn {fn} "
                              f"(the Rust changed: update MANUAL in scripts/clickhouse-compat.py)")
        found[0].claimed = True
        self.used.append(found[0])
        return found[0]


# ---------------------------------------------------------------------------------------------
# What the `clickhouse` crate (0.13) sends.
# ---------------------------------------------------------------------------------------------
def ch_escape(s: str) -> str:
    out = []
    for ch in s:
        out.append("\\" + ch if ch in "\\'`\t\n" else ch)
    return "".join(out)


def bind_literal(v: object) -> str:
    if isinstance(v, str):
        return "'" + ch_escape(v) + "'"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class BindError(Exception):
    pass


def bind_all(sql: str, chooser: Callable[[str, int], object]) -> str:
    """The crate's SqlBuilder: each `?` (not `??`) becomes the next bound value."""
    out, i, k = [], 0, 0
    while i < len(sql):
        if sql[i] == "?":
            if sql.startswith("??", i):
                out.append("?")
                i += 2
                continue
            out.append(bind_literal(chooser("".join(out), k)))
            k += 1
            i += 1
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# RowBinary, by Rust type.
# ---------------------------------------------------------------------------------------------
SCALARS = {  # rust type -> (struct code, ClickHouse types it can be read from / written to)
    "String": (None, {"String"}),
    "&str": (None, {"String"}),
    "u8": ("B", {"UInt8", "Bool"}),
    "bool": ("?", {"Bool", "UInt8"}),
    "u16": ("H", {"UInt16", "Date"}),
    "u32": ("I", {"UInt32", "DateTime"}),
    "u64": ("Q", {"UInt64"}),
    "i8": ("b", {"Int8"}),
    "i16": ("h", {"Int16"}),
    "i32": ("i", {"Int32", "Date32"}),
    "i64": ("q", {"Int64"}),
    "f32": ("f", {"Float32"}),
    "f64": ("d", {"Float64"}),
}


def norm_rust(t: str) -> str:
    return re.sub(r"&\s*'\w+\s+", "&", t.replace("std::string::", "")).strip()


def norm_ch(t: str) -> str:
    t = re.sub(r"^DateTime\(.*\)$", "DateTime", t.strip())
    m = re.match(r"^LowCardinality\((.*)\)$", t)
    return m.group(1) if m else t


def rust_accepts(rust: str, ch: str) -> bool:
    rust, ch = norm_rust(rust), norm_ch(ch)
    m = re.match(r"^Option<(.*)>$", rust)
    if m:
        inner = re.match(r"^Nullable\((.*)\)$", ch)
        return bool(inner) and rust_accepts(m.group(1), inner.group(1))
    return rust in SCALARS and ch in SCALARS[rust][1]  # an unknown Rust type: taught here first


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode(rust: str, v: object) -> bytes:
    rust = norm_rust(rust)
    m = re.match(r"^Option<(.*)>$", rust)
    if m:
        return b"\x01" if v is None else b"\x00" + encode(m.group(1), v)
    code = SCALARS[rust][0]
    if code is None:
        b = str(v).encode()
        return varint(len(b)) + b
    return struct.pack("<" + code, v)


def decode(rust: str, buf: bytes, i: int) -> tuple[object, int]:
    rust = norm_rust(rust)
    m = re.match(r"^Option<(.*)>$", rust)
    if m:
        if buf[i] == 1:
            return None, i + 1
        return decode(m.group(1), buf, i + 1)
    code = SCALARS[rust][0]
    if code is None:
        n, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if i + n > len(buf):
            raise IndexError
        return buf[i:i + n].decode(), i + n
    size = struct.calcsize("<" + code)
    if i + size > len(buf):
        raise IndexError
    return struct.unpack_from("<" + code, buf, i)[0], i + size


def field_value(name: str, rust: str, overrides: dict[str, object]) -> object:
    if name in overrides:
        return overrides[name]
    base = norm_rust(rust)
    inner = re.sub(r"^Option<(.*)>$", r"\1", base)
    if name in TIME_FIELDS and inner == "u32":
        return TIME_FIELDS[name]
    if name in DATE_FIELDS and inner == "u16":
        return DATE_FIELDS[name]
    if name in BY_NAME and isinstance(BY_NAME[name], str) == (inner in ("String", "&str")):
        return BY_NAME[name]
    if inner in ("String", "&str"):
        return "sample"
    if inner in ("f32", "f64"):
        return 1.5
    return 1


# ---------------------------------------------------------------------------------------------
# Choosing a value for each `?` from the SQL around it (as the adapter's Rust binds them: dates as
# 'YYYY-MM-DD' strings inside toDate(?), times as u32 seconds, ids as strings, limits as numbers).
# ---------------------------------------------------------------------------------------------
def bound(op: str | None, low: object, mid: object, high: object) -> object:
    return low if op in (">", ">=") else high if op in ("<", "<=") else mid


def choose(sql_before: str, column_types: dict[str, str], names: dict[str, object]) -> object:
    t = sql_before
    m = re.search(r"(>=|<=|!=|<>|=|<|>)?\s*to(Date|DateTime)\(\s*$", t)
    if m:
        if m.group(2) == "Date":
            return bound(m.group(1), LOW_DAY.isoformat(), D1.isoformat(), HIGH_DAY.isoformat())
        return bound(m.group(1), LOW, START, HIGH)
    if re.search(r"\bLIMIT\s*$", t, re.I):
        return 100
    m = re.search(r"\bINSERT\s+INTO\s+\w+\s*\(([^)]*)\)\s*VALUES\s*\(([^()]*)$", t, re.I | re.S)
    if m:
        col = [c.strip(" `") for c in m.group(1).split(",")][m.group(2).count(",")]
        return column_value(col, None, column_types, names)
    m = re.search(r"(\b[A-Za-z_]\w*)\s+(?:NOT\s+)?IN\s*\(\s*(?:(?:'(?:[^'\\]|\\.)*'|-?\d+)\s*,\s*)*$", t, re.I)
    if m:
        return column_value(m.group(1), None, column_types, names)
    m = re.search(r"(\b[A-Za-z_]\w*)\s*(>=|<=|!=|<>|=|<|>)\s*$", t)
    if m and m.group(1).upper() not in ("AND", "OR", "NOT"):
        return column_value(m.group(1), m.group(2), column_types, names)
    m = re.search(r"[)\d]\s*(>=|<=|!=|<>|=|<|>)\s*$", t)
    if m:  # an expression (a period in seconds) against a bound
        return bound(m.group(1), LOW, START, HIGH)
    raise BindError(f"no rule chooses a value for the `?` after …{' '.join(t.split())[-60:]!r}")


def column_value(col: str, op: str | None, column_types: dict[str, str], names: dict[str, object]) -> object:
    if col in names:
        return names[col]
    ctype = column_types.get(col)
    if ctype is None:
        raise BindError(f"no sample value for column {col!r} (add it to BY_NAME)")
    ctype = re.sub(r"^Nullable\((.*)\)$", r"\1", norm_ch(ctype))
    if ctype == "String":
        return "sample"
    if ctype == "Date":
        return bound(op, LOW_DAY.isoformat(), D1.isoformat(), HIGH_DAY.isoformat())
    if ctype == "DateTime":
        return bound(op, LOW, START, HIGH)
    if re.match(r"^U?Int\d+$", ctype):
        return 1
    if ctype.startswith("Float"):
        return 1.5
    raise BindError(f"no sample value for column {col!r} of type {ctype}")


# ---------------------------------------------------------------------------------------------
# Running and reporting.
# ---------------------------------------------------------------------------------------------
def one_line(sql: str, width: int = 110) -> str:
    s = " ".join(l for l in sql.splitlines() if not l.strip().startswith("--"))
    s = " ".join(s.split())
    return s if len(s) <= width else s[:width - 1] + "…"


def error_text(e: Exception) -> str:
    s = " ".join(str(e).split())
    s = re.sub(r"Expected one of: .*?(\(\w+\))", r"… \1", s)
    return s[:700]


class Checker:
    def __init__(self, s: chs.Session, quiet: bool):
        self.s, self.quiet = s, quiet
        self.ddl = self.adapter = self.manual = 0
        self.failures: list[str] = []
        self.column_types: dict[str, str] = {}

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def fail(self, where: str, what: str, detail: str, sql: str | None = None) -> None:
        msg = f"FAIL {where} {what}\n     {detail}"
        if sql is not None:
            msg += f"\n     sql: {one_line(sql, 100_000)}"
        print(msg, flush=True)
        self.failures.append(f"{where} {what}: {detail[:160]}")

    def raw(self, sql: str | bytes, fmt: str = "CSV") -> bytes:
        return self.s.query(sql, fmt).bytes()

    def refresh_columns(self) -> None:
        """(table, column) -> type of every column of the database."""
        out = self.raw(f"SELECT table, name, type FROM system.columns WHERE database = '{DB}'", "TSV").decode()
        self.column_types = {(t, n): ty for t, n, ty in (l.split("\t", 2) for l in out.splitlines() if l)}

    def count(self, table: str) -> int | None:
        try:
            return int(self.raw(f"SELECT count() FROM {table}", "TSV"))
        except Exception:  # noqa: BLE001 - the failing statement itself reports the cause
            return None

    def bind(self, sql: str, binds: list[object] | None, names: dict[str, object] | None) -> str:
        if binds is None:
            types = {n: t for (_, n), t in self.column_types.items()}
            return bind_all(sql, lambda before, k: choose(before, types, {**BY_NAME, **(names or {})}))
        it = iter(binds)
        return bind_all(sql, lambda before, k: next(it))

    def run(self, where: str, what: str, sql: str, *, row: str | None = None, src: RustFile | None = None,
            binds: list[object] | None = None, names: dict[str, object] | None = None, manual: bool = False,
            body: bytes | None = None, ddl: bool = False) -> list[tuple] | None:
        """Runs one statement (`row`: the Rust type its rows are decoded into, None for
        `.execute()`); returns the decoded rows."""
        if ddl:
            self.ddl += 1
        else:
            self.adapter += 1
            self.manual += manual
        try:
            sql = self.bind(sql, binds, names)
        except (BindError, StopIteration) as e:
            self.fail(where, what, f"cannot bind: {e}", sql)
            return None
        if row is None:
            try:
                self.raw(sql.encode() + b"\n" + body if body is not None else sql)
            except Exception as e:  # noqa: BLE001 - chdb raises its own error types
                self.fail(where, what, error_text(e), sql)
                return None
            self.say(f"OK   {where} {what}: {one_line(sql)}")
            return []
        fields = [("value", row)] if row in SCALARS or row.startswith("Option<") else src.structs.get(row)
        if fields is None:
            self.fail(where, what, f"row type {row} is not a struct of {src.path.name}", sql)
            return None
        # The result columns against the struct (RowBinary has no names: order and types count).
        try:
            desc = self.raw(f"DESCRIBE TABLE ({sql})", "TSV").decode()
            cols = [tuple(l.split("\t")[:2]) for l in desc.splitlines() if l]
        except Exception as e:  # noqa: BLE001
            self.fail(where, what, error_text(e), sql)
            return None
        problems = []
        if len(cols) != len(fields):
            problems.append(f"{len(cols)} columns for the {len(fields)} fields of {row}")
        for (cname, ctype), (fname, ftype) in zip(cols, fields):
            if not rust_accepts(ftype, ctype):
                problems.append(f"column {cname} is {ctype}, {row}.{fname} is {ftype}")
        if problems:
            self.fail(where, what, "result does not decode into the Rust row: " + "; ".join(problems), sql)
            return None
        # What the crate sends (`fetch` appends FORMAT RowBinary), decoded as the crate would.
        try:
            data = self.raw(sql + " FORMAT RowBinary")
        except Exception as e:  # noqa: BLE001
            self.fail(where, what, error_text(e), sql)
            return None
        rows, i = [], 0
        try:
            while i < len(data):
                vals = []
                for _, ftype in fields:
                    v, i = decode(ftype, data, i)
                    vals.append(v)
                rows.append(tuple(vals))
        except (IndexError, UnicodeDecodeError) as e:
            self.fail(where, what, f"RowBinary result does not decode into {row} ({e!r} at byte {i})", sql)
            return None
        n = len(rows)
        self.say(f"OK   {where} {what}: {one_line(sql, 90)} → {n} {row} row{'' if n == 1 else 's'}")
        return rows


# ---------------------------------------------------------------------------------------------
# Statements that Rust assembles at run time, assembled here from the Rust literals they are made
# of (looked up by text, so a changed literal fails loudly here). Each returns the variants the
# Rust function can send: (description, SQL with `?`, row type). Functions take the RustFile and
# the Checker (for statements that depend on what the server holds).
# ---------------------------------------------------------------------------------------------
Variant = tuple[str, str, "str | None"]


def session_history(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::session_history`: a base SELECT, the optional network filter and
    keyset cursor, then ORDER BY / LIMIT."""
    fn = "session_history"
    base = f.literal(fn, "SELECT tenant_id, customer_id, iccid, session_id", prefix=True)
    net = f.literal(fn, " AND mcc_mnc = ?")
    cursor = f.literal(fn, " AND (event_time < toDateTime(?)", prefix=True)
    tail = f.literal(fn, " ORDER BY event_time DESC", prefix=True)
    out = []
    for with_net, with_cursor in itertools.product((False, True), repeat=2):
        sql = base.value + (net.value if with_net else "") + (cursor.value if with_cursor else "") + tail.value
        out.append((f"mcc_mnc={'set' if with_net else 'none'}, before={'set' if with_cursor else 'none'}",
                    sql, "SessionRow"))
    return out


def sim_usage(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::sim_usage`: one SELECT per arm of the granularity match."""
    fn = "sim_usage"
    return [
        ("granularity hour/day", f.literal(fn, "SELECT toUInt32(hour) AS period", prefix=True).value, "PointRow"),
        ("granularity month/year", f.literal(fn, "SELECT toUInt32(toUInt32(toUInt16(month))", prefix=True).value,
         "PointRow"),
    ]


def reconciliation(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::reconciliation`: the filter (with optional ICCID, customer and the
    keyset position `after`) is put into both halves of the UNION ALL, HAVING only for
    `only_differences`."""
    fn = "reconciliation"
    base_filter = f.literal(fn, "tenant_id = ? AND day >= toDate(?)", prefix=True).value
    by_iccid = f.literal(fn, " AND iccid = ?").value
    by_customer = f.literal(fn, " AND customer_id = ?").value
    after = f.literal(fn, " AND (day > toDate(?)", prefix=True).value
    having = f.literal(fn, " HAVING ", prefix=True).value
    f.literal(fn, "")  # the empty `having`
    template = f.literal(fn, "SELECT iccid, toUInt16(day) AS day", prefix=True)
    out = []
    for i, cu, a, h in itertools.product((False, True), repeat=4):
        filt = base_filter + (by_iccid if i else "") + (by_customer if cu else "") + (after if a else "")
        args = {"filter": filt, "having": having if h else ""}
        sql = render_format(template.value, lambda n: args[n])
        out.append((f"iccid={'set' if i else 'none'}, customer={'set' if cu else 'none'}, "
                    f"after={'set' if a else 'none'}, only_differences={h}", sql, "ReconRow"))
    return out


def customer_usage(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::customer_usage`: period expression and table per granularity arm, the
    optional customer filter, then GROUP BY / ORDER BY."""
    fn = "customer_usage"
    arms = [("hour", "toUInt32(hour)", "usage_hourly"),
            ("day", "toUInt32(toUInt32(toUInt16(day)) * 86400)", "customer_usage_daily"),
            ("month/year", "toUInt32(toUInt32(toUInt16(month)) * 86400)", "customer_usage_monthly")]
    template = f.literal(fn, "SELECT {period} AS period, customer_id", prefix=True)
    by_customer = f.literal(fn, " AND customer_id = ?").value
    tail = f.literal(fn, " GROUP BY period, customer_id", prefix=True).value
    out = []
    for (gran, period, table), with_customer in itertools.product(arms, (False, True)):
        args = {"period": f.literal(fn, period).value, "table": read_from(f.literal(fn, table).value)}
        sql = render_format(template.value, lambda n: args[n]) + (by_customer if with_customer else "") + tail
        out.append((f"granularity {gran}, customer={'set' if with_customer else 'none'}", sql,
                    "CustomerPointRow"))
    return out


def buffered_cubes() -> list[str]:
    """`BUFFERED_CUBES` of analytics/src/clickhouse/mod.rs: the cubes behind Buffer tables, read
    from `<cube>_store` (`read_from`)."""
    m = re.search(r"pub const BUFFERED_CUBES\s*:[^=]*=\s*\[(.*?)\];", (ADAPTER_DIR / "mod.rs").read_text(), re.S)
    if not m:
        raise LookupError("no BUFFERED_CUBES in analytics/src/clickhouse/mod.rs")
    return re.findall(r'"(\w+)"', m.group(1))


def read_from(table: str) -> str:
    """`read_from` of analytics/src/clickhouse/mod.rs."""
    return f"{table}_store" if table in buffered_cubes() else table


def flush_pending(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::flush_pending`: `OPTIMIZE TABLE {cube}` for each buffered cube."""
    template = f.literal("flush_pending", "OPTIMIZE TABLE {cube}")
    return [(f"buffer {cube}", render_format(template.value, lambda n: {"cube": cube}[n]), None)
            for cube in buffered_cubes()]


def drop_expired(f: RustFile, c: Checker) -> list[Variant]:
    """`ClickHouseUsage::drop_expired`: `ALTER TABLE {table} DROP PARTITION {literal}` for each
    partition listed by its system.parts query, the literal quoted when the partition has a '-'
    (a Date) and bare otherwise. Rust sends it only to servers without TTL (before 19.6); it is
    checked here on every partition the written rows made, which is what a current server would
    get if that guard ever went."""
    fn = "drop_expired"
    parts = f.literal(fn, "SELECT DISTINCT table, partition FROM system.parts", prefix=True)
    template = f.literal(fn, "ALTER TABLE {} DROP PARTITION {literal}")
    f.literal(fn, "'{}'")  # the quoting of a Date partition
    # (The partition list query itself is a plain literal: it ran with the other reads.)
    rows = [l.split("\t") for l in c.raw(parts.value, "TSV").decode().splitlines() if l]
    out = []
    for table, partition in sorted(rows):
        literal = f"'{partition.strip(chr(39))}'" if "-" in partition else partition
        sql = render_format(template.value, lambda n: {"0": table, "literal": literal}[n])
        out.append((f"partition {partition} of {table}", sql, None))
    if not out:
        c.fail(f"{rel(f.path)}:{template.line}", fn, "system.parts listed no partition to drop")
    return out


# fn name -> assembler. Each claims the `.query(` sites of its function whose SQL is not a
# literal, and every literal it looks up.
MANUAL: dict[str, Callable[[RustFile, Checker], list[Variant]]] = {
    "session_history": session_history,
    "sim_usage": sim_usage,
    "reconciliation": reconciliation,
    "customer_usage": customer_usage,
    "flush_pending": flush_pending,
    "drop_expired": drop_expired,
}


# ---------------------------------------------------------------------------------------------
# The run.
# ---------------------------------------------------------------------------------------------
@dataclass
class Migration:
    version: int
    name: str
    path: pathlib.Path


def clickhouse_migrations(c: Checker) -> list[Migration]:
    """The `CLICKHOUSE` list of migrations/src/lib.rs (what `migrate()` applies, in order)."""
    text = MIGRATIONS_RS.read_text()
    m = re.search(r"pub const CLICKHOUSE\s*:[^=]*=\s*&\[(.*?)\];", text, re.S)
    entries = re.findall(r'version:\s*(\d+),\s*name:\s*"([^"]*)",\s*sql:\s*include_str!\("([^"]+)"\)', m.group(1))
    out = [Migration(int(v), n, (MIGRATIONS_RS.parent / p).resolve()) for v, n, p in entries]
    listed = {m.path for m in out}
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.resolve() not in listed:
            c.fail(rel(path), "", "not in the CLICKHOUSE list of migrations/src/lib.rs: never applied")
    return out


def migration_statements(path: pathlib.Path) -> list[tuple[int, str]]:
    """`UsageMigration::statements_in(true, DB)`, with the line each statement starts on."""
    text = path.read_text()
    out, offset = [], 0
    for part in text.split(";\n"):
        stmt = part.strip()
        start = offset + (len(part) - len(part.lstrip()))
        offset += len(part) + 2
        while (k := stmt.find("{{TTL ")) >= 0:
            n = stmt[k:].find("}}")
            if n < 0:
                break
            stmt = stmt[:k] + "TTL " + stmt[k + 6:k + n].strip() + stmt[k + n + 2:]
        # `UsageMigration::statements_in`: the database migrated, as a string literal.
        stmt = stmt.replace("{{DATABASE}}", "'" + ch_escape(DB) + "'")
        stmt = stmt.rstrip(";").strip()
        if not stmt or all(not l.strip() or l.strip().startswith("--") for l in stmt.splitlines()):
            continue
        lines = text[start:].splitlines()
        skip = next((k for k, l in enumerate(lines) if l.strip() and not l.strip().startswith("--")), 0)
        out.append((text.count("\n", 0, start) + 1 + skip, stmt))
    return out


def resolver(f: RustFile, site: Site) -> Callable[[str], str]:
    """Values of a `format!`'s placeholders that do not depend on run-time data."""
    a, b = f.fn_body(site.fn)

    def resolve(name: str) -> str:
        expr = site.args[int(name)] if name.isdigit() and int(name) < len(site.args) else name
        if expr in ("config.database", "self.config.database"):
            return DB
        if expr in f.consts:
            f.consts[expr].claimed = True
            return f.consts[expr].value
        # `let marks = vec!["?"; chunk.len()].join(", ")`: one `?` per value (two values here).
        m = re.compile(rf'let\s+{re.escape(expr)}\s*=\s*vec!\[\s*(")[^"]*"\s*;[^\]]*\]\s*\.join\(\s*(")[^"]*"\s*\)').search(
            f.code, a, b)
        if m:
            mark, sep = f.lit_at[m.start(1)], f.lit_at[m.start(2)]
            if mark.value == "?":
                mark.claimed = sep.claimed = True
                return sep.value.join([mark.value] * 2)
        raise Unresolved(expr)

    return resolve


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    ap.add_argument("--src", type=pathlib.Path, default=ADAPTER_DIR,
                    help="the adapter's Rust sources (default analytics/src/clickhouse; another copy tests this script)")
    opts = ap.parse_args()
    began = time.monotonic()

    # The adapter is a directory of modules by role; row structs and SQL constants are shared
    # between them, so names resolve across its files.
    files = [RustFile(path) for path in sorted(opts.src.resolve().rglob("*.rs"))]
    if not files:
        raise SystemExit(f"no Rust files under {opts.src}")
    structs: dict[str, list[tuple[str, str]]] = {}
    consts: dict[str, Lit] = {}
    for f in files:
        structs.update(f.structs)
        consts.update(f.consts)
    for f in files:
        f.structs, f.consts = structs, consts

    with tempfile.TemporaryDirectory(prefix="ioto-chdb-") as tmp:
        s = chs.Session(tmp)
        c = Checker(s, opts.quiet)
        version = c.raw("SELECT version()", "TSV").decode().strip()
        print(f"chdb {chdb.__version__}, ClickHouse {version}", flush=True)

        sites = [st for f in files for st in f.sites]

        def adapter_site(st: Site, names: dict[str, object] | None = None) -> list[tuple] | None:
            f = st.src
            try:
                sql = render_format(st.lit.value, resolver(f, st)) if st.lit.in_format else st.lit.value
            except Unresolved as e:
                if st.fn in MANUAL:
                    return None  # its function's assembler sends it
                st.claimed = st.lit.claimed = True
                c.fail(st.loc, st.fn, f"format! argument {{{e}}} depends on run-time data: "
                       f"assemble fn {st.fn} in MANUAL of scripts/clickhouse-compat.py")
                return None
            st.claimed = st.lit.claimed = True
            try:
                row = f.fetch_after(st.pos)
            except ValueError as e:
                c.fail(st.loc, st.fn, str(e))
                return None
            return c.run(st.loc, st.fn, sql, row=row, src=f, names=names)

        # 1. migrate(): the database, the version table, the DDL (at the `&stmt` site), the version row.
        create_db = [st for st in sites if st.lit is not None and st.lit.value.startswith("CREATE DATABASE")]
        drop_db = [st for st in sites if st.lit is not None and st.lit.value.startswith("DROP DATABASE")]
        for st in create_db:
            adapter_site(st)
        if not create_db:
            c.fail(rel(opts.src), "", "no `CREATE DATABASE` query found in the adapter")
            s.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        s.query(f"USE {DB}")  # the client's `with_database(&config.database)`
        migrations = clickhouse_migrations(c)
        mig_sites = sorted((st for st in sites if st.fn == "migrate" and st.kind == "query"), key=lambda st: st.pos)
        ddl_at = [k for k, st in enumerate(mig_sites) if st.lit is None]
        if len(ddl_at) != 1:
            c.fail(files[0].path.name, "migrate", f"expected one `.query(&stmt)` for the DDL in fn migrate, found {len(ddl_at)}")
        else:
            mig_sites[ddl_at[0]].claimed = True
            for st in mig_sites[:ddl_at[0]]:
                adapter_site(st)
            for m in migrations:
                for line, stmt in migration_statements(m.path):
                    where = f"{rel(m.path)}:{line}"
                    c.run(where, f"(migration {m.version}, via {mig_sites[ddl_at[0]].loc})", stmt, ddl=True)
                for st in mig_sites[ddl_at[0] + 1:]:  # the version row: `?` for version and name
                    adapter_site(st, {"version": m.version, "name": m.name})
            applied = c.raw("SELECT version FROM ioto_schema_migrations ORDER BY version", "TSV").decode().split()
            if applied != [str(m.version) for m in migrations]:
                c.fail("ioto_schema_migrations", "", f"holds versions {applied}")
        c.refresh_columns()

        # 2. Writes: `insert_rows("table", &rows)` with the struct pushed into `rows`.
        for f in files:
            for st in (st for st in f.sites if st.kind == "insert"):
                if st.fn != "insert_rows" or st.var != "table":
                    continue  # reported as unchecked below
                st.claimed = True
                calls = [(g, m) for g in files for m in re.finditer(r"\binsert_rows\(\s*\"", g.code)]
                for g, m in calls:
                    lit = g.lit_at[m.end() - 1]
                    lit.claimed = True
                    fn, _ = g.fn_at(m.start())
                    a, b = g.fn_body(fn)
                    # `rows.push(Row {` or `rows.push(Row::of(`: the struct pushed is the row.
                    rm = re.compile(r"\brows\.push\(\s*(\w+)\s*(?:\{|::)").search(g.code, a, b)
                    where = f"{rel(g.path)}:{lit.line}"
                    if not rm or rm.group(1) not in g.structs:
                        c.fail(where, fn, "cannot tell the row struct of this insert (no `rows.push(Struct {`)")
                        continue
                    row, fields = rm.group(1), g.structs[rm.group(1)]
                    table = lit.value
                    want = WRITES.get(table, [{}])
                    sql = f"INSERT INTO {table}({','.join('`' + ch_escape(n) + '`' for n, _ in fields)}) FORMAT RowBinary"
                    before = c.count(table)
                    try:
                        body = b"".join(encode(t, field_value(n, t, o)) for o in want for n, t in fields)
                    except (ValueError, KeyError, struct.error) as e:
                        c.fail(where, fn, f"cannot encode {row}: {e}")
                        continue
                    # Types first: RowBinary has no names, so a column of another width misreads.
                    types = {n: t for (tb, n), t in c.column_types.items() if tb == table}
                    if not types:
                        c.adapter += 1
                        c.fail(where, f"{fn} ({row})", f"table {table} does not exist", sql)
                        continue
                    bad = [f"{n}: {t} into {types.get(n, 'no such column')}" for n, t in fields
                           if n not in types or not rust_accepts(t, types[n])]
                    if bad:
                        c.adapter += 1
                        c.fail(where, f"{fn} ({row})", "fields do not match the table: " + "; ".join(bad), sql)
                        continue
                    if c.run(where, f"{fn} ({row}, {len(want)} row{'s' if len(want) > 1 else ''})", sql,
                             binds=[], body=body) is not None:
                        after = c.count(table)
                        if before is not None and after is not None and after - before != len(want):
                            c.fail(where, fn, f"{table} gained {after - before} rows, {len(want)} were sent")

        # 3. The cubes the materialized views filled (before drop_expired drops partitions).
        for table, query, want in CUBES:
            try:
                got = c.raw(query, "CSV").decode().strip()
            except Exception as e:  # noqa: BLE001
                c.fail("cube", table, error_text(e), query)
                continue
            if got != want:
                c.fail("cube", table, f"{query} gave {got!r}, expected {want!r}")
            else:
                c.say(f"OK   cube {table} = {got}")

        # The buffers written to their stores, which the reads below name (as a second after the
        # writes would, or `flush_pending`).
        for cube in buffered_cubes():
            s.query(f"OPTIMIZE TABLE {cube}")

        # 4. Reads and the rest, in source order; then the hand-assembled ones (drop_expired last).
        for st in sorted(sites, key=lambda st: (str(st.src.path), st.pos)):
            if st.claimed or st in drop_db or st.lit is None or st.kind != "query":
                continue
            adapter_site(st)
        for f in files:
            for fn, assemble in sorted(MANUAL.items(), key=lambda kv: kv[0] == "drop_expired"):
                try:
                    f.fn_body(fn)
                except KeyError:
                    continue
                # The `.query(` sites whose SQL Rust builds at run time (the others ran above).
                built = [st for st in f.sites if st.fn == fn and st.kind == "query" and not st.claimed]
                if not built:
                    c.fail(f"{rel(f.path)}:{f.line_of(f.fn_body(fn)[0])}", fn,
                           "MANUAL assembles this function, but it builds no query: remove it from MANUAL")
                    continue
                for st in built:
                    st.claimed = True
                    if st.lit is not None:
                        st.lit.claimed = True
                loc = built[-1].loc
                f.used = []
                try:
                    variants = assemble(f, c)
                except LookupError as e:
                    c.fail(loc, fn, str(e))
                    continue
                pieces = ", ".join(str(n) for n in sorted({l.line for l in f.used}))
                for desc, sql, row in variants:
                    if re.search(r"\{\w*\}", sql):
                        c.fail(loc, fn, f"unfilled placeholder in {sql!r}")
                        continue
                    if row is not None:
                        try:
                            found = f.fetch_after(built[-1].pos)
                        except ValueError as e:
                            c.fail(loc, fn, str(e))
                            continue
                        if found != row:
                            c.fail(loc, fn, f"Rust decodes into {found}, MANUAL says {row}: update MANUAL")
                            continue
                    c.run(loc, f"{fn} [MANUAL: {desc}; SQL from lines {pieces}]", sql, row=row, src=f, manual=True)

        # 5. Last: the adapter's DROP DATABASE (tests clean up with it).
        for st in drop_db:
            adapter_site(st)
        s.close()

    # Nothing unchecked: every SQL-looking literal and every query site was used above.
    for f in files:
        for lit in f.lits:
            if lit.claimed or not SQL_LIKE.search(lit.value):
                continue
            c.fail(lit.loc, f.fn_at(lit.start)[0], f"SQL text not checked: {one_line(lit.value, 80)!r} "
                   "(assemble its function in MANUAL of scripts/clickhouse-compat.py)")
        for st in f.sites:
            if not st.claimed:
                c.fail(st.loc, st.fn, f"`.{st.kind}(` site not checked ({st.var or one_line(st.lit.value, 60)})")

    secs = time.monotonic() - began
    print(f"checked on ClickHouse {version} (chdb {chdb.__version__}): {c.ddl} DDL statements, "
          f"{c.adapter} adapter statements ({c.manual} assembled by hand in MANUAL) in {secs:.1f} s")
    if c.failures:
        print(f"{len(c.failures)} failed:")
        for line in c.failures:
            print(f"  {line}")
        return 1
    print("the ClickHouse SQL works on ClickHouse", version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
