"""Right-to-left language models (LMConfig.direction = "backward"): what they read, how their
distances come back in word order, how their trees are decoded, and the forward + backward
boundary scores."""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm import trees as T
from onlstm.errors import UserError
from onlstm.lm import LanguageModel, LMConfig
from onlstm.lm_config import ConfigFieldError
from onlstm.tasks.lm.evaluation import evaluate_ids
from onlstm.tasks.lm.generation import generate
from onlstm.tasks.parse import combined_distances, decode, parse, sentence_distances
from onlstm.tasks.parse_eval import decode_systems, model_distances, model_systems
from onlstm.text import TextOptions, Vocabulary

WORDS = "the man who sold the house moved to new york".split()


def _pair(tokens=WORDS, **text):
    """A forward model and a backward model with the same weights."""
    torch.manual_seed(0)
    vocab = Vocabulary(["<eos>", "<unk>"] + sorted(set(tokens)))
    cfg = LMConfig(vocab_size=len(vocab), emb_size=8, hidden_sizes=[12, 8], chunk_size=4,
                   text=TextOptions(**text).to_dict())
    forward = LanguageModel(cfg, vocab).eval()
    backward = copy.deepcopy(forward)
    backward.config = LMConfig(**{**cfg.__dict__, "direction": "backward"})
    return forward, backward


def test_direction_is_checked_and_old_configs_read_forward():
    with pytest.raises(ConfigFieldError, match="direction"):
        LMConfig(vocab_size=5, direction="sideways")
    assert LMConfig.from_dict({"vocab_size": 5}).direction == "forward"
    assert LMConfig.from_dict({"vocab_size": 5, "direction": "backward"}).direction == "backward"


def test_reading_order_reverses_streams_of_a_backward_model_only():
    forward, backward = _pair()
    ids = torch.arange(7)
    assert torch.equal(forward.reading_order(ids), ids)
    assert torch.equal(backward.reading_order(ids), ids.flip(0))
    assert backward.reading_order([1, 2, 3]) == [3, 2, 1]
    assert torch.equal(backward.reading_order(backward.reading_order(ids)), ids)


def test_backward_distances_are_the_forward_models_on_the_reversed_sentence_in_word_order():
    forward, backward = _pair()
    sentences = [WORDS[:6], WORDS[3:], ["york"]]
    back = sentence_distances(backward, sentences, batch_size=2)
    back_inputs = sentence_distances(backward, sentences, batch_size=2, distance="input")
    for s, d, d_i in zip(sentences, back, back_inputs):
        expected = sentence_distances(forward, [s[::-1]])[0].flip(1)
        assert torch.allclose(d, expected, atol=1e-6)
        assert torch.allclose(d_i, sentence_distances(forward, [s[::-1]], distance="input")[0].flip(1), atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(back, backward.sentence_distances(sentences)))


def test_character_level_backward_model_reads_a_word_at_its_last_character():
    forward, backward = _pair(list("苹果的颜色"), char_level=True)
    words = ["苹果", "的", "颜色"]
    d = sentence_distances(backward, [words])[0]
    chars = forward.sentence_distances([list("色颜的果苹")])[0]  # what the backward model reads
    # reading right to left, 颜色 is entered at 色 (0), 的 at 的 (2), 苹果 at 果 (3)
    assert torch.allclose(d, chars[:, [3, 2, 0]], atol=1e-6)


def test_backward_trees_are_the_mirrored_trees_of_the_reversed_sentence():
    forward, backward = _pair()
    sentence = " ".join(WORDS)
    for decoder in ("greedy", "split"):
        (b,) = parse(backward, [sentence], layer=1, decoder=decoder)
        (f,) = parse(forward, [" ".join(WORDS[::-1])], layer=1, decoder=decoder)
        assert T.leaves(b.tree) == WORDS
        assert b.tree == T.mirror(f.tree)


