"""Rewrites the /v3* paths of openapi.yaml from the table below.

openapi.yaml is the source of truth; this keeps the three prefixes (/v3,
/v3beta, /v3alpha) and the CORS preflight of every path identical.  After
adding an endpoint (its schemas and responses go in components by hand):

    /usr/bin/python3 tests/openapi/gen_paths.py && node tests/openapi/validate.mjs
"""
import os

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "openapi.yaml")

# (suffix, opid, tag, summary, description, requestBody, {status: response})
EPS = [
    ("/kv/range", "kvRange", "KV", "Gets the keys in a range.",
     "Reads the keys in [key, range_end) at a revision (default: current), with optional limit, sort and filters.",
     "RangeRequest", {"200": "RangeOK", "400": "BadRequest"}),
    ("/kv/put", "kvPut", "KV", "Puts a key.",
     "Writes a key; the store revision goes up by one.  Answered once durable.",
     "PutRequest", {"200": "PutOK", "400": "BadRequest", "404": "NotFound"}),
    ("/kv/deleterange", "kvDeleteRange", "KV", "Deletes a key or a range of keys.",
     "Deletes the keys in [key, range_end); the revision goes up by one if anything was deleted.",
     "DeleteRangeRequest", {"200": "DeleteRangeOK", "400": "BadRequest"}),
    ("/kv/txn", "kvTxn", "KV", "Runs a transaction.",
     "Compares, then runs the success or failure operations atomically, in one revision.",
     "TxnRequest", {"200": "TxnOK", "400": "BadRequest", "404": "NotFound"}),
    ("/kv/compaction", "kvCompact", "KV", "Compacts the history.",
     "Drops the versions superseded at or before revision; reads and watches below it then fail with \"required revision has been compacted\".",
     "CompactionRequest", {"200": "CompactionOK", "400": "BadRequest"}),
    ("/watch", "watch", "Watch", "Watches keys: a stream of WatchResponses.",
     "The body holds one or more WatchRequest objects (create, cancel, progress), one after the other.  The answer is a chunked stream that stays open: one {\"result\": WatchResponse} JSON object per line, as etcd's gateway sends it.  With \"Accept: text/event-stream\" the same responses come as Server-Sent Events instead (kvgate only; see GET), resumable with a Last-Event-ID header.",
     "WatchRequest", {"200": "WatchStream", "400": "BadRequest", "410": "Gone", "429": "TooManyStreams", "500": "StreamDecodeError"}),
    ("/lease/grant", "leaseGrant", "Lease", "Grants a lease.",
     "Creates a lease with a TTL in seconds (ID 0: kvgate picks one).  Keys put with the lease are deleted when it expires or is revoked.",
     "LeaseGrantRequest", {"200": "LeaseGrantOK", "400": "BadRequest", "412": "PreconditionFailed"}),
    ("/lease/revoke", "leaseRevoke", "Lease", "Revokes a lease and deletes its keys.", None,
     "LeaseRevokeRequest", {"200": "LeaseRevokeOK", "400": "BadRequest", "404": "NotFound"}),
    ("/kv/lease/revoke", "leaseRevokeKv", "Lease", "Same as /lease/revoke (etcd's older path).", None,
     "LeaseRevokeRequest", {"200": "LeaseRevokeOK", "400": "BadRequest", "404": "NotFound"}),
    ("/lease/keepalive", "leaseKeepAlive", "Lease", "Renews a lease.",
     "Answers one {\"result\": LeaseKeepAliveResponse} line per request in the body (a stream, as etcd's gateway); an unknown lease gets a response without TTL.",
     "LeaseKeepAliveRequest", {"200": "LeaseKeepAliveStream", "500": "StreamDecodeError"}),
    ("/lease/timetolive", "leaseTimeToLive", "Lease", "Remaining TTL of a lease (and its keys).",
     "TTL is -1 for a lease that does not exist.",
     "LeaseTimeToLiveRequest", {"200": "LeaseTimeToLiveOK", "400": "BadRequest"}),
    ("/kv/lease/timetolive", "leaseTimeToLiveKv", "Lease", "Same as /lease/timetolive (etcd's older path).", None,
     "LeaseTimeToLiveRequest", {"200": "LeaseTimeToLiveOK", "400": "BadRequest"}),
    ("/lease/leases", "leaseLeases", "Lease", "Lists the leases.", None,
     "EmptyRequest", {"200": "LeaseLeasesOK", "400": "BadRequest"}),
    ("/kv/lease/leases", "leaseLeasesKv", "Lease", "Same as /lease/leases (etcd's older path).", None,
     "EmptyRequest", {"200": "LeaseLeasesOK", "400": "BadRequest"}),
    ("/maintenance/status", "maintenanceStatus", "Maintenance", "Member status.",
     "Version, database size and (for compatibility) raft fields of the one member.  Field names are camelCase, as etcd sends them.",
     "EmptyRequest", {"200": "StatusOK", "400": "BadRequest"}),
    ("/maintenance/hash", "maintenanceHash", "Maintenance", "A hash of the store's contents.", None,
     "EmptyRequest", {"200": "HashOK", "400": "BadRequest"}),
    ("/maintenance/defragment", "maintenanceDefragment", "Maintenance", "Compacts the database files.",
     "Answers {} (no header), as etcd.",
     "EmptyRequest", {"200": "DefragmentOK", "400": "BadRequest"}),
    ("/maintenance/alarm", "maintenanceAlarm", "Maintenance", "Lists (or changes) alarms.",
     "Answers {} (no header) when there is no alarm, as etcd.  kvgate keeps no alarms (it has no quota to exceed), so it answers {} to every alarm request; etcd 3.4 records ACTIVATE and DEACTIVATE.",
     "AlarmRequest", {"200": "AlarmOK", "400": "BadRequest"}),
    ("/cluster/member/list", "clusterMemberList", "Cluster", "Lists the members (kvgate: itself).",
     "The header carries no revision, as etcd's.",
     "EmptyRequest", {"200": "MemberListOK", "400": "BadRequest"}),
]

