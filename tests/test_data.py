import gzip
import hashlib
import json
import random
import re
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm.batching import BPTTSampler, batchify, get_batch, pad_batch, sample_seq_len, shard_columns
from onlstm.corpus import bundled_ptb, encode_file, load_corpus, read_tokens
from onlstm.text import EOS, UNK, TextOptions, Vocabulary, tokenize
from onlstm.errors import UserError


@pytest.fixture(scope="module")
def ptb():
    return load_corpus()


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def make_corpus(folder, train="a b c\nb c\nc\n", valid="a c\n", test="b d\n"):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        if text is not None:
            write(folder / f"{name}.txt", text)
    return folder


# ---------------------------------------------------------------------------------------
# Bundled PTB
# ---------------------------------------------------------------------------------------


def test_bundled_ptb_counts(ptb):
    assert ptb.train.dtype == torch.long and ptb.train.dim() == 1
    assert ptb.train.numel() == 929_589
    assert ptb.valid.numel() == 73_760
    assert ptb.test.numel() == 82_430
    assert len(ptb.vocab) == 10_000
    assert ptb.vocab.eos_id == 0 and ptb.vocab.unk_id == 1
    assert UNK in ptb.vocab and EOS in ptb.vocab and "<UNK>" not in ptb.vocab
    # one <eos> per line: 42,068 train sentences (SOURCE.md)
    assert int((ptb.train == ptb.vocab.eos_id).sum()) == 42_068
    # valid/test vocab is a subset of train's: every <unk> id comes from a literal <unk>
    for split in ("valid", "test"):
        tokens = read_tokens(bundled_ptb().joinpath(f"{split}.txt.gz"))
        assert int((getattr(ptb, split) == ptb.vocab.unk_id).sum()) == tokens.count(UNK)


