"""The review app at ``/review``: reviewers sign in, see their queues, and judge items with the
keyboard on server-rendered pages (Jinja2) driven by one small script, nothing to build.

- Pages: ``/review/login``, ``/review`` (her queues), ``/review/{queue}`` (the review screen,
  on the next item she gets). JSON under ``/review/{queue}/…``: the next item, a verdict (which
  answers the next item: one round trip per key press), an undo, and regions of an item's
  images cut from their pyramids (:mod:`pixelmill.review.images`). What an item shows, and the
  job a rejection reruns, are in :mod:`pixelmill.service.review_items`.
- Sessions are cookies (``HttpOnly``, ``Secure``, ``SameSite=Strict``, path ``/review``);
  every write carries a CSRF token: the sign-in form a double-submit cookie, the rest the
  session's token in ``X-CSRF-Token``. API keys do not open these pages, and sessions do not
  open ``/v1`` (:class:`~pixelmill.service.auth.KeyGuard` knows only keys).
- A queue she is not given, its items and their images answer ``404``, like what does not
  exist. Pages carry a strict Content-Security-Policy and cannot be framed.
"""

from __future__ import annotations

import hmac
import math
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi import Path as InPath
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markdown_it import MarkdownIt
from markupsafe import Markup
from pydantic import BaseModel, Field

from pixelmill.errors import MissingError, UsageError
from pixelmill.review import Item, Reviews
from pixelmill.review.accounts import SESSION, Session, SignInRefused
from pixelmill.review.images import MAX_SIDE
from pixelmill.review.store import Counts, Queue
from pixelmill.service.deps import Shared
from pixelmill.service.review_items import rerun, view

COOKIE = "pm_review"
LOGIN_COOKIE = "pm_login_csrf"
STATIC = Path(__file__).resolve().parent.parent / "static"
TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}  # fmt: skip
"""Headers of every page and answer of the app."""
UPCOMING = 3
"""Items next in line whose pyramids are made ahead."""
MARKDOWN = MarkdownIt("commonmark", {"html": False})
ItemId = Annotated[int, InPath(ge=1, le=2**62)]

router = APIRouter(prefix="/review", include_in_schema=False)


class Verdict(BaseModel):
    verdict: Literal["approved", "rejected", "skipped"]
    labels: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list,
                                                                 max_length=9)
    note: str = Field("", max_length=5000)
    seconds: float | None = Field(None, ge=0, le=1e6)


def session_of(request: Request, shared: Shared) -> Session | None:
    """The reviewer's live session, from her cookie."""
    token = request.cookies.get(COOKIE)
    return shared.reviewers.session(token) if token and len(token) < 200 else None


SignedIn = Annotated[Session | None, Depends(session_of)]


def reviewer(session: SignedIn) -> Session:
    """The signed-in reviewer of a JSON request (``401`` without one)."""
    if session is None:
        raise HTTPException(401, {"kind": "sign-in", "message": "sign in at /review/login"})
    return session


def writer(request: Request, session: Annotated[Session, Depends(reviewer)]) -> Session:
    """The signed-in reviewer of a request that changes something: it carries her CSRF token
    (``403`` otherwise)."""
    sent = request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, {"kind": "csrf", "message": "missing or wrong CSRF token"})
    return session


Reader = Annotated[Session, Depends(reviewer)]
Writer = Annotated[Session, Depends(writer)]


@router.get("/login")
def login_page(request: Request, session: SignedIn) -> Response:
    if session is not None:
        return _redirect("/review")
    return _login(request)


@router.post("/login")
def login(request: Request, shared: Shared, name: Annotated[str, Form(max_length=100)],
          password: Annotated[str, Form(max_length=1024)],
          csrf: Annotated[str, Form(max_length=100)]) -> Response:  # fmt: skip
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _login(request, "the form has expired or was not ours: sign in again", 403)
    try:
        session = shared.reviewers.sign_in(name, password)
    except SignInRefused as exc:
        status = 429 if exc.retry_after else 401
        page = _login(request, str(exc), status)
        if exc.retry_after:
            page.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return page
    answer = _redirect("/review")
    answer.set_cookie(COOKIE, session.token, max_age=int(SESSION), path="/review",
                      secure=True, httponly=True, samesite="strict")  # fmt: skip
    answer.delete_cookie(LOGIN_COOKIE, path="/review")
    return answer


@router.post("/logout")
def logout(request: Request, shared: Shared, session: SignedIn,
           csrf: Annotated[str, Form(max_length=100)]) -> Response:  # fmt: skip
    if session is None or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise HTTPException(403, {"kind": "csrf", "message": "missing or wrong CSRF token"})
    shared.reviewers.sign_out(session.token)
    answer = _redirect("/review/login")
    answer.delete_cookie(COOKIE, path="/review")
    return answer


@router.get("")
def queues(request: Request, shared: Shared, session: SignedIn) -> Response:
    if session is None:
        return _redirect("/review/login")
    listed = [(queue, counts, shared.reviews.agreement(queue.name)["kappa"]["fleiss"])
              for queue, counts in shared.reviews.queues(session.reviewer.queues)]  # fmt: skip
    return _page(request, "queues.html", session, queues=listed)


