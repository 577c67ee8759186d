#!/usr/bin/env python3
"""Dump a FoundationDB key range at ONE read version into a txkv-kvdump file.

UNTESTED on the txkv machines: FoundationDB cannot be installed there. The format it
writes is the one `txkv import` reads (integrations/3fs/migrate/README.md); txkv's own
test writes the same format from TypeScript (test/integrations/fdb-import.test.ts).

Usage (needs FoundationDB's Python binding, `pip install foundationdb==7.1.*`, matching
the cluster's client library, and the cluster file):
    python3 fdb_dump.py --cluster-file /etc/foundationdb/fdb.cluster --out meta.kvdump
    python3 fdb_dump.py --begin '' --end '\\xff' ...   # the default: the whole normal keyspace

Why one read version holds: every page is read in a new transaction pinned with
set_read_version(v) to the version of the first one, so the dump is one snapshot. The
cluster keeps versions readable for about 5 s (MVCC window); a dump that takes longer
fails with transaction_too_old. For a longer dump, stop writes first (3FS services down),
then the snapshot does not change and --allow-version-change may be given: a page that
fails with transaction_too_old is then re-read at a new version.
"""
import argparse
import base64
import datetime
import hashlib
import json
import struct
import sys
import time

import fdb  # FoundationDB's own client

fdb.api_version(710)

MAGIC = b"TXKVDUMP"
VERSION = 1
END_MARK = 0xFFFFFFFF
PAGE = 10000


def parse_key(s):
    # '\\xff' style escapes on the command line -> bytes
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cluster-file", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--begin", default="")
    ap.add_argument("--end", default="\\xff")
    ap.add_argument("--allow-version-change", action="store_true",
                    help="re-read a page at a new version after transaction_too_old (only with writes stopped)")
    args = ap.parse_args()
    begin, end = parse_key(args.begin), parse_key(args.end)

    db = fdb.open(args.cluster_file)
    tr = db.create_transaction()
    read_version = tr.get_read_version().wait()

    header = json.dumps({
        "source": "foundationdb",
        "readVersion": str(read_version),
        "begin": base64.b64encode(begin).decode(),
        "end": base64.b64encode(end).decode(),
        "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "clusterFile": args.cluster_file or "(default)",
    }).encode()

    sha = hashlib.sha256()
    count = 0
    started = time.time()
    with open(args.out, "wb") as f:
        f.write(MAGIC + struct.pack(">II", VERSION, len(header)) + header)
        cursor = fdb.KeySelector.first_greater_or_equal(begin)
        while True:
            tr = db.create_transaction()
            tr.set_read_version(read_version)
            if begin.startswith(b"\xff") or end > b"\xff":
                tr.options.set_read_system_keys()
            try:
                page = list(tr.get_range(cursor, end, limit=PAGE,
                                         streaming_mode=fdb.StreamingMode.want_all))
            except fdb.FDBError as e:
                if e.code == 1007 and args.allow_version_change:  # transaction_too_old
                    read_version = db.create_transaction().get_read_version().wait()
                    continue
                raise
            for kv in page:
                k, v = bytes(kv.key), bytes(kv.value)
                rec = struct.pack(">II", len(k), len(v)) + k + v
                f.write(rec)
                sha.update(rec)
                count += 1
            if len(page) < PAGE:
                break
            cursor = fdb.KeySelector.first_greater_than(bytes(page[-1].key))
            print(f"fdb_dump: {count} records, {time.time() - started:.0f} s", file=sys.stderr)
        f.write(struct.pack(">IQ", END_MARK, count) + sha.digest())
    print(f"fdb_dump: {count} records at read version {read_version} -> {args.out} "
          f"(sha256 {sha.hexdigest()}, {time.time() - started:.1f} s)")


if __name__ == "__main__":
    main()