def test_decode_systems_follow_the_direction():
    words = "a b c d e".split()
    d = torch.tensor([[0.1, 0.9, 0.2, 0.8, 0.3]])

    class Gold:
        pass

    gold = Gold()
    gold.words = words
    fwd = decode_systems([gold], [d], "greedy")
    bwd = decode_systems([gold], [d], "greedy", "backward")
    assert fwd["layer 1"][0] == T.greedy(words, d[0].tolist())
    assert bwd["layer 1"][0] == T.mirror(T.greedy(words[::-1], d[0].flip(0).tolist()))
    assert fwd["layer 1"][0] != bwd["layer 1"][0]
    assert decode("split", words, d[0].tolist(), "backward") == T.mirror(T.split(words[::-1], d[0].flip(0).tolist()))
    with pytest.raises(UserError, match="unknown decoder"):
        decode("best", words, d[0].tolist())


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 25), st.integers(0, 10**6))
def test_mirror_reverses_leaves_and_maps_spans(n, seed):
    words = [f"w{i}" for i in range(n)]
    tree = T.random_tree(words, seed)
    m = T.mirror(tree)
    assert T.leaves(m) == words[::-1]
    assert T.spans(m) == {(n - j, n - i) for i, j in T.spans(tree)}
    assert T.mirror(m) == tree


def test_combined_distances_average_the_two_boundaries():
    f = torch.tensor([[0.5, 0.2, 0.8, 0.4]])
    b = torch.tensor([[0.1, 0.6, 0.0, 0.9]])
    c = combined_distances(f, b)
    assert torch.allclose(c, torch.tensor([[0.5, (0.2 + 0.1) / 2, (0.8 + 0.6) / 2, (0.4 + 0.0) / 2]]))
    with pytest.raises(ValueError, match="differ"):
        combined_distances(f, b[:, :3])


def test_evaluation_reads_the_reversed_stream_and_generation_refuses():
    forward, backward = _pair()
    ids = torch.tensor(forward.vocab.encode(WORDS * 3))
    assert evaluate_ids(backward, backward.reading_order(ids), bptt=5) == pytest.approx(
        evaluate_ids(forward, ids.flip(0), bptt=5), abs=1e-6)
    with pytest.raises(UserError, match="right to left"):
        generate(backward, "the man", tokens=3)
    assert len(generate(forward, "the man", tokens=3)) == 3



def _other_backward(forward):
    """A backward model with its own (seeded) weights, so that combining changes the trees."""
    torch.manual_seed(1)
    backward = LanguageModel(LMConfig(**{**forward.config.__dict__, "direction": "backward"}), forward.vocab).eval()
    return backward


def test_parse_with_a_backward_model_decodes_the_combined_distances():
    forward, _ = _pair()
    backward = _other_backward(forward)
    sentences = [" ".join(WORDS), "the house moved", "york"]
    words = [s.split() for s in sentences]
    f_f, f_i = sentence_distances(forward, words), sentence_distances(forward, words, distance="input")
    b_f, b_i = sentence_distances(backward, words), sentence_distances(backward, words, distance="input")
    for decoder in ("greedy", "split"):
        for layer in (0, 1, "mean"):
            both = parse(forward, sentences, layer=layer, decoder=decoder, backward_model=backward, batch_size=2)
            for p, ws, ff, fi, bf, bi in zip(both, words, f_f, f_i, b_f, b_i):
                assert torch.allclose(p.distances, combined_distances(ff, bf))
                assert torch.allclose(p.input_distances, combined_distances(fi, bi))
                chosen = p.distances.mean(0) if layer == "mean" else p.distances[layer]
                assert p.tree == decode(decoder, ws, chosen.tolist())
                assert p.layer.endswith("forward+backward")
    alone = parse(forward, sentences[:1], layer=1)[0]
    both = parse(forward, sentences[:1], layer=1, backward_model=backward)[0]
    assert not torch.allclose(alone.distances, both.distances)  # the backward model is really read


def test_combined_parse_eval_systems_and_their_errors():
    forward, backward = _pair()
    other = _other_backward(forward)

    class Gold:
        model_words = None

    gold = Gold()
    gold.words = WORDS
    pairs = model_distances(forward, [gold], backward_model=other)
    expected = combined_distances(sentence_distances(forward, [WORDS])[0], sentence_distances(other, [WORDS])[0])
    assert torch.allclose(pairs[0][0], expected)
    systems = model_systems(forward, [gold], backward_model=other)
    assert systems["layer 2"][0] == T.greedy(WORDS, expected[1].tolist())
    with pytest.raises(UserError, match="--model reads right to left"):
        parse(backward, ["the man"], backward_model=other)
    with pytest.raises(UserError, match="--backward-model reads left to right"):
        model_distances(forward, [gold], backward_model=forward)
    three = LanguageModel(LMConfig(**{**backward.config.__dict__, "hidden_sizes": [12, 12, 8]}), forward.vocab)
    with pytest.raises(UserError, match="2 layers and --backward-model 3"):
        parse(forward, ["the man"], backward_model=three)
