"""Checks `iptvportal sync` and `iptvportal materialize` against the simulator's SQLite file.

Run by the e2e harness's `sync` phase (tests/src/scenarios/sync.rs):

  python check_sync.py snapshot SRC DST   copy the SQLite database SRC to DST (the backup API, so
                                          a copy taken while the simulator serves SRC is consistent)
  python check_sync.py check BATCH.json   check a batch; prints one JSON verdict on stdout

BATCH holds `catalog` (crates/catalog/catalog.toml) and `items`, each with a `name` and a `kind`:

  table        {db, table, path, format, compress, before_dbs?}: the file `materialize` wrote holds
               the database's table: every row, every column, in id order, the types per catalog
               (JSON types and key order; the Parquet schema)
  duckdb       {db, table, sql, before_dbs?}: the DuckDB query of docs/sync.md (its placeholders
               already replaced) returns the same rows, in the same order
  counts       {db, table, sync, run}: the run's record in sync.json against the database: `new`
               and `changed` are the rows of its window (counted in SQLite), `held` the table's
               rows, `rows` their sum, and the deletes file is the one recorded (ids, bytes, CRC)
  parquet_same {table, reference, actual}: two Parquet files (or the parts of two directories)
               hold the same schema and rows

`before_dbs`: the database as of the run before, and right before a mutation that ran while the
run was fetching. Then a row that mutation did not touch must be exactly the database's, and a
touched one as in one of the three states (or absent, for an inserted or deleted row); the next
run, with nothing running beside it, must again be exact.

Values are normalized per catalog type (as check_output.py does), so that a reader's own
inference (DuckDB parsing timestamps) is not a failure while a wrong value, row or order is.
"""

import collections
import csv
import datetime
import functools
import gzip
import io
import json
import math
import sqlite3
import sys
import tomllib
import zlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_TYPES = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "timestamp": pa.timestamp("us"),
}


CATALOG = {}


class Mismatch(Exception):
    """The output holds something other than the database does (and how many rows it lost or
    duplicated, by id, where that was counted)."""

    def __init__(self, message, lost=0, duplicated=0):
        super().__init__(message)
        self.lost, self.duplicated = lost, duplicated


