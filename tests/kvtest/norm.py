"""Normalise etcd/kvgate answers before comparing them.

etcd's ResponseHeader carries cluster_id, member_id and raft_term, which
differ per cluster and mean nothing for kvgate; they are dropped from every
"header" object at any depth (txn responses nest one header per op).
Everything else is compared exactly.
"""
DROP = ("cluster_id", "member_id", "raft_term")


def normalise(obj):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "header" and isinstance(v, dict):
                v = {hk: hv for hk, hv in v.items() if hk not in DROP}
            out[k] = normalise(v)
        return out
    if isinstance(obj, list):
        return [normalise(x) for x in obj]
    return obj
