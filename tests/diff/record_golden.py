#!/usr/bin/python3
"""Record etcd 3.4's answers to every differential case in tests/diff/golden/.

    /usr/bin/python3 tests/diff/record_golden.py [--check] [name-substring ...]

Each case runs on a fresh etcd (twice, to prove the answers are
deterministic); a dropped connection (etcd panicked) or a nondeterministic
answer is an error: such a request does not belong in the diff suite.
--check compares with the stored golden files instead of writing them.
The golden files are a reference for the engineers and a fallback when no
etcd is installed; the test itself compares kvgate with a live etcd.
"""
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from kvtest import Etcd, kill_all_servers  # noqa: E402
from kvtest.cases import (load_cases, run_case, golden_path, load_golden,  # noqa: E402
                          describe_step, GOLDEN_DIR)


def run_on_fresh_etcd(case):
    e = Etcd()
    try:
        e.start()
        return run_case(e.port, case)
    finally:
        e.cleanup()


def main(argv):
    check = "--check" in argv
    filters = [a for a in argv if not a.startswith("--")]
    cases = [c for _, c in load_cases() if not filters or any(f in c["name"] for f in filters)]
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    bad = 0

    def one(case):
        a1 = run_on_fresh_etcd(case)
        a2 = run_on_fresh_etcd(case) if not check else a1
        return case, a1, a2

    with ThreadPoolExecutor(2) as ex:
        for case, a1, a2 in ex.map(one, cases):
            name = case["name"]
            problems = []
            for i, (x, y) in enumerate(zip(a1, a2)):
                if x.get("status") == 0:
                    problems.append("step %d: etcd dropped the connection: %s" % (i, x))
                if x != y:
                    problems.append("step %d: nondeterministic: %s vs %s" % (i, x, y))
            golden = {"name": name, "doc": case.get("doc", ""),
                      "steps": [{"request": describe_step(s), "answer": a}
                                for s, a in zip(case["steps"], a1)]}
            if check:
                old = load_golden(name)
                if old is None:
                    problems.append("no golden file")
                elif old["steps"] != golden["steps"]:
                    for i, (o, n) in enumerate(zip(old["steps"], golden["steps"])):
                        if o != n:
                            problems.append("step %d differs from golden: %s vs %s" % (i, o, n))
            elif not problems:
                with open(golden_path(name), "w") as f:
                    json.dump(golden, f, indent=1, ensure_ascii=False)
                    f.write("\n")
            print("%-40s %s" % (name, "ok" if not problems else "PROBLEM"))
            for p in problems:
                bad += 1
                print("    " + p)
    kill_all_servers()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