def load_catalog(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return {t["name"]: t for t in doc["table"]}


def norm(v, ty):
    """One value as a plain Python value of the catalog type, or a tagged value that cannot match."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if ty == "integer":
        if isinstance(v, bool):
            return ("bool!", v)
        if isinstance(v, str):
            return int(v)
        if isinstance(v, float):
            return int(v) if v.is_integer() else ("float!", v)
        return int(v)
    if ty == "float":
        return ("bool!", v) if isinstance(v, bool) else float(v)
    if ty == "boolean":
        if isinstance(v, str):
            return {"true": True, "false": False}.get(v, ("str!", v))
        return v if isinstance(v, bool) else ("non-bool!", v)
    if ty == "timestamp":
        if isinstance(v, datetime.datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return v if isinstance(v, str) else ("non-text!", v)
    return v if isinstance(v, str) else ("non-text!", v)


@functools.lru_cache(maxsize=8)
def db_rows(path, name):
    """The table's rows in id order, as the portal serves them (booleans as booleans); a batch
    reads each database once."""
    table = CATALOG[name]
    columns = table["columns"]
    cols = ", ".join(f'"{c["name"]}"' for c in columns)
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = con.execute(f'SELECT {cols} FROM "{name}" ORDER BY "{table["id"]}"').fetchall()
    finally:
        con.close()
    flags = [c["type"] == "boolean" for c in columns]
    if any(flags):
        rows = [tuple(None if v is None else (bool(v) if b else v) for v, b in zip(r, flags)) for r in rows]
    return rows


# The Python types a value of each catalog type already has when it needs no normalizing.
PLAIN = {"integer": {int}, "float": {float}, "boolean": {bool}, "text": {str}, "timestamp": {str}}


def normalized(rows, columns):
    """`norm` of every value, column by column; the rows as they are when every column already
    has plain values (the usual case: the readers below hand timestamps over as text)."""
    if not rows:
        return []
    columns_of = None
    fixed = {}
    for k, c in enumerate(columns):
        ty = c["type"]
        if columns_of is None:
            columns_of = list(zip(*rows))
        values = columns_of[k]
        kinds = {type(v) for v in values}
        if kinds <= PLAIN[ty] | {type(None)}:
            continue
        if ty == "integer" and kinds <= {str, type(None)}:
            fixed[k] = tuple(None if v is None else int(v) for v in values)
        else:
            fixed[k] = tuple(norm(v, ty) for v in values)
    if not fixed:
        return rows if isinstance(rows, list) else list(rows)
    return list(zip(*[fixed.get(k, values) for k, values in enumerate(columns_of)]))


def arrow_rows(table, columns):
    """The rows of an Arrow table, timestamps as text in whole seconds (as `norm` writes them),
    converted in Arrow rather than value by value."""
    if not len(table):
        return []

    def column(c):
        col = table.column(c["name"])
        if pa.types.is_timestamp(col.type):
            return col.cast(pa.timestamp("s"), safe=False).cast(pa.string())
        return col

    return list(zip(*[column(c).to_pylist() for c in columns]))


def lost_and_duplicated(expected, got):
    want = collections.Counter(r[0] for r in expected)
    have = collections.Counter(r[0] for r in got)
    return sum((want - have).values()), sum((have - want).values())


def compare_exact(reader, expected, got, columns):
    if got == expected:
        return 0, 0
    lost, duplicated = lost_and_duplicated(expected, got)
    if len(got) != len(expected) or lost or duplicated:
        raise Mismatch(f"{reader}: {len(got)} rows, expected {len(expected)} ({lost} lost, {duplicated} duplicated)", lost, duplicated)
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            diff = [(c["name"], gv, ev) for c, gv, ev in zip(columns, g, e) if gv != ev]
            raise Mismatch(f"{reader}: row {i} (expected id {e[0]}) differs: {diff[:3]}")
    return 0, 0


def compare_relaxed(reader, before, after, got):
    """Rows read while a mutation ran. `before` are the states before it, the last one right
    before it: a row it did not touch (the same in that state and after it) must be exactly as
    after it; a touched one as in any of the states (absent where it was absent in one), since
    the run may have read it before the mutation, after it, or not at all (it kept the version
    of the run before). Ids ascend throughout."""
    ids = [r[0] for r in got]
    if ids != sorted(set(ids)):
        raise Mismatch(f"{reader}: ids not strictly ascending")
    states = [{r[0]: r for r in rows} for rows in before]
    last, new = states[-1], {r[0]: r for r in after}
    have = {r[0]: r for r in got}
    touched = 0
    known = set(new)
    for state in states:
        known |= state.keys()
    for i in known:
        n, g = new.get(i), have.get(i)
        if last.get(i) == n:
            if g != n:
                raise Mismatch(f"{reader}: id {i}, untouched by the mutation beside the run, is {g}; the database has {n}")
        else:
            touched += 1
            versions = [state.get(i) for state in states] + [n]
            if g not in versions:
                raise Mismatch(f"{reader}: id {i}, changed by the mutation beside the run, is {g}: none of {versions}")
    extra = have.keys() - known
    if extra:
        raise Mismatch(f"{reader}: ids that never existed: {sorted(extra)[:5]}")
    return touched


JSON_TYPES = {"integer": {int}, "float": {int, float}, "boolean": {bool}, "text": {str}, "timestamp": {str}}


def check_json_objects(reader, objects, columns):
    """The rows of JSON objects whose keys are the columns in order and whose JSON types are the
    catalog's (null only where the column is nullable)."""
    names = [c["name"] for c in columns]
    for i, obj in enumerate(objects):
        if list(obj) != names:
            raise Mismatch(f"{reader}: row {i} keys {list(obj)}, expected {names}")
    rows = [tuple(o.values()) for o in objects]
    for k, (values, c) in enumerate(zip(zip(*rows), columns)):
        allowed = JSON_TYPES[c["type"]] | ({type(None)} if c.get("nullable") else set())
        if not {type(v) for v in values} <= allowed:
            i = next(i for i, v in enumerate(values) if type(v) not in allowed)
            raise Mismatch(f"{reader}: row {i} column {c['name']} has JSON type {type(values[i]).__name__}, catalog says {c['type']}{'' if c.get('nullable') else ' (not nullable)'}")
    return rows


def open_text(path, compress):
    if compress:
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def read_file(item, columns):
    """The rows of a file `materialize` wrote, read with pyarrow or Python's json/csv."""
    path, fmt, compress = Path(item["path"]), item["format"], item.get("compress", False)
    if compress and not path.read_bytes()[:2] == b"\x1f\x8b":
        raise Mismatch(f"{path.name}: not gzip")
    names = [c["name"] for c in columns]
    if fmt == "parquet":
        t = pq.read_table(path)
        want = [(c["name"], PARQUET_TYPES[c["type"]], bool(c.get("nullable"))) for c in columns]
        have = [(f.name, f.type, f.nullable) for f in t.schema]
        if have != want:
            raise Mismatch(f"pyarrow schema {have}, expected {want}")
        return "pyarrow", arrow_rows(t, columns)
    with open_text(path, compress) as f:
        text = f.read()
    if fmt == "jsonl":
        if text and not text.endswith("\n"):
            raise Mismatch("python json: the last line is not terminated")
        lines = text.splitlines()
        # One decode of all lines at once (much faster than one per line); one object per line.
        objects = json.loads("[" + ",".join(lines) + "]")
        if len(objects) != len(lines) or not all(isinstance(o, dict) for o in objects):
            raise Mismatch("python json: a line that is not one JSON object")
        return "python json", check_json_objects("python json", objects, columns)
    if fmt == "json":
        objects = json.loads(text)
        if not isinstance(objects, list):
            raise Mismatch("python json: not a JSON array")
        return "python json", check_json_objects("python json", objects, columns)
    records = list(csv.reader(io.StringIO(text, newline="")))
    if not records or records[0] != names:
        raise Mismatch(f"python csv: header {records[:1]}, expected {names}")
    # NULL is the empty field; no generated text is empty.
    return "python csv", [tuple(None if v == "" else v for v in r) for r in records[1:]]


def compare_with_db(reader, item, table, got):
    columns = table["columns"]
    got = normalized(got, columns)
    after = db_rows(item["db"], table["name"])
    if item.get("before_dbs"):
        before = [db_rows(path, table["name"]) for path in item["before_dbs"]]
        touched = compare_relaxed(reader, before, after, got)
        return {"rows": len(got), "touched": touched, "lost": 0, "duplicated": 0, "reader": reader}
    lost, duplicated = compare_exact(reader, after, got, columns)
    return {"rows": len(got), "lost": lost, "duplicated": duplicated, "reader": reader}


def check_table(item, catalog):
    table = catalog[item["table"]]
    reader, got = read_file(item, table["columns"])
    return compare_with_db(reader, item, table, got)


def check_duckdb(item, catalog):
    table = catalog[item["table"]]
    con = duckdb.connect()
    try:
        # The query is several statements (it first reads sync.json); the last one's rows count.
        result = con.sql(item["sql"]).to_arrow_table()
    finally:
        con.close()
    want = [c["name"] for c in table["columns"]]
    if result.column_names != want:
        raise Mismatch(f"duckdb: columns {result.column_names}, expected {want}")
    return compare_with_db("duckdb", item, table, arrow_rows(result, table["columns"]))


def check_counts(item, catalog):
    table = catalog[item["table"]]
    record = json.loads(Path(item["sync"]).read_text())
    runs = [r for r in record["runs"] if r["run"] == item["run"]]
    if len(runs) != 1:
        raise Mismatch(f"sync.json lists run {item['run']} {len(runs)} times")
    run = runs[0]
    if run["state"] != "complete":
        raise Mismatch(f"run {item['run']} is {run['state']}")
    ids, cursor = run["window"]["ids"], run["window"].get("cursor") or {}
    id_col, change = f'"{table["id"]}"', f'"{table["change"]}"'
    con = sqlite3.connect(f"file:{item['db']}?mode=ro", uri=True)
    try:
        def count(where, args):
            return con.execute(f'SELECT count(*) FROM "{table["name"]}" WHERE {where}', args).fetchone()[0]

        upto = ids["upto"] if ids["upto"] is not None else -(2**63)
        after = ids["after"]
        if run["kind"] == "snapshot":
            new, changed = count(f"{id_col} <= ?", (upto,)), 0
        else:
            new = count(f"{id_col} > ? AND {id_col} <= ?", (after if after is not None else -(2**63), upto))
            c_after, c_upto = cursor.get("after"), cursor.get("upto")
            changed = 0
            if c_upto is not None and c_after != c_upto:
                where = f"{id_col} <= ? AND {change} <= ?"
                args = [after if after is not None else -(2**63), c_upto]
                if c_after is not None:
                    where += f" AND {change} > ?"
                    args.append(c_after)
                changed = count(where, args)
        held = count("1 = 1", ())
    finally:
        con.close()
    problems = []
    for key, want in (("new", new), ("changed", changed), ("held", held), ("rows", new + changed)):
        if run.get(key) != want:
            problems.append(f"{key} {run.get(key)}, the database says {want}")
    deletes = run.get("deletes") or {}
    path = Path(item["sync"]).parent / f"run-{item['run']:05d}" / deletes.get("name", "deleted.jsonl")
    data = path.read_bytes()
    lines = data.decode().splitlines()
    listed = [json.loads(line)[table["id"]] for line in lines]
    if listed != sorted(set(listed)):
        problems.append("the deletes file is not in ascending id order")
    if (deletes.get("ids"), deletes.get("bytes"), deletes.get("crc32")) != (len(listed), len(data), f"{zlib.crc32(data):08x}"):
        problems.append(f"deletes record {deletes}, the file has {len(listed)} ids, {len(data)} bytes, crc32 {zlib.crc32(data):08x}")
    if run.get("deleted") != len(listed):
        problems.append(f"deleted {run.get('deleted')}, the file lists {len(listed)}")
    if problems:
        raise Mismatch("; ".join(problems))
    return {"new": new, "changed": changed, "deleted": len(listed), "held": held}


def parquet_table(path, table):
    p = Path(path)
    if p.is_dir():
        parts = sorted(x for x in p.glob(f"{table}-*.parquet") if not x.name.startswith("."))
        if not parts:
            raise Mismatch(f"no parquet parts in {p}")
        return pa.concat_tables([pq.read_table(x) for x in parts])
    return pq.read_table(p)


def check_parquet_same(item, catalog):
    ref = parquet_table(item["reference"], item["table"])
    act = parquet_table(item["actual"], item["table"])
    ref_ids = collections.Counter(ref.column(0).to_pylist())
    act_ids = collections.Counter(act.column(0).to_pylist())
    lost, duplicated = sum((ref_ids - act_ids).values()), sum((act_ids - ref_ids).values())
    problems = []
    if not ref.schema.equals(act.schema):
        problems.append(f"schema {act.schema} != {ref.schema}")
    if not ref.combine_chunks().equals(act.combine_chunks()):
        problems.append(f"rows differ ({act.num_rows} rows, expected {ref.num_rows})")
    if problems or lost or duplicated:
        raise Mismatch(f"{'; '.join(problems)} ({lost} lost, {duplicated} duplicated)", lost, duplicated)
    return {"rows": act.num_rows, "lost": 0, "duplicated": 0}


CHECKS = {"table": check_table, "duckdb": check_duckdb, "counts": check_counts, "parquet_same": check_parquet_same}


def main():
    if sys.argv[1] == "snapshot":
        src = sqlite3.connect(f"file:{sys.argv[2]}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(sys.argv[3])
        src.backup(dst)
        dst.close()
        src.close()
        return
    batch = json.loads(Path(sys.argv[2]).read_text())
    catalog = load_catalog(batch["catalog"])
    CATALOG.update(catalog)
    verdict = {"versions": {"pyarrow": pa.__version__, "duckdb": duckdb.__version__}, "items": []}
    for item in batch["items"]:
        try:
            out = CHECKS[item["kind"]](item, catalog)
            verdict["items"].append({"name": item["name"], "ok": True, **out})
        except Exception as e:  # a reader's own exception is a failure to read, reported as such
            counts = {"lost": getattr(e, "lost", 0), "duplicated": getattr(e, "duplicated", 0)}
            verdict["items"].append({"name": item["name"], "ok": False, "detail": f"{type(e).__name__}: {e}", **counts})
    json.dump(verdict, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
