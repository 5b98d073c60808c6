"""Reads `iptvportal dump` output back with the tools users use and compares it with the simulator.

Run by the e2e harness (tests/src) as `python check_output.py BATCH.json`; prints one JSON verdict on
stdout. BATCH holds:
  db         the simulator's SQLite file (read directly: the ground truth)
  catalog    crates/catalog/catalog.toml (column order and types)
  cells      outputs to check: {name, table, format, compress, dir, where_sql, columns, order_sql,
             parts} (parts: text written with --part-rows, read part by part and by one glob)
             (order_sql: the dump's --order-by as SQLite SQL with PostgreSQL's NULL order written
             out; the id, or every column, when absent)
  compare    Parquet outputs to compare: {name, table, reference, actual}

Every reader's rows are normalized to plain Python values per catalog type, so that a reader's own
inference (pandas turning a nullable integer into float, DuckDB parsing timestamps) is not mistaken
for a wrong value, while a wrong value, a lost or extra row, or a wrong order still is.
"""

import collections
import csv
import datetime
import gzip
import io
import json
import math
import sqlite3
import sys
import tomllib
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_TYPES = {
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "timestamp": pa.timestamp("us"),
}
DUCKDB_PARQUET_TYPES = {
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
}


class Mismatch(Exception):
    """A reader saw something other than the database holds."""


