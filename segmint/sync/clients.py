"""Destination clients: one ``send(changes)`` per API, returning one outcome per record.

Every HTTP call goes through ``HttpApi.request``: a per-destination rate limiter (limits,
moving window), HubSpot's rate-limit headers honoured, ``429`` and ``5xx`` answers and
dropped connections or timeouts retried with exponential backoff and jitter (tenacity),
``Retry-After`` obeyed. Writes are idempotent (set the tag property to a value), so a retry
after a connection dropped mid-request cannot duplicate anything.

Tags without the destination's prefix are never touched: the HubSpot and Salesforce
clients read the current value, keep the foreign tags and replace only segmint's.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from segmint.sync.config import Destination
from segmint.sync.plan import Change

SEPARATOR = ";"


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Outcome:
    record_key: str
    ok: bool
    reason: str | None = None
    crm_record_id: str | None = None


@dataclass
class CallStats:
    api_calls: int = 0
    retries: int = 0
    throttled: int = 0
    errors: list[str] = field(default_factory=list)


class RateLimiter:
    """At most ``per_second`` calls in any one-second window (or the server's stricter limit)."""

    def __init__(self, per_second: float) -> None:
        self.item = RateLimitItemPerSecond(max(int(per_second), 1), 1)
        self.per_second = float(self.item.amount)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def adopt(self, amount: int, seconds: int) -> None:
        """Take the server's limit (amount per interval) when it is stricter than ours."""
        if amount > 0 and seconds > 0 and amount / seconds < self.per_second:
            self.item = RateLimitItemPerSecond(amount, seconds)
            self.per_second = amount / seconds

    # A call is counted here just before it is sent, and by the server on arrival; the
    # margin keeps network jitter from squeezing 11 calls into the server's window.
    MARGIN_SECONDS = 0.01

    def acquire(self) -> None:
        while True:
            if self.limiter.hit(self.item, "calls"):
                return
            stats = self.limiter.get_window_stats(self.item, "calls")
            time.sleep(max(stats.reset_time - time.time(), 0.0) + self.MARGIN_SECONDS)


def property_values(destination: Destination, change: Change) -> dict:
    """The destination's prediction properties to write with a change: the values for a
    create or update, None for each (cleared) when segmint takes a record off."""
    if not destination.properties:
        return {}
    if change.action in ("remove", "erase"):
        return dict.fromkeys(destination.properties)
    values = change.properties or {}
    return {name: values.get(name) for name in destination.properties}


def merge_tags(current: str | None, desired: list[str], prefix: str) -> str:
    """Foreign tags kept as they are, then segmint's desired tags."""
    existing = [t for t in (current or "").split(SEPARATOR) if t]
    foreign = [t for t in existing if not t.startswith(prefix)]
    return SEPARATOR.join([*foreign, *sorted(desired)])


class HttpApi:
    def __init__(self, destination: Destination, stats: CallStats, environ: Mapping[str, str],
                 url: str | None = None):  # fmt: skip
        self.destination = destination
        self.stats = stats
        base_url = url or destination.url(environ)
        headers = {"Content-Type": "application/json"}
        token = destination.token(environ)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=destination.timeout_seconds
        )
        self.limiter = RateLimiter(destination.requests_per_second)
        self._backoff = wait_exponential_jitter(initial=0.2, max=10.0)

    def close(self) -> None:
        self.http.close()

    def _wait(self, retry_state) -> float:
        error = retry_state.outcome.exception()
        if isinstance(error, RetryableError) and error.retry_after is not None:
            return error.retry_after
        return self._backoff(retry_state)

    def _before_sleep(self, retry_state) -> None:
        self.stats.retries += 1

    def request(self, method: str, path: str, sign=None, **kwargs) -> httpx.Response:
        """One call with retries; ``sign()``, when given, adds headers fresh for each attempt
        (a signed timestamp must be current when a retry goes out)."""
        retrying = Retrying(
            stop=stop_after_attempt(self.destination.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((RetryableError, httpx.TransportError)),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                self.limiter.acquire()
                self.stats.api_calls += 1
                if sign is not None:
                    kwargs["headers"] = {**kwargs.get("headers", {}), **sign()}
                response = self.http.request(method, path, **kwargs)
                self._observe(response)
                if response.status_code == 429 or response.status_code >= 500:
                    if response.status_code == 429:
                        self.stats.throttled += 1
                    raise RetryableError(
                        f"{method} {path}: HTTP {response.status_code}",
                        retry_after_seconds(
                            response.headers.get("Retry-After"),
                            self.destination.max_retry_after_seconds,
                        ),
                    )
                return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _observe(self, response: httpx.Response) -> None:
        """HubSpot states its limit (calls per interval): the limiter never exceeds it."""
        maximum = response.headers.get("X-HubSpot-RateLimit-Max")
        interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if maximum and interval:
            self.limiter.adopt(int(maximum), max(round(int(interval) / 1000), 1))


def retry_after_seconds(value: str | None, cap: float, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date
    (RFC 9110 10.2.3), never more than ``cap``; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap)


def _error_text(response: httpx.Response) -> str:
    return f"HTTP {response.status_code}: {response.text[:300]}"


class HubSpotClient:
    """Contacts batch API: read the property, then update by id or upsert by email."""

    def __init__(self, destination: Destination, stats: CallStats,
                 environ: Mapping[str, str]) -> None:  # fmt: skip
        self.d = destination
        self.api = HttpApi(destination, stats, environ)

    def close(self) -> None:
        self.api.close()

    def _read(self, keys: list[str], by_email: bool) -> tuple[dict[str, dict], set[str]]:
        body = {
            "properties": [self.d.hubspot_property, "email"],
            "inputs": [{"id": k} for k in keys],
        }
        if by_email:
            body["idProperty"] = "email"
        response = self.api.request("POST", "/crm/v3/objects/contacts/batch/read", json=body)
        if response.status_code not in (200, 207):
            raise RuntimeError(f"HubSpot batch read failed: {_error_text(response)}")
        payload = response.json()
        found = {}
        for result in payload.get("results", []):
            key = (result["properties"].get("email") or "").lower() if by_email else result["id"]
            found[key] = result
        missing = set()
        for error in payload.get("errors", []):
            missing.update(str(i) for i in error.get("context", {}).get("ids", []))
        return found, missing

    def _write(self, path: str, inputs: list[dict], keys: list[str]) -> dict[str, Outcome]:
        outcomes: dict[str, Outcome] = {}
        if not inputs:
            return outcomes
        response = self.api.request("POST", path, json={"inputs": inputs})
        if response.status_code == 204:
            return {k: Outcome(k, True) for k in keys}
        if response.status_code not in (200, 207):
            return {k: Outcome(k, False, _error_text(response)) for k in keys}
        payload = response.json()
        failed = {}
        for error in payload.get("errors", []):
            for i in error.get("context", {}).get("ids", []):
                failed[str(i)] = f"{error.get('category')}: {error.get('message')}"
        ids = {}
        for result in payload.get("results", []):
            email = (result.get("properties", {}).get("email") or "").lower()
            ids[email] = result["id"]
            ids[result["id"]] = result["id"]
        for key in keys:
            if key in failed or key.lower() in failed:
                outcomes[key] = Outcome(key, False, failed.get(key) or failed.get(key.lower()))
            else:
                outcomes[key] = Outcome(key, True, crm_record_id=ids.get(key.lower()))
        return outcomes

    def _gdpr_delete(self, key: str, contact_id: str) -> Outcome:
        """Permanently delete a contact (GDPR delete; archiving would keep it restorable)."""
        response = self.api.request(
            "POST", "/crm/v3/objects/contacts/gdpr-delete", json={"objectId": contact_id}
        )
        if response.status_code in (200, 204):
            return Outcome(key, True, crm_record_id=contact_id)
        return Outcome(key, False, _error_text(response), contact_id)

    def send(self, changes: list[Change]) -> list[Outcome]:
        prop = self.d.hubspot_property
        out: dict[str, Outcome] = {}
        for by_email in (False, True):
            group = [c for c in changes if (c.key_type == "email") == by_email]
            if not group:
                continue
            keys = [c.record_key for c in group]
            found, _ = self._read(keys, by_email)
            updates, upserts, archive = [], [], []
            for c in group:
                key = c.record_key.lower() if by_email else c.record_key
                current = found.get(key)
                if current is None and not by_email:
                    out[c.record_key] = Outcome(c.record_key, False, "contact not found in HubSpot")
                    continue
                if current is None and c.action in ("remove", "erase"):
                    out[c.record_key] = Outcome(c.record_key, True)  # nothing to take off
                    continue
                if c.action == "erase" and self.d.delete_erased:
                    archive.append((c.record_key, current["id"]))
                    continue
                value = merge_tags(
                    current["properties"].get(prop) if current else None,
                    c.tags,
                    self.d.tag_prefix,
                )
                # HubSpot takes property values as strings; "" clears one.
                extra = property_values(self.d, c)
                properties = {prop: value, **{k: "" if v is None else str(v)
                                              for k, v in extra.items()}}  # fmt: skip
                if by_email:
                    upserts.append(
                        {"id": c.record_key, "idProperty": "email", "properties": properties}
                    )
                else:
                    updates.append({"id": c.record_key, "properties": properties})
            base = "/crm/v3/objects/contacts/batch"
            out.update(self._write(f"{base}/update", updates, [u["id"] for u in updates]))
            out.update(self._write(f"{base}/upsert", upserts, [u["id"] for u in upserts]))
            for key, contact_id in archive:
                out[key] = self._gdpr_delete(key, contact_id)
        return [out[c.record_key] for c in changes]


class SalesforceClient:
    """sObject Collections on Contact by id: retrieve the field, then PATCH the records."""

    def __init__(self, destination: Destination, stats: CallStats,
                 environ: Mapping[str, str]) -> None:  # fmt: skip
        self.d = destination
        self.api = HttpApi(destination, stats, environ)
        self.base = f"/services/data/{destination.api_version}/composite/sobjects"

    def close(self) -> None:
        self.api.close()

    def send(self, changes: list[Change]) -> list[Outcome]:
        field_name = self.d.salesforce_field
        ids = [c.record_key for c in changes]
        response = self.api.request(
            "GET",
            f"{self.base}/Contact",
            params={"ids": ",".join(ids), "fields": f"Id,{field_name}"},
        )
        if response.status_code != 200:
            return [Outcome(i, False, _error_text(response)) for i in ids]
        current = dict(zip(ids, response.json(), strict=True))
        out: dict[str, Outcome] = {}
        records, deletes = [], []
        for c in changes:
            record = current.get(c.record_key)
            if record is None:
                out[c.record_key] = Outcome(c.record_key, False, "contact not found in Salesforce")
                continue
            if c.action == "erase" and self.d.delete_erased:
                deletes.append(c.record_key)
                continue
            value = merge_tags(record.get(field_name), c.tags, self.d.tag_prefix)
            record = {"attributes": {"type": "Contact"}, "id": c.record_key}
            records.append({**record, field_name: value or None, **property_values(self.d, c)})
        if deletes and self.d.hard_delete:
            out.update(self._hard_delete(deletes))
            deletes = []
        for path, method, kwargs, keys in (
            (self.base, "PATCH", {"json": {"allOrNone": False, "records": records}},
             [r["id"] for r in records]),
            (self.base, "DELETE", {"params": {"ids": ",".join(deletes), "allOrNone": "false"}},
             deletes),
        ):  # fmt: skip
            if not keys:
                continue
            response = self.api.request(method, path, **kwargs)
            if response.status_code != 200:
                out.update({k: Outcome(k, False, _error_text(response)) for k in keys})
                continue
            for key, result in zip(keys, response.json(), strict=True):
                if result.get("success"):
                    out[key] = Outcome(key, True, crm_record_id=key)
                else:
                    reason = "; ".join(
                        f"{e.get('statusCode')}: {e.get('message')}"
                        for e in result.get("errors", [])
                    )
                    out[key] = Outcome(key, False, reason)
        return [out[c.record_key] for c in changes]

    def _hard_delete(self, ids: list[str]) -> dict[str, Outcome]:
        """Delete contacts for good: a Bulk API 2.0 ingest job with operation hardDelete
        (create the job, upload the ids as CSV, close it, wait for it, read its results)."""
        jobs = f"/services/data/{self.d.api_version}/jobs/ingest"
        created = self.api.request("POST", jobs, json={
            "object": "Contact", "operation": "hardDelete", "contentType": "CSV",
            "lineEnding": "LF",
        })  # fmt: skip
        if created.status_code not in (200, 201):
            return {i: Outcome(i, False, _error_text(created)) for i in ids}
        job = f"{jobs}/{created.json()['id']}"
        csv_text = "Id\n" + "".join(f"{i}\n" for i in ids)
        upload = {"content": csv_text, "headers": {"Content-Type": "text/csv"}}
        steps = (
            ("PUT", f"{job}/batches", upload),
            ("PATCH", job, {"json": {"state": "UploadComplete"}}),
        )
        for method, path, kwargs in steps:
            response = self.api.request(method, path, **kwargs)
            if response.status_code not in (200, 201):
                self.api.request("PATCH", job, json={"state": "Aborted"})
                return {i: Outcome(i, False, _error_text(response)) for i in ids}
        deadline = time.monotonic() + self.d.bulk_timeout_seconds
        pause = 0.2
        while True:
            info = self.api.request("GET", job)
            state = info.json().get("state") if info.status_code == 200 else None
            if state in ("JobComplete", "Failed", "Aborted"):
                break
            if time.monotonic() > deadline:
                message = f"Bulk API job {job} still {state} after {self.d.bulk_timeout_seconds} s"
                return {i: Outcome(i, False, message) for i in ids}
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        if state != "JobComplete":
            message = f"Bulk API job {state}: {info.json().get('errorMessage', '')}".strip()
            return {i: Outcome(i, False, message) for i in ids}
        out: dict[str, Outcome] = {}
        for kind in ("successfulResults", "failedResults"):
            response = self.api.request("GET", f"{job}/{kind}/")
            if response.status_code != 200:
                continue
            for row in csv.DictReader(io.StringIO(response.text)):
                key = row.get("Id") or row.get("sf__Id", "")
                if kind == "successfulResults":
                    out[key] = Outcome(key, True, crm_record_id=key)
                else:
                    out[key] = Outcome(key, False, row.get("sf__Error", "failed"))
        for i in ids:  # a record the job does not report on has not been deleted
            out.setdefault(i, Outcome(i, False, f"not in the results of Bulk API job {job}"))
        return out


def webhook_signature(secret: str, timestamp: str, delivery: str, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<delivery>.<body>``: the time and the delivery id are
    signed with the body, so a captured request can be neither re-dated nor re-sent."""
    message = timestamp.encode() + b"." + delivery.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def webhook_headers(secret: str | None, delivery: str, body: bytes, now: float | None = None):
    timestamp = str(int(now if now is not None else time.time()))
    headers = {"X-Segmint-Timestamp": timestamp, "X-Segmint-Delivery": delivery}
    if secret:
        headers["X-Segmint-Signature"] = webhook_signature(secret, timestamp, delivery, body)
    return headers


def verify_webhook(secret: str, headers, body: bytes, seen: set[str], now: float | None = None,
                   tolerance: float = 300) -> tuple[int, str]:  # fmt: skip
    """The receiver's side (docs/crm-sync.md): (HTTP status, reason). A delivery already
    accepted is acknowledged again (200) but not applied twice."""
    timestamp = headers.get("X-Segmint-Timestamp", "")
    delivery = headers.get("X-Segmint-Delivery", "")
    expected = webhook_signature(secret, timestamp, delivery, body)
    if not hmac.compare_digest(expected, headers.get("X-Segmint-Signature", "")):
        return 401, "bad signature"
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return 401, "bad timestamp"
    if age > tolerance:
        return 401, f"stale timestamp ({age:.0f} s old, tolerance {tolerance:.0f} s)"
    if delivery in seen:
        return 200, "duplicate delivery, already applied"
    return 200, "ok"


class WebhookClient:
    """JSON batches POSTed to a URL, signed with HMAC-SHA256 of timestamp, delivery id and
    body (verify_webhook is the receiver's recipe)."""

    def __init__(self, destination: Destination, stats: CallStats, run_id: str,
                 environ: Mapping[str, str]) -> None:  # fmt: skip
        self.d = destination
        self.run_id = run_id
        self.secret = destination.secret(environ)
        url = urlsplit(destination.url(environ))
        self.path = url.path or "/"
        self.api = HttpApi(destination, stats, environ, url=f"{url.scheme}://{url.netloc}")
        self.batch = 0

    def close(self) -> None:
        self.api.close()

    def send(self, changes: list[Change]) -> list[Outcome]:
        self.batch += 1
        body = json.dumps(
            {
                "destination": self.d.name,
                "run_id": self.run_id,
                "batch": self.batch,
                "records": [c.as_payload() for c in changes],
            },
            sort_keys=True,
        ).encode()
        delivery = f"{self.run_id}-{self.batch}"

        def sign() -> dict[str, str]:
            return webhook_headers(self.secret, delivery, body)

        response = self.api.request("POST", self.path, content=body, sign=sign)
        ok = 200 <= response.status_code < 300
        reason = None if ok else _error_text(response)
        return [Outcome(c.record_key, ok, reason) for c in changes]


class FileClient:
    """Changes appended to <export dir>/<destination>/<run_id>.jsonl (or .csv)."""

    def __init__(self, destination: Destination, run_id: str,
                 environ: Mapping[str, str]) -> None:  # fmt: skip
        folder = destination.export_dir(environ) / destination.name
        folder.mkdir(parents=True, exist_ok=True)
        self.d = destination
        self.path = folder / f"{run_id}.{destination.format}"

    def close(self) -> None:
        pass

    def send(self, changes: list[Change]) -> list[Outcome]:
        import csv

        new = not self.path.exists()
        with self.path.open("a", newline="") as fh:
            if self.d.format == "jsonl":
                for c in changes:
                    fh.write(json.dumps(c.as_payload(), sort_keys=True) + "\n")
            else:
                writer = csv.writer(fh)
                if new:
                    writer.writerow(
                        ["record_key", "customer_id", "action", "tags", "add", "remove",
                         "properties"]
                    )  # fmt: skip
                for c in changes:
                    properties = json.dumps(c.properties, sort_keys=True) if c.properties else ""
                    writer.writerow([c.record_key, c.customer_id, c.action, SEPARATOR.join(c.tags),
                                     SEPARATOR.join(c.add), SEPARATOR.join(c.remove),
                                     properties])  # fmt: skip
        return [Outcome(c.record_key, True) for c in changes]


def client_for(destination: Destination, stats: CallStats, run_id: str,
               environ: Mapping[str, str]):  # fmt: skip
    """The destination's client; its URL, token and secret come from ``environ``."""
    if destination.type == "hubspot":
        return HubSpotClient(destination, stats, environ)
    if destination.type == "salesforce":
        return SalesforceClient(destination, stats, environ)
    if destination.type == "webhook":
        return WebhookClient(destination, stats, run_id, environ)
    return FileClient(destination, run_id, environ)
