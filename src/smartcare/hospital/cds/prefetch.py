"""Prefetch for CDS Hooks 2.0 services: templates, completion from ``fhirServer``, paging and failure.

Following CDS Hooks 2.0 §Prefetch (cds-hooks.hl7.org/2.0/#prefetch-template):

- a key the client sent with a value is satisfied; ``null`` means "no data" (satisfied, empty);
- a key the client left out was not satisfied: the service fetches it from ``fhirServer`` with the
  ``fhirAuthorization`` bearer token ("it is the CDS Service's responsibility to check prefetched data
  against its template ... and to manually retrieve any additional necessary data");
- a value that is an ``OperationOutcome`` is the client's report that fetching failed; the service does
  not query again for that key (that is what the OperationOutcome is for) and treats it as unavailable;
- searchset Bundles are followed through their ``next`` links (prefetch and our own queries alike), only
  on ``fhirServer`` itself so the token never goes elsewhere, up to :data:`MAX_PAGES` pages;
- when a key the service needs (``required``) cannot be obtained -- no ``fhirServer``, the server is
  unreachable, refuses the token (401/403) or errs -- the service answers **412 Precondition Failed**
  (§HTTP Status Codes: "unable to retrieve the necessary FHIR data ... through a prefetch request or
  directly calling the FHIR server"). Optional keys that cannot be obtained are reported, not guessed:
  the response carries them in its ``extension`` and each card says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from smartcare.core.errors import SmartcareError

MAX_PAGES = 50  # next-link pages followed per key
PAGE_SIZE = 200  # _count asked for in our templates


class PrefetchUnavailableError(SmartcareError):
    """Data a service needs could not be obtained (CDS Hooks 2.0: HTTP 412 Precondition Failed)."""

    status = 412
    title = "Precondition Failed"


class _FetchError(Exception):
    """One key could not be fetched; ``fatal`` when further queries to the server are pointless."""

    def __init__(self, reason: str, fatal: bool = False):
        super().__init__(reason)
        self.fatal = fatal


@cache
def score_loincs() -> tuple[str, ...]:
    """Every LOINC code the score inputs are read from (``tables/fhir_inputs.json``), panels included."""
    table = json.loads((Path(__file__).with_name("tables") / "fhir_inputs.json").read_text(encoding="utf-8"))
    codes = [c for spec in table["observations"].values() for c in spec.get("loinc", [])]
    codes += list(table.get("panels", {}))
    return tuple(dict.fromkeys(codes))


def observations_template() -> str:
    """The score inputs' Observations, newest first, in pages of :data:`PAGE_SIZE`."""
    return (f"Observation?patient={{{{context.patientId}}}}&code={','.join(score_loincs())}"
            f"&_sort=-date&_count={PAGE_SIZE}")


@dataclass
class Prefetch:
    """Prefetch data by key, plus the keys that could not be obtained and why."""

    data: dict[str, Any] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)

    def note(self) -> dict[str, Any] | None:
        """The response extension reporting what was fetched and what is missing (None when all is there)."""
        if not self.unavailable and not self.fetched:
            return None
        return {"smartcare-prefetch": {"fetched": self.fetched, "unavailable": self.unavailable}}