@router.get("/{queue}")
def screen(request: Request, queue: str, shared: Shared, session: SignedIn) -> Response:
    if session is None:
        return _redirect("/review/login")
    found = _queue(shared.reviews, session, queue)
    item = _claim(shared, found, session)
    counts = _counts(shared.reviews, found)
    state = {"queue": found.name, "labels": list(found.labels), "item": item,
             "max_side": MAX_SIDE}  # fmt: skip
    return _page(request, "screen.html", session, queue=found, counts=counts, state=state,
                 instructions=Markup(MARKDOWN.render(found.instructions)))  # fmt: skip


@router.get("/{queue}/next")
def next_item(queue: str, shared: Shared, session: Reader) -> Response:
    """The item she judges now (her claim renewed), or 204."""
    found = _queue(shared.reviews, session, queue)
    item = _claim(shared, found, session)
    if item is None:
        return Response(status_code=204, headers=HEADERS)
    return _json({"item": item, "counts": _counts(shared.reviews, found).to_json()})


@router.post("/{queue}/items/{item_id}/verdict")
def verdict(queue: str, item_id: ItemId, body: Verdict, shared: Shared,
            session: Writer) -> Response:  # fmt: skip
    """Record her verdict, run what a decision sets off, and answer the next item."""
    found = _queue(shared.reviews, session, queue)
    _item(shared.reviews, found, item_id)
    decision = shared.reviews.judge(item_id, session.reviewer.name, body.verdict, body.labels,
                                    body.note, body.seconds)  # fmt: skip
    job = None
    if decision.action and decision.action.startswith("rerun:"):
        job = rerun(shared, decision.item, decision.action.removeprefix("rerun:"))
    item = _claim(shared, found, session)
    return _json({"decided": decision.decided, "rerun": job, "item": item,
                  "counts": _counts(shared.reviews, found).to_json()})  # fmt: skip


@router.post("/{queue}/undo")
def undo(queue: str, shared: Shared, session: Writer) -> Response:
    """Take back her last verdict in the queue: the item comes back to her (204: none)."""
    found = _queue(shared.reviews, session, queue)
    item = shared.reviews.undo(found.name, session.reviewer.name)
    if item is None:
        return Response(status_code=204, headers=HEADERS)
    return _json({"item": view(shared, item), "counts": _counts(shared.reviews, found).to_json()})


@router.get("/{queue}/items/{item_id}/image/{which}")
async def image(queue: str, item_id: ItemId, which: Literal["source", "output"], shared: Shared,
                session: Reader, left: float = 0.0, top: float = 0.0, width: float = 1.0,
                height: float = 1.0, size: int = 1024) -> Response:  # fmt: skip
    """A region of the item's source or output (fractions of the image), as a JPEG."""
    item = _item(shared.reviews, _queue(shared.reviews, session, queue), item_id)
    uri = item.source_uri if which == "source" else item.output_uri
    if uri is None:
        raise HTTPException(404, {"kind": "not-found", "message": "this item has no output"})
    body = await run_in_threadpool(shared.previews.crop, uri, left, top, width, height, size)
    return Response(body, media_type="image/jpeg",
                    headers={**HEADERS, "Cache-Control": "private, max-age=3600"})  # fmt: skip


def _claim(shared: Shared, queue: Queue, session: Session) -> dict[str, Any] | None:
    """Claim her next item and prepare the images of those next in line."""
    item = shared.reviews.next(queue.name, session.reviewer.name)
    upcoming = [item] if item else []
    upcoming += shared.reviews.upcoming(queue.name, UPCOMING)
    shared.previews.warm(uri for each in upcoming for uri in (each.source_uri, each.output_uri)
                         if uri)  # fmt: skip
    return view(shared, item) if item else None


def _counts(reviews: Reviews, queue: Queue) -> Counts:
    return dict(reviews.queues([queue.name]))[queue]


def _queue(reviews: Reviews, session: Session, name: str) -> Queue:
    """Her queue ``name`` (404 when it is not hers, as when it does not exist)."""
    if session.reviewer.may_review(name):
        try:
            return reviews.queue(name)
        except MissingError:
            pass
    raise HTTPException(404, {"kind": "not-found", "message": f"no queue {name[:100]!r}"})


def _item(reviews: Reviews, queue: Queue, item_id: int) -> Item:
    try:
        item = reviews.item(item_id)
    except (MissingError, UsageError):
        item = None
    if item is None or item.queue != queue.name:
        raise HTTPException(404, {"kind": "not-found", "message": f"no item {item_id}"})
    return item


def _login(request: Request, message: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(32)
    page = TEMPLATES.TemplateResponse(request, "review/login.html",
                                      {"csrf": token, "message": message},
                                      status_code=status, headers=HEADERS)  # fmt: skip
    page.set_cookie(LOGIN_COOKIE, token, max_age=3600, path="/review", secure=True,
                    httponly=True, samesite="strict")  # fmt: skip
    return page


def _page(request: Request, template: str, session: Session, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, f"review/{template}",
                                      {"reviewer": session.reviewer, "csrf": session.csrf,
                                       **context}, headers=HEADERS)  # fmt: skip


def _json(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=HEADERS)


def _redirect(to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers=HEADERS)
