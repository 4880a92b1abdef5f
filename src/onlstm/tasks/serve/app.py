"""The FastAPI application of ``onlstm serve``: the page and the JSON API under ``/api/``.

Routes (every answer is JSON; every refusal is a 4xx status with ``{"error": "one line"}``):

- ``GET /api/models`` -- the models served: name, layers, default layer, tokenizer, ...;
- ``GET /api/treebanks`` -- the treebanks served: name, description, sentences (once read);
- ``POST /api/parse`` -- body ``{"sentences": [...], "model": NAME, "layer": 1..L | "mean",
  "distance": "forget" | "input", "decoder": "greedy" | "split", "pretokenized": false}``
  (all but ``sentences`` optional) -> every sentence's words, tree, bracketed form, d_f and
  d_i of every layer and SVG drawing;
- ``GET /api/treebank/{name}/summary?model=&layer=&decoder=&distance=`` -- the
  ``parse-eval`` report (JSON and its text table) and every sentence's F1 for that layer;
- ``GET /api/treebank/{name}/sentence/{index}?...`` -- sentence ``index`` (0-based): gold
  and predicted trees, matched / missing / extra spans, scores, distances, drawings.

The page (``/``) and its three assets (``/static/...``, package data; no network fetch) use
the same API. The work is in :class:`.service.Viewer`; this module only maps HTTP to it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ...errors import UserError
from ...tree_svg import SVG_CSS
from .service import ApiError, Limits, TreebankSource, Viewer, file_treebank

__all__ = ["create_app", "MAX_BODY_BYTES"]

STATIC = Path(__file__).resolve().with_name("static")
#: The page's assets: the only files the server sends (name -> media type).
ASSETS = {"viewer.js": "text/javascript", "viewer.css": "text/css"}
#: Largest request body read (larger: 413 before it is read).
MAX_BODY_BYTES = 1 << 20


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (ApiError 413) past ``limit`` bytes without reading on."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body too large: {int(declared):,} bytes (at most {limit:,})")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body too large: more than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(models: Optional[Mapping[str, Union[str, Path]]] = None,
               treebanks: Optional[Mapping[str, TreebankSource]] = None, *, treebank_files: Sequence[str] = (),
               limits: Limits = Limits(), batch_size: int = 64, max_length: Optional[int] = None,
               allowed_hosts: Optional[Sequence[str]] = None, viewer: Optional[Viewer] = None) -> FastAPI:
    """The web application.

    ``models``: name -> model folder (default: the bundled models); ``treebanks``: name ->
    :class:`~.service.TreebankSource` (default: the bundled WSJ and Sinica samples);
    ``treebank_files``: more treebank files, read now (UserErrors name them);
    ``limits``: what one parse request may hold; ``max_length``: treebank sentences of at
    most that many words only; ``allowed_hosts``: the Host headers accepted (None: any; the
    command line passes the loopback names, which keeps other web sites from reaching the
    server through DNS rebinding). ``viewer``: a ready :class:`~.service.Viewer` instead."""
    if viewer is None:
        viewer = Viewer(models, treebanks, limits=limits, batch_size=batch_size, max_length=max_length)
        named: dict = {}  # the files named at start come first: the page opens the first treebank
        for path in treebank_files:
            src = file_treebank(path, list(viewer.treebanks) + list(named), max_length=max_length)
            named[src.name] = src
        viewer.treebanks = {**named, **viewer.treebanks}
    app = FastAPI(title="onlstm viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.viewer = viewer
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return _error(err.status, err.message)

    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError):
        return _error(422, str(err))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        message = err.detail if isinstance(err.detail, str) else "request refused"
        if err.status_code == 404 and message == "Not Found":
            message = f"no such page or API route: {request.url.path}"
        return _error(err.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return _error(422, f"{where + ': ' if where else ''}{first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, err: Exception):  # the server lives on; the page says so
        return _error(500, f"internal error ({type(err).__name__}: {err})")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/static/tree.css", include_in_schema=False)
    def tree_css() -> Response:
        return Response(SVG_CSS, media_type="text/css")

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise ApiError(404, f"no such file: /static/{name}")
        return Response((STATIC / name).read_bytes(), media_type=ASSETS[name])

    @app.get("/api/models")
    def models_route() -> JSONResponse:
        return JSONResponse({"models": viewer.model_list()})

    @app.get("/api/treebanks")
    def treebanks_route() -> JSONResponse:
        return JSONResponse({"treebanks": viewer.treebank_list()})

    @app.post("/api/parse")
    async def parse_route(request: Request) -> JSONResponse:
        raw = await _read_body(request, MAX_BODY_BYTES)
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ApiError(400, "the request body is not UTF-8 text") from None
        except (json.JSONDecodeError, RecursionError) as err:
            raise ApiError(400, f"malformed JSON body: {getattr(err, 'msg', err)}") from None
        if not isinstance(body, dict):
            raise ApiError(422, 'the body must be a JSON object: {"sentences": [...], ...}')
        unknown = sorted(set(body) - {"sentences", "model", "layer", "distance", "decoder", "pretokenized"})
        if unknown:
            raise ApiError(422, f"unknown field(s) {', '.join(map(repr, unknown))}; the fields are sentences, "
                                "model, layer, distance, decoder, pretokenized")
        if "sentences" not in body:
            raise ApiError(422, 'missing field "sentences" (a list of strings)')
        result = await run_in_threadpool(viewer.parse, body["sentences"], body.get("model"), body.get("layer"),
                                         body.get("distance"), body.get("decoder"), body.get("pretokenized", False))
        return JSONResponse(result)

    @app.get("/api/treebank/{name}/summary")
    def summary_route(name: str, model: Optional[str] = None, layer: Optional[str] = None,
                      decoder: Optional[str] = None, distance: Optional[str] = None) -> JSONResponse:
        return JSONResponse(viewer.summary(name, model, layer, decoder, distance))

    @app.get("/api/treebank/{name}/sentence/{index}")
    def sentence_route(name: str, index: str, model: Optional[str] = None, layer: Optional[str] = None,
                       decoder: Optional[str] = None, distance: Optional[str] = None) -> JSONResponse:
        if not (index.isascii() and index.isdigit()) or len(index) > 9:
            raise ApiError(404, f"no sentence {index!r} in treebank {name!r}: the index is a number from 0")
        return JSONResponse(viewer.sentence(name, int(index), model, layer, decoder, distance))

    return app
