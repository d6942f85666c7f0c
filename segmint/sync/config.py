"""Destinations, read from the crm_segment_tags model's YAML (config.meta.destinations).

dbt reads the same entries to build crm_segment_tags; this module validates the delivery
settings and resolves URLs and secrets from the environment the caller passes (never from the
file; this module does not read os.environ).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmint.config import PROJECT_DIR
from segmint.reference import consent_purposes

DESTINATIONS_FILE = PROJECT_DIR / "models" / "marts" / "activation" / "_destinations.yml"
# A destination whose environment is not set at all is skipped with this status.
NOT_CONFIGURED = "not configured"
MAX_BATCH = {"hubspot": 100, "salesforce": 200, "webhook": 1000, "file": 1_000_000}


class DestinationError(ValueError):
    """A destination is misconfigured or its environment is missing."""


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["hubspot", "salesforce", "webhook", "file"]
    consent_purpose: str  # one of seeds/consent_purposes.csv (checked below)
    crm_system: Literal["hubspot", "salesforce"] | None = None
    create_missing: bool = True
    tag_prefix: str = Field("segmint_", pattern=r"^[a-z][a-z0-9_]*$")
    segment_types: list[Literal["rfm", "rule", "lifecycle", "cluster"]] = [
        "rfm", "rule", "lifecycle", "cluster",
    ]  # fmt: skip
    url_env: str | None = None
    token_env: str | None = None
    secret_env: str | None = None
    path_env: str | None = None
    hubspot_property: str = "segmint_segments"  # HubSpot contact property holding the tags
    salesforce_field: str = "Segmint_Segments__c"  # Salesforce Contact field with the tags
    api_version: str = "v62.0"
    format: Literal["jsonl", "csv"] = "jsonl"
    batch_size: int = Field(100, ge=1)
    requests_per_second: float = Field(10, gt=0)
    timeout_seconds: float = Field(15, gt=0)
    max_attempts: int = Field(6, ge=1)
    max_change_share: float = Field(0.5, gt=0, le=1)
    # Erased people are deleted where the API allows it (HubSpot GDPR delete, Salesforce
    # delete); false only takes segmint's tags off.
    delete_erased: bool = True
    # Salesforce: delete erased contacts for good with Bulk API 2.0's hardDelete instead of
    # moving them to the Recycle Bin for 15 days. The integration user needs the "Bulk API
    # Hard Delete" permission; without it the deletes fail and are retried on the next run.
    hard_delete: bool = False
    bulk_timeout_seconds: float = Field(600, gt=0)  # how long to wait for a Bulk API job
    # A Retry-After longer than this is cut to it: a rate-limited sync waits, it never hangs.
    max_retry_after_seconds: float = Field(60, gt=0)
    # CRM property (or Salesforce field) name -> prediction column, sent with the tags. dbt
    # checks the columns against the predictions model when it builds crm_segment_tags.
    properties: dict[str, str] = {}

    @model_validator(mode="after")
    def _limits(self) -> Destination:
        purposes = consent_purposes()
        if self.consent_purpose not in purposes:
            raise ValueError(
                f"consent_purpose {self.consent_purpose!r} is not one of {', '.join(purposes)} "
                "(seeds/consent_purposes.csv)"
            )
        cap = MAX_BATCH[self.type]
        if self.batch_size > cap:
            raise ValueError(f"batch_size {self.batch_size} exceeds the {self.type} API's {cap}")
        if self.hard_delete and self.type != "salesforce":
            raise ValueError("hard_delete is for salesforce (HubSpot's GDPR delete is final)")
        if self.type == "salesforce" and self.create_missing:
            raise ValueError("salesforce contacts are only updated: set create_missing: false")
        if self.type in ("hubspot", "salesforce", "webhook") and not self.url_env:
            raise ValueError(f"a {self.type} destination needs url_env")
        for name in self.properties:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise ValueError(f"property name {name!r} must be letters, digits and _")
            if name in (self.hubspot_property, self.salesforce_field, "email"):
                raise ValueError(f"property name {name!r} is the tags' or the key's own")
        return self

    @property
    def required_env(self) -> list[str]:
        """The environment variables this destination cannot run without."""
        return [v for v in (self.url_env, self.token_env, self.secret_env) if v]

    def check_configured(self, environ: Mapping[str, str]) -> bool:
        """True when every required variable is set; False when none is (the destination is
        simply not in use here: a run skips it); DestinationError naming the missing ones
        when only some are (a half-done set-up must not pass silently)."""
        required = self.required_env
        missing = [v for v in required if not environ.get(v)]
        if not missing:
            return True
        if len(missing) == len(required):
            return False
        raise DestinationError(
            f"destination {self.name} is partly configured: set {', '.join(missing)} "
            f"(or unset {', '.join(v for v in required if v not in missing)} to skip it)"
        )

    def _env(self, environ: Mapping[str, str], var: str | None, what: str) -> str:
        value = environ.get(var or "", "")
        if not value:
            raise DestinationError(f"destination {self.name}: set {var} ({what})")
        return value

    def url(self, environ: Mapping[str, str]) -> str:
        """The API base URL, from ``environ`` (the caller's environment, never read here)."""
        return self._env(environ, self.url_env, "the API base URL").rstrip("/")

    def token(self, environ: Mapping[str, str]) -> str | None:
        return self._env(environ, self.token_env, "the API token") if self.token_env else None

    def secret(self, environ: Mapping[str, str]) -> str | None:
        if not self.secret_env:
            return None
        return self._env(environ, self.secret_env, "the HMAC signing secret")

    def export_dir(self, environ: Mapping[str, str]) -> Path:
        value = environ.get(self.path_env or "", "")
        return Path(value) if value else PROJECT_DIR / "exports"


def load_destinations(path: Path = DESTINATIONS_FILE) -> list[Destination]:
    try:
        document = yaml.safe_load(path.read_text())
        model = next(m for m in document["models"] if m["name"] == "crm_segment_tags")
        entries = model["config"]["meta"]["destinations"]
    except (OSError, KeyError, StopIteration, TypeError) as exc:
        raise DestinationError(f"{path}: no config.meta.destinations for crm_segment_tags") from exc
    out = []
    for i, entry in enumerate(entries, start=1):
        try:
            out.append(Destination(**entry))
        except ValidationError as exc:
            name = entry.get("name", "?") if isinstance(entry, dict) else "?"
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise DestinationError(f"{path}: destination {i} ({name}): {problems}") from exc
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise DestinationError(f"{path}: destination names repeat: {names}")
    return out
