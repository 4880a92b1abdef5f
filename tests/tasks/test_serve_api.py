"""The viewer's JSON API (onlstm.tasks.serve) through FastAPI's test client: parsing, the
treebank summary and one sentence's comparison agree with the library; every refusal is a
4xx status with a one-line JSON error; the server keeps serving after an internal error."""

import re
import xml.etree.ElementTree as ET

import pytest

pytest.importorskip("fastapi", reason="the viewer needs FastAPI: pip install 'onlstm[serve]'")
pytest.importorskip("httpx2", reason="FastAPI's test client needs httpx2: pip install 'onlstm[test]'")

from fastapi.testclient import TestClient  # noqa: E402

from onlstm import trees as T  # noqa: E402
from onlstm.lm import LanguageModel  # noqa: E402
from onlstm.metrics import score_spans  # noqa: E402
from onlstm.tasks import parse_eval  # noqa: E402
from onlstm.tasks.parse import parse  # noqa: E402
from onlstm.tasks.serve.app import STATIC, create_app  # noqa: E402
from onlstm.tasks.serve.service import Limits  # noqa: E402
from serve_helpers import write_tiny_model, write_treebank  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    return write_tiny_model(root / "tiny"), write_treebank(root / "small.mrg")


@pytest.fixture(scope="module")
def client(files):
    model, treebank = files
    app = create_app({"tiny": model}, treebank_files=[str(treebank)],
                     limits=Limits(max_sentences=5, max_chars=400, max_sentence_chars=200))
    with TestClient(app) as c:
        yield c


def classes(svg: str, cls: str) -> list:
    """Elements of an SVG string whose class list holds ``cls`` (it must parse as XML)."""
    root = ET.fromstring(svg)
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def test_models_and_treebanks(client):
    models = client.get("/api/models").json()["models"]
    assert [(m["name"], m["layers"], m["default_layer"], m["tokenizer"]) for m in models] == [("tiny", 3, 2, "ptb")]
    treebanks = {t["name"]: t for t in client.get("/api/treebanks").json()["treebanks"]}
    assert list(treebanks) == ["small", "wsj", "sinica"]  # the files named at start first
    assert treebanks["small"]["sentences"] == 3 and treebanks["wsj"]["sentences"] is None  # read lazily


