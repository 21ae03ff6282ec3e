"""``python tests/fakes/moto_route53.py -H HOST -p PORT``: moto's server with Route53's DELETE of
a routed set made faithful.

moto deletes a set given with a SetIdentifier by that identifier alone, across every name and
type of the zone; Route53 deletes only the set with that name, type and identifier. With per-cluster
identifiers (latency, geolocation and weighted sets all use the cluster's name) moto's way deletes
the other names' sets of that cluster as soon as one of them goes. And moto refuses a CREATE
identical to one it journaled before, even after that set was deleted (when any set sorts at or
after its name), where Route53 creates it. Here each change of a batch is applied in order with
the other names' sets kept, a CREATE of a set that is not there is not held against an old one,
and the batch stays all-or-nothing.

Standalone on purpose (run as a script by tests/fakes/moto_server.py): it imports only moto.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.route53.models import Route53Backend
from moto.server import main

_original = Route53Backend.change_resource_record_sets


def _change_resource_record_sets(
    self: Route53Backend, zoneid: str, change_list: list[dict[str, Any]]
) -> None:
    zone = self.get_hosted_zone(zoneid)
    saved_sets = list(zone.rrsets)
    saved_changes = copy.deepcopy(list(zone.rr_changes))
    try:
        for change in change_list:
            record = change["ResourceRecordSet"]
            ident = record.get("SetIdentifier")
            name = record["Name"] if record["Name"].endswith(".") else record["Name"] + "."
            if change["Action"] == "CREATE" and not any(
                rs.name == name and rs.type == record["Type"] and rs.set_identifier == ident
                for rs in zone.rrsets
            ):
                # Not there now: forget an identical CREATE from before its DELETE.
                # (moto journals names without the trailing dot.)
                stripped = {**change, "ResourceRecordSet": {**record, "Name": name.rstrip(".")}}
                zone.rr_changes[:] = [c for c in zone.rr_changes if c != stripped]
            if change["Action"] != "DELETE" or ident is None:
                _original(self, zoneid, [change])
                continue
            others = [
                rs
                for rs in zone.rrsets
                if rs.set_identifier == ident and (rs.name != name or rs.type != record["Type"])
            ]
            _original(self, zoneid, [change])
            zone.rrsets.extend(others)
    except Exception:
        zone.rrsets = saved_sets
        zone.rr_changes[:] = saved_changes
        raise


Route53Backend.change_resource_record_sets = _change_resource_record_sets  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
