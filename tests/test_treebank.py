"""Reading Penn Treebank files and the docs/spec.md §3 preprocessing (onlstm.treebank)."""

import gzip
from pathlib import Path

import pytest

from onlstm import treebank as tb
from onlstm.errors import UserError

PIERRE = """\
( (S
    (NP-SBJ
      (NP (NNP Pierre) (NNP Vinken) )
      (, ,)
      (ADJP
        (NP (CD 61) (NNS years) )
        (JJ old) )
      (, ,) )
    (VP (MD will)
      (VP (VB join)
        (NP (DT the) (NN board) )
        (PP-CLR (IN as)
          (NP (DT a) (JJ nonexecutive) (NN director) ))
        (NP-TMP (NNP Nov.) (CD 29) )))
    (. .) ))
"""

TRACE = """\
( (S (NP-SBJ-1 (DT The) (NN price) )
  (VP (VBD was) (VP (VBN cut) (NP (-NONE- *-1) ) ))
  (. .) ))
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def one(text: str) -> tb.GoldSentence:
    (tree,) = list(tb.parse_trees(text, "t.mrg"))
    sentence = tb.preprocess(tree)
    assert sentence is not None
    return sentence


# --- preprocessing --------------------------------------------------------------------


def test_preprocess_pierre_vinken():
    s = one(PIERRE)
    assert s.words == (
        "pierre vinken N years old will join the board as a nonexecutive director nov. N".split()
    )
    assert s.tree == [
        [["pierre", "vinken"], [["N", "years"], "old"]],
        ["will", ["join", ["the", "board"], ["as", ["a", "nonexecutive", "director"]], ["nov.", "N"]]],
    ]
    assert sorted(s.labeled_spans) == sorted(
        [
            (0, 5, "NP"),  # NP-SBJ without its commas
            (0, 2, "NP"),
            (2, 5, "ADJP"),
            (2, 4, "NP"),
            (5, 15, "VP"),
            (6, 15, "VP"),
            (7, 9, "NP"),
            (9, 13, "PP"),  # PP-CLR
            (10, 13, "NP"),
            (13, 15, "NP"),  # NP-TMP
        ]
    )
    assert (0, 15) not in s.spans  # the whole sentence (S) is not a span


def test_none_elements_dropped_and_unary_chains_collapsed():
    s = one(TRACE)
    assert s.words == ["the", "price", "was", "cut"]
    # (VP cut (NP *-1)) loses its empty NP and becomes the single word "cut";
    # (VP was cut) remains, labeled VP.
    assert s.tree == [["the", "price"], ["was", "cut"]]
    assert sorted(s.labeled_spans) == [(0, 2, "NP"), (2, 4, "VP")]


def test_unary_chain_keeps_every_label_of_its_span():
    s = one("(TOP (S (NP (DT the) (NN dog)) (VP (VBD barked) (S (VP (VBG chasing) (NNS cats))))))")
    assert s.tree == [["the", "dog"], ["barked", ["chasing", "cats"]]]
    assert sorted(s.labeled_spans) == [(0, 2, "NP"), (2, 5, "VP"), (3, 5, "S"), (3, 5, "VP")]
    assert s.spans == {(0, 2), (2, 5), (3, 5)}


def test_word_normalisation_and_dropped_tags():
    s = one(
        "( (S (NP ($ $) (CD 1,500) (NNS Units)) (: --) (`` ``) (-LRB- -LRB-) "
        "(VP (VBD rose) (NP (CD 20s) (# #))) ('' '') (-RRB- -RRB-) (. .)) )"
    )
    assert s.words == ["N,N", "units", "rose", "Ns"]
    assert s.tree == [["N,N", "units"], ["rose", "Ns"]]
    assert tb.normalize_word("Nov.29th") == "nov.Nth"


def test_word_tags_are_the_prpn_list():
    assert len(tb.WORD_TAGS) == 36
    for tag in [",", ".", ":", "``", "''", "-LRB-", "-RRB-", "#", "$", "-NONE-"]:
        assert tag not in tb.WORD_TAGS
    for tag in ["PRP$", "WP$", "POS", "SYM", "LS", "FW", "UH", "TO"]:
        assert tag in tb.WORD_TAGS


@pytest.mark.parametrize(
    "label, stripped",
    [("NP-SBJ", "NP"), ("NP-SBJ-1", "NP"), ("NP=2", "NP"), ("PP-LOC-CLR", "PP"), ("S", "S"),
     ("-NONE-", "-NONE-"), ("-LRB-", "-LRB-"), ("WHNP-3", "WHNP")],
)
def test_strip_function_tags(label, stripped):
    assert tb.strip_function_tags(label) == stripped


def test_sentences_without_words_skipped_one_word_kept(tmp_path):
    path = write(
        tmp_path,
        "a.mrg",
        "( (S (, ,) (-NONE- *T*-1) (. .)) )\n( (FRAG (NP (NN Yes)) (. .)) )\n"
        "( (S (NP (PRP It)) (VP (VBD rained)) (. .)) )\n",
    )
    sentences = tb.load_treebank([path])
    assert [s.words for s in sentences] == [["yes"], ["it", "rained"]]
    assert sentences[0].tree == "yes" and sentences[0].labeled_spans == []
    assert sentences[1].spans == set()  # only the whole sentence: not counted
    assert sentences[1].source == f"{path}:3"


def test_max_length_counts_words_after_preprocessing(tmp_path):
    path = write(tmp_path, "a.mrg", PIERRE + TRACE)
    assert [len(s) for s in tb.load_treebank([path])] == [15, 4]
    assert [len(s) for s in tb.load_treebank([path], max_length=4)] == [4]
    with pytest.raises(UserError, match="at least 1"):
        tb.load_treebank([path], max_length=0)


# --- file formats ---------------------------------------------------------------------


def test_several_trees_multi_line_and_wrappers(tmp_path):
    text = PIERRE + "\n\n" + TRACE + "(TOP (S (NP (NN Dogs)) (VP (VBP bark))))\n"
    text += "(ROOT (S (NP (NNS Cats)) (VP (VBP purr))))\n"
    path = write(tmp_path, "multi.mrg", text)
    trees = tb.read_trees(path)
    assert [t.label for t in trees] == ["S", "S", "S", "S"]
    assert [t.line for t in trees] == [1, 18, 21, 22]
    sentences = tb.load_treebank([path])
    assert [s.words[0] for s in sentences] == ["pierre", "the", "dogs", "cats"]


def test_one_tree_per_line_and_gzip(tmp_path):
    lines = "".join(" ".join(t.split()) + "\n" for t in [PIERRE, TRACE])
    plain = write(tmp_path, "flat.mrg", lines)
    packed = tmp_path / "flat.mrg.gz"
    packed.write_bytes(gzip.compress(lines.encode()))
    assert [s.words for s in tb.load_treebank([plain])] == [s.words for s in tb.load_treebank([packed])]
    assert len(tb.load_treebank([plain])) == 2


def test_folders_and_globs(tmp_path):
    write(tmp_path, "wsj/00/wsj_0002.mrg", TRACE)
    write(tmp_path, "wsj/00/wsj_0001.mrg", PIERRE)
    write(tmp_path, "wsj/01/wsj_0100.mrg", TRACE)
    write(tmp_path, "wsj/notes.txt", "not a tree")
    folder = tb.expand_paths([tmp_path / "wsj"])
    assert [p.name for p in folder] == ["wsj_0001.mrg", "wsj_0002.mrg", "wsj_0100.mrg"]
    pattern = tb.expand_paths([str(tmp_path / "wsj" / "*" / "wsj_00*.mrg")])
    assert [p.name for p in pattern] == ["wsj_0001.mrg", "wsj_0002.mrg"]
    assert len(tb.load_treebank([str(tmp_path / "wsj")])) == 3
    with pytest.raises(UserError, match="no file matches"):
        tb.expand_paths([str(tmp_path / "*.nothing")])
    with pytest.raises(UserError, match="no such file"):
        tb.expand_paths([tmp_path / "missing.mrg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="folder has no"):
        tb.expand_paths([tmp_path / "empty"])


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("( (S (NP (DT the) (NN cat)) )\n(VP (VBD sat)))\n)\n", 3, "unexpected '\\)'"),
        ("( (S (NP (DT the)\n (NN cat))\n", 1, "never closed"),
        ("\n\nhello ( (S (NN x)) )", 3, "outside any bracket"),
        ("( (S\n (NP (DT the) dog)) )", 2, "directly inside"),
        ("( (S\n (NN a b)) )", 2, "directly inside"),
        ("( (S\n\n (NP )) )", 3, "empty constituent \\(NP\\)"),
        ("( (S ( cat)) )", 1, "empty constituent \\(cat\\)"),
        ("( () )", 1, "empty constituent \\(\\)"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.mrg", text)
    with pytest.raises(UserError, match=message) as info:
        tb.load_treebank([path])
    assert str(info.value).startswith(f"{path}:{line}:")


def test_file_without_trees_and_unreadable(tmp_path):
    with pytest.raises(UserError, match="no tree found"):
        tb.read_trees(write(tmp_path, "empty.mrg", "\n\n"))
    broken = tmp_path / "broken.mrg.gz"
    broken.write_bytes(gzip.compress(b"( (S (NN x)) )")[:-12])  # truncated
    with pytest.raises(UserError, match="broken gzip file"):
        tb.read_trees(broken)
    plain = tmp_path / "plain.mrg.gz"  # gzip is recognised by its magic bytes, not by the name
    plain.write_bytes(b"( (S (NN x) (NN y)) )")
    assert tb.load_treebank([plain])[0].words == ["x", "y"]


def test_latin1_file_is_read(tmp_path):
    path = tmp_path / "latin.mrg"
    path.write_bytes("( (S (NP (NNP Jos\xe9)) (VP (VBD came))) )".encode("latin-1"))
    assert tb.load_treebank([path])[0].words == ["jos\xe9", "came"]


# --- the bundled sample ---------------------------------------------------------------


def test_bundled_sample_is_inside_the_package():
    path = tb.bundled_sample_path()
    assert path.name == "wsj_sample.mrg.gz"
    assert "shared" not in path.parts
    assert (path.parent / "SOURCE.md").is_file() and (path.parent / "README.nltk").is_file()
    import onlstm

    assert Path(onlstm.__file__).parent in path.parents
