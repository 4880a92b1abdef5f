"""Decoders, baselines, spans and depths of onlstm.trees; formats of onlstm.tree_formats."""

import json
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onlstm import trees as T


def spec_greedy(words, d):
    """docs/spec.md §2 pseudo-code, transcribed literally (recursive) as the reference."""
    if len(words) == 1:
        return words[0]
    k = max(range(len(d)), key=lambda t: (d[t], -t))  # first maximum
    left = spec_greedy(words[:k], d[:k]) if k > 0 else None
    right = [words[k], spec_greedy(words[k + 1 :], d[k + 1 :])] if k < len(words) - 1 else words[k]
    return [left, right] if left is not None else right


def spec_split(words, d):
    """The alternative decoder: cut before the first maximum after the first word."""
    if len(words) == 1:
        return words[0]
    k = 1 + max(range(len(d) - 1), key=lambda t: (d[t + 1], -t))
    return [spec_split(words[:k], d[:k]), spec_split(words[k:], d[k:])]


# Distances drawn from a few values so that ties are frequent.
sentences = st.integers(min_value=1, max_value=30).flatmap(
    lambda n: st.tuples(
        st.just([f"w{i}" for i in range(n)]),
        st.lists(
            st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(-5, 5, allow_nan=False)),
            min_size=n,
            max_size=n,
        ),
    )
)
DECODERS = [T.greedy, T.split]


@pytest.mark.parametrize("decode", DECODERS)
@given(sentences)
def test_decoders_every_word_once_in_order_and_binary(decode, sentence):
    words, d = sentence
    tree = decode(words, d)
    assert T.leaves(tree) == words
    assert T.is_binary(tree)
    assert len(T.spans(tree, include_whole=True)) == len(words) - 1  # binary: T-1 brackets


@pytest.mark.parametrize("decode", DECODERS)
@given(sentences)
def test_decoders_deterministic(decode, sentence):
    words, d = sentence
    assert decode(words, d) == decode(list(words), list(d))


@given(sentences)
def test_greedy_matches_spec_recursion(sentence):
    words, d = sentence
    assert T.greedy(words, d) == spec_greedy(words, d)


@given(sentences)
def test_split_matches_reference(sentence):
    words, d = sentence
    assert T.split(words, d) == spec_split(words, d)


