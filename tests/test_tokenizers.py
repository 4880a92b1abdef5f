"""Raw text into words (onlstm.tokenizers): PTB English, jieba Chinese, characters, whitespace."""

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm import tokenizers
from onlstm.errors import UserError
from onlstm.tokenizers import TOKENIZERS, Token, char_tokens, is_punctuation, ptb_tokens, split_text

# sentence -> the PTB forms of its tokens
ENGLISH = [
    ("The man who sold the house moved to New York.",
     "The man who sold the house moved to New York ."),
    ("I don't know.", "I do n't know ."),
    ("He can't, and she won't.", "He ca n't , and she wo n't ."),
    ("It costs $5.", "It costs $ 5 ."),
    ("Prices rose 3.5% to $1,000 at 10:30 p.m.", "Prices rose 3.5 % to $ 1,000 at 10:30 p.m."),
    ('"Hello," she said.', "`` Hello , '' she said ."),
    ("She said \"yes\" and left", "She said `` yes '' and left"),
    ("“Curly” quotes and ‘single’ ones", "`` Curly '' quotes and ` single ' ones"),
    ("John's dog isn’t here", "John 's dog is n't here"),
    ("I'm sure they'd've gone; you're right, we'll see", "I 'm sure they 'd 've gone ; you 're right , we 'll see"),
    ("the players' union", "the players ' union"),
    ("Mr. Smith of the U.S. met Apple Inc. officials", "Mr. Smith of the U.S. met Apple Inc. officials"),
    ("He lives in the U.S.", "He lives in the U.S."),
    ("The end. Next one", "The end . Next one"),
    ("I cannot go", "I can not go"),
    ("AT&T and S&P, New York-based and/or not", "AT&T and S&P , New York-based and/or not"),
    ("Wait... what -- really?!", "Wait ... what -- really ? !"),
    ("a (small) [test] {here}", "a -LRB- small -RRB- -LSB- test -RSB- -LCB- here -RCB-"),
    ("in the '80s, #1", "in the '80s , # 1"),
]


@pytest.mark.parametrize("text, expected", ENGLISH)
def test_ptb_tokens(text, expected):
    tokens = ptb_tokens(text)
    assert [t.form for t in tokens] == expected.split()
    assert "".join(t.text for t in tokens) == "".join(text.split())


def test_ptb_keeps_what_was_typed_beside_the_treebank_form():
    tokens = ptb_tokens("“Don’t” (he said)")
    assert tokens == [Token("“", "``"), Token("Do", "Do"), Token("n’t", "n't"), Token("”", "''"),
                      Token("(", "-LRB-"), Token("he", "he"), Token("said", "said"), Token(")", "-RRB-")]


def test_jieba_segments_chinese():
    pytest.importorskip("jieba")
    words = [t.text for t in split_text("苹果的颜色是什么", "jieba")]
    assert "".join(words) == "苹果的颜色是什么" and len(words) >= 4
    assert "苹果" in words and "颜色" in words
    # spaces are separators, never tokens; punctuation comes out as its own token
    words = [t.text for t in split_text("爱 真的需要勇气。", "jieba")]
    assert words[0] == "爱" and words[-1] == "。" and all(w.strip() == w and w for w in words)


def test_missing_jieba_is_a_user_error_naming_the_package(monkeypatch):
    monkeypatch.setattr(tokenizers, "_jieba", None)
    monkeypatch.setitem(sys.modules, "jieba", None)  # makes `import jieba` fail
    with pytest.raises(UserError, match="pip install jieba"):
        split_text("苹果", "jieba")


def test_chars_and_whitespace():
    assert [t.text for t in split_text("苹果 的颜色", "chars")] == ["苹", "果", "的", "颜", "色"]
    assert [t.text for t in split_text("1998年ABC台 12３４", "chars")] == ["1998", "年", "ABC", "台", "12３４"]
    assert [t.text for t in split_text(" New  York. ", "whitespace")] == ["New", "York."]
    assert split_text("", "ptb") == [] and split_text("   ", "chars") == []
    with pytest.raises(UserError, match="unknown tokenizer 'nltk'"):
        split_text("a", "nltk")
    assert set(TOKENIZERS) == {"whitespace", "ptb", "jieba", "chars"}


@pytest.mark.parametrize("token", [".", ",", "``", "''", "`", "'", "-LRB-", "-RRB-", "--", "...", "$", "#", "?!",
                                   "，", "。", "、", "《", "》", "“", "…", "¥"])
def test_punctuation_is_dropped(token):
    assert is_punctuation(token)


@pytest.mark.parametrize("token", ["%", "&", "％", "n't", "'s", "U.S.", "3.5", "a", "苹果", "N", "<unk>", "+"])
def test_words_are_kept(token):
    assert not is_punctuation(token)


# quote and bracket normalisation: the only ways a form may differ from what was typed
_FORMS = {"``": {'"', "“", "„", "``", "'", "‘", "`"}, "''": {'"', "”", "''", "'", "’"}, "`": {"'", "‘", "`"},
          "'": {"'", "’"}, "...": {"…"}, "--": {"—", "–"}, "-LRB-": {"("}, "-RRB-": {")"}, "-LSB-": {"["},
          "-RSB-": {"]"}, "-LCB-": {"{"}, "-RCB-": {"}"}}

_PIECES = list("abcXYZ019 .,;:!?'\"`$%&#-/()[]{}…—“”‘’\t") + ["n't", "'s", "U.S.", "Mr. ", "don't", "cannot"]
_text = st.lists(st.sampled_from(_PIECES), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(_text, st.sampled_from(["ptb", "chars", "whitespace"]))
def test_no_character_is_lost(text, name):
    tokens = split_text(text, name)
    assert "".join(t.text for t in tokens) == "".join(text.split())
    for t in tokens:
        assert t.text and t.text.split() == [t.text]
        same = t.form.replace("'", "’") == t.text.replace("'", "’")
        runs = (t.form == "--" and set(t.text) <= set("-—–")) or (t.form == "..." and set(t.text) <= set(".…"))
        assert same or runs or t.text in _FORMS.get(t.form, ()), t


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40))
def test_no_character_is_lost_on_any_text(text):
    for name in ("ptb", "chars", "whitespace"):
        assert "".join(t.text for t in split_text(text, name)) == "".join(text.split())


def test_char_tokens_skip_every_kind_of_space():
    assert [t.text for t in char_tokens("a\u3000b\u00a0c\n")] == ["a", "b", "c"]