PREFIXES = [
    ("/v3", "", ""),
    ("/v3beta", "V3beta", "the older /v3beta prefix, as etcd 3.4"),
    ("/v3alpha", "V3alpha", "the etcd 3.3 prefix; etcd 3.4.23 answers 404, kvgate still serves it"),
]


def q(s):
    return "'" + s.replace("'", "''") + "'"


def emit():
    out = []
    for prefix, idsuf, note in PREFIXES:
        for suffix, opid, tag, summary, desc, body, resps in EPS:
            path = prefix + suffix
            out.append("  %s:" % path)
            out.append("    post:")
            out.append("      operationId: %s%s" % (opid, idsuf))
            out.append("      tags: [%s]" % tag)
            out.append("      summary: %s" % q(summary))
            if idsuf:
                out.append("      description: %s" % q("Same as POST /v3%s (%s)." % (suffix, note)))
            elif desc:
                out.append("      description: %s" % q(desc))
            out.append("      requestBody: {$ref: '#/components/requestBodies/%s'}" % body)
            out.append("      responses:")
            for st, ref in resps.items():
                out.append("        '%s': {$ref: '#/components/responses/%s'}" % (st, ref))
            out.append("        '413': {$ref: '#/components/responses/PayloadTooLarge'}")
            out.append("        default: {$ref: '#/components/responses/OtherError'}")
            if suffix == "/watch":
                out.append("    get:")
                out.append("      operationId: watchSse%s" % idsuf)
                out.append("      tags: [Watch]")
                out.append("      summary: 'One watch as Server-Sent Events (kvgate only; for browsers'' EventSource).'")
                out.append("      description: {$desc}")
                out.append("      parameters:")
                for pn in ("key", "range_end", "prefix", "from_key", "start_revision", "prev_kv",
                           "filters", "progress_notify", "watch_id", "initial", "encoding",
                           "last_event_id"):
                    out.append("        - {$ref: '#/components/parameters/sse_%s'}" % pn)
                out.append("        - {$ref: '#/components/parameters/LastEventID'}")
                out.append("      responses:")
                out.append("        '200': {$ref: '#/components/responses/SseStream'}")
                out.append("        '400': {$ref: '#/components/responses/BadRequest'}")
                out.append("        '410': {$ref: '#/components/responses/Gone'}")
                out.append("        '429': {$ref: '#/components/responses/TooManyStreams'}")
                out.append("        default: {$ref: '#/components/responses/OtherError'}")
            out.append("    options:")
            out.append("      operationId: %s%sPreflight" % (opid, idsuf))
            out.append("      tags: [CORS]")
            out.append("      summary: 'CORS preflight for %s.'" % path)
            out.append("      responses:")
            out.append("        '200': {$ref: '#/components/responses/PreflightAllowed'}")
            out.append("        '204': {$ref: '#/components/responses/PreflightNoOrigin'}")
            out.append("        '403': {$ref: '#/components/responses/PreflightForbidden'}")
    return "\n".join(out) + "\n"


SSE_DESC = ("A browser's EventSource can only GET, so the WatchCreateRequest travels in "
            "the query string, keys as URL-encoded raw bytes (not base64).  The stream: "
            "`retry:` first; `event: created` (id: the revision the watch continues after); "
            "one `data:` message per WatchResponse (id: every event up to this revision has "
            "been sent); `event: progress`; with initial=true the current values first "
            "(no id), then `event: synced` (id R) and the changes after R; "
            "`event: canceled` when compaction overtakes the watch, after which a reconnect "
            "with Last-Event-ID gets 410.  Comment lines (`:`) are heartbeats.  Each data line "
            "is a WatchResponse as in the JSON stream (x-sse-data), keys and values base64 "
            "unless encoding=text.")

if __name__ == "__main__":
    s = open(SPEC).read()
    a = s.index("  /v3/kv/range:\n")
    b = s.index("components:\n")
    s = s[:a] + emit().replace("{$desc}", q(SSE_DESC)) + s[b:]
    open(SPEC, "w").write(s)