def test_bundled_ptb_matches_source_md_sha256():
    folder = bundled_ptb()
    source = folder.joinpath("SOURCE.md").read_text(encoding="utf-8")
    expected = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\w+)\.txt$", source, re.M))
    assert set(expected) == {"train", "valid", "test"}
    for name, digest in expected.items():
        raw = gzip.decompress(folder.joinpath(f"{name}.txt.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest


def test_bundled_ptb_loads_fast():
    start = time.perf_counter()
    load_corpus()
    # ~0.3 s here; the target is < 2 s, the margin is for a busy 2-core machine
    assert time.perf_counter() - start < 4.0


def test_ptb_vocab_order(ptb):
    # by frequency: "the" is the most frequent word of PTB, then "N"
    assert ptb.vocab.itos[:4] == (EOS, UNK, "the", "N")


# ---------------------------------------------------------------------------------------
# Tokenisation and options
# ---------------------------------------------------------------------------------------


def test_tokenize_default_and_options():
    assert tokenize("  The cat  sat\t\r") == ["The", "cat", "sat"]
    assert tokenize("The cat", add_eos=True) == ["The", "cat", EOS]
    assert tokenize("   ", add_eos=True) == []
    opts = TextOptions(lower=True, digits_to_N=True)
    assert tokenize("In 1987 , 3.5 %", opts) == ["in", "N", ",", "N.N", "%"]


def test_tokenize_char_level_drops_spaces():
    opts = TextOptions(char_level=True)
    assert tokenize("我 爱 北京", opts) == ["我", "爱", "北", "京"]
    assert tokenize("我爱北京", opts, add_eos=True) == ["我", "爱", "北", "京", EOS]
    assert tokenize("ab 12", TextOptions(char_level=True, digits_to_N=True)) == ["a", "b", "N"]


def test_text_options_dict_round_trip():
    opts = TextOptions(char_level=True, lower=True)
    assert TextOptions.from_dict(json.loads(json.dumps(opts.to_dict()))) == opts
    assert TextOptions.from_dict(None) == TextOptions()
    with pytest.raises(UserError, match="unknown text option"):
        TextOptions.from_dict({"lowercase": True})
    with pytest.raises(UserError):
        TextOptions.from_dict({"lower": "yes"})


# ---------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------


def test_vocab_build_order_and_unk():
    tokens = "b a c a b a d <unk> <eos>".split()
    v = Vocabulary.build(tokens)
    # a:3, b:2, then c and d (1 each) in order of first occurrence
    assert v.itos == (EOS, UNK, "a", "b", "c", "d")
    assert v.encode(["a", "zzz", UNK, EOS]) == [2, 1, 1, 0]
    assert v.decode([2, 3, 0]) == ["a", "b", EOS]
    assert v.decode(torch.tensor([[2], [3]])) == ["a", "b"]
    with pytest.raises(IndexError):
        v.decode([6])
    assert "a" in v and "zzz" not in v and len(v) == 6
    assert v.index("zzz") == v.unk_id and v.token(2) == "a"


def test_vocab_min_count_and_max_size():
    tokens = "a a a b b c d d e".split()
    assert Vocabulary.build(tokens, min_count=2).itos == (EOS, UNK, "a", "b", "d")
    assert Vocabulary.build(tokens, max_size=4).itos == (EOS, UNK, "a", "b")
    assert Vocabulary.build(tokens, max_size=2).itos == (EOS, UNK)
    with pytest.raises(ValueError):
        Vocabulary.build(tokens, max_size=1)
    with pytest.raises(ValueError):
        Vocabulary.build(tokens, min_count=0)


def test_vocab_constructor_validates():
    assert Vocabulary(["x", "y"]).itos == (EOS, UNK, "x", "y")
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(["x", "x"])
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary(["a b"])
    with pytest.raises(ValueError):
        Vocabulary([""])


@pytest.mark.parametrize("name", ["vocab.json", "vocab.txt", "vocab"])
def test_vocab_save_load_round_trip(tmp_path, name):
    v = Vocabulary.build("the cat 猫 sat on the mat , the end".split())
    path = tmp_path / name
    v.save(path)
    w = Vocabulary.load(path)
    assert w == v and w.itos == v.itos
    assert not list(tmp_path.glob("*.tmp"))


def test_ptb_vocab_save_load(ptb, tmp_path):
    ptb.vocab.save(tmp_path / "vocab.json")
    assert Vocabulary.load(tmp_path / "vocab.json") == ptb.vocab


def test_vocab_load_plain_list_adds_specials(tmp_path):
    v = Vocabulary.load(write(tmp_path / "words.txt", "hello\r\nworld\n"))
    assert v.itos == (EOS, UNK, "hello", "world")


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"format": "onlstm-vocabulary", "version": 1, "tokens": [', "not valid JSON"),
        ('{"tokens": ["<eos>", "<unk>"]}', "not an onlstm vocabulary"),
        ('{"format": "onlstm-vocabulary", "version": 99, "tokens": []}', "version"),
        ('{"format": "onlstm-vocabulary", "version": 1, "tokens": ["<eos>", "a"]}', "missing special"),
        ('{"format": "onlstm-vocabulary", "version": 1, "tokens": ["<eos>", "<unk>", "a", "a"]}', "twice"),
        ('{"format": "onlstm-vocabulary", "version": 1, "tokens": "abc"}', "list of strings"),
        ("", "empty"),
        (b"a\nb\xff\n", "line 2"),
        ("a\nb c\n", "line 2"),
    ],
)
def test_vocab_load_broken(tmp_path, content, message):
    path = write(tmp_path / "myvocab.json" if str(content).startswith("{") else tmp_path / "myvocab.txt", content)
    with pytest.raises(UserError, match=message) as err:
        Vocabulary.load(path)
    assert path.name in str(err.value)


def test_vocab_load_missing_or_directory(tmp_path):
    with pytest.raises(UserError, match="nothere.json"):
        Vocabulary.load(tmp_path / "nothere.json")
    (tmp_path / "adir").mkdir()
    with pytest.raises(UserError, match="adir.*directory"):
        Vocabulary.load(tmp_path / "adir")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="abcxyz猫<>", min_size=1, max_size=4), max_size=30))