def test_parse_gives_the_library_trees_with_drawings(client, files):
    sentences = ["The cat sat on the mat.", "", "A dog ran away"]
    r = client.post("/api/parse", json={"sentences": sentences, "model": "tiny"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["model"] == "tiny" and data["layer"] == "layer 2" and data["layers"] == 3
    assert data["skipped_empty"] == 1
    expected = parse(LanguageModel.from_pretrained(files[0]), ["The cat sat on the mat.", "A dog ran away"])
    for got, want in zip(data["sentences"], expected):
        assert got["words"] == want.words and got["tree"] == want.tree
        assert got["bracketed"] == T.to_bracketed(want.tree)
        assert len(got["distances"]) == len(got["input_distances"]) == 3
        assert all(len(row) == len(want.words) for row in got["distances"])
        n = len(want.words)
        assert [e.text for e in classes(got["svg"], "leaf")] == want.words
        bars = classes(got["svg"], "bar")
        assert len(bars) == 3 * n and len([b for b in bars if "chosen" in b.get("class")]) == n
        assert {b.get("data-layer") for b in bars if "chosen" in b.get("class")} == {"2"}
    assert data["sentences"][0]["dropped"] == ["."]


def test_parse_settings_layer_mean_input_split(client, files):
    r = client.post("/api/parse", json={"sentences": ["the company said it lost money"], "layer": "mean",
                                        "distance": "input", "decoder": "split"})
    assert r.status_code == 200, r.text
    got = r.json()["sentences"][0]
    d_i = got["input_distances"]
    mean = [sum(row[t] for row in d_i) / 3 for t in range(len(got["words"]))]
    assert got["tree"] == T.split(got["words"], mean)
    assert got["layer"] == "mean" and got["distance"] == "input"
    assert len([b for b in classes(got["svg"], "bar") if "chosen" in b.get("class")]) == 3 * len(got["words"])
    r = client.post("/api/parse", json={"sentences": ["a dog ran away"], "layer": 3})
    assert r.json()["layer"] == "layer 3"


def _error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    assert body["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


@pytest.mark.parametrize("body, status, message", [
    ({"sentences": []}, 422, "empty"),
    ({"sentences": ["  ", ""]}, 422, "empty"),
    ({"sentences": ["a dog"] * 6}, 413, "too many sentences"),
    ({"sentences": ["a dog ran away " * 12] * 3}, 413, "too much text"),
    ({"sentences": ["a dog ran " * 30]}, 413, "sentence 1 is too long"),
    ({"sentences": ["a dog"], "model": "gpt"}, 404, "unknown model 'gpt'"),
    ({"sentences": ["a dog"], "model": ["tiny"]}, 404, "unknown model"),
    ({"sentences": ["a dog"], "layer": 0}, 422, "layer must be 1..3"),
    ({"sentences": ["a dog"], "layer": 4}, 422, "layer must be 1..3"),
    ({"sentences": ["a dog"], "layer": "two"}, 422, "layer must be 1..3"),
    ({"sentences": ["a dog"], "layer": True}, 422, "layer must be 1..3"),
    ({"sentences": ["a dog"], "layer": 1.5}, 422, "layer must be 1..3"),
    ({"sentences": ["a dog"], "decoder": "cky"}, 422, "decoder must be one of greedy, split"),
    ({"sentences": ["a dog"], "distance": "output"}, 422, "distance must be one of forget, input"),
    ({"sentences": ["a dog"], "pretokenized": "yes"}, 422, "pretokenized must be"),
    ({"sentences": ["a dog", "..."]}, 422, "sentence 2 has no word left"),
    ({"sentences": "a dog"}, 422, "sentences must be a list of strings"),
    ({"sentences": [1, 2]}, 422, "sentences must be a list of strings"),
    ({"text": ["a dog"]}, 422, "unknown field(s) 'text'"),
    ({"model": "tiny"}, 422, 'missing field "sentences"'),
    ([["a dog"]], 422, "must be a JSON object"),
])
def test_parse_refusals(client, body, status, message):
    assert message in _error(client.post("/api/parse", json=body), status)


def test_malformed_huge_and_undecodable_bodies(client):
    headers = {"Content-Type": "application/json"}
    assert "malformed JSON" in _error(client.post("/api/parse", content=b'{"sentences": [', headers=headers), 400)
    assert "not UTF-8" in _error(client.post("/api/parse", content=b'{"sentences": ["\xff"]}', headers=headers), 400)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "malformed JSON" in _error(client.post("/api/parse", content=deep, headers=headers), 400)
    huge = b'{"sentences": ["' + b"a " * 600_000 + b'"]}'
    assert "too large" in _error(client.post("/api/parse", content=huge, headers=headers), 413)
    assert client.post("/api/parse", json={"sentences": ["a dog"]}).status_code == 200  # still serving


def test_treebank_summary_is_the_parse_eval_report(client, files):
    model, treebank = files
    r = client.get("/api/treebank/small/summary", params={"layer": "2"})
    assert r.status_code == 200, r.text
    data = r.json()
    gold = parse_eval.load_sentences([str(treebank)])
    systems = parse_eval.model_systems(LanguageModel.from_pretrained(model), gold)
    systems.update(parse_eval.baseline_systems(gold))
    report = parse_eval.build_report(gold, systems, treebank=str(treebank), seed=0, distance="forget",
                                     decoder="greedy")
    assert data["report"] == report.to_dict()
    assert data["table"] == parse_eval.format_table(report)
    assert list(data["report"]["systems"]) == ["layer 1", "layer 2", "layer 3", "mean", "left", "right",
                                               "balanced", "random"]
    assert data["system"] == "layer 2" and data["model"] == "tiny"
    f1 = [round(score_spans(T.spans(tree), s.spans).f1, 4) for tree, s in zip(systems["layer 2"], gold)]
    assert [s["f1"] for s in data["sentences"]] == f1
    assert [s["length"] for s in data["sentences"]] == [6, 4, 8]
    assert data["sentences"][2]["text"] == "the company said it lost money N times"


def test_treebank_results_are_cached(client):
    viewer = client.app.state.viewer
    before = len(viewer._distances)
    for decoder in ("greedy", "split", "greedy"):
        assert client.get("/api/treebank/small/summary", params={"decoder": decoder}).status_code == 200
    assert client.get("/api/treebank/small/sentence/1", params={"decoder": "split", "layer": "mean"}).status_code == 200
    keys = [k for k in viewer._results if k[0] == "small"]
    assert len(viewer._distances) <= before + 1 and sorted(k[2] for k in keys) == ["greedy", "split"]


def test_one_sentence_compared(client):
    r = client.get("/api/treebank/small/sentence/2", params={"layer": "2"})
    assert r.status_code == 200, r.text
    d = r.json()
    gold = parse_eval.load_sentences([d["source"].rsplit(":", 1)[0]])[2]
    assert d["words"] == gold.words and d["gold"] == gold.tree and d["total"] == 3
    predicted = set(map(tuple, d["spans"]["matched"] + d["spans"]["extra"]))
    assert predicted == T.spans(d["predicted"])
    assert set(map(tuple, d["spans"]["matched"] + d["spans"]["missing"])) == gold.spans
    score = score_spans(predicted, gold.spans)
    assert d["score"]["f1"] == score.f1 and d["scores"]["layer 2"] == round(score.f1, 4)
    summary = client.get("/api/treebank/small/summary", params={"layer": "2"}).json()
    assert summary["sentences"][2]["f1"] == d["scores"]["layer 2"]
    n = len(d["words"])
    assert len(classes(d["svg"]["gold"], "leaf")) == len(classes(d["svg"]["predicted"], "leaf")) == n
    assert len(classes(d["svg"]["predicted"], "bar")) == 3 * n and not classes(d["svg"]["gold"], "bar")
    # the drawings mark exactly the spans the JSON lists
    marked = {kind: {tuple(map(int, e.get("data-span").split("-"))) for e in classes(d["svg"][tree], kind)}
              for tree, kind in (("gold", "match"), ("gold", "miss"), ("predicted", "extra"))}
    assert marked["match"] == set(map(tuple, d["spans"]["matched"]))
    assert marked["miss"] == set(map(tuple, d["spans"]["missing"]))
    assert marked["extra"] == set(map(tuple, d["spans"]["extra"]))
    assert {tuple(map(int, e.get("data-span").split("-"))) for e in classes(d["svg"]["predicted"], "match")} \
        == marked["match"]
    labels = {e.text for e in ET.fromstring(d["svg"]["gold"]).iter(SVG + "text") if e.get("class") == "label"}
    assert {"NP", "VP", "S/SBAR", "S"} <= labels  # a collapsed unary chain: its labels, innermost first


@pytest.mark.parametrize("path, status, message", [
    ("/api/treebank/small/sentence/3", 404, "no sentence 3 in treebank small: it has 3"),
    ("/api/treebank/small/sentence/-1", 404, "no sentence '-1'"),
    ("/api/treebank/small/sentence/abc", 404, "no sentence 'abc'"),
    ("/api/treebank/small/sentence/99999999999999999999", 404, "no sentence"),
    ("/api/treebank/nope/sentence/0", 404, "unknown treebank 'nope'"),
    ("/api/treebank/nope/summary", 404, "unknown treebank 'nope'"),
    ("/api/treebank/%2Fetc%2Fpasswd/summary", 404, ""),  # no route reads a path: 404 either way
    ("/api/treebank/small/summary?layer=9", 422, "layer must be 1..3"),
    ("/api/treebank/small/summary?model=other", 404, "unknown model 'other'"),
    ("/api/treebank/small/summary?decoder=best", 422, "decoder must be one of"),
    ("/api/treebank/small/sentence/0?distance=x", 422, "distance must be one of"),
    ("/api/nothing", 404, "no such page or API route"),
    ("/static/..%2Fservice.py", 404, "no such"),
    ("/static/service.py", 404, "no such file"),
])
def test_treebank_and_route_refusals(client, path, status, message):
    assert message in _error(client.get(path), status)


def test_wrong_method_is_a_json_error(client):
    _error(client.get("/api/parse"), 405)


def test_page_and_assets_fetch_nothing_from_the_network(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="static/viewer.js"' in page.text
    for name in ("viewer.js", "viewer.css", "tree.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.text
    for path in STATIC.iterdir():
        text = path.read_text()
        # the only URL is the SVG namespace of inline drawings
        assert not [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text) if "w3.org/2000/svg" not in u], path


def test_internal_error_is_json_and_the_server_lives_on(files, monkeypatch):
    app = create_app({"tiny": files[0]}, treebanks={})
    with TestClient(app, raise_server_exceptions=False) as c:
        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(app.state.viewer, "parse", broken)
        assert "internal error (RuntimeError: boom)" in _error(c.post("/api/parse", json={"sentences": ["a"]}), 500)
        monkeypatch.undo()
        assert c.post("/api/parse", json={"sentences": ["a dog"]}).status_code == 200
        assert c.get("/api/treebanks").json() == {"treebanks": []}


def test_only_loopback_host_names_when_asked(files):
    app = create_app({"tiny": files[0]}, treebanks={}, allowed_hosts=["127.0.0.1", "localhost"])
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/api/models").status_code == 200
    assert TestClient(app, base_url="http://attacker.example").get("/api/models").status_code == 400


def test_bundled_models(tmp_path):
    with TestClient(create_app(treebanks={})) as c:
        names = [m["name"] for m in c.get("/api/models").json()["models"]]
        assert names[0] == "ptb-onlstm" and "zh-onlstm" in names
        r = c.post("/api/parse", json={"sentences": ["The man who sold the house moved to New York."]})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["model"] == "ptb-onlstm" and got["layer"] == "layer 3"
        s = got["sentences"][0]
        assert s["words"] == "The man who sold the house moved to New York".split() and s["oov"] == 0
        assert T.leaves(s["tree"]) == s["words"] and len(classes(s["svg"], "bar")) == 3 * 10
        r = c.post("/api/parse", json={"sentences": ["我们在北京学习中文。"], "model": "zh-onlstm"})
        assert r.status_code == 200, r.text
        s = r.json()["sentences"][0]
        assert "".join(s["words"]) == "我们在北京学习中文" and T.leaves(s["tree"]) == s["words"]
        assert len(classes(s["svg"], "leaf")) == len(s["words"])
