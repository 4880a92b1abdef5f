"""A small corpus folder cut from the bundled PTB, for fast training tests."""

import gzip

from onlstm.bundled import resource


def write_small_corpus(folder, lines=(300, 40, 40)):
    folder.mkdir(parents=True, exist_ok=True)
    root = resource("ptb")
    for split, n in zip(("train", "valid", "test"), lines):
        text = gzip.decompress((root / f"{split}.txt.gz").read_bytes()).decode().splitlines()[:n]
        (folder / f"{split}.txt").write_text("\n".join(text) + "\n")
    return folder
