#!/usr/bin/env python
"""One-off developer tool: bundle the Bowman et al. (2015) propositional-logic data.

Usage::

    python scripts/bundle_logic.py SOURCE_DIR [--out src/onlstm/resources/logic]

``SOURCE_DIR`` holds ``train0..train12``, ``test0..test12`` and ``SOURCE.md`` (a copy of
``propositionallogic/`` of sleepinyourhat/vector-entailment, see that SOURCE.md). Each
file is gzip-compressed unchanged (``<name>.gz``, mtime 0, so re-running gives
byte-identical output); SOURCE.md is copied and BUNDLING.md records how.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "onlstm" / "data" / "logic"
NAMES = [f"{split}{k}" for split in ("train", "test") for k in range(13)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in NAMES:
        raw = (args.source / name).read_bytes()
        dest = args.out / f"{name}.gz"
        tmp = dest.with_suffix(".gz.tmp")
        with open(tmp, "wb") as fh:
            with gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=9, mtime=0) as gz:
                gz.write(raw)
        tmp.replace(dest)
        rows.append((name, raw.count(b"\n"), len(raw), hashlib.sha256(raw).hexdigest(), dest.stat().st_size))
    shutil.copyfile(args.source / "SOURCE.md", args.out / "SOURCE.md")
    lines = [
        "# How this folder was made",
        "",
        "Each data file described in `SOURCE.md` (copied verbatim) is stored gzip-compressed,",
        "byte-for-byte unchanged inside (`gunzip -c train3.gz | sha256sum` gives the sha256 of",
        "SOURCE.md), by the developer tool `scripts/bundle_logic.py`:",
        "",
        "    python scripts/bundle_logic.py <copy of vector-entailment/propositionallogic>",
        "",
        "| file | lines | bytes | sha256 (uncompressed) | .gz bytes |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {c} | {b} | `{h}` | {g} |" for n, c, b, h, g in rows]
    lines.append("")
    (args.out / "BUNDLING.md").write_text("\n".join(lines))
    total = sum(r[4] for r in rows)
    print(f"{len(rows)} files, {sum(r[2] for r in rows):,} bytes -> {total:,} bytes gzip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
