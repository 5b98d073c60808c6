"""Reads `iptvportal dump --out s3://...` output back through pyarrow's S3 filesystem and compares it
with the simulator, and compares buckets' listings.

Run by the e2e harness (tests/src/scenarios/s3.rs) as `python check_s3.py BATCH.json`; prints one
JSON verdict on stdout. BATCH holds:
  db, catalog  as for check_output.py
  store        {endpoint, key, secret, bucket}: the S3 API (moto on loopback)
  cells        outputs to check: {name, table, format, compress, prefix, local}: the table's
               objects under `prefix/{table}/`, read with `pyarrow.dataset` over S3 (Parquet),
               then copied to `local` and read by every reader of check_output.py
  compare      listings to compare: {name, table, reference, actual} (prefixes): the same keys,
               sizes and bytes (MD5), each the manifest's exactly

A table's prefix must hold exactly the parts its complete manifest names (with their sizes), the
manifest and the lease, and no multipart upload may be left open under it.
"""

import hashlib
import json
import sqlite3
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs

sys.path.insert(0, str(Path(__file__).parent))
import check_output as co  # noqa: E402  (beside this file)


def filesystem(store):
    endpoint = store["endpoint"].removeprefix("http://")
    return pafs.S3FileSystem(
        access_key=store["key"],
        secret_key=store["secret"],
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
    )


def listing(s3, base):
    """The table's objects by name: (size, MD5 of the bytes)."""
    out = {}
    for info in s3.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        with s3.open_input_stream(info.path) as f:
            digest = hashlib.md5(f.read()).hexdigest()
        out[info.path[len(base) + 1:]] = (info.size, digest)
    return out


def check_layout(s3, base):
    """The prefix holds the complete manifest's parts (sizes too), the manifest and the lease."""
    objects = listing(s3, base)
    with s3.open_input_stream(base + "/_manifest.json") as f:
        manifest = json.loads(f.read())
    if not manifest.get("is_complete"):
        raise co.Mismatch(f"{base}: the manifest is not complete")
    named = {f["name"]: f["bytes"] for f in manifest["sink"]["files"]}
    parts = {n: size for n, (size, _) in objects.items() if not n.startswith(("_", "."))}
    if parts != named:
        raise co.Mismatch(f"{base}: objects {sorted(parts.items())[:4]} are not the manifest's {sorted(named.items())[:4]}")
    for control in ("_manifest.json", ".lease"):
        if control not in objects:
            raise co.Mismatch(f"{base}: no {control}")
    return objects


def check_cell(db, catalog, s3, store, cell):
    base = f'{store["bucket"]}/{cell["prefix"]}/{cell["table"]}'
    objects = check_layout(s3, base)
    readers = []
    if cell["format"] == "parquet":
        # The table's prefix is one dataset: the manifest and the lease are skipped by their names.
        table = ds.dataset(base, filesystem=s3, format="parquet").to_table()
        meta = catalog[cell["table"]]
        columns = meta["columns"]
        names = [c["name"] for c in columns]
        expected = co.expected_rows(db, meta, columns, None)
        rows = sorted(zip(*[table.column(n).to_pylist() for n in names]), key=lambda r: r[0]) if len(table) else []
        co.compare_rows("pyarrow.dataset over S3", expected, rows, columns)
        readers.append("pyarrow.dataset-s3")
    local = Path(cell["local"])
    local.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(base, str(local), source_filesystem=s3, destination_filesystem=pafs.LocalFileSystem())
    out = co.check_cell(db, catalog, {**cell, "dir": str(local), "parts": True})
    return {"rows": out["rows"], "objects": len(objects), "readers": readers + out["readers"]}


def compare(s3, store, item):
    reference = listing(s3, f'{store["bucket"]}/{item["reference"]}/{item["table"]}')
    actual = check_layout(s3, f'{store["bucket"]}/{item["actual"]}/{item["table"]}')
    # The lease differs by holder and time, the manifest by its times: the parts must not.
    strip = lambda objects: {n: v for n, v in objects.items() if not n.startswith(("_", "."))}
    ref, act = strip(reference), strip(actual)
    if ref != act:
        differ = sorted(set(ref.items()) ^ set(act.items()))[:4]
        return {"ok": False, "detail": f"objects differ from the uninterrupted run's: {differ}"}
    return {"ok": True, "objects": len(act)}


def main():
    batch = json.loads(Path(sys.argv[1]).read_text())
    store = batch["store"]
    s3 = filesystem(store)
    catalog = co.load_catalog(batch["catalog"])
    db = sqlite3.connect(f'file:{batch["db"]}?mode=ro', uri=True)
    verdict = {"cells": [], "compare": []}
    for cell in batch.get("cells", []):
        try:
            verdict["cells"].append({"name": cell["name"], "ok": True, **check_cell(db, catalog, s3, store, cell)})
        except Exception as e:  # a reader's own exception is a failure to read, reported as such
            verdict["cells"].append({"name": cell["name"], "ok": False, "detail": f"{type(e).__name__}: {e}"})
    for item in batch.get("compare", []):
        try:
            verdict["compare"].append({"name": item["name"], **compare(s3, store, item)})
        except Exception as e:
            verdict["compare"].append({"name": item["name"], "ok": False, "detail": f"{type(e).__name__}: {e}"})
    json.dump(verdict, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
