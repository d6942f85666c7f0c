"""A local CRM emulator: a real HTTP server on 127.0.0.1 for tests, the demo and benches.

It implements the parts of the APIs segmint uses, with their documented request and
response shapes:

- HubSpot CRM v3 contacts batch API: ``POST /crm/v3/objects/contacts/batch/read``,
  ``/batch/update``, ``/batch/upsert`` (``idProperty: email``) and ``/batch/archive``, and
  ``POST /crm/v3/objects/contacts/gdpr-delete`` (the contact is removed for good); at most
  100 inputs; ``207`` multi-status with ``errors`` when some inputs fail; Bearer token;
  ``X-HubSpot-RateLimit-*`` headers when a rate limit is configured.
- Salesforce sObject Collections: ``GET /services/data/<v>/composite/sobjects/Contact?ids=
  &fields=``, ``PATCH /services/data/<v>/composite/sobjects`` and ``DELETE ...?ids=``; at most
  200 records; one result per record (``success``, ``errors``) with ``allOrNone: false``.
- Salesforce Bulk API 2.0 ingest jobs with operation ``hardDelete`` (``POST .../jobs/ingest``,
  ``PUT .../batches`` as CSV, ``PATCH`` to ``UploadComplete``, ``GET`` the job until
  ``JobComplete``, then ``successfulResults/`` and ``failedResults/``): the contacts are
  removed for good. ``hard_delete_permission = False`` refuses the job as Salesforce does
  for a user without the "Bulk API Hard Delete" permission.
- A webhook receiver ``POST /webhook`` checking the ``X-Segmint-Signature`` HMAC over the
  timestamp, the delivery id and the body (``verify_webhook``): stale or re-dated requests
  are refused, a delivery already applied is acknowledged without being applied again.

Faults are injected through ``POST /_emulator/faults``: ``429`` (with ``Retry-After`` and
HubSpot's headers), ``500`` / ``503``, ``slow`` (delay, then answer), ``drop`` (close the
connection without an answer), ``drop_after`` (apply the request, then close the
connection), ``partial`` (reject given record keys with per-record errors). A fault
applies to the next ``count`` requests whose path starts with ``path``, after letting
``skip`` of them through. State and the request log are read through
``GET /_emulator/contacts`` and ``GET /_emulator/requests``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import socket
import threading
import time
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from segmint.sync.clients import verify_webhook

HUBSPOT_BATCH_LIMIT = 100
SALESFORCE_BATCH_LIMIT = 200
_SF = re.compile(r"^/services/data/(v\d+\.\d+)/composite/sobjects(?:/Contact)?$")
_SF_BULK = re.compile(
    r"^/services/data/v\d+\.\d+/jobs/ingest(?:/(?P<job>[^/]+)(?:/(?P<part>batches|"
    r"successfulResults|failedResults)/?)?)?$"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sf_failure(record_id: str, code: str, message: str) -> dict:
    """One failed record of an sObject Collections answer."""
    return {
        "id": record_id,
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": []}],
    }


class _Csv(str):
    """A response body sent as text/csv (Bulk API results)."""


class _Dropped(Exception):
    """Close the connection without an answer."""


class EmulatorState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.hubspot: dict[str, dict] = {}
        self.hubspot_email: dict[str, str] = {}
        self.hubspot_blocklist: set[str] = set()  # emails GDPR-deleted
        self.salesforce: dict[str, dict] = {}
        self.salesforce_hard_deleted: set[str] = set()  # gone for good (Bulk API hardDelete)
        self.salesforce_bulk_jobs: dict[str, dict] = {}
        self.hard_delete_permission = True  # the user's "Bulk API Hard Delete" permission
        self.webhook: list[dict] = []
        self.webhook_deliveries: set[str] = set()  # delivery ids applied (replays refused)
        self.requests: list[dict] = []
        self.faults: list[dict] = []
        self.requests_per_second: float | None = None
        self.webhook_secret: str | None = None
        self.recent: dict[str, deque] = {}
        self.next_id = 1_000_000

    # -- helpers (call with the lock held) --------------------------------------------
    def seed(self, contacts: dict) -> None:
        for contact in contacts.get("hubspot", []):
            given = str(contact["id"]) if contact.get("id") else None
            self.hubspot_put(contact.get("properties", {}), None, new_id=given)
        for contact in contacts.get("salesforce", []):
            self.salesforce[contact["Id"]] = dict(contact)

    def take_fault(self, path: str) -> dict | None:
        for fault in self.faults:
            if path.startswith(fault.get("path", "/")) and fault["remaining"] > 0:
                if fault.get("skip", 0) > 0:  # let this many matching requests through first
                    fault["skip"] -= 1
                    return None
                fault["remaining"] -= 1
                return dict(fault)
        return None

    def over_limit(self, api: str) -> tuple[bool, int]:
        """Sliding one-second window per API; (limited, remaining)."""
        if not self.requests_per_second:
            return False, -1
        window = self.recent.setdefault(api, deque())
        now = time.monotonic()
        while window and now - window[0] >= 1.0:
            window.popleft()
        limit = int(self.requests_per_second)
        if len(window) >= limit:
            return True, 0
        window.append(now)
        return False, limit - len(window)

    def hubspot_put(
        self, properties: dict, contact_id: str | None = None, new_id: str | None = None
    ) -> tuple[dict, bool]:
        """Update a contact, or create one (with ``new_id`` or the next free id)."""
        created = contact_id is None
        if created:
            self.next_id += 1
            contact_id = new_id or str(self.next_id)
            self.hubspot[contact_id] = {
                "id": contact_id,
                "properties": {},
                "createdAt": _now(),
                "archived": False,
            }
        record = self.hubspot[contact_id]
        record["properties"].update(properties)
        record["properties"]["hs_object_id"] = contact_id
        record["updatedAt"] = _now()
        email = record["properties"].get("email")
        if email:
            self.hubspot_email[email.strip().lower()] = contact_id
        return record, created


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add about 40 ms to every response.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    # -- plumbing ---------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload=None, headers: dict | None = None) -> None:
        text = isinstance(payload, _Csv)
        body = (
            b"" if payload is None else (payload.encode() if text else json.dumps(payload).encode())
        )
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "text/csv" if text else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, method: str) -> None:
        raw = self._body()
        url = urlparse(self.path)
        state = self.server.state
        if url.path.startswith("/_emulator/"):
            return self._admin(method, url, raw)
        api = (
            "hubspot"
            if url.path.startswith("/crm/")
            else ("salesforce" if url.path.startswith("/services/") else "webhook")
        )
        with state.lock:
            fault = state.take_fault(url.path)
            limited, remaining = state.over_limit(api)
        entry = {
            "at": time.time(),
            "method": method,
            "path": url.path,
            "api": api,
            "fault": fault["kind"] if fault else None,
        }
        rate_headers = {}
        if api == "hubspot" and state.requests_per_second:
            rate_headers = {
                "X-HubSpot-RateLimit-Max": int(state.requests_per_second),
                "X-HubSpot-RateLimit-Remaining": max(remaining, 0),
                "X-HubSpot-RateLimit-Interval-Milliseconds": 1000,
            }
        try:
            if fault and fault["kind"] == "drop":
                raise _Dropped
            if fault and fault["kind"] == "slow":
                time.sleep(float(fault.get("delay", 1.0)))
            if (fault and fault["kind"] == "429") or limited:
                retry_after = fault.get("retry_after", 1) if fault else 1
                headers = {"Retry-After": retry_after, **rate_headers}
                if api == "hubspot":
                    headers["X-HubSpot-RateLimit-Remaining"] = 0
                entry["status"] = 429
                return self._send(
                    429,
                    {
                        "status": "error",
                        "errorType": "RATE_LIMIT",
                        "category": "RATE_LIMITS",
                        "message": "You have reached your secondly limit.",
                    },
                    headers,
                )
            if fault and fault["kind"] in ("500", "502", "503"):
                entry["status"] = int(fault["kind"])
                return self._send(
                    int(fault["kind"]), {"status": "error", "message": "internal error"}
                )
            status, payload = self._route(method, url, raw, fault)
            entry["status"] = status
            entry["records"] = getattr(self, "_records", 0)
            entry["keys"] = getattr(self, "_keys", [])
            if fault and fault["kind"] == "drop_after":
                raise _Dropped
            self._send(status, payload, rate_headers)
        except _Dropped:
            entry["status"] = "dropped"
            self._drop()
        finally:
            with state.lock:
                state.requests.append(entry)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    # -- APIs -------------------------------------------------------------------------
    def _route(self, method, url, raw, fault):
        self._records = 0
        self._keys = []  # records written (not read), for the request log
        reject = set(fault.get("keys", [])) if fault and fault["kind"] == "partial" else set()
        if url.path == "/crm/v3/objects/contacts/gdpr-delete" and method == "POST":
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                return 401, {
                    "status": "error",
                    "category": "INVALID_AUTHENTICATION",
                    "message": "Authentication credentials not found.",
                }
            return self._hubspot_gdpr_delete(json.loads(raw or b"{}"))
        if url.path.startswith("/crm/v3/objects/contacts/batch/") and method == "POST":
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                return 401, {
                    "status": "error",
                    "category": "INVALID_AUTHENTICATION",
                    "message": "Authentication credentials not found.",
                }
            return self._hubspot(url.path.rsplit("/", 1)[1], json.loads(raw or b"{}"), reject)
        bulk = _SF_BULK.match(url.path)
        if bulk:
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                return 401, [
                    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
                ]
            return self._salesforce_bulk(method, bulk["job"], bulk["part"], raw)
        match = _SF.match(url.path)
        if match:
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                return 401, [
                    {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
                ]
            return self._salesforce(method, url, raw, reject)
        if url.path == "/webhook" and method == "POST":
            state = self.server.state
            delivery = self.headers.get("X-Segmint-Delivery", "")
            if state.webhook_secret:
                with state.lock:
                    status, reason = verify_webhook(
                        state.webhook_secret, self.headers, raw, state.webhook_deliveries
                    )
                if status != 200:
                    return status, {"error": reason}
                if reason != "ok":
                    return 200, {"received": 0, "duplicate": True}
            batch = json.loads(raw)
            self._records = len(batch.get("records", []))
            with state.lock:
                state.webhook.append(batch)
                state.webhook_deliveries.add(delivery)
            return 200, {"received": self._records}
        return 404, {"status": "error", "message": f"no route {method} {url.path}"}

    def _hubspot_gdpr_delete(self, body: dict):
        """GDPR delete: the contact is gone for good (not archived). By email, an address
        that matches no contact is blocklisted and the answer is still 204."""
        key = str(body.get("objectId", ""))
        state = self.server.state
        self._records, self._keys = 1, [key]
        with state.lock:
            if body.get("idProperty") == "email":
                contact_id = state.hubspot_email.get(key.strip().lower())
                state.hubspot_blocklist.add(key.strip().lower())
            else:
                contact_id = key if key in state.hubspot else None
                if contact_id is None:
                    return 404, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                 "message": f"Contact {key} not found"}  # fmt: skip
            if contact_id is not None:
                record = state.hubspot.pop(contact_id)
                email = (record["properties"].get("email") or "").strip().lower()
                state.hubspot_email.pop(email, None)
        return 204, None

    def _hubspot(self, action: str, body: dict, reject: set):
        inputs = body.get("inputs", [])
        self._records = len(inputs)
        if action in ("update", "upsert", "archive"):
            self._keys = [str(i.get("id")) for i in inputs]
        if len(inputs) > HUBSPOT_BATCH_LIMIT:
            return 400, {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": f"Batch input limit of {HUBSPOT_BATCH_LIMIT} exceeded",
            }
        state = self.server.state
        started = _now()
        results, missing, failed = [], [], []
        by_email = body.get("idProperty") == "email" or action == "upsert"
        with state.lock:
            for item in inputs:
                key = str(item.get("id", ""))
                if action == "upsert" and item.get("idProperty") != "email":
                    failed.append((key, "upsert needs idProperty email"))
                    continue
                if key in reject:
                    failed.append((key, "Property values were not valid"))
                    continue
                if action == "upsert" and key.strip().lower() in state.hubspot_blocklist:
                    failed.append((key, "the email address was GDPR-deleted and is blocklisted"))
                    continue
                contact_id = state.hubspot_email.get(key.strip().lower()) if by_email else key
                exists = contact_id in state.hubspot and not state.hubspot[contact_id]["archived"]
                if action == "read":
                    if not exists:
                        missing.append(key)
                        continue
                    record = state.hubspot[contact_id]
                    wanted = set(body.get("properties", [])) | {"hs_object_id", "email"}
                    props = {k: v for k, v in record["properties"].items() if k in wanted}
                    results.append({**record, "properties": props})
                elif action == "update":
                    if not exists:
                        missing.append(key)
                        continue
                    record, _ = state.hubspot_put(item.get("properties", {}), contact_id)
                    results.append(json.loads(json.dumps(record)))
                elif action == "upsert":
                    props = {**item.get("properties", {}), "email": key}
                    record, created = state.hubspot_put(props, contact_id if exists else None)
                    results.append({**json.loads(json.dumps(record)), "new": created})
                elif action == "archive":
                    if exists:
                        state.hubspot[contact_id]["archived"] = True
                else:
                    return 404, {"status": "error", "message": f"unknown batch action {action}"}
        if action == "archive":
            return 204, None
        errors = []
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted "
                    "or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        for key, message in failed:
            errors.append(
                {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": message,
                    "context": {"ids": [key]},
                }
            )
        payload = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now(),
        }
        if errors:
            payload.update({"numErrors": len(missing) + len(failed), "errors": errors})
            return 207, payload
        return 200, payload

    def _salesforce(self, method, url, raw, reject: set):
        state = self.server.state
        query = parse_qs(url.query)
        if method == "GET":
            ids = query.get("ids", [""])[0].split(",") if query.get("ids") else []
            fields = query.get("fields", ["Id"])[0].split(",")
            self._records = len(ids)
            if len(ids) > 2000:
                return 400, [{"message": "too many ids", "errorCode": "EXCEEDED_ID_LIMIT"}]
            with state.lock:
                out = []
                for i in ids:
                    record = state.salesforce.get(i)
                    if record is None or record.get("IsDeleted"):
                        out.append(None)
                    else:
                        out.append(
                            {
                                "attributes": {"type": "Contact"},
                                **{f: record.get(f) for f in fields},
                            }
                        )
            return 200, out
        if method == "PATCH":
            body = json.loads(raw or b"{}")
            records = body.get("records", [])
            self._records = len(records)
            self._keys = [str(r.get("id") or r.get("Id")) for r in records]
            if len(records) > SALESFORCE_BATCH_LIMIT:
                return 400, [
                    {
                        "message": f"more than {SALESFORCE_BATCH_LIMIT} records",
                        "errorCode": "EXCEEDED_ID_LIMIT",
                    }
                ]
            out = []
            with state.lock:
                for record in records:
                    rid = record.get("id") or record.get("Id")
                    if rid in reject:
                        out.append(
                            _sf_failure(
                                rid,
                                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                "rejected by a validation rule",
                            )
                        )
                        continue
                    existing = state.salesforce.get(rid)
                    if existing is None or existing.get("IsDeleted"):
                        code = "ENTITY_IS_DELETED" if existing else "INVALID_CROSS_REFERENCE_KEY"
                        out.append(_sf_failure(rid, code, "invalid id"))
                        continue
                    fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                    existing.update(fields)
                    out.append({"id": rid, "success": True, "errors": []})
            return 200, out
        if method == "DELETE":
            ids = query.get("ids", [""])[0].split(",") if query.get("ids") else []
            self._records = len(ids)
            out = []
            with state.lock:
                for i in ids:
                    record = state.salesforce.get(i)
                    if record is None or record.get("IsDeleted"):
                        out.append(_sf_failure(i, "ENTITY_IS_DELETED", "deleted"))
                    else:
                        record["IsDeleted"] = True
                        out.append({"id": i, "success": True, "errors": []})
            return 200, out
        return 405, [{"message": f"{method} not allowed", "errorCode": "METHOD_NOT_ALLOWED"}]

    def _salesforce_bulk(self, method, job_id, part, raw):
        """Bulk API 2.0 ingest jobs, operation hardDelete only: the records leave the CRM
        for good (no Recycle Bin). A job reports InProgress once before it is complete."""
        state = self.server.state
        with state.lock:
            if job_id is None and method == "POST":
                body = json.loads(raw or b"{}")
                if body.get("operation") != "hardDelete" or body.get("object") != "Contact":
                    message = "the emulator runs hardDelete jobs on Contact"
                    return 400, [{"errorCode": "INVALIDJOB", "message": message}]
                if not state.hard_delete_permission:
                    message = "The user does not have the Bulk API Hard Delete permission"
                    return 400, [{"errorCode": "FEATURENOTENABLED", "message": message}]
                state.next_id += 1
                job_id = f"750{state.next_id}"
                state.salesforce_bulk_jobs[job_id] = {
                    "id": job_id, "operation": "hardDelete", "object": "Contact",
                    "state": "Open", "ids": [], "done": [], "failed": [], "polled": 0,
                }  # fmt: skip
                return 200, self._job_info(job_id)
            job = state.salesforce_bulk_jobs.get(job_id or "")
            if job is None:
                return 404, [{"errorCode": "NOT_FOUND", "message": "no such job"}]
            if part == "batches" and method == "PUT":
                if job["state"] != "Open":
                    return 400, [{"errorCode": "INVALIDJOBSTATE", "message": job["state"]}]
                rows = list(csv.DictReader(io.StringIO(raw.decode())))
                job["ids"] += [r["Id"] for r in rows]
                self._records = len(rows)
                return 201, None
            if part is None and method == "PATCH":
                wanted = json.loads(raw or b"{}").get("state")
                if wanted == "Aborted":
                    job["state"] = "Aborted"
                elif wanted == "UploadComplete" and job["state"] == "Open":
                    job["state"] = "UploadComplete"
                    self._keys = list(job["ids"])
                    for rid in job["ids"]:
                        if rid in state.salesforce:
                            del state.salesforce[rid]
                            state.salesforce_hard_deleted.add(rid)
                            job["done"].append(rid)
                        else:
                            job["failed"].append(rid)
                else:
                    return 400, [{"errorCode": "INVALIDJOBSTATE", "message": job["state"]}]
                return 200, self._job_info(job_id)
            if part is None and method == "GET":
                if job["state"] == "UploadComplete":
                    job["polled"] += 1
                    if job["polled"] > 1:
                        job["state"] = "JobComplete"
                return 200, self._job_info(job_id)
            if part == "successfulResults" and method == "GET":
                lines = ['"sf__Id","sf__Created","Id"'] + [
                    f'"{i}","false","{i}"' for i in job["done"]
                ]
                return 200, _Csv("\n".join(lines) + "\n")
            if part == "failedResults" and method == "GET":
                lines = ['"sf__Id","sf__Error","Id"'] + [
                    f'"","ENTITY_IS_DELETED:entity is deleted:--","{i}"' for i in job["failed"]
                ]
                return 200, _Csv("\n".join(lines) + "\n")
        return 405, [{"message": f"{method} not allowed", "errorCode": "METHOD_NOT_ALLOWED"}]

    def _job_info(self, job_id: str) -> dict:
        job = self.server.state.salesforce_bulk_jobs[job_id]
        return {
            "id": job_id, "operation": job["operation"], "object": job["object"],
            "state": job["state"], "contentType": "CSV", "lineEnding": "LF",
            "contentUrl": f"services/data/v62.0/jobs/ingest/{job_id}/batches",
            "numberRecordsProcessed": len(job["done"]) + len(job["failed"]),
            "numberRecordsFailed": len(job["failed"]),
        }  # fmt: skip

    # -- admin ------------------------------------------------------------------------
    def _admin(self, method, url, raw) -> None:
        state = self.server.state
        action = url.path.removeprefix("/_emulator/")
        body = json.loads(raw or b"null")
        with state.lock:
            if method == "GET" and action == "contacts":
                crm = parse_qs(url.query).get("crm", ["hubspot"])[0]
                data = state.hubspot if crm == "hubspot" else state.salesforce
                return self._send(200, list(data.values()))
            if method == "GET" and action == "requests":
                return self._send(200, state.requests)
            if method == "GET" and action == "webhook":
                return self._send(200, state.webhook)
            if method == "POST" and action == "reset":
                state.reset()
                return self._send(200, {"reset": True})
            if method == "POST" and action == "faults":
                for fault in body if isinstance(body, list) else [body]:
                    state.faults.append({**fault, "remaining": int(fault.get("count", 1))})
                return self._send(200, {"faults": len(state.faults)})
            if method == "POST" and action == "config":
                if "requests_per_second" in body:
                    state.requests_per_second = body["requests_per_second"]
                if "webhook_secret" in body:
                    state.webhook_secret = body["webhook_secret"]
                if "hard_delete_permission" in body:
                    state.hard_delete_permission = bool(body["hard_delete_permission"])
                return self._send(200, {"ok": True})
            if method == "POST" and action == "seed":
                state.seed(body)
                return self._send(
                    200, {"hubspot": len(state.hubspot), "salesforce": len(state.salesforce)}
                )
        self._send(404, {"error": f"no admin route {method} {url.path}"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state: EmulatorState):
        super().__init__(address, _Handler)
        self.state = state


class CrmEmulator:
    """Run the emulator in a background thread: ``with CrmEmulator() as crm: crm.url``."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.state = EmulatorState()
        self.server = _Server((host, port), self.state)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def seed(self, contacts: dict) -> None:
        """Contacts the CRMs already hold: {"hubspot": [{id, properties}], "salesforce": [...]}."""
        with self.state.lock:
            self.state.seed(contacts)

    def start(self) -> CrmEmulator:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> CrmEmulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def seed_from_landing(landing_dir, foreign_tag_every: int = 10) -> dict:
    """The contacts the two CRMs already hold: their records in the landing folder.

    Every ``foreign_tag_every``-th contact carries a tag segmint did not write
    (``newsletter_2024``), to show it is never touched.
    """
    import duckdb

    from segmint.load import discover

    files, _ = discover(Path(landing_dir))
    paths = [str(path) for table, path in files if table == "crm_contacts"]
    if not paths:
        return {"hubspot": [], "salesforce": []}
    readers = {".parquet": "read_parquet", ".csv": "read_csv", ".jsonl": "read_json"}
    selects = []
    for p in paths:
        source = f"{readers[Path(p).suffix]}('{p}'" + (
            ", all_varchar = true)" if p.endswith(".csv") else ")"
        )
        # The contract makes email optional: a CRM export may have no email column at all.
        columns = {row[0] for row in duckdb.sql(f"describe select * from {source}").fetchall()}
        email = "cast(email as varchar)" if "email" in columns else "cast(null as varchar)"
        selects.append(
            f"select cast(source_system as varchar) as s, cast(contact_id as varchar) as i, "
            f"{email} as e from {source}"
        )
    rows = duckdb.sql(
        "select s, i, any_value(e) from (" + " union all ".join(selects) + ") "
        "where s in ('hubspot', 'salesforce') and i is not null group by 1, 2 order by 1, 2"
    ).fetchall()
    hubspot, salesforce = [], []
    for n, (system, contact_id, email) in enumerate(rows):
        foreign = "newsletter_2024" if n % foreign_tag_every == 0 else None
        if system == "hubspot":
            props = {"email": (email or "").strip()}
            if foreign:
                props["segmint_segments"] = foreign
            hubspot.append({"id": contact_id, "properties": props})
        else:
            salesforce.append({"Id": contact_id, "Email": email, "Segmint_Segments__c": foreign})
    return {"hubspot": hubspot, "salesforce": salesforce}
