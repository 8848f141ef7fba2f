"""The loop both oracle helpers share: one JSON request per line on stdin, one JSON answer per
line on stdout; every failure is answered as data, so one bad input never stops a batch."""
import json
import sys


def clean(v):
    """Lone surrogates (which an oracle may return) as U+FFFD, so that the answer is valid JSON."""
    if isinstance(v, str):
        return v.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return v


def serve(name, decode, encode):
    """Announce `name`, then answer every request with `decode` or `encode`."""
    print(json.dumps({"ok": True, "ready": name}), flush=True)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            out = decode(req) if req["op"] == "decode" else encode(req)
            out = {k: clean(v) for k, v in out.items()}
        except Exception as e:  # noqa: BLE001 - report every failure as data
            out = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
