"""Parsing raw sentences (onlstm.tasks.parse): tokenizers, dropped punctuation, d_f and d_i,
character-level models reading a word's distance at its first character."""

import pytest
import torch

from onlstm import trees as T
from onlstm.errors import UserError
from onlstm.lm import LanguageModel, LMConfig
from onlstm.tasks.parse import distance_table, parse, sentence_distances, vocabulary_form
from onlstm.text import TextOptions, Vocabulary

WORDS = "the man who sold house moved to new york do n't N 's i".split()


def _model(tokens=WORDS, cell="onlstm", **text):
    torch.manual_seed(0)
    vocab = Vocabulary(["<eos>", "<unk>"] + list(tokens))
    cfg = LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[12, 8], chunk_size=4, cell=cell,
                   text=TextOptions(**text).to_dict())
    return LanguageModel(cfg, vocab).eval()


def _direct(model, tokens):
    """(d_f, d_i) of one sentence straight from the model's forward pass, no batching."""
    ids = [model.vocab.eos_id] + model.vocab.encode(tokens) + [model.vocab.eos_id]
    out = model(torch.tensor(ids).view(-1, 1), return_distances=True, decode=False)
    return out.distances[:, 1:-1, 0], out.input_distances[:, 1:-1, 0]


def test_forget_and_input_distances_batched_equal_the_forward_pass():
    model = _model()
    sents = [["the", "man", "who", "sold"], ["i"], ["new", "york", "zebra", "moved", "to", "the", "house"]]
    forget = sentence_distances(model, sents, batch_size=2)
    inputs = sentence_distances(model, sents, batch_size=2, distance="input")
    for s, f, i in zip(sents, forget, inputs):
        d_f, d_i = _direct(model, s)
        assert f.shape == i.shape == (2, len(s))
        assert torch.allclose(f, d_f, atol=1e-6) and torch.allclose(i, d_i, atol=1e-6)
        assert not torch.allclose(f, i)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(forget, model.sentence_distances(sents)))


def test_distance_argument_is_checked():
    model = _model()
    with pytest.raises(UserError, match="--distance must be one of"):
        sentence_distances(model, [["the"]], distance="output")
    with pytest.raises(UserError, match="--distance must be one of"):
        parse(model, ["the man"], distance="output")
    with pytest.raises(UserError, match="ON-LSTM"):
        sentence_distances(_model(cell="lstm"), [["the"]])
    with pytest.raises(UserError, match="--distance must be one of"):
        sentence_distances(model, [["the"]], 64, False)  # a bool is not a distance


def test_character_model_reads_each_word_at_its_first_character():
    model = _model(list("苹果的颜色是什么"), char_level=True)
    words = [["苹果", "的", "颜色"], ["是", "什么"]]
    (a, b) = sentence_distances(model, words)
    chars_a = model.sentence_distances([list("苹果的颜色")])[0]
    chars_b = model.sentence_distances([list("是什么")])[0]
    assert torch.allclose(a, chars_a[:, [0, 2, 3]], atol=1e-6)
    assert torch.allclose(b, chars_b[:, [0, 1]], atol=1e-6)
    inputs = sentence_distances(model, words, distance="input")[0]
    assert torch.allclose(inputs, _direct(model, list("苹果的颜色"))[1][:, [0, 2, 3]], atol=1e-6)


def test_chinese_raw_text_segmented_by_jieba_for_a_character_model():
    pytest.importorskip("jieba")
    model = _model(list("苹果的颜色是什么"), char_level=True, tokenizer="jieba")
    (p,) = parse(model, ["苹果的颜色是什么？"])
    assert p.words == ["苹果", "的", "颜色", "是", "什么"] and [t for _, t in p.dropped] == ["？"]
    assert p.model_tokens == list("苹果的颜色是什么") and p.oov == 0
    assert p.distances.shape == (2, 5) and T.leaves(p.tree) == p.words
    chars = model.sentence_distances([list("苹果的颜色是什么")])[0]
    assert torch.allclose(p.distances, chars[:, [0, 2, 3, 5, 6]], atol=1e-6)
    # the same model, characters as words
    model.config.text = TextOptions(char_level=True, tokenizer="chars").to_dict()
    assert parse(model, ["苹果的颜色"])[0].words == list("苹果的颜色")


