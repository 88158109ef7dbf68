#!/usr/bin/env python3
"""Compare an Autobahn|TestSuite run with the committed expectation.

    compare.py EXPECTED.json OUTDIR/index.json [--agent NAME] [--name NAME] [--write]

OUTDIR/index.json is wstest's report index, {peer name: {case id: {"behavior":
..., "behaviorClose": ..., ...}}}, the peer name being the one given to wstest
(--agent picks it; the default is the only one there). EXPECTED.json maps each
case id to one verdict, one pair per line, cases in numeric order (1.1.10
after 1.1.9):

    {
      "1.1.1": "OK",
      "1.1.2": "OK"
    }

A case's verdict is the more severe of its behavior and its behaviorClose
(see SEVERITY). The run fails when
  - a case is worse than expected,
  - a case is NON-STRICT or FAILED, whatever the expectation says,
  - an expected case has no result, or a result has no expectation.
A case better than expected is reported as improved and does not fail.
--write rewrites EXPECTED.json from this run (the NON-STRICT/FAILED rule
still applies to the run itself).

The last line printed is "autobahn-compare(NAME): N passed, M failed".
Exit status: 0 when M == 0, 1 otherwise, 2 on unusable arguments or files.
"""

import argparse
import json
import os
import sys

# Verdicts from least to most severe.
#   OK             the peer did what the case requires.
#   INFORMATIONAL  the suite records what happened without judging it
#                  (7.1.6, 7.13.x); nothing to fix, but nothing proven either.
#   UNIMPLEMENTED  the peer did not negotiate the feature the case exercises
#                  (permessage-deflate in 12.* and 13.*): not wrong, but the
#                  case was not really run, so going from OK to UNIMPLEMENTED
#                  is a regression.
#   NON-STRICT     the peer broke a SHOULD of RFC 6455 (or closed with an
#                  unexpected code); tolerated by the suite, not by Herald.
#   FAILED         the peer broke a MUST.
SEVERITY = ["OK", "INFORMATIONAL", "UNIMPLEMENTED", "NON-STRICT", "FAILED"]
RANK = {name: i for i, name in enumerate(SEVERITY)}
NEVER_ACCEPTED = {"NON-STRICT", "FAILED"}

# behaviorClose uses its own words; they map onto SEVERITY the way wstest's
# HTML report colours them. Anything unknown counts as FAILED.
CLOSE_VERDICT = {
    "OK": "OK",
    "INFORMATIONAL": "INFORMATIONAL",
    "UNIMPLEMENTED": "UNIMPLEMENTED",
    "FAILED BY CLIENT": "NON-STRICT",  # the server left closing TCP to the client
    "WRONG CODE": "NON-STRICT",
    "UNCLEAN": "FAILED",
    "FAILED": "FAILED",
}


def case_key(case_id):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in str(case_id).split(".")]


def verdict(result):
    behavior = result.get("behavior", "FAILED")
    behavior = behavior if behavior in RANK else "FAILED"
    close = CLOSE_VERDICT.get(result.get("behaviorClose", "FAILED"), "FAILED")
    return max(behavior, close, key=RANK.get)


def load_results(path, peer):
    """Returns ({case: verdict}, {case: raw result}, peer name), or None when there is no report."""
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        index = json.load(f)
    if peer is None or peer not in index:
        if len(index) != 1:
            raise ValueError("%s holds the peers %s; choose one with --agent"
                             % (path, ", ".join(sorted(index)) or "none"))
        only = next(iter(index))
        if peer is not None:
            print("note: %r not in %s; using the only peer there, %r" % (peer, path, only))
        peer = only
    raw = index[peer]
    return {cid: verdict(r) for cid, r in raw.items()}, raw, peer


def load_expected(path):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        expected = json.load(f)
    if not isinstance(expected, dict):
        raise ValueError("%s: expected a JSON object of case id -> verdict" % path)
    bad = {c: v for c, v in expected.items() if v not in RANK}
    if bad:
        raise ValueError("%s: unknown verdicts %s (known: %s)" % (path, bad, ", ".join(SEVERITY)))
    return expected