def load_catalog(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return {t["name"]: t for t in doc["table"]}


def is_null(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def norm(v, ty):
    """One value as a plain Python value of the catalog type, or a tagged value that cannot match."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()  # numpy scalars
    if is_null(v):
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
        if isinstance(v, bool):
            return ("bool!", v)
        return float(v)
    if ty == "boolean":
        if isinstance(v, str):
            return {"true": True, "false": False}.get(v, ("str!", v))
        if isinstance(v, bool):
            return v
        return ("non-bool!", v)
    if ty == "timestamp":
        if isinstance(v, (datetime.datetime, pd.Timestamp)):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        return v if isinstance(v, str) else ("non-text!", v)
    return v if isinstance(v, str) else ("non-text!", v)


def expected_rows(db, table, columns, where_sql, order_sql=None):
    cols = ", ".join(f'"{c["name"]}"' for c in columns)
    order = order_sql or ("id" if table.get("id") else ", ".join(f'"{c["name"]}"' for c in columns))
    sql = f'SELECT {cols} FROM "{table["name"]}"'
    if where_sql:
        sql += f" WHERE {where_sql}"
    sql += f" ORDER BY {order}"
    rows = db.execute(sql).fetchall()
    types = [c["type"] for c in columns]
    # SQLite holds booleans as 0/1; the portal serves them as true/false.
    return [tuple(None if v is None else (bool(v) if t == "boolean" else v) for v, t in zip(r, types)) for r in rows]


def compare_rows(reader, expected, actual, columns):
    types = [c["type"] for c in columns]
    got = [tuple(norm(v, t) for v, t in zip(row, types)) for row in actual]
    if len(got) != len(expected):
        raise Mismatch(f"{reader}: {len(got)} rows, expected {len(expected)}")
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            diff = [(c["name"], gv, ev) for c, gv, ev in zip(columns, g, e) if gv != ev]
            raise Mismatch(f"{reader}: row {i} (expected id {e[0]}) differs: {diff[:3]}")


def text_path(cell):
    ext = {"jsonl": "jsonl", "csv": "csv", "json": "json"}[cell["format"]]
    name = f'{cell["table"]}.{ext}' + (".gz" if cell["compress"] else "")
    return Path(cell["dir"]) / name


def text_paths(cell):
    """The one text file, or with `parts` the parts `{table}-NNNNN.{ext}` in order."""
    if not cell.get("parts"):
        path = text_path(cell)
        return [path] if path.exists() else []
    ext = text_path(cell).name[len(cell["table"]) + 1:]
    return sorted(p for p in Path(cell["dir"]).glob(f'{cell["table"]}-*.{ext}') if not p.name.startswith("."))


def glob_count(con, cell, reader, want, opts=""):
    """Parts: one glob reads the whole table, as docs/dump.md tells users to read it."""
    if not cell.get("parts"):
        return
    ext = text_path(cell).name[len(cell["table"]) + 1:]
    glob = str(Path(cell["dir"]) / f'{cell["table"]}-*.{ext}')
    (count,) = con.execute(f"SELECT count(*) FROM {reader}('{glob}'{opts})").fetchone()
    if count != want:
        raise Mismatch(f"duckdb {reader} of {glob}: {count} rows, expected {want}")


def parquet_parts(directory, table):
    # Visible parts only: a `.{table}-NNNNN.parquet.tmp` is an unclosed part by design.
    return sorted(p for p in Path(directory).glob(f"{table}-*.parquet") if not p.name.startswith("."))


def open_text(path):
    return gzip.open(path, "rt", encoding="utf-8", newline="") if path.suffix == ".gz" else open(path, encoding="utf-8", newline="")


def check_json_types(reader, objects, columns):
    names = [c["name"] for c in columns]
    for i, obj in enumerate(objects):
        if list(obj.keys()) != names:
            raise Mismatch(f"{reader}: row {i} keys {list(obj.keys())}, expected {names}")
        for c in columns:
            v = obj[c["name"]]
            if v is None:
                if not c.get("nullable"):
                    raise Mismatch(f"{reader}: row {i} null in non-nullable {c['name']}")
                continue
            ok = {
                "integer": isinstance(v, int) and not isinstance(v, bool),
                "float": isinstance(v, (int, float)) and not isinstance(v, bool),
                "boolean": isinstance(v, bool),
                "text": isinstance(v, str),
                "timestamp": isinstance(v, str),
            }[c["type"]]
            if not ok:
                raise Mismatch(f"{reader}: row {i} column {c['name']} has JSON type {type(v).__name__}, catalog says {c['type']}")


def duck_rows(con, sql):
    return [tuple(r) for r in con.execute(sql).fetchall()]


def check_cell(db, catalog, cell):
    table = catalog[cell["table"]]
    columns = table["columns"]
    if cell.get("columns"):
        by_name = {c["name"]: c for c in columns}
        columns = [by_name[n] for n in cell["columns"]]
    names = [c["name"] for c in columns]
    expected = expected_rows(db, table, columns, cell.get("where_sql"), cell.get("order_sql"))
    readers = []
    con = duckdb.connect()
    fmt = cell["format"]

    def ran(reader, fn):
        fn()
        readers.append(reader)

    if fmt == "parquet":
        parts = parquet_parts(cell["dir"], cell["table"])
        if not parts:
            raise Mismatch("no parquet part files")
        glob = str(Path(cell["dir"]) / f'{cell["table"]}-*.parquet')

        def pyarrow_check():
            t = pa.concat_tables([pq.read_table(p) for p in parts])
            want = [(c["name"], PARQUET_TYPES[c["type"]], bool(c.get("nullable"))) for c in columns]
            have = [(f.name, f.type, f.nullable) for f in t.schema]
            if have != want:
                raise Mismatch(f"pyarrow schema {have}, expected {want}")
            compare_rows("pyarrow", expected, list(zip(*[t.column(n).to_pylist() for n in names])) if len(t) else [], columns)

        def duckdb_check():
            described = duck_rows(con, f"DESCRIBE SELECT * FROM read_parquet('{glob}')")
            have = [(r[0], r[1]) for r in described]
            want = [(c["name"], DUCKDB_PARQUET_TYPES[c["type"]]) for c in columns]
            if have != want:
                raise Mismatch(f"duckdb types {have}, expected {want}")
            # Files in name order, rows in file order: the dump's order, which DuckDB keeps per file.
            cols = ", ".join(f'"{n}"' for n in names)
            rows = duck_rows(con, f"SELECT {cols} FROM read_parquet('{glob}', filename=true, file_row_number=true) ORDER BY filename, file_row_number")
            compare_rows("duckdb read_parquet", expected, rows, columns)

        def pandas_check():
            df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
            if list(df.columns) != names:
                raise Mismatch(f"pandas columns {list(df.columns)}")
            compare_rows("pandas read_parquet", expected, list(df.itertuples(index=False, name=None)), columns)

        ran("pyarrow", pyarrow_check)
        ran("duckdb", duckdb_check)
        ran("pandas", pandas_check)
    else:
        paths = text_paths(cell)
        if not paths:
            raise Mismatch(f"missing {text_path(cell).name}")
        names_sql = ", ".join(chr(34) + n + chr(34) for n in names)
        if fmt == "jsonl":
            def python_check():
                objects = []
                for path in paths:
                    with open_text(path) as f:
                        text = f.read()
                    if text and not text.endswith("\n"):
                        raise Mismatch(f"python: last line of {path.name} is not terminated")
                    objects += [json.loads(line) for line in text.splitlines()]
                check_json_types("python json", objects, columns)
                compare_rows("python json", expected, [tuple(o.values()) for o in objects], columns)

            def pandas_check():
                if not expected:
                    return
                df = pd.concat([pd.read_json(str(p), lines=True, dtype=False, convert_dates=False, precise_float=True) for p in paths], ignore_index=True)
                compare_rows("pandas read_json", expected, list(df[names].itertuples(index=False, name=None)), columns)

            def duckdb_check():
                if not expected:
                    return
                rows = [r for p in paths for r in duck_rows(con, f"SELECT {names_sql} FROM read_json_auto('{p}')")]
                compare_rows("duckdb read_json_auto", expected, rows, columns)
                glob_count(con, cell, "read_json_auto", len(expected))
        elif fmt == "json":
            def python_check():
                objects = []
                for path in paths:
                    with open_text(path) as f:
                        part = json.load(f)
                    if not isinstance(part, list):
                        raise Mismatch(f"python: {path.name} is not a JSON array")
                    objects += part
                check_json_types("python json", objects, columns)
                compare_rows("python json", expected, [tuple(o.values()) for o in objects], columns)

            def pandas_check():
                if not expected:
                    return
                df = pd.concat([pd.read_json(str(p), dtype=False, convert_dates=False, precise_float=True) for p in paths], ignore_index=True)
                compare_rows("pandas read_json", expected, list(df[names].itertuples(index=False, name=None)), columns)

            def duckdb_check():
                if not expected:
                    return
                rows = [r for p in paths for r in duck_rows(con, f"SELECT {names_sql} FROM read_json_auto('{p}')")]
                compare_rows("duckdb read_json_auto", expected, rows, columns)
                glob_count(con, cell, "read_json_auto", len(expected))
        else:
            textual = {c["name"]: "VARCHAR" for c in columns if c["type"] in ("text", "timestamp")}

            def python_check():
                rows = []
                for path in paths:
                    with open_text(path) as f:
                        records = list(csv.reader(f))
                    if not records or records[0] != names:
                        raise Mismatch(f"python csv: {path.name} header {records[:1]}, expected {names}")
                    # NULL is the empty field; no generated text is empty, so empty reads back as null.
                    rows += [tuple(None if v == "" else v for v in r) for r in records[1:]]
                compare_rows("python csv", expected, rows, columns)

            def pandas_check():
                # Text read as text (a user's dtype=str): pandas would otherwise guess numbers.
                df = pd.concat([pd.read_csv(str(p), dtype={n: str for n in textual}, keep_default_na=False, na_values=[""]) for p in paths], ignore_index=True)
                if list(df.columns) != names:
                    raise Mismatch(f"pandas read_csv columns {list(df.columns)}")
                compare_rows("pandas read_csv", expected, list(df.itertuples(index=False, name=None)), columns)

            def duckdb_check():
                types = "{" + ", ".join(f"'{k}': 'VARCHAR'" for k in textual) + "}"
                opts = f", types={types}" if textual else ""
                rows = [r for p in paths for r in duck_rows(con, f"SELECT * FROM read_csv_auto('{p}', header=true{opts})")]
                compare_rows("duckdb read_csv_auto", expected, rows, columns)
                glob_count(con, cell, "read_csv_auto", len(expected), ", header=true")

        ran("python", python_check)
        ran("pandas", pandas_check)
        ran("duckdb", duckdb_check)
    return {"rows": len(expected), "readers": readers}


def read_parquet_dir(directory, table):
    parts = parquet_parts(directory, table)
    if not parts:
        raise Mismatch(f"no parquet parts in {directory}")
    return pa.concat_tables([pq.read_table(p) for p in parts])


def compare_parquet(item):
    ref = read_parquet_dir(item["reference"], item["table"])
    act = read_parquet_dir(item["actual"], item["table"])
    ref_ids = collections.Counter(ref.column(0).to_pylist())
    act_ids = collections.Counter(act.column(0).to_pylist())
    lost = sum((ref_ids - act_ids).values())
    duplicated = sum((act_ids - ref_ids).values())
    detail = []
    if not ref.schema.equals(act.schema):
        detail.append(f"schema {act.schema} != {ref.schema}")
    if not ref.combine_chunks().equals(act.combine_chunks()):
        detail.append("rows differ")
    return {"ok": not detail and lost == 0 and duplicated == 0, "lost": lost, "duplicated": duplicated, "detail": "; ".join(detail)}


def main():
    batch = json.loads(Path(sys.argv[1]).read_text())
    verdict = {
        "versions": {"pyarrow": pa.__version__, "duckdb": duckdb.__version__, "pandas": pd.__version__},
        "cells": [],
        "compare": [],
    }
    catalog = load_catalog(batch["catalog"]) if batch.get("catalog") else {}
    db = sqlite3.connect(f'file:{batch["db"]}?mode=ro', uri=True) if batch.get("db") else None
    for cell in batch.get("cells", []):
        try:
            out = check_cell(db, catalog, cell)
            verdict["cells"].append({"name": cell["name"], "ok": True, **out})
        except Exception as e:  # a reader's own exception is a failure to read, reported as such
            verdict["cells"].append({"name": cell["name"], "ok": False, "detail": f"{type(e).__name__}: {e}"})
    for item in batch.get("compare", []):
        try:
            verdict["compare"].append({"name": item["name"], **compare_parquet(item)})
        except Exception as e:
            verdict["compare"].append({"name": item["name"], "ok": False, "lost": -1, "duplicated": -1, "detail": f"{type(e).__name__}: {e}"})
    json.dump(verdict, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
