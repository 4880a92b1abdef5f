"""A model's tokenizer in its text options (onlstm.text), and raw text into model tokens."""

import json

import pytest

from onlstm.bundled import default_model_path
from onlstm.errors import UserError
from onlstm.text import TextOptions, tokenize, tokenize_text


def test_tokenizer_defaults_keep_the_old_behaviour():
    # configs written before the field existed: words by whitespace, or characters
    assert TextOptions.from_dict({"char_level": False, "lower": False, "digits_to_N": False}).tokenizer == "whitespace"
    assert TextOptions.from_dict({"char_level": True}).tokenizer == "chars"
    assert TextOptions().tokenizer == "whitespace" and TextOptions(char_level=True).tokenizer == "chars"
    assert TextOptions(tokenizer="jieba", char_level=True).tokenizer == "jieba"  # an explicit choice wins


def test_tokenizer_round_trips_and_is_validated():
    opts = TextOptions(lower=True, tokenizer="ptb")
    d = json.loads(json.dumps(opts.to_dict()))
    assert d["tokenizer"] == "ptb" and TextOptions.from_dict(d) == opts
    with pytest.raises(UserError, match="tokenizer must be one of"):
        TextOptions.from_dict({"tokenizer": "spacy"})
    with pytest.raises(UserError, match="unknown tokenizer"):
        TextOptions(tokenizer="spacy")
    with pytest.raises(UserError, match="must be true or false"):
        TextOptions.from_dict({"lower": "ptb", "tokenizer": "ptb"})


def test_corpus_text_ignores_the_tokenizer():
    opts = TextOptions(tokenizer="ptb")
    assert tokenize("New York. don't", opts) == ["New", "York.", "don't"]


def test_tokenize_text_uses_the_tokenizer_then_the_options():
    assert tokenize_text("New York. Don't", TextOptions(tokenizer="ptb", lower=True)) == \
        ["new", "york", ".", "do", "n't"]
    assert tokenize_text("In 1990, “yes”", TextOptions(tokenizer="ptb", digits_to_N=True)) == \
        ["In", "N", ",", "``", "yes", "''"]
    assert tokenize_text("ab 12", TextOptions(char_level=True, digits_to_N=True)) == ["a", "b", "N"]
    assert tokenize_text("New York.") == ["New", "York."]  # default: whitespace


def test_the_bundled_english_model_reads_raw_text_the_ptb_way():
    config = json.loads((default_model_path() / "config.json").read_text())
    assert TextOptions.from_dict(config["model"]["text"]).tokenizer == "ptb"