def test_greedy_hand_examples():
    words = "the cat sat on the mat".split()
    d = [0.1, 0.2, 0.9, 0.5, 0.3, 0.1]
    assert T.greedy(words, d) == [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    # ties: the first maximum wins
    assert T.greedy(["a", "b", "c"], [1, 1, 1]) == ["a", ["b", "c"]]
    assert T.greedy(["a", "b", "c"], [0, 1, 1]) == ["a", ["b", "c"]]
    assert T.greedy(["a", "b", "c"], [0, 0, 1]) == [["a", "b"], "c"]
    assert T.greedy(["a"], [3.0]) == "a"


def test_split_hand_examples():
    words = "the cat sat on the mat".split()
    d = [9.0, 0.2, 0.9, 0.5, 0.3, 0.1]  # the first word's distance is ignored
    assert T.split(words, d) == [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    # where the two decoders differ: greedy keeps [b, rest], split cuts at the maximum of rest
    assert T.greedy(list("abcd"), [0, 0.9, 0.1, 0.5]) == ["a", ["b", ["c", "d"]]]
    assert T.split(list("abcd"), [0, 0.9, 0.1, 0.5]) == ["a", [["b", "c"], "d"]]
    assert T.split(["a", "b", "c"], [0, 1, 1]) == ["a", ["b", "c"]]
    assert T.split(["a", "b"], [5, 0]) == ["a", "b"]


def test_decoders_accept_arrays_and_tensors():
    torch = pytest.importorskip("torch")
    words = ["a", "b", "c", "d"]
    d = [0.1, 0.7, 0.3, 0.9]
    assert T.greedy(words, torch.tensor(d)) == T.greedy(words, d)
    assert T.split(words, tuple(d)) == T.split(words, d)


@pytest.mark.parametrize("decode", DECODERS)
def test_decoder_errors(decode):
    with pytest.raises(ValueError, match="empty"):
        decode([], [])
    with pytest.raises(ValueError, match="2 words but 3"):
        decode(["a", "b"], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        decode(["a", "b"], [1, float("nan")])


def test_long_sentence_no_recursion_limit():
    words = [f"w{i}" for i in range(5000)]
    tree = T.greedy(words, list(range(5000)))  # increasing: left-branching, 4999 deep
    assert T.depth(tree) == 4999
    assert T.leaves(tree) == words
    assert len(T.spans(tree)) == 4998
    # (Python's own == on lists recurses, so deep trees are compared as strings)
    text = T.to_bracketed(tree)
    assert text == T.to_bracketed(T.left_branching(words))
    assert T.to_bracketed(T.from_bracketed(text)) == text
    assert T.draw(tree).count("\n") == 4999
    right = T.greedy(words, list(range(5000, 0, -1)))
    assert T.to_bracketed(right) == T.to_bracketed(T.right_branching(words))


# --- baselines ------------------------------------------------------------------------


def test_baselines_hand():
    w = ["a", "b", "c", "d"]
    assert T.left_branching(w) == [[["a", "b"], "c"], "d"]
    assert T.right_branching(w) == ["a", ["b", ["c", "d"]]]
    assert T.balanced(w) == [["a", "b"], ["c", "d"]]
    assert T.balanced(["a", "b", "c"]) == ["a", ["b", "c"]]
    assert T.balanced(["a", "b", "c", "d", "e"]) == [["a", "b"], ["c", ["d", "e"]]]
    for build in (T.left_branching, T.right_branching, T.balanced):
        assert build(["x"]) == "x"
        with pytest.raises(ValueError):
            build([])
    assert T.random_tree(["x"], 3) == "x"


@given(st.integers(1, 40), st.integers(0, 2**32))
def test_baselines_are_binary_trees_over_the_words(n, seed):
    words = [str(i) for i in range(n)]
    for tree in (
        T.left_branching(words),
        T.right_branching(words),
        T.balanced(words),
        T.random_tree(words, seed),
    ):
        assert T.leaves(tree) == words
        assert T.is_binary(tree)
    assert T.random_tree(words, seed) == T.random_tree(words, seed)
    assert T.depth(T.balanced(words)) == (n - 1).bit_length()


def test_random_tree_is_uniform_over_binary_trees():
    # 5 words: Catalan(4) = 14 binary trees, each should come up about 1/14 of the time.
    words = list("abcde")
    rng = random.Random(123)
    counts = Counter(T.to_bracketed(T.random_tree(words, rng)) for _ in range(14000))
    assert len(counts) == 14
    assert all(850 < c < 1150 for c in counts.values()), counts


def test_random_tree_rng_is_advanced_and_seed_reproducible():
    words = [str(i) for i in range(12)]
    rng = random.Random(7)
    first, second = T.random_tree(words, rng), T.random_tree(words, rng)
    assert first != second  # same generator, next draw (probability of equality ~1e-5)
    rng = random.Random(7)
    assert [T.random_tree(words, rng), T.random_tree(words, rng)] == [first, second]


# --- structure and formats ------------------------------------------------------------


def test_spans_depth_leaves():
    tree = [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    assert T.spans(tree) == {(0, 2), (2, 6), (3, 6), (4, 6)}
    assert T.spans(tree, include_whole=True) == {(0, 2), (2, 6), (3, 6), (4, 6), (0, 6)}
    assert T.depth(tree) == 4
    assert T.leaves(tree) == "the cat sat on the mat".split()
    assert T.spans("word") == set() and T.depth("word") == 0
    assert T.spans(["a", "b"]) == set()  # only the whole sentence: not counted
    # n-ary and unary nodes
    assert T.spans([["a", "b", "c"], ["d"]]) == {(0, 3)}
    assert T.spans(("a", ("b", "c"))) == {(1, 3)}
    assert not T.is_binary(["a", "b", "c"])


def test_height_and_word_depths_hand():
    tree = [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    assert T.height(tree) == T.depth(tree) == 4
    assert T.word_depths(tree) == [2, 2, 2, 3, 4, 4]
    assert T.average_word_depth(tree) == pytest.approx(17 / 6)
    assert T.word_depths("word") == [0] and T.average_word_depth("word") == 0.0
    # every node counts, unary and n-ary ones included
    assert T.word_depths([["a"], "b", "c"]) == [2, 1, 1]
    assert T.height([["a"], "b", "c"]) == 2


@given(st.integers(1, 40), st.integers(0, 10**6))
def test_word_depth_bounds(n, seed):
    """Per word: the constituents above it. Their sum is the total length of the spans (the
    whole sentence included); their maximum is the height; among binary trees the balanced
    one has the smallest average and the right- (or left-) branching one the largest,
    ``(n (n - 1) / 2 + n - 1) / n``."""
    words = [f"w{i}" for i in range(n)]
    tree = T.random_tree(words, seed)
    depths = T.word_depths(tree)
    assert len(depths) == n
    assert max(depths) == T.height(tree)
    assert sum(depths) == sum(b - a for a, b in T.spans(tree, include_whole=True))
    assert (min(depths) >= 1) == (n >= 2)
    average = T.average_word_depth(tree)
    caterpillar = (n * (n - 1) / 2 + n - 1) / n if n > 1 else 0.0
    assert T.average_word_depth(T.right_branching(words)) == pytest.approx(caterpillar)
    assert T.average_word_depth(T.left_branching(words)) == pytest.approx(caterpillar)
    assert T.average_word_depth(T.balanced(words)) - 1e-9 <= average <= caterpillar + 1e-9
    assert average <= T.height(tree) <= n - 1


def test_bad_trees_rejected():
    with pytest.raises(TypeError):
        T.leaves(["a", 3])
    with pytest.raises(ValueError):
        T.spans(["a", []])


words_st = st.lists(
    st.text(st.characters(blacklist_categories=("Z", "C"), blacklist_characters="()"), min_size=1),
    min_size=1,
    max_size=20,
)


@given(words_st, st.integers(0, 1000))
def test_bracketed_and_json_round_trip(words, seed):
    tree = T.random_tree(words, seed)
    assert T.from_bracketed(T.to_bracketed(tree)) == tree
    assert T.from_json(T.to_json(tree)) == tree
    assert json.loads(T.to_json(tree)) == tree


def test_bracketed_format():
    assert T.to_bracketed([["the", "cat"], ["sat", "down"]]) == "((the cat) (sat down))"
    assert T.to_bracketed("word") == "word"
    assert T.to_bracketed(["a(b", "c)"]) == "(a-LRB-b c-RRB-)"
    assert T.to_json(("a", ("b", "c"))) == '["a", ["b", "c"]]'
    assert T.to_json(["猫", "が"]) == '["猫", "が"]'
    with pytest.raises(ValueError):
        T.to_bracketed(["a b", "c"])
    assert T.from_bracketed("  (a\n (b c) )") == ["a", ["b", "c"]]
    assert T.from_bracketed("(a b c)") == ["a", "b", "c"]
    assert T.from_bracketed("word") == "word"


@pytest.mark.parametrize("text", ["", "(a b", "(a b))", "()", "(a) (b)", "a b", ")"])
def test_from_bracketed_malformed(text):
    with pytest.raises(ValueError):
        T.from_bracketed(text)


@pytest.mark.parametrize("text", ["[]", '["a", 1]', "not json", '[["a"], []]'])
def test_from_json_malformed(text):
    with pytest.raises(ValueError):
        T.from_json(text)


def test_draw():
    tree = [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    assert T.draw(tree) == "\n".join(
        [
            "┬─┬───── the",
            "│ └───── cat",
            "└─┬───── sat",
            "  └─┬─── on",
            "    └─┬─ the",
            "      └─ mat",
        ]
    )
    ascii_ = T.draw(["a", "b", "c"], unicode=False)
    assert ascii_ == "+- a\n+- b\n`- c"
    assert T.draw("alone") == "alone"


def test_draw_without_words_for_side_by_side():
    tree = [["the", "cat"], ["sat", ["on", ["the", "mat"]]]]
    assert T.draw(tree, words=False).split("\n") == ["┬─┬─", "│ └─", "└─┬─", "  └─┬─", "    └─┬─", "      └─"]
    assert T.draw("alone", words=False) == ""


def test_formats_live_in_tree_formats_and_are_reachable_from_trees():
    from onlstm import tree_formats as F

    for name in ("to_bracketed", "from_bracketed", "to_json", "from_json", "draw"):
        assert getattr(T, name) is getattr(F, name)
    with pytest.raises(AttributeError):
        T.no_such_function  # noqa: B018


@given(st.integers(1, 30), st.integers(0, 100))
def test_draw_one_line_per_word_in_one_column(n, seed):
    words = [f"w{i}" for i in range(n)]
    lines = T.draw(T.random_tree(words, seed)).split("\n")
    assert [line.split(" ")[-1] for line in lines] == words
    if n > 1:
        assert len({line.rindex(" ") for line in lines}) == 1  # words aligned
    bare = T.draw(T.random_tree(words, seed), words=False).split("\n")
    assert len(bare) == n and all(line.rstrip() == line for line in bare)
    assert [line[: len(b)] for line, b in zip(lines, bare)] == bare


@given(sentences)
def test_greedy_first_maximum_opens_a_constituent_to_the_end(sentence):
    """The first word of largest distance starts a constituent running to the end of the
    sentence, and everything before it is one constituent."""
    words, d = sentence
    n = len(words)
    k = max(range(n), key=lambda t: (d[t], -t))
    whole = T.spans(T.greedy(words, d), include_whole=True)
    if n - k >= 2:
        assert (k, n) in whole
    if k >= 2:
        assert (0, k) in whole


_nary_trees = st.recursive(st.just("w"), lambda kids: st.lists(kids, min_size=1, max_size=4), max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_nary_trees, st.integers(1, 30).map(lambda n: T.random_tree([f"w{i}" for i in range(n)], n))))
def test_measures_agree_with_a_recursive_reading(tree):
    def walk(node, start, level):  # -> (end, spans incl. whole, height, depth sum), written recursively
        if isinstance(node, str):
            return start + 1, set(), 0, level
        end, found, tallest, depth_sum = start, set(), 0, 0
        for child in node:
            end, s, h, d = walk(child, end, level + 1)
            found |= s
            tallest, depth_sum = max(tallest, h + 1), depth_sum + d
        if end - start >= 2:
            found.add((start, end))
        return end, found, tallest, depth_sum

    n, every, tallest, depth_sum = walk(tree, 0, 0)
    m = T.measures(tree)
    assert (m.words, m.spans, m.height, m.depth_sum) == (n, every - {(0, n)}, tallest, depth_sum)
    assert n == len(T.leaves(tree)) and depth_sum == sum(T.word_depths(tree))
    assert T.spans(tree) == every - {(0, n)} and T.spans(tree, include_whole=True) == every
    assert T.height(tree) == tallest
