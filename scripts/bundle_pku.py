"""Bundle the PKU People's Daily (January 1998) corpus as language-modelling text.

Reads the tagged corpus (one paragraph per line, ``word/TAG`` tokens separated by two
spaces; see the shared SOURCE.md) and writes ``train.txt.gz``, ``valid.txt.gz`` and
``test.txt.gz`` (deterministic gzip, mtime 0) into the output folder:

* tags are stripped and the PKU segmentation is kept (words joined by one space);
* punctuation (tag ``w``) is dropped, as in Mikolov's PTB text and as the parsing protocol
  does before scoring (docs/spec.md §6), and each paragraph is cut into sentences after
  ``。``, ``！`` and ``？`` (one sentence per output line; empty sentences skipped);
* full-width ASCII digits and Latin letters (U+FF10-FF19, U+FF21-FF3A, U+FF41-FF5A) become
  their ASCII forms (NFKC on those characters only), so ``digits_to_N`` applies to them;
  every other character (full-width ``．`` or ``％`` included) is kept as it is;
* the split is by whole paragraphs in contiguous blocks: the paragraphs are numbered in file
  order and cut into blocks of ``BLOCK`` paragraphs; block ``b`` goes to valid when
  ``b % 20 == 18``, to test when ``b % 20 == 19``, to train otherwise (about 90/5/5, spread
  over the whole month, no paragraph or nearby paragraph of the same article split across
  files). No randomness.

Usage: python scripts/bundle_pku.py SRC/199801.txt.gz OUT_FOLDER
Prints the counts and sha256 of what it wrote (for SOURCE.md).
"""

from __future__ import annotations

import gzip
import hashlib
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Dict, List

BLOCK = 100
SENTENCE_END = {"。", "！", "？"}
_FULLWIDTH = {c: unicodedata.normalize("NFKC", chr(c)) for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
              for c in range(r[0], r[1] + 1)}


def ascii_fullwidth(word: str) -> str:
    """Full-width digits and Latin letters -> ASCII; all other characters unchanged."""
    return word.translate(_FULLWIDTH)


def paragraph_sentences(line: str, lineno: int) -> List[List[str]]:
    """One tagged paragraph -> its sentences (lists of words), punctuation dropped."""
    sentences: List[List[str]] = []
    current: List[str] = []
    for tok in line.split():
        word, sep, tag = tok.rpartition("/")
        if not sep or not word or not tag:
            raise ValueError(f"line {lineno}: token {tok!r} is not word/TAG")
        if tag == "w":
            if word in SENTENCE_END and current:
                sentences.append(current)
                current = []
            continue
        current.append(ascii_fullwidth(word))
    if current:
        sentences.append(current)
    return sentences


def split_of(paragraph_index: int) -> str:
    block = (paragraph_index // BLOCK) % 20
    return "valid" if block == 18 else "test" if block == 19 else "train"


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    src, out = Path(argv[0]), Path(argv[1])
    text = gzip.decompress(src.read_bytes()).decode("utf-8") if src.suffix == ".gz" else src.read_text("utf-8")
    lines: Dict[str, List[str]] = {"train": [], "valid": [], "test": []}
    paragraphs: Counter = Counter()
    paragraph_index = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        name = split_of(paragraph_index)
        paragraph_index += 1
        paragraphs[name] += 1
        lines[name].extend(" ".join(s) for s in paragraph_sentences(line, lineno))
    out.mkdir(parents=True, exist_ok=True)
    train_types = Counter(w for l in lines["train"] for w in l.split())
    for name, rows in lines.items():
        data = ("\n".join(rows) + "\n").encode("utf-8")
        packed = gzip.compress(data, compresslevel=9, mtime=0)
        (out / f"{name}.txt.gz").write_bytes(packed)
        words = [w for l in rows for w in l.split()]
        chars = sum(len(w) for w in words)
        print(f"{name}: {paragraphs[name]:,} paragraphs, {len(rows):,} sentences, {len(words):,} words, "
              f"{chars:,} characters, {len(set(words)):,} word types, {len(set(''.join(words))):,} character types; "
              f"sha256 {hashlib.sha256(data).hexdigest()} {name}.txt, "
              f"{hashlib.sha256(packed).hexdigest()} {name}.txt.gz ({len(packed):,} bytes)")
    total = sum(train_types.values())
    top = sum(c for _, c in train_types.most_common(9998))
    print(f"train: the 9,998 most frequent word types cover {100.0 * top / total:.2f}% of train words")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
