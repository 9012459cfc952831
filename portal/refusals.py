"""A request the portal answers with something else than the page asked for: raised as
``Refused`` wherever the reason is found (a link that ended, a session gone, a form from
elsewhere, too many submissions, Entra or Keycloak away) and rendered by one handler
(``portal.pages.refused``, registered in ``portal.app``)."""

from __future__ import annotations

import math

from portal.explain import Problem

UNAVAILABLE = Problem(
    503,
    "Please try again in a few minutes",
    "Microsoft Entra or our sign-in service could not be reached just now. Nothing was changed.",
    "Go back and submit the form again in a few minutes.",
)


class Refused(Exception):
    """The answer instead of the page: ``problem`` (a page saying why and what to do, with
    ``clear`` ending the session and ``retry_after`` seconds for a 429/503), or ``redirect``,
    the page the session's link is for. Whatever is to be audited was audited before."""

    def __init__(
        self,
        problem: Problem | None = None,
        *,
        redirect: str | None = None,
        clear: bool = False,
        retry_after: float | None = None,
    ) -> None:
        if (problem is None) == (redirect is None):
            raise ValueError("a refusal is a problem page or a redirect")
        super().__init__(problem.title if problem else f"redirect to {redirect}")
        self.problem = problem
        self.redirect = redirect
        self.clear = clear
        self.retry_after = retry_after


def too_many(wait: float) -> Refused:
    """A rate limit hit: wait ``wait`` seconds."""
    minutes = max(1, math.ceil(wait / 60))
    return Refused(
        Problem(
            429,
            "Too many attempts",
            "This link was used for many submissions in a short time; nothing more was sent.",
            f"Wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
        ),
        retry_after=wait,
    )