def test_vocab_encode_decode_property(words):
    v = Vocabulary.build(words)
    assert v.decode(v.encode(words)) == words
    assert len(v) == len(set(words) | {EOS, UNK})
    assert all(v.itos.index(w) == i for i, w in enumerate(v.itos))


# ---------------------------------------------------------------------------------------
# Corpus loading
# ---------------------------------------------------------------------------------------


def test_load_corpus_folder(tmp_path):
    c = load_corpus(make_corpus(tmp_path / "corp"))
    v = c.vocab
    assert v.itos == (EOS, UNK, "c", "b", "a")
    assert v.decode(c.train) == "a b c <eos> b c <eos> c <eos>".split()
    assert v.decode(c.valid) == "a c <eos>".split()
    assert v.decode(c.test) == ["b", UNK, EOS]  # "d" is not in train
    assert "train.txt" in c.sources["train"]
    assert "train" in c.summary()


def test_load_corpus_gz_bom_crlf_blank_lines(tmp_path):
    folder = tmp_path / "gz"
    folder.mkdir()
    (folder / "train.txt.gz").write_bytes(gzip.compress("\ufeffx y\r\n\r\n  \ny\r\n".encode("utf-8")))
    write(folder / "valid.txt", "x\n")
    write(folder / "test.txt", "y")  # no final newline
    c = load_corpus(folder)
    assert c.vocab.decode(c.train) == ["x", "y", EOS, "y", EOS]
    assert c.vocab.decode(c.test) == ["y", EOS]


def test_load_corpus_single_files_and_options(tmp_path):
    tr = write(tmp_path / "tr.txt", "我爱 北京\n北京 大\n")
    c = load_corpus(train=tr, options=TextOptions(char_level=True))
    assert c.valid is None and c.test is None
    assert c.vocab.decode(c.train) == list("我爱北京") + [EOS] + list("北京大") + [EOS]
    # explicit files override the folder's
    folder = make_corpus(tmp_path / "corp")
    other = write(tmp_path / "other.txt", "a a\n")
    c2 = load_corpus(folder, valid=other)
    assert c2.vocab.decode(c2.valid) == ["a", "a", EOS]


def test_load_corpus_optional_splits(tmp_path):
    folder = make_corpus(tmp_path / "corp", test=None)
    with pytest.raises(UserError, match="test"):
        load_corpus(folder)
    c = load_corpus(folder, required=("train", "valid"))
    assert c.test is None and c.valid is not None
    with pytest.raises(UserError, match="the corpus has no test split"):
        c.split("test")


def test_load_corpus_vocab_limits(tmp_path):
    c = load_corpus(make_corpus(tmp_path / "corp"), max_vocab=3)
    assert c.vocab.itos == (EOS, UNK, "c")
    c = load_corpus(make_corpus(tmp_path / "corp"), min_count=2)
    assert c.vocab.itos == (EOS, UNK, "c", "b")


def test_existing_vocab_and_encode_file(tmp_path, ptb):
    f = write(tmp_path / "eval.txt", "the cat sat on a zorglub\n")
    ids = encode_file(f, ptb.vocab)
    assert ids.dtype == torch.long
    assert ptb.vocab.decode(ids) == ["the", "cat", "sat", "on", "a", UNK, EOS]
    c = load_corpus(test=f, vocab=ptb.vocab)
    assert c.train is None and c.vocab is ptb.vocab and torch.equal(c.test, ids)
    with pytest.raises(UserError, match="no training file"):
        load_corpus(test=f)


def test_error_folder_missing(tmp_path):
    with pytest.raises(UserError, match="nosuchdir"):
        load_corpus(tmp_path / "nosuchdir")


