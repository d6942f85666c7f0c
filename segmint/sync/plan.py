"""The plan: desired tags (crm_segment_tags) against the last synced state, per record.

- create: a record the destination has not received from segmint yet;
- update: its tag set changed (tags to add and to remove);
- remove: segmint synced it before but it left the desired set (consent revoked, no key):
  every segmint tag is taken off;
- erase: the same for a customer erased since; with ``delete_erased`` the contact is deleted.

Only changes are sent. The guardrail aborts a plan that would change the tags of (or
remove) more than ``max_change_share`` of the records already synced, unless forced;
erasures never count, nor do updates of a destination's prediction properties alone (scores
move a little every day; a mass change of tags is what the guardrail is for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

SEPARATOR = ";"


@dataclass
class Change:
    record_key: str
    customer_id: str
    action: str  # create | update | remove | erase
    key_type: str
    tags: list[str]  # the desired segmint tags after the change
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    tag_hash: str | None = None
    crm_record_id: str | None = None
    # The destination's prediction properties after the change (None: it declares none).
    properties: dict | None = None

    @property
    def changes_tags(self) -> bool:
        return self.action != "update" or bool(self.add or self.remove)

    def as_payload(self) -> dict:
        payload = {
            "record_key": self.record_key,
            "key_type": self.key_type,
            "customer_id": self.customer_id,
            "action": self.action,
            "tags": self.tags,
            "add": self.add,
            "remove": self.remove,
        }
        if self.properties is not None:
            payload["properties"] = self.properties
        return payload


@dataclass
class Plan:
    destination: str
    changes: list[Change]
    records_in_state: int
    desired_records: int

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def changed_synced_records(self) -> int:
        return sum(1 for c in self.changes if c.action in ("update", "remove") and c.changes_tags)

    @property
    def change_share(self) -> float:
        """Share of the records already synced that the plan updates or removes.

        New records (creates) touch nothing that exists in the CRM, so a first sync, or one
        resumed after a crash, is never held back; erasures are the law, never held back.
        """
        if self.records_in_state == 0:
            return 0.0
        return self.changed_synced_records / self.records_in_state

    @property
    def tags_added(self) -> int:
        return sum(len(c.add) for c in self.changes)

    @property
    def tags_removed(self) -> int:
        return sum(len(c.remove) for c in self.changes)

    def summary(self) -> dict:
        return {
            "destination": self.destination,
            "records_in_state": self.records_in_state,
            "desired_records": self.desired_records,
            "creates": self.count("create"),
            "updates": self.count("update"),
            "removals": self.count("remove"),
            "erasures": self.count("erase"),
            "tags_added": self.tags_added,
            "tags_removed": self.tags_removed,
            "change_share": round(self.change_share, 4),
        }


def _split(tags) -> list[str]:
    return [t for t in (tags or "").split(SEPARATOR) if t]


def _properties(text) -> dict | None:
    return json.loads(text) if isinstance(text, str) and text else None


def build_plan(
    destination: str, desired: pd.DataFrame, state: pd.DataFrame, erased: set[str]
) -> Plan:
    """desired: crm_segment_tags rows; state: synced_records rows, both of one destination."""
    cols = ["record_key", "customer_id", "key_type", "tags", "tag_hash", "crm_record_id",
            "properties"]  # fmt: skip
    if "properties" not in desired:
        desired = desired.assign(properties=None)
    joined = desired[cols].merge(
        state[["record_key", "customer_id", "key_type", "tags", "tag_hash"]],
        on="record_key", how="outer", suffixes=("", "_synced"), indicator=True,
    )  # fmt: skip
    joined = joined.rename(columns={"_merge": "presence"})
    changes: list[Change] = []
    for row in joined.sort_values("record_key").itertuples(index=False):
        if row.presence == "left_only":
            tags = _split(row.tags)
            changes.append(Change(row.record_key, row.customer_id, "create", row.key_type, tags,
                                  add=tags, tag_hash=row.tag_hash,
                                  crm_record_id=row.crm_record_id,
                                  properties=_properties(row.properties)))  # fmt: skip
        elif row.presence == "right_only":
            was = _split(row.tags_synced)
            action = "erase" if row.customer_id_synced in erased else "remove"
            changes.append(Change(row.record_key, row.customer_id_synced, action,
                                  row.key_type_synced, [], remove=was))  # fmt: skip
        elif row.tag_hash != row.tag_hash_synced:
            tags, was = _split(row.tags), _split(row.tags_synced)
            changes.append(Change(row.record_key, row.customer_id, "update", row.key_type, tags,
                                  add=sorted(set(tags) - set(was)),
                                  remove=sorted(set(was) - set(tags)), tag_hash=row.tag_hash,
                                  crm_record_id=row.crm_record_id,
                                  properties=_properties(row.properties)))  # fmt: skip
    return Plan(destination, changes, len(state), len(desired))
