"""``pixelmill reviewers …``: the people who may sign in to the review app, and their queues
(see docs/review.md)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from pixelmill.cli.main import cli, settings_of

if TYPE_CHECKING:
    from pixelmill.review.accounts import Reviewer, Reviewers

_STDIN = click.option("--password-stdin", is_flag=True,
                      help="Read the password from standard input (default: make one and "
                           "print it once).")  # fmt: skip
_QUEUES = click.option("--queues", default="", metavar="A,B", help="The queues she may review.")
_GRANTED = click.option("--queues", required=True, metavar="A,B",
                        help="The queues she may review from now on ('' for none).")


@cli.group()
def reviewers() -> None:
    """Reviewers of the review app (signed in with a password, apart from API keys)."""


def _accounts(ctx: click.Context) -> Reviewers:
    from pixelmill.review.accounts import Reviewers

    return Reviewers.of(settings_of(ctx))


def _given(password_stdin: bool) -> str | None:
    return sys.stdin.readline().removesuffix("\n") if password_stdin else None


def _shown(name: str, password: str, password_stdin: bool) -> None:
    if not password_stdin:
        click.echo(f"password for {name} (shown this once): {password}")


def _granted(reviewer: Reviewer, err: bool = False) -> None:
    click.echo(f"reviewer {reviewer.name} may review: {', '.join(reviewer.queues) or 'no queue'}",
               err=err)  # fmt: skip


@reviewers.command()
@click.argument("name")
@_STDIN
@_QUEUES
@click.pass_context
def add(ctx: click.Context, name: str, password_stdin: bool, queues: str) -> None:
    """Make the reviewer NAME; without --password-stdin, print her generated password once."""
    accounts = _accounts(ctx)
    _shown(name, accounts.add(name, _given(password_stdin), queues.split(",")), password_stdin)
    _granted(accounts.get(name), err=True)  # stdout has the password alone


@reviewers.command()
@click.argument("name")
@_STDIN
@click.pass_context
def password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Give NAME a new password (her sessions end)."""
    _shown(name, _accounts(ctx).password(name, _given(password_stdin)), password_stdin)
    click.echo(f"reviewer {name} has a new password; her sessions ended", err=True)


@reviewers.command()
@click.argument("name")
@_GRANTED
@click.pass_context
def grant(ctx: click.Context, name: str, queues: str) -> None:
    """Set the queues NAME may review (replacing those she had)."""
    _granted(_accounts(ctx).grant(name, queues.split(",")))


@reviewers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """The reviewers and their queues."""
    found = [{"name": r.name, "queues": list(r.queues), "created": r.created}
             for r in _accounts(ctx).list()]  # fmt: skip
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for row in found:
        click.echo(f"{row['name']:30} {', '.join(row['queues']) or '-'}")


@reviewers.command()
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove NAME and end her sessions (her verdicts stay)."""
    _accounts(ctx).remove(name)