def test_error_data_is_a_file(tmp_path):
    f = write(tmp_path / "justafile.txt", "a\n")
    with pytest.raises(UserError, match="justafile.txt.*expected a folder"):
        load_corpus(f)


def test_error_missing_split(tmp_path):
    folder = make_corpus(tmp_path / "corpusdir", valid=None)
    with pytest.raises(UserError, match=r"corpusdir.*valid") as err:
        load_corpus(folder)
    assert "train.txt" in str(err.value)  # lists what the folder holds


@pytest.mark.parametrize("content, message", [("", "is empty"), ("  \n\n \t\n", "no tokens")])
def test_error_empty_file(tmp_path, content, message):
    folder = make_corpus(tmp_path / "c", valid=content)
    with pytest.raises(UserError, match=message) as err:
        load_corpus(folder)
    assert "valid.txt" in str(err.value)


def test_error_empty_gz_file(tmp_path):
    folder = make_corpus(tmp_path / "c", test=None)
    (folder / "test.txt.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(UserError, match="test.txt.gz.*empty"):
        load_corpus(folder)


def test_error_non_utf8(tmp_path):
    bad = "first line\nsecond ok\ncaf".encode() + b"\xe9 au lait\nlast\n"
    folder = make_corpus(tmp_path / "c", train=bad)
    with pytest.raises(UserError) as err:
        load_corpus(folder)
    msg = str(err.value)
    assert "train.txt" in msg and "line 3" in msg and "offset 3 of the line" in msg and "0xe9" in msg
    with pytest.raises(UserError, match=r"line 3"):
        encode_file(folder / "train.txt", Vocabulary())


def test_error_non_utf8_in_gz(tmp_path):
    folder = make_corpus(tmp_path / "c", test=None)
    (folder / "test.txt.gz").write_bytes(gzip.compress(b"ok\n\xff\n"))
    with pytest.raises(UserError, match=r"test.txt.gz: line 2"):
        load_corpus(folder)


def test_error_broken_gzip(tmp_path):
    folder = make_corpus(tmp_path / "c", test=None)
    (folder / "test.txt.gz").write_bytes(gzip.compress(b"hello world\n" * 100)[:30])
    with pytest.raises(UserError, match="test.txt.gz.*gzip"):
        load_corpus(folder)


def test_error_split_is_a_directory(tmp_path):
    folder = make_corpus(tmp_path / "c", test=None)
    (folder / "test.txt").mkdir()
    with pytest.raises(UserError, match="test.txt.*directory"):
        load_corpus(folder)
    with pytest.raises(UserError, match="test.txt.*directory"):
        load_corpus(train=folder / "train.txt", test=folder / "test.txt")


def test_error_single_file_missing(tmp_path):
    with pytest.raises(UserError, match="missing_valid.txt"):
        load_corpus(train=make_corpus(tmp_path / "c") / "train.txt", valid=tmp_path / "missing_valid.txt")
    with pytest.raises(UserError, match="gone.txt"):
        encode_file(tmp_path / "gone.txt", Vocabulary())


# ---------------------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------------------


def test_batchify_and_get_batch():
    ids = torch.arange(103)
    src = batchify(ids, 4)
    assert src.shape == (25, 4) and src.is_contiguous()
    assert torch.equal(src[:, 1], torch.arange(25, 50))  # columns are contiguous stretches
    x, y = get_batch(src, 0, 10)
    assert x.shape == y.shape == (10, 4)
    assert torch.equal(y, x + 1)
    x, y = get_batch(src, 20, 10)  # cut at the end
    assert x.shape == (4, 4) and torch.equal(y[-1], src[-1])
    with pytest.raises(IndexError):
        get_batch(src, 24, 5)
    with pytest.raises(UserError, match="too short"):
        batchify(torch.arange(7), 4)


def test_batchify_ptb(ptb):
    src = batchify(ptb.train, 20)
    assert src.shape == (929_589 // 20, 20)


def test_sample_seq_len_distribution():
    rng = random.Random(0)
    lens = [sample_seq_len(rng, 70) for _ in range(4000)]
    assert min(lens) >= 5
    short = sum(1 for n in lens if n < 52) / len(lens)  # N(35,5) draws; N(70,5) is ~never < 52
    assert 0.03 < short < 0.07
    full = [n for n in lens if n >= 52]
    assert 68 < sum(full) / len(full) < 70.5  # int() truncates: mean ~69.5
    assert all(n >= 5 for n in (sample_seq_len(rng, 4, std=5) for _ in range(200)))


def windows_of(sampler, epochs):
    out = []
    for _ in range(epochs):
        out.extend((w.start, w.seq_len) for w in sampler)
    return out


def test_bptt_sampler_covers_data_and_is_deterministic():
    s = BPTTSampler(1000, 70, seed=3)
    wins = list(s)
    assert wins[0].start == 0
    for a, b in zip(wins, wins[1:]):
        assert b.start == a.start + a.seq_len
    assert wins[-1].start + wins[-1].seq_len == 999
    assert all(abs(w.lr_scale - w.seq_len / 70) < 1e-12 for w in wins)
    assert s.epoch == 1 and s.position == 0
    assert windows_of(BPTTSampler(1000, 70, seed=3), 3) == windows_of(BPTTSampler(1000, 70, seed=3), 3)
    assert windows_of(BPTTSampler(1000, 70, seed=3), 1) != windows_of(BPTTSampler(1000, 70, seed=4), 1)
    fixed = [w.seq_len for w in BPTTSampler(100, 30, variable=False)]
    assert fixed == [30, 30, 30, 9]


@pytest.mark.parametrize("stop_after", [1, 7, 14, 15, 40])
def test_bptt_sampler_resume(stop_after):
    reference = windows_of(BPTTSampler(1000, 70, seed=11), 4)
    s = BPTTSampler(1000, 70, seed=11)
    seen = []
    it = iter(s)
    while len(seen) < stop_after:
        try:
            w = next(it)
        except StopIteration:
            it = iter(s)
            continue
        seen.append((w.start, w.seq_len))
    state = json.loads(json.dumps(s.state_dict()))  # must survive JSON
    resumed = BPTTSampler(1000, 70, seed=11)
    resumed.load_state_dict(state)
    assert resumed.step == stop_after
    rest = []
    while len(seen) + len(rest) < len(reference):
        rest.extend((w.start, w.seq_len) for w in resumed)
    assert seen + rest == reference


def test_bptt_sampler_state_mismatch():
    state = BPTTSampler(1000, 70, seed=1).state_dict()
    with pytest.raises(UserError, match="bptt"):
        BPTTSampler(1000, 35, seed=1).load_state_dict(state)
    with pytest.raises(UserError, match="broken"):
        BPTTSampler(1000, 70, seed=1).load_state_dict({k: v for k, v in state.items() if k != "rng"})


def test_shard_columns():
    src = batchify(torch.arange(120), 6)
    shards = [shard_columns(src, r, 3) for r in range(3)]
    assert all(s.shape == (20, 2) and s.is_contiguous() for s in shards)
    assert torch.equal(torch.cat(shards, dim=1), src)
    assert torch.equal(shard_columns(src, 0, 1), src)
    with pytest.raises(UserError, match="divisible"):
        shard_columns(src, 0, 4)
    with pytest.raises(ValueError):
        shard_columns(src, 3, 3)


def test_pad_batch():
    padded, lengths = pad_batch([[5, 6, 7], [8], [], torch.tensor([1, 2])], pad_id=0)
    assert padded.dtype == torch.long and lengths.dtype == torch.long
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0], [1, 2, 0]]
    assert lengths.tolist() == [3, 1, 0, 2]
    padded, lengths = pad_batch([], pad_id=0)
    assert padded.shape == (0, 0) and lengths.shape == (0,)
