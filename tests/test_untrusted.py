"""Model folders and data files are untrusted input (issue 12): every bad one is a UserError of
one printable line naming the file (and the field or line), found before anything big is
allocated; what real files contain (BOM, CRLF, trailing spaces, gzip) is accepted.

Probes are tables; the property tests (hypothesis) feed random bytes, random bracket strings
and random JSON to the readers and the model loader and accept nothing but a UserError."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from onlstm import sinica
from onlstm import treebank as tb
from onlstm.errors import UserError
from onlstm.fileio import excerpt
from onlstm.lm import LanguageModel, LMConfig
from onlstm.lm_config import (MAX_PARAMETERS, ConfigFieldError, check_weights_header, estimate_parameters,
                              weight_shapes)
from lm_helpers import write_tiny_model

WORDS = "the cat sat on a mat".split()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_printable_line(err: BaseException) -> str:
    """The message, asserted to be one line without any raw control character."""
    message = str(err)
    assert message.isprintable(), ascii(message)
    return message


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "m", WORDS)


def edited(model_dir: Path, tmp: Path, config=None, files=None) -> Path:
    """A copy of the model folder; ``config(dict)`` edits config.json, ``files`` replaces files."""
    dst = tmp / "edited"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(model_dir, dst)
    if config is not None:
        raw = json.loads((dst / "config.json").read_text())
        config(raw)
        (dst / "config.json").write_text(json.dumps(raw))
    for name, data in (files or {}).items():
        (dst / name).write_bytes(data)
    return dst


# --------------------------------------------------------------------------------------
# LMConfig: every field checked, for library callers too
# --------------------------------------------------------------------------------------

GOOD = dict(vocab_size=10, emb_size=8, hidden_sizes=[16, 8], chunk_size=4)


@pytest.mark.parametrize("key, value, field", [
    ("vocab_size", 0, "vocab_size"), ("vocab_size", "10", "vocab_size"), ("vocab_size", 10.0, "vocab_size"),
    ("vocab_size", True, "vocab_size"), ("vocab_size", 10**8, "vocab_size"),
    ("emb_size", -8, "emb_size"), ("emb_size", None, "emb_size"),
    ("hidden_sizes", "16 8", "hidden_sizes"), ("hidden_sizes", [], "hidden_sizes"),
    ("hidden_sizes", [16, "8"], "hidden_sizes[1]"), ("hidden_sizes", [0, 8], "hidden_sizes[0]"),
    ("hidden_sizes", [10**9, 8], "hidden_sizes[0]"), ("hidden_sizes", [8] * 65, "hidden_sizes"),
    ("hidden_sizes", {"a": 8}, "hidden_sizes"), ("hidden_sizes", [16, 12], "emb_size"),
    ("chunk_size", 0, "chunk_size"), ("chunk_size", 3, "chunk_size"), ("chunk_size", 4.0, "chunk_size"),
    ("cell", "gru", "cell"), ("cell", ["onlstm"], "cell"), ("master_input", "Paper", "master_input"),
    ("dropout", 1.0, "dropout"), ("dropouth", -0.1, "dropouth"), ("dropouti", float("nan"), "dropouti"),
    ("dropoute", "0.1", "dropoute"), ("wdrop", False, "wdrop"), ("wdrop", float("inf"), "wdrop"),
    ("dropconnect_convention", "scaled", "dropconnect_convention"), ("text", "lower", "text"),
    ("text", {"lower": 1}, "text"), ("text", {"tokenizer": "spacy"}, "text"), ("text", {"x": True}, "text"),
    ("parse_layer", 0, "parse_layer"), ("parse_layer", 3, "parse_layer"), ("parse_layer", True, "parse_layer"),
    ("parse_layer", "1", "parse_layer"),
])
def test_bad_config_value_is_a_value_error_naming_the_field(key, value, field):
    with pytest.raises(ConfigFieldError) as info:
        LMConfig(**{**GOOD, key: value})
    assert isinstance(info.value, ValueError) and isinstance(info.value, UserError)
    assert info.value.field == field and str(info.value).startswith(field)
    one_printable_line(info.value)


def test_config_numbers_are_normalised_and_the_parameter_bound_holds():
    cfg = LMConfig(vocab_size=np.int64(10), emb_size=8, hidden_sizes=(16, np.int32(8)), chunk_size=4, dropout=0,
                   parse_layer=np.int64(2))
    assert type(cfg.vocab_size) is int and cfg.hidden_sizes == [16, 8] and type(cfg.hidden_sizes[1]) is int
    assert type(cfg.dropout) is float and type(cfg.parse_layer) is int
    json.dumps(cfg.__dict__)  # plain JSON types
    with pytest.raises(ConfigFieldError, match="parameters"):
        LMConfig(vocab_size=1_000_000, emb_size=4000, hidden_sizes=[4000], chunk_size=4)
    assert estimate_parameters(LMConfig(vocab_size=1_000_000, emb_size=1000, hidden_sizes=[1000],
                                        chunk_size=10)) < MAX_PARAMETERS


@pytest.mark.parametrize("cell", ["onlstm", "lstm"])
def test_weight_shapes_and_parameter_count_are_those_of_the_built_model(cell):
    cfg = LMConfig(vocab_size=11, emb_size=6, hidden_sizes=[20, 12, 6], chunk_size=2, cell=cell)
    model = LanguageModel(cfg)
    built = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "decoder.weight"}
    assert {k: shape for k, (shape, _) in weight_shapes(cfg).items()} == built
    assert estimate_parameters(cfg) == model.num_parameters()


# --------------------------------------------------------------------------------------
# Model folders: config.json, vocab.json and the safetensors header, before building
# --------------------------------------------------------------------------------------

def _set(key, value):
    return lambda raw: raw["model"].__setitem__(key, value)


@pytest.mark.parametrize("edit, culprit", [
    (_set("hidden_sizes", [10**9, 8]), "config.json: model.hidden_sizes[0] must be an integer"),
    (_set("hidden_sizes", "16 8"), "config.json: model.hidden_sizes must be a list of 1 to 64 positive integers"),
    (_set("chunk_size", 0), "config.json: model.chunk_size"),
    (_set("emb_size", -8), "config.json: model.emb_size"),
    (_set("dropout", 2.0), "config.json: model.dropout must be a probability in [0, 1), got 2.0"),
    (_set("cell", "gru"), "config.json: model.cell"),
    (_set("unknown", 1), "config.json: unknown model config key(s) ['unknown']"),
    (lambda raw: raw["model"].pop("vocab_size"), "config.json: model.vocab_size is missing"),
    (lambda raw: raw.pop("model"), 'config.json: has no "model" section'),
    (lambda raw: raw.__setitem__("model", [1, 2]), "config.json: the model config must be an object"),
    (lambda raw: raw.__setitem__("version", True), "config.json: config version True"),
    (lambda raw: raw.__setitem__("format", "onlstm-logic\x1b[2J"), "got 'onlstm-logic\\x1b[2J'"),
    (lambda raw: raw.__setitem__("training", 5), 'config.json: "training" must be an object'),
    (_set("vocab_size", 99), "vocab.json: holds 8 tokens but"),
    (_set("hidden_sizes", [4000, 8]), "model.safetensors: rnns.0.weight_ih_l0 has shape (72, 8), config.json "
                                      "implies (18000, 8) (from model.hidden_sizes, chunk_size, emb_size)"),
    (_set("hidden_sizes", [16, 8, 8]), "model.safetensors: weights do not match config.json"),
    (_set("cell", "lstm"), "model.safetensors: weights do not match config.json (model.cell 'lstm'"),
])
def test_bad_model_folder_names_file_and_field_before_building(model_dir, tmp_path, monkeypatch, edit, culprit):
    folder = edited(model_dir, tmp_path, config=edit)

    def never_built(*args, **kwargs):
        raise AssertionError("the model was built before the folder was checked")

    monkeypatch.setattr(LanguageModel, "__init__", never_built)
    with pytest.raises(UserError) as info:
        LanguageModel.from_pretrained(folder)
    assert culprit in one_printable_line(info.value)


@pytest.mark.parametrize("name, data, culprit", [
    ("config.json", b'{"format": "onlstm-language-model", "version": 1,\n "model": {"x": "\xe9"}}',
     "config.json: line 2: not valid UTF-8"),
    ("config.json", b"[" * 100_000, "config.json: not valid JSON"),
    ("config.json", b'{"version": ' + b"9" * 5000 + b"}", "config.json: not valid JSON"),
    ("config.json", b"\x00\x01binary", "config.json: line 1: binary data"),
    ("vocab.json", b"[" * 100_000, "vocab.json: broken vocabulary file, not valid JSON"),
    ("vocab.json", json.dumps({"format": "onlstm-vocabulary", "version": 1,
                               "tokens": ["<eos>", "<unk>", "\udc80"] + WORDS[1:]}).encode(), "lone surrogate"),
    ("vocab.json", json.dumps({"format": "onlstm-vocabulary", "version": 1,
                               "tokens": ["<eos>"] + WORDS + ["dog"]}).encode(), "missing special token(s) ['<unk>']"),
    ("vocab.json", "\ufeff{\r\n}".encode(), "vocab.json: not an onlstm vocabulary file"),
    ("model.safetensors", b"garbage", "model.safetensors: cannot read weights"),
    ("model.safetensors", b"\xff" * 8 + b"{}", "model.safetensors: cannot read weights"),
])
def test_bad_model_files_name_the_file(model_dir, tmp_path, name, data, culprit):
    folder = edited(model_dir, tmp_path, files={name: data})
    with pytest.raises(UserError) as info:
        LanguageModel.from_pretrained(folder)
    assert culprit in one_printable_line(info.value)


def _rewrite_weights(folder: Path, change) -> None:
    state = load_file(str(folder / "model.safetensors"))
    change(state)
    save_file(state, str(folder / "model.safetensors"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_floating_weights_of_any_width_load_as_float32(model_dir, tmp_path, dtype):
    folder = edited(model_dir, tmp_path)
    _rewrite_weights(folder, lambda s: s.update({k: v.to(dtype) for k, v in s.items()}))
    model = LanguageModel.from_pretrained(folder)
    reference = LanguageModel.from_pretrained(model_dir)
    assert model.encoder.weight.dtype == torch.float32
    assert torch.allclose(model.encoder.weight, reference.encoder.weight.to(dtype).float())


@pytest.mark.parametrize("change, culprit", [
    (lambda s: s.__setitem__("decoder.bias", s["decoder.bias"].to(torch.int32)), "decoder.bias has dtype I32"),
    (lambda s: s.__setitem__("rnns.1.bias_hh_l0", s["rnns.1.bias_hh_l0"] > 0), "rnns.1.bias_hh_l0 has dtype BOOL"),
    (lambda s: s.pop("rnns.1.bias_hh_l0"), "1 tensor(s) missing ['rnns.1.bias_hh_l0']"),
    (lambda s: s.__setitem__("extra", torch.zeros(2)), "1 unexpected ['extra']"),
    (lambda s: s.__setitem__("encoder.weight", s["encoder.weight"][:, :4].contiguous()),
     "encoder.weight has shape (8, 4), config.json implies (8, 8) (from model.vocab_size, emb_size)"),
])
def test_weights_header_checked_names_shapes_dtypes(model_dir, tmp_path, change, culprit):
    folder = edited(model_dir, tmp_path)
    _rewrite_weights(folder, change)
    with pytest.raises(UserError) as info:
        LanguageModel.from_pretrained(folder)
    message = one_printable_line(info.value)
    assert culprit in message and f"{folder / 'model.safetensors'}: " in message


def test_a_saved_tied_decoder_weight_is_accepted(model_dir, tmp_path):
    folder = edited(model_dir, tmp_path)
    _rewrite_weights(folder, lambda s: s.__setitem__("decoder.weight", s["encoder.weight"].clone()))
    model = LanguageModel.from_pretrained(folder)
    assert model.decoder.weight is model.encoder.weight
    check_weights_header(folder / "model.safetensors", model.config)


# --------------------------------------------------------------------------------------
# Property tests: random JSON / bytes into a model folder
# --------------------------------------------------------------------------------------

_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
            | st.text(max_size=12) | st.sampled_from([0, 1, 4, 8, 16, 10**9, "onlstm", "lstm", "paper", "16 8"]))
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_MODEL_KEYS = ["vocab_size", "emb_size", "hidden_sizes", "cell", "chunk_size", "master_input", "dropout",
               "dropouth", "dropouti", "dropoute", "wdrop", "dropconnect_convention", "text", "parse_layer"]


def _load_only_user_error(folder: Path) -> None:
    try:
        LanguageModel.from_pretrained(folder)
    except UserError as err:
        one_printable_line(err)


@SETTINGS
@given(raw=json_values)
def test_random_json_as_config_json_raises_only_user_error(model_dir, tmp_path_factory, raw):
    folder = edited(model_dir, tmp_path_factory.getbasetemp(), files={"config.json": json.dumps(raw).encode()})
    _load_only_user_error(folder)


@SETTINGS
@given(changes=st.dictionaries(st.sampled_from(_MODEL_KEYS + ["other"]), json_values, max_size=4),
       dropped=st.sets(st.sampled_from(_MODEL_KEYS), max_size=2))
def test_random_model_fields_raise_only_user_error(model_dir, tmp_path_factory, changes, dropped):
    def edit(raw):
        for key in dropped:
            raw["model"].pop(key, None)
        raw["model"].update(changes)

    _load_only_user_error(edited(model_dir, tmp_path_factory.getbasetemp(), config=edit))


@SETTINGS
@given(data=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_bytes_as_vocab_json_raise_only_user_error(model_dir, tmp_path_factory, data):
    _load_only_user_error(edited(model_dir, tmp_path_factory.getbasetemp(), files={"vocab.json": data}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_as_weights_raise_only_user_error(model_dir, tmp_path_factory, data):
    _load_only_user_error(edited(model_dir, tmp_path_factory.getbasetemp(), files={"model.safetensors": data}))


# --------------------------------------------------------------------------------------
# Treebank readers: what real files contain, and nothing else
# --------------------------------------------------------------------------------------

TREE = "( (S (NP (DT the) (NN cat)) (VP (VBD sat))) )"
ICG = "#1:1.[1] S(agent:NP(Head:Nab:我)|Head:VC1:住在)#。(PERIODCATEGORY)"


@pytest.mark.parametrize("text, fmt, count", [
    ("\ufeff" + TREE + "\n", "ptb", 1), (TREE.replace(" ", "\r\n ") + "\r\n", "ptb", 1),
    (TREE + "   \t\n\n  ", "ptb", 1),
    ("\ufeff" + TREE + "\n\ufeff" + TREE, "ptb", 2),  # two files that start with a BOM, concatenated
    ("\ufeff" + ICG + "\r\n" + ICG + "  \r\n\ufeff" + ICG + "\n", "sinica", 3),
])
@pytest.mark.parametrize("compress", [False, True])
def test_bom_crlf_trailing_space_and_gzip_are_read(tmp_path, text, fmt, count, compress):
    data = text.encode("utf-8")
    path = tmp_path / "trees.txt"  # a neutral name: gzip and the format are found from the content
    path.write_bytes(gzip.compress(data) if compress else data)
    sentences = tb.load_treebank([path])
    expected = ["the", "cat", "sat"] if fmt == "ptb" else ["我", "住在"]
    assert [s.words for s in sentences] == [expected] * count


@pytest.mark.parametrize("name, data, culprit", [
    ("b.mrg", TREE.encode() + b"\n(\x00\x01\x02", "b.mrg: line 2: binary data (a NUL byte"),
    ("b.mrg", "( (S (NN x)) )\n\n  \x1b[31mred".encode(), "b.mrg: line 3: control character '\\x1b' at column 3"),
    ("b.mrg", "( (S\n (NN \x07x)) )".encode("latin-1"), "b.mrg: line 2: control character '\\x07' at column 6"),
    ("b.mrg", "( (S (NN x)) )\n\n\x9b31mred".encode("latin-1"), "b.mrg:3: text outside any bracket: '\\x9b31mred'"),
    ("b.mrg", "( (\u202eS (NN x) y) )".encode(), "got ('\\u202eS' ...)"),
    ("b.mrg", b"( (S (NN " + b"x" * 10_000, "'(' opened here is never closed"),
    ("b.mrg", ("\n" + "z" * 10_000).encode(), "b.mrg:2: text outside any bracket: 'zzzz"),
    ("b.mrg", "( (S (NN x)) )".encode("utf-16"), "b.mrg: is UTF-16 text"),
    ("b.icg", ICG.encode() + b"\n" + ICG.encode("big5", errors="replace"), "b.icg: line 2: not valid UTF-8"),
    ("c.txt", ICG.encode() + b"\n" + "S(Head:Nab:\xe9)#".encode("latin-1"), "c.txt: line 2: not valid UTF-8"),
    ("b.icg", (ICG + "\n S(Head:Nab:\x1b[2J我)# \n").encode(), "b.icg: line 2: control character '\\x1b'"),
    ("b.icg", (ICG + "\nS(Head:Nab:我|x)#\n").encode(), "b.icg:2: expected 'role:'"),
])
def test_bad_treebank_files_name_file_and_line_and_escape_the_bytes(tmp_path, name, data, culprit):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UserError) as info:
        tb.load_treebank([path])
    message = one_printable_line(info.value)
    assert culprit in message and len(message) < 400


def test_folder_and_device_are_refused_by_name(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        tb.read_trees(tmp_path)
    if Path("/dev/zero").exists():
        with pytest.raises(UserError, match="/dev/zero: is a device"):
            tb.load_treebank(["/dev/zero"])


def test_excerpt_escapes_and_cuts():
    assert excerpt("a\x1bb") == "'a\\x1bb'"
    assert excerpt("猫") == "'猫'"
    assert excerpt("x" * 1000, 10) == "'xxxxxxxxxx'... (1,000 characters)"
    assert excerpt(list(range(1000)), 20).endswith("...") and len(excerpt(list(range(1000)), 20)) == 23


_BRACKETS = st.lists(st.sampled_from(list("()  \n\r\t\ufeff\x1bxé") + ["S", "NP", "NN", "DT", "-NONE-", "TOP"]),
                     max_size=40).map("".join)


@SETTINGS
@given(text=_BRACKETS)
def test_random_bracket_strings_raise_only_user_error(text):
    try:
        for tree in tb.parse_trees(text, "t.mrg"):
            tb.preprocess(tree, "t.mrg")
    except UserError as err:
        assert one_printable_line(err).startswith("t.mrg:")


@SETTINGS
@given(data=st.binary(max_size=200) | _BRACKETS.map(lambda t: t.encode("utf-8")),
       name=st.sampled_from(["x.mrg", "x.icg", "x.txt"]), compress=st.booleans())
def test_random_treebank_bytes_raise_only_user_error(tmp_path_factory, data, name, compress):
    path = tmp_path_factory.getbasetemp() / name
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        tb.load_treebank([path])
    except UserError as err:
        one_printable_line(err)
    try:
        sinica.read_sinica(path, simplified=False)
    except UserError as err:
        one_printable_line(err)
