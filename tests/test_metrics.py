"""The docs/spec.md §3 scorer (onlstm.metrics), with hand-computed cases and the protocol check."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onlstm import metrics as M
from onlstm import trees as T
from onlstm import treebank as tb

# --- the protocol check on the bundled sample (read once) ----------------------------


@pytest.fixture(scope="module")
def sample():
    return tb.load_treebank()


def test_bundled_sample_counts(sample):
    assert len(sample) == 3914
    assert len(M.filter_by_length(sample, 10)) == 555


def test_protocol_reproduces_published_baselines(sample):
    """Right-branching 39.9 / 58.6 and left-branching 8.6 / 19.2 sentence-level F1 on the
    NLTK sample (all sentences / at most 10 words), to 0.1."""
    wsj10 = M.filter_by_length(sample, 10)
    full = M.evaluate_baselines(sample, names=("right", "left"))
    short = M.evaluate_baselines(wsj10, names=("right", "left"))
    assert round(100 * full["right"].sentence_f1, 1) == 39.9
    assert round(100 * short["right"].sentence_f1, 1) == 58.6
    assert round(100 * full["left"].sentence_f1, 1) == 8.6
    assert round(100 * short["left"].sentence_f1, 1) == 19.2
    assert full["right"].sentences == 3914 and short["right"].sentences == 555
    # the published evaluation's other numbers for right-branching (issue 13): EVALB-style
    # corpus F1 39.41 (ours without the whole-sentence span 35.75), average word depth 10.95
    # (the paper's "depth"), tree height 20.04
    assert round(100 * full["right"].corpus_f1_with_sentence, 2) == 39.41
    assert round(100 * full["right"].corpus_f1, 2) == 35.75
    assert round(full["right"].word_depth, 2) == 10.95
    assert full["right"].tree_height == pytest.approx(20.0447, abs=1e-4)
    # left- and right-branching trees have the same shape statistics
    assert full["left"].word_depth == pytest.approx(full["right"].word_depth)
    # the gold trees themselves score 1 everywhere
    gold = M.evaluate_trees(wsj10, [s.tree for s in wsj10], "gold")
    assert gold.sentence_f1 == pytest.approx(1.0) and gold.corpus_f1 == pytest.approx(1.0)
    assert all(r == pytest.approx(1.0) for r in gold.label_recall.values())


# --- one sentence ---------------------------------------------------------------------


def test_score_spans_hand():
    s = M.score_spans({(0, 2), (2, 5), (3, 5)}, {(0, 2), (3, 5), (1, 3), (2, 4)})
    assert (s.matched, s.predicted, s.gold) == (2, 3, 4)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(2 * (2 / 3) * (1 / 2) / (2 / 3 + 1 / 2))  # 4/7
    assert M.score_spans({(0, 2)}, {(1, 3)}).f1 == 0.0


def test_score_spans_edge_conventions():
    # no gold span and no predicted span: everything is 1
    assert M.score_spans(set(), set()) == M.SpanScore(1.0, 1.0, 1.0, 0, 0, 0)
    # no gold span but predicted spans: recall 1, precision 0, F1 0
    s = M.score_spans({(0, 2)}, set())
    assert (s.precision, s.recall, s.f1) == (0.0, 1.0, 0.0)
    # gold spans but no prediction: all 0
    s = M.score_spans(set(), {(0, 2)})
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def gold(text: str) -> tb.GoldSentence:
    (tree,) = list(tb.parse_trees(text))
    sentence = tb.preprocess(tree, source="test")
    assert sentence is not None
    return sentence


def test_two_word_sentence_has_no_gold_span_and_scores_one():
    s = gold("( (S (NP (PRP It)) (VP (VBD rained)) (. .)) )")
    assert s.spans == set()
    scores = M.evaluate_baselines([s])
    assert all(r.sentence_f1 == 1.0 for r in scores.values())


def test_whole_sentence_constituents_are_the_top_unary_chain():
    # S over NP over the whole sentence (the period removed): both labels are whole-sentence
    # constituents, counted only by the *_with_sentence label recall
    s = gold("( (S (NP (DT the) (NN dog)) (. .)) )")
    assert s.labeled_spans == [] and sorted(s.sentence_labels) == ["NP", "S"]
    r = M.evaluate_trees([s], [T.left_branching(s.words)])
    assert r.label_recall == {} and r.label_recall_with_sentence == {"NP": 1.0, "S": 1.0}
    # one-word sentence: no whole-sentence constituent, nothing added to the counts
    one = gold("( (S (NP (PRP It)) (. .)) )")
    assert one.sentence_labels == []
    r = M.evaluate_trees([one], ["it"])
    assert r.label_counts_with_sentence == {} and r.corpus_f1_with_sentence == 1.0
    assert r.word_depth == 0.0 and r.tree_height == 0.0


def test_whole_sentence_span_is_excluded_even_through_a_unary_chain():
    # After removing the comma and period, S has the single child VP: the chain S-VP spans
    # the whole sentence, so neither label counts.
    s = gold("( (S (, ,) (VP (VB Go) (NP (DT the) (NN way))) (. .)) )")
    assert s.words == ["go", "the", "way"]
    assert s.labeled_spans == [(1, 3, "NP")]
    right = M.evaluate_trees([s], [T.right_branching(s.words)])
    left = M.evaluate_trees([s], [T.left_branching(s.words)])
    assert right.sentence_f1 == 1.0 and right.label_recall == {"NP": 1.0}
    assert left.sentence_f1 == 0.0 and left.label_recall == {"NP": 0.0}


def test_hand_computed_corpus():
    # sentence 1: gold spans {(0,2) NP, (2,5) VP, (3,5) NP}; right-branching predicts
    # {(1,5), (2,5), (3,5)}: 2 of 3 match -> P = R = F1 = 2/3.
    s1 = gold(
        "( (S (NP (DT the) (NN dog)) (VP (VBD saw) (NP (DT a) (NN cat))) (. .)) )"
    )
    # sentence 2: one word, no gold span: F1 1, adds nothing to the corpus counts.
    s2 = gold("( (INTJ (UH Yes) (. .)) )")
    # sentence 3: gold {(0,2) NP}; right-branching predicts {(1,3)}: F1 0.
    s3 = gold("( (S (NP (NNS dogs) (NNS dogs)) (VP (VBP bark))) )")
    assert s1.spans == {(0, 2), (2, 5), (3, 5)} and s2.spans == set() and s3.spans == {(0, 2)}
    r = M.evaluate_trees([s1, s2, s3], [T.right_branching(s.words) for s in (s1, s2, s3)], "right")
    assert r.sentence_f1 == pytest.approx((2 / 3 + 1 + 0) / 3)
    # corpus: matched 2, predicted 3 + 0 + 1 = 4, gold 3 + 0 + 1 = 4
    assert r.corpus_precision == pytest.approx(2 / 4)
    assert r.corpus_recall == pytest.approx(2 / 4)
    assert r.corpus_f1 == pytest.approx(0.5)
    assert r.label_counts == {"NP": 3, "VP": 1}
    assert r.label_recall == {"NP": pytest.approx(1 / 3), "VP": 1.0}
    # tree heights 4, 0, 2; word depths (1+2+3+4+4)/5, 0, (1+2+2)/3
    assert r.tree_height == pytest.approx((4 + 0 + 2) / 3)
    assert r.word_depth == pytest.approx((14 / 5 + 0 + 5 / 3) / 3)
    # with the whole-sentence span: sentences 1 and 3 add one span each to every count
    assert r.corpus_precision_with_sentence == pytest.approx(4 / 6)
    assert r.corpus_recall_with_sentence == pytest.approx(4 / 6)
    assert r.corpus_f1_with_sentence == pytest.approx(4 / 6)
    # whole-sentence constituents: S over sentence 1 and sentence 3 (sentence 2 has one word)
    assert s1.sentence_labels == ["S"] and s2.sentence_labels == [] and s3.sentence_labels == ["S"]
    assert r.label_counts_with_sentence == {"NP": 3, "S": 2, "VP": 1}
    assert r.label_recall_with_sentence == {"NP": pytest.approx(1 / 3), "S": 1.0, "VP": 1.0}
    assert r.sentences == 3
    d = r.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) >= {"system", "sentence_f1", "corpus_f1", "corpus_precision", "corpus_recall",
                      "corpus_f1_with_sentence", "corpus_precision_with_sentence",
                      "corpus_recall_with_sentence", "label_recall", "label_counts",
                      "label_recall_with_sentence", "label_counts_with_sentence", "word_depth",
                      "tree_height"}


def test_evaluate_checks_alignment():
    s = gold("( (S (NP (DT the) (NN dog)) (VP (VBD barked))) )")
    with pytest.raises(ValueError, match="1 sentences but 2 trees"):
        M.evaluate_trees([s], ["a", "b"])
    with pytest.raises(ValueError, match="tree of 2 words for a sentence of 3"):
        M.evaluate_trees([s], [["the", "dog"]])
    with pytest.raises(ValueError, match="no sentences"):
        M.evaluate_trees([], [])
    with pytest.raises(ValueError, match="unknown baseline"):
        M.baseline_trees([s], names=("middle",))


def test_evaluate_systems_keeps_order_and_uses_the_same_scorer(sample):
    few = sample[:50]
    systems = M.baseline_trees(few, seed=3)
    systems = {"z-model": systems["balanced"], **systems}
    scores = M.evaluate_systems(few, systems)
    assert list(scores) == ["z-model", "left", "right", "balanced", "random"]
    assert scores["z-model"].to_dict() | {"system": "balanced"} == scores["balanced"].to_dict()
    again = M.baseline_trees(few, seed=3)["random"]
    assert [T.to_bracketed(t) for t in again] == [T.to_bracketed(t) for t in systems["random"]]
    other = M.baseline_trees(few, seed=4)["random"]
    assert again != other


# --- properties -----------------------------------------------------------------------

span_sets = st.sets(
    st.tuples(st.integers(0, 15), st.integers(2, 10)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=12,
)


@given(span_sets, span_sets)
def test_scores_in_range_and_symmetric(a, b):
    ab, ba = M.score_spans(a, b), M.score_spans(b, a)
    for s in (ab, ba):
        assert 0.0 <= s.precision <= 1.0 and 0.0 <= s.recall <= 1.0 and 0.0 <= s.f1 <= 1.0
    if a and b:  # away from the empty-set conventions, swapping swaps P and R
        assert ab.precision == ba.recall and ab.recall == ba.precision
        assert ab.f1 == pytest.approx(ba.f1)
    assert M.score_spans(a, a).f1 == 1.0


@given(st.integers(1, 25), st.integers(0, 1000))
def test_tree_against_itself_scores_one(n, seed):
    words = [f"w{i}" for i in range(n)]
    tree = T.random_tree(words, seed)
    s = M.score_spans(T.spans(tree), T.spans(tree))
    assert s.f1 == 1.0 and s.precision == 1.0 and s.recall == 1.0


def test_filter_by_length():
    s = [gold("( (S (NP (PRP It)) (VP (VBD rained))) )"), gold("( (INTJ (UH Yes)) )")]
    assert M.filter_by_length(s, None) == s
    assert M.filter_by_length(s, 1) == [s[1]]


# --- both conventions -----------------------------------------------------------------


def _random_gold(words, rng_seed):
    """A gold sentence over ``words`` whose gold tree is a random binary tree (labels X)."""
    tree = T.random_tree(words, rng_seed)
    spans = T.spans(tree)
    return tb.GoldSentence(words=list(words), tree=tree,
                           labeled_spans=sorted((a, b, "X") for a, b in spans),
                           sentence_labels=["S"] if len(words) >= 2 else [])


corpora = st.lists(st.tuples(st.integers(1, 12), st.integers(0, 10**6), st.integers(0, 10**6)),
                   min_size=1, max_size=8)


@given(corpora)
def test_counting_the_whole_sentence_never_lowers_a_score(corpus):
    """Adding the same matched span to the predicted and the gold counts of a sentence can
    only raise precision, recall and F1 (m <= p, m <= g); the same holds for label recall."""
    sentences, predicted = [], []
    for n, gold_seed, pred_seed in corpus:
        words = [f"w{i}" for i in range(n)]
        sentences.append(_random_gold(words, gold_seed))
        predicted.append(T.random_tree(words, pred_seed))
    r = M.evaluate_trees(sentences, predicted)
    assert r.corpus_precision_with_sentence >= r.corpus_precision - 1e-12
    assert r.corpus_recall_with_sentence >= r.corpus_recall - 1e-12
    assert r.corpus_f1_with_sentence >= r.corpus_f1 - 1e-12
    for label, recall in r.label_recall.items():
        assert r.label_recall_with_sentence[label] >= recall
    # binary trees: as many predicted as gold spans, so P = R = F1 in both conventions
    assert r.corpus_precision == pytest.approx(r.corpus_recall)
    assert r.corpus_f1_with_sentence == pytest.approx(r.corpus_precision_with_sentence)
    # word depth never exceeds the height, and is at least 1 once a sentence has 2 words
    assert r.word_depth <= r.tree_height + 1e-12
    multi = [s for s in sentences if len(s.words) >= 2]
    if len(multi) == len(sentences):
        assert r.word_depth >= 1.0


@given(corpora)
def test_gold_trees_score_one_in_every_convention(corpus):
    sentences = [_random_gold([f"w{i}" for i in range(n)], seed) for n, seed, _ in corpus]
    r = M.evaluate_trees(sentences, [s.tree for s in sentences])
    for value in (r.sentence_f1, r.corpus_f1, r.corpus_f1_with_sentence, *r.label_recall.values(),
                  *r.label_recall_with_sentence.values()):
        assert value == pytest.approx(1.0)