def test_ptb_tokenizer_drops_punctuation_and_shows_words_as_typed():
    model = _model(tokenizer="ptb")
    (p,) = parse(model, ["The man who sold the house moved to New York."])
    assert p.words == "The man who sold the house moved to New York".split()
    assert p.dropped == [(10, ".")] and p.oov == 0
    assert p.model_tokens == "the man who sold the house moved to new york".split()
    (q,) = parse(model, ["I don't, \"N\" 's"])
    assert q.words == ["I", "do", "n't", "N", "'s"] and [t for _, t in q.dropped] == [",", '"', '"']
    assert q.model_tokens == ["i", "do", "n't", "N", "'s"]
    with pytest.raises(UserError, match="sentence 2 has no word left once punctuation is dropped"):
        parse(model, ["the man", "... !"])


def test_pretokenized_input_keeps_the_whitespace_behaviour():
    model = _model(tokenizer="ptb")
    (p,) = parse(model, ["New York."], pretokenized=True)
    assert p.words == ["New", "York."] and p.dropped == [] and p.oov == 1
    (q,) = parse(model, [["New", "York", "."]])  # lists of words are pretokenized
    assert q.words == ["New", "York", "."] and q.dropped == []
    # a whitespace model (every config written before tokenizers existed) reads raw text as before
    assert parse(_model(), ["New York."])[0].words == ["New", "York."]


def test_input_distances_decode_on_request():
    model = _model(tokenizer="ptb")
    sentence = "the man who sold the house moved to new york"
    (f,) = parse(model, [sentence], layer=0)
    (i,) = parse(model, [sentence], layer=0, distance="input")
    assert f.distance == "forget" and i.distance == "input"
    assert torch.equal(f.distances, i.distances) and torch.equal(f.input_distances, i.input_distances)
    assert f.tree == T.greedy(f.words, f.distances[0].tolist())
    assert i.tree == T.greedy(i.words, i.input_distances[0].tolist())
    assert f.tree != i.tree  # this sentence decodes differently from d_f and d_i
    d = i.to_dict()
    assert d["distance"] == "input" and len(d["input_distances"]) == 2 and len(d["input_distances"][0]) == 10


def test_vocabulary_form():
    model = _model(["the", "N", "u.s."])
    assert vocabulary_form(model, "The") == "the" and vocabulary_form(model, "1990") == "N"
    assert vocabulary_form(model, "3.5") == "N" and vocabulary_form(model, "1,000") == "N"
    assert vocabulary_form(model, "%") == "N"  # Mikolov's PTB: "3.5 %" is "N N"
    assert vocabulary_form(model, "１９９８") == "N"  # full width
    assert vocabulary_form(model, "U.S.") == "u.s." and vocabulary_form(model, "zebra") == "zebra"
    assert vocabulary_form(_model(["%", "N"]), "%") == "%"


def test_distance_table_shows_both_distances_and_the_dropped_punctuation():
    model = _model(tokenizer="ptb")
    (p,) = parse(model, ["The man, who sold."])
    table = distance_table(p).splitlines()
    assert "layer  1" in table[0] and "layer  2" in table[0]
    assert table[1].split() == ["d_f", "d_i", "d_f", "d_i"]
    rows = table[3:]
    assert [r.split()[0] for r in rows] == ["The", "man", ",", "who", "sold", "."]
    assert "dropped" in rows[2] and "dropped" in rows[5]
    values = [float(v) for v in rows[0].split()[1:]]
    expected = [p.distances[0, 0], p.input_distances[0, 0], p.distances[1, 0], p.input_distances[1, 0]]
    assert values == pytest.approx([float(v) for v in expected], abs=1e-4)


def test_table_aligns_wide_characters():
    model = _model(list("苹果的"), char_level=True, tokenizer="chars")
    (p,) = parse(model, ["苹果的"])
    rows = distance_table(p).splitlines()[3:]
    assert len({r.index(".") for r in rows}) == 1  # the first number starts in the same column