def _is_outcome(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


def _outcome_text(value: Mapping) -> str:
    issues = value.get("issue") or [{}]
    return "; ".join(str(i.get("diagnostics") or i.get("code") or "error") for i in issues)


def _next_link(bundle: Any) -> str | None:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        return None
    return next((lk.get("url") for lk in bundle.get("link") or [] if lk.get("relation") == "next"), None)


class Fetcher:
    """GETs on ``fhirServer`` with the bearer token; stops after the first fatal failure."""

    def __init__(self, base: str, token: str | None, client: httpx.Client):
        self.base = base.rstrip("/")
        self.client = client
        self.headers = {"Accept": "application/fhir+json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.dead: str | None = None  # why the server is not worth asking again

    def get(self, url: str) -> Any:
        if self.dead:
            raise _FetchError(self.dead, fatal=True)
        try:
            resp = self.client.get(url, headers=self.headers)
        except httpx.HTTPError as err:
            self.dead = f"fhirServer {self.base} unreachable ({type(err).__name__}: {err})"
            raise _FetchError(self.dead, fatal=True) from None
        if resp.status_code in (401, 403):
            self.dead = f"fhirServer refused the authorization (HTTP {resp.status_code})"
            raise _FetchError(self.dead, fatal=True)
        if resp.status_code != 200:
            raise _FetchError(f"GET {url} answered HTTP {resp.status_code}")
        try:
            return resp.json()
        except ValueError:
            raise _FetchError(f"GET {url} did not answer JSON") from None

    def rest(self, bundle: Any) -> Any:
        """``bundle`` with the entries of every ``next`` page appended (links on ``fhirServer`` only)."""
        url, pages = _next_link(bundle), 1
        if url is None:
            return bundle
        out = {**bundle, "entry": list(bundle.get("entry") or [])}
        while url is not None:
            if not (url == self.base or url.startswith(self.base + "/") or url.startswith(self.base + "?")):
                raise _FetchError(f"next link {url} is not on fhirServer {self.base}; not followed with the token")
            if pages >= MAX_PAGES:
                raise _FetchError(f"more than {MAX_PAGES} pages of results")
            page = self.get(url)
            pages += 1
            out["entry"].extend((page or {}).get("entry") or [])
            url = _next_link(page)
        out["link"] = [lk for lk in out.get("link") or [] if lk.get("relation") != "next"]
        return out


def gather(
    prefetch: Mapping[str, Any] | None,
    templates: Mapping[str, str],
    required: tuple[str, ...],
    fhir_server: str | None,
    token: str | None,
    render,
    client: httpx.Client | None = None,
) -> Prefetch:
    """Satisfy every template key: from the request's prefetch, completed and paged from ``fhirServer``.

    ``render(template) -> str`` fills the ``{{context.*}}`` tokens. Raises PrefetchUnavailableError (412)
    when a ``required`` key cannot be obtained; other keys that cannot be are listed in ``unavailable``.
    """
    given = dict(prefetch or {})
    out = Prefetch()
    own = client is None and bool(fhir_server)
    client = client if client is not None else (httpx.Client(timeout=10.0) if fhir_server else None)
    fetcher = Fetcher(fhir_server, token, client) if fhir_server and client is not None else None
    try:
        for key, template in templates.items():
            if key in given:
                value = given[key]
                if value is None:  # the client has no data for this key
                    continue
                if _is_outcome(value):
                    out.unavailable[key] = f"the CDS client could not prefetch it: {_outcome_text(value)}"
                    continue
                if _next_link(value) and fetcher is None:
                    out.unavailable[key] = "only the first page was sent (next link) and there is no fhirServer"
                elif _next_link(value):
                    try:
                        value = fetcher.rest(value)
                    except _FetchError as err:
                        out.unavailable[key] = f"only the first page was sent and the rest failed: {err}"
                out.data[key] = value
                continue
            if fetcher is None:
                out.unavailable[key] = "not in prefetch and no fhirServer to fetch it from"
                continue
            try:
                value = fetcher.get(f"{fetcher.base}/{render(template)}")
                out.data[key] = fetcher.rest(value)
                out.fetched.append(key)
            except _FetchError as err:
                out.unavailable[key] = str(err)
        # prefetch keys outside our templates are kept (clients may send more)
        out.data.update({k: v for k, v in given.items() if k not in templates and v is not None})
    finally:
        if own and client is not None:
            client.close()
    needed = [k for k in required if k in out.unavailable]
    if needed:
        reasons = "; ".join(f"{k}: {out.unavailable[k]}" for k in needed)
        raise PrefetchUnavailableError(f"cannot obtain the FHIR data this service needs ({reasons})")
    return out