def write_expected(path, verdicts):
    lines = ['  %s: %s' % (json.dumps(c), json.dumps(verdicts[c]))
             for c in sorted(verdicts, key=case_key)]
    text = "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def detail(raw, cid):
    r = raw.get(cid, {})
    return "behavior=%s behaviorClose=%s" % (r.get("behavior", "?"), r.get("behaviorClose", "?"))


def compare(expected, actual, raw, expected_name):
    """Returns (passed, failures, improvements): lists of printable lines."""
    passed, failures, improved = 0, [], []
    for cid in sorted(set(expected) | set(actual), key=case_key):
        want, got = expected.get(cid), actual.get(cid)
        if got is None:
            failures.append("%s: expected %s, no result" % (cid, want))
        elif want is None:
            failures.append("%s: %s, but %s has no entry for it (%s)"
                            % (cid, got, expected_name, detail(raw, cid)))
        elif got in NEVER_ACCEPTED:
            failures.append("%s: actual %s, never accepted (expected %s; %s)"
                            % (cid, got, want, detail(raw, cid)))
        elif RANK[got] > RANK[want]:
            failures.append("%s: expected %s, actual %s, worse (%s)"
                            % (cid, want, got, detail(raw, cid)))
        else:
            passed += 1
            if RANK[got] < RANK[want]:
                improved.append("%s: expected %s, actual %s" % (cid, want, got))
    return passed, failures, improved


def changes(old, new):
    """Lines describing how the expectation changes when `new` replaces `old`."""
    out = []
    for cid in sorted(set(old) | set(new), key=case_key):
        a, b = old.get(cid), new.get(cid)
        if a != b:
            out.append("%s: %s -> %s" % (cid, a or "(none)", b or "(none)"))
    return out


def print_list(title, lines, limit):
    print("  %s (%d):" % (title, len(lines)))
    for line in lines[:limit]:
        print("    " + line)
    if len(lines) > limit:
        print("    ... %d more" % (len(lines) - limit))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected", help="the committed expectation, e.g. compliance/expected-server.json")
    ap.add_argument("index", help="index.json of a wstest report directory")
    ap.add_argument("--agent", help="peer name in index.json (default: the only one there)")
    ap.add_argument("--name", help="label of the summary line (default: from EXPECTED's file name)")
    ap.add_argument("--write", action="store_true", help="rewrite EXPECTED from this run")
    ap.add_argument("--max-list", type=int, default=300)
    args = ap.parse_args()

    name = args.name or os.path.splitext(os.path.basename(args.expected))[0]
    name = name[len("expected-"):] if name.startswith("expected-") else name
    label = "autobahn-compare(%s)" % name
    expected_name = os.path.basename(args.expected)

    try:
        expected = load_expected(args.expected)
        loaded = load_results(args.index, args.agent)
    except (ValueError, OSError) as e:
        print("%s: %s" % (label, e))
        print("%s: 0 passed, 1 failed" % label)
        return 2

    if loaded is None:
        n = len(expected or {})
        print("%s: no report at %s (the suite produced no results)" % (label, args.index))
        print("%s: 0 passed, %d failed" % (label, max(n, 1)))
        return 1
    actual, raw, peer = loaded
    print("%s: %d result(s) of %r in %s" % (label, len(actual), peer, args.index))
    counts = {v: sum(1 for x in actual.values() if x == v) for v in SEVERITY}
    print("  verdicts: %s" % ", ".join("%s %d" % (v, counts[v]) for v in SEVERITY))

    if expected is None and not args.write:
        print("  no expectation at %s; create it with --write "
              "(HERALD_AUTOBAHN_WRITE=1 ./scripts/autobahn)" % args.expected)
        expected = {}

    if args.write:
        if expected is None:
            print("  no previous %s; creating it" % expected_name)
        else:
            diff = changes(expected, actual)
            print_list("changes to %s" % expected_name, diff, args.max_list)
        write_expected(args.expected, actual)
        print("  wrote %d case(s) to %s" % (len(actual), args.expected))
        expected = dict(actual)

    passed, failures, improved = compare(expected, actual, raw, expected_name)
    if improved:
        print_list("improved, run with --write to update", improved, args.max_list)
    if failures:
        print_list("failed", failures, args.max_list)
    print("%s: %d passed, %d failed" % (label, passed, len(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
