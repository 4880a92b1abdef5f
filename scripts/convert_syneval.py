#!/usr/bin/env python
"""One-off developer tool: convert the Marvin & Linzen (2018) pickles to gzipped JSON lines.

Usage::

    python scripts/convert_syneval.py SOURCE_DIR [--out src/onlstm/resources/syneval]

``SOURCE_DIR`` is a copy of upstream ``LM_syneval/EMNLP2018`` as described by its
``SOURCE.md``: ``SOURCE_DIR/templates/*.pickle`` plus ``SOURCE.md``,
``LICENSE.upstream.md`` and ``sample_sents.txt`` next to it. This script is the only
place in the project that reads a pickle, and it does so with `RestrictedUnpickler`,
whose ``find_class`` refuses every class: only the builtin containers and strings that
the pickle opcodes create directly (dict, list, tuple, str, ...) can come out of it.

Output, one file per construction (``<construction>.jsonl.gz``), one item per line, in
the pickle's order (conditions in dict order, items in list order)::

    {"condition": "sing_MS_MV", "sentences": ["the author laughs", "the author laugh"]}

Agreement and reflexive files hold pairs ``[grammatical, ungrammatical]``; the NPI files
(``*npi*``) hold triples ``[grammatical, intrusive, ungrammatical]``. The gzip streams are
written with ``mtime=0`` so that re-running the script gives byte-identical files. The
text files next to the pickles are copied verbatim and a ``CONVERSION.md`` with the
command, the input and output sha256 and the counts is written.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import pickle
import shutil
import sys
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "src" / "onlstm" / "data" / "syneval"
COPIED = ["SOURCE.md", "LICENSE.upstream.md", "sample_sents.txt"]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can build only builtin containers and scalars.

    Every class lookup (the GLOBAL / STACK_GLOBAL opcodes, which is how a pickle reaches
    code) raises, so a pickle that references any class or function is refused before
    anything is called.
    """

    def find_class(self, module, name):  # noqa: D401 - pickle API
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: this pickle references a class or function"
        )


def restricted_load(data: bytes):
    """Unpickle ``data`` with `RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def check_structure(name: str, obj) -> dict[str, list[list[str]]]:
    """Check that ``obj`` is ``{condition: [tuple of str, ...]}`` and return it as lists.

    Pairs for agreement / reflexives, triples for ``*npi*`` files; sentences are
    non-empty, single-spaced, lower-case ASCII.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: expected a dict, got {type(obj).__name__}")
    arity = 3 if "npi" in name else 2
    out: dict[str, list[list[str]]] = {}
    for condition, items in obj.items():
        if not isinstance(condition, str) or not isinstance(items, list):
            raise ValueError(f"{name}: bad condition entry {condition!r}")
        rows = []
        for item in items:
            if not isinstance(item, tuple) or len(item) != arity:
                raise ValueError(f"{name}/{condition}: expected {arity}-tuples, got {item!r}")
            for s in item:
                if not isinstance(s, str) or not s or s != " ".join(s.split()) or not s.isascii():
                    raise ValueError(f"{name}/{condition}: bad sentence {s!r}")
            rows.append(list(item))
        out[condition] = rows
    return out


def write_jsonl_gz(path: Path, data: dict[str, list[list[str]]]) -> None:
    """Write one JSON object per item, gzip with a fixed mtime (reproducible bytes)."""
    raw = io.BytesIO()
    for condition, items in data.items():
        for sentences in items:
            line = json.dumps({"condition": condition, "sentences": sentences}, ensure_ascii=True)
            raw.write(line.encode("ascii") + b"\n")
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        with gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=9, mtime=0) as gz:
            gz.write(raw.getvalue())
    tmp.replace(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="folder with templates/*.pickle and SOURCE.md")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)

    pickles = sorted((args.source / "templates").glob("*.pickle"))
    if not pickles:
        print(f"no templates/*.pickle under {args.source}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    total_items = total_sents = 0
    for p in pickles:
        name = p.stem
        data = check_structure(name, restricted_load(p.read_bytes()))
        dest = args.out / f"{name}.jsonl.gz"
        write_jsonl_gz(dest, data)
        n_items = sum(len(v) for v in data.values())
        n_sents = sum(len(s) for v in data.values() for s in v)
        total_items += n_items
        total_sents += n_sents
        conds = ", ".join(f"{c} ({len(v)})" for c, v in data.items())
        rows.append((name, conds, n_items, sha256(p), dest.name, sha256(dest), dest.stat().st_size))
        print(f"{name:32s} {n_items:6d} items -> {dest.name} ({dest.stat().st_size:,} bytes)")

    for fname in COPIED:
        src = args.source / fname
        if src.exists():
            shutil.copyfile(src, args.out / fname)

    lines = [
        "# How this folder was made",
        "",
        "The `*.jsonl.gz` files are a lossless conversion of the upstream pickles described in",
        "`SOURCE.md` (copied verbatim, with `LICENSE.upstream.md` and `sample_sents.txt`), made",
        "once with the developer tool `scripts/convert_syneval.py`:",
        "",
        "    python scripts/convert_syneval.py <copy of LM_syneval/EMNLP2018>",
        "",
        "The pickles were read with a restricted unpickler whose `find_class` refuses every",
        "class, so only dicts, lists, tuples and strings could be built. Each output file holds",
        "one JSON object per line, in the pickle's order:",
        '`{"condition": <dict key>, "sentences": [grammatical, ungrammatical]}`, or for the',
        "`*npi*` files `[grammatical, intrusive, ungrammatical]`. Sentences are unchanged",
        "(lower case, space-tokenised, no final punctuation). gzip with mtime 0 (reproducible).",
        "The package never reads a pickle.",
        "",
        "| construction | conditions (items) | items | pickle sha256 | output | output sha256 | bytes |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, conds, n, h_in, out_name, h_out, size in rows:
        lines.append(f"| {name} | {conds} | {n} | `{h_in[:16]}…` | {out_name} | `{h_out[:16]}…` | {size} |")
    lines += ["", f"Total: {total_items} items, {total_sents} sentences.", ""]
    (args.out / "CONVERSION.md").write_text("\n".join(lines))
    print(f"total {total_items} items, {total_sents} sentences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
