"""Targeted syntactic evaluation: bundled data, restricted unpickler, scoring."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pickle
import random
import re
from pathlib import Path

import pytest
import torch

from onlstm.errors import UserError
from onlstm.tasks import syneval as sv

REPO = Path(__file__).resolve().parents[2]


def _converter():
    spec = importlib.util.spec_from_file_location("convert_syneval", REPO / "scripts" / "convert_syneval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def all_items():
    return sv.load_items()


# --- bundled data ----------------------------------------------------------------------


def _source_counts() -> dict[str, dict[str, int]]:
    """The 'Counts' table of the bundled SOURCE.md: {file stem: {condition: n}}."""
    text = (sv.DATA_DIR / "SOURCE.md").read_text()
    out = {}
    for m in re.finditer(r"^\| (\w+)\.pickle \| (.+?) \| (\d+) \| ([23]) \|$", text, re.M):
        conds = dict((c, int(n)) for c, n in re.findall(r"(\w+) \((\d+)\)", m.group(2)))
        assert sum(conds.values()) == int(m.group(3))
        out[m.group(1)] = conds
    return out


def test_bundled_counts_match_source_md(all_items):
    expected = _source_counts()
    assert len(expected) == 22
    assert set(all_items) == set(expected) == set(sv.construction_names())
    for name, items in all_items.items():
        got: dict[str, int] = {}
        for it in items:
            got[it.condition] = got.get(it.condition, 0) + 1
        assert got == expected[name], name
    assert sum(map(len, all_items.values())) == 163124
    assert sum(len(it.sentences) for its in all_items.values() for it in its) == 337072


def test_bundled_folder_is_pickle_free_and_documented():
    files = {p.name for p in sv.DATA_DIR.iterdir()}
    assert not any(f.endswith((".pickle", ".pkl", ".pt")) for f in files)
    assert {"SOURCE.md", "LICENSE.upstream.md", "CONVERSION.md"} <= files


def test_items_shape(all_items):
    for name, items in all_items.items():
        arity = sv.BY_NAME[name].arity
        assert arity == (3 if "npi" in name else 2)
        for it in items[:50]:
            assert len(it.sentences) == arity
            assert all(s == s.lower() and s.split() for s in it.sentences)
            assert it.sentences[0] != it.sentences[-1]


def test_groups_follow_paper_table():
    by_group = {g: {(c.phenomenon, c.row) for c in sv.CONSTRUCTIONS if c.group == g} for g in (sv.SHORT, sv.LONG)}
    assert ("agreement", "Simple") in by_group[sv.SHORT]
    assert ("agreement", "In an object relative clause") in by_group[sv.SHORT]
    assert ("agreement", "Across a prepositional phrase") in by_group[sv.LONG]
    assert ("agreement", "Long VP coordination") in by_group[sv.LONG]
    assert ("reflexive", "Across a relative clause") in by_group[sv.LONG]
    assert ("npi", "Simple") in by_group[sv.SHORT] and ("npi", "Across a relative clause") in by_group[sv.LONG]
    assert len(by_group[sv.SHORT]) == 8 and len(by_group[sv.LONG]) == 7
    assert all(("within" in c.name) == ("In an object" in c.row) for c in sv.CONSTRUCTIONS)


# --- conversion ------------------------------------------------------------------------


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (str(self.target),))


def test_restricted_unpickler_refuses_classes(tmp_path):
    conv = _converter()
    ok = {"a": [("x y", "x z")], "b": [1, 2.5, None, True]}
    assert conv.restricted_load(pickle.dumps(ok, protocol=0)) == ok
    assert conv.restricted_load(pickle.dumps(ok, protocol=4)) == ok
    target = tmp_path / "pwned"
    for proto in (0, 2, 4):
        with pytest.raises(pickle.UnpicklingError, match="refusing"):
            conv.restricted_load(pickle.dumps({"a": _Evil(target)}, protocol=proto))
    assert not target.exists()
    from collections import OrderedDict

    with pytest.raises(pickle.UnpicklingError):
        conv.restricted_load(pickle.dumps(OrderedDict(a=1)))


def test_conversion_round_trip(tmp_path):
    conv = _converter()
    src = tmp_path / "src"
    (src / "templates").mkdir(parents=True)
    pairs = {"sing_MS_MV": [("the author laughs", "the author laugh")] * 2,
             "plur_MS_MV": [("the authors laugh", "the authors laughs")]}
    npi = {"past": [("no authors have ever been popular", "the authors have ever been popular",
                     "most authors have ever been popular")]}
    (src / "templates" / "simple_agrmt.pickle").write_bytes(pickle.dumps(pairs, protocol=0))
    (src / "templates" / "simple_npi_anim.pickle").write_bytes(pickle.dumps(npi, protocol=3))
    (src / "SOURCE.md").write_text("# source\n")
    out = tmp_path / "out"
    assert conv.main([str(src), "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert conv.main([str(src), "--out", str(out)]) == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # reproducible bytes
    assert "SOURCE.md" in first and "CONVERSION.md" in first
    got = sv.load_items(["simple_agrmt", "simple_npi_anim"], data_dir=out)
    assert [(i.condition, i.sentences) for i in got["simple_agrmt"]] == [
        (c, s) for c, v in pairs.items() for s in v]
    assert [(i.condition, i.sentences) for i in got["simple_npi_anim"]] == [("past", npi["past"][0])]
    # a wrong arity is rejected at conversion time
    (src / "templates" / "vp_coord.pickle").write_bytes(pickle.dumps({"c": [("a b",)]}))
    with pytest.raises(ValueError, match="2-tuples"):
        conv.main([str(src), "--out", str(out)])


# --- scoring ---------------------------------------------------------------------------


class BigramLM:
    """A tiny fake LM: random bigram log-probabilities, batched with padding.

    ``__call__`` is a scorer: total log p of each sentence incl. ``<eos>``, starting from
    ``<eos>`` (fresh state per sentence). ``direct`` scores one sentence with a loop.
    """

    def __init__(self, words, seed=0):
        self.itos = ["<pad>", "<eos>", "<unk>"] + sorted(set(words))
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        g = torch.Generator().manual_seed(seed)
        self.logp = torch.log_softmax(torch.randn(len(self.itos), len(self.itos), generator=g) * 3, dim=-1)
        self.calls = []

    def ids(self, words):
        return [self.stoi.get(w, 2) for w in words]

    def __call__(self, batch):
        self.calls.append(len(batch))
        lengths = torch.tensor([len(s) + 1 for s in batch])
        tgt = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)  # [B, T]
        for b, s in enumerate(batch):
            tgt[b, : len(s) + 1] = torch.tensor(self.ids(s) + [1])
        prev = torch.cat([torch.ones(len(batch), 1, dtype=torch.long), tgt[:, :-1]], dim=1)  # [B, T]
        lp = self.logp[prev, tgt]  # [B, T]
        mask = torch.arange(tgt.shape[1])[None, :] < lengths[:, None]
        return (lp * mask).sum(1).tolist()

    def direct(self, sentence):
        prev, total = 1, 0.0
        for i in self.ids(sentence.split()) + [1]:
            total += float(self.logp[prev, i])
            prev = i
        return total


def test_scoring_agrees_with_direct_computation(all_items):
    items = {k: sv.subsample(v, 40) for k, v in all_items.items()}
    words = {w for its in items.values() for it in its for s in it.sentences for w in s.split()}
    lm = BigramLM(words)
    res = sv.evaluate(lm, items=items, batch_size=37)
    assert max(lm.calls) <= 37
    for c in sv.CONSTRUCTIONS:
        rec = res["constructions"][c.name]
        assert rec["items"] == rec["items_scored"] == 40
        for label, a, b in c.comparisons:
            ok = sum(lm.direct(it.sentences[a]) > lm.direct(it.sentences[b]) for it in items[c.name])
            assert rec["correct"][label] == ok, (c.name, label)
            assert math.isclose(rec["accuracy"][label], ok / 40)
    # rows pool anim + inanim; groups average the grammatical>ungrammatical rows
    row = next(r for r in res["rows"] if r["row"] == "Across a prepositional phrase")
    assert row["constructions"] == ["prep_anim", "prep_inanim"] and row["items"] == 80
    c = res["constructions"]
    assert row["correct"] == c["prep_anim"]["correct"][sv.GRAM_UNGRAM] + c["prep_inanim"]["correct"][sv.GRAM_UNGRAM]
    main_long = [r["accuracy"] for r in res["rows"] if r["group"] == sv.LONG and r["comparison"] == sv.GRAM_UNGRAM]
    assert math.isclose(res["groups"][sv.LONG]["macro_accuracy"], sum(main_long) / len(main_long))
    # batching does not change anything
    assert sv.evaluate(lm, items=items, batch_size=1000)["rows"] == res["rows"]
    json.dumps(res)
    table = sv.format_table({"onlstm": res, "lstm": res}, per_construction=True)
    assert "Across a prepositional phrase" in table and "onlstm" in table and "lstm" in table
    assert "Long-term dependency" in table and "npi_across_inanim" in table


def test_npi_triples_compared_separately():
    its = [
        sv.Item("simple_npi_anim", "past", ("g0", "i0", "u0")),
        sv.Item("simple_npi_anim", "past", ("g1", "i1", "u1")),
        sv.Item("simple_npi_anim", "future", ("g2", "i2", "u2")),
    ]
    table = {"g0": -1, "i0": -2, "u0": -3,  # g > i > u
             "g1": -5, "i1": -2, "u1": -3,  # i > u > g
             "g2": -1, "i2": -3, "u2": -2}  # g > u > i
    scorer = lambda batch: [table[" ".join(s)] for s in batch]  # noqa: E731
    res = sv.evaluate(scorer, constructions=["simple_npi_anim"], items={"simple_npi_anim": its})
    acc = res["constructions"]["simple_npi_anim"]["correct"]
    assert acc == {sv.GRAM_INTR: 2, sv.GRAM_UNGRAM: 2, sv.INTR_UNGRAM: 2}
    assert [r["comparison"] for r in res["rows"]] == [sv.GRAM_INTR, sv.GRAM_UNGRAM, sv.INTR_UNGRAM]
    assert res["groups"][sv.SHORT]["micro_accuracy"] == pytest.approx(2 / 3)


def test_skip_unk_and_oov_statistics():
    its = {
        "simple_agrmt": [
            sv.Item("simple_agrmt", "sing_MS_MV", ("the author laughs", "the author laugh")),
            sv.Item("simple_agrmt", "sing_MS_MV", ("the pilot laughs", "the pilot laugh")),
            sv.Item("simple_agrmt", "plur_MS_MV", ("the authors swim", "the authors swims")),
            sv.Item("simple_agrmt", "sing_MS_MV", ("the author smiles", "the author smile")),
        ]
    }
    vocab = {"the", "author", "authors", "laughs", "laugh", "swim", "<unk>"}
    seen = []

    def scorer(batch):
        seen.extend(tuple(s) for s in batch)
        return [-len(" ".join(s)) for s in batch]  # the shorter sentence wins

    res = sv.evaluate(scorer, items=its, constructions=["simple_agrmt"], vocab=vocab)
    rec = res["constructions"]["simple_agrmt"]
    assert (rec["items"], rec["items_scored"], rec["unk_items"], rec["unk_sentences"]) == (4, 4, 3, 5)
    assert rec["identical_after_unk"] == 1  # smiles/smile both <unk>
    assert ("the", "<unk>", "laughs") in seen and not any("pilot" in s for s in seen)
    assert res["vocabulary"]["oov_types"] == ["pilot", "smile", "smiles", "swims"]
    assert res["vocabulary"]["unk_sentences"] == 5 and res["vocabulary"]["sentences"] == 8
    assert rec["correct"][sv.GRAM_UNGRAM] == 1  # only swim < <unk>; the tie counts wrong
    skipped = sv.evaluate(scorer, items=its, constructions=["simple_agrmt"], vocab=vocab, skip_unk=True)
    srec = skipped["constructions"]["simple_agrmt"]
    assert (srec["items"], srec["items_scored"], srec["correct"][sv.GRAM_UNGRAM]) == (4, 1, 0)
    assert "skipped" in sv.format_table(skipped)
    with pytest.raises(UserError):
        sv.evaluate(scorer, items=its, constructions=["simple_agrmt"], skip_unk=True)
    with pytest.raises(UserError):
        sv.evaluate(scorer, constructions=["no_such_construction"])


def test_suffix_and_limit():
    its = {"vp_coord": [sv.Item("vp_coord", "c", (f"a b {i}", f"a c {i}")) for i in range(10)]}
    seen = []

    def scorer(batch):
        seen.extend(batch)
        return [random.random() for _ in batch]

    res = sv.evaluate(scorer, items=its, constructions=["vp_coord"], suffix=(".",), limit=4)
    assert res["constructions"]["vp_coord"]["items_scored"] == 4
    assert len(seen) == 8 and all(s[-1] == "." for s in seen)
