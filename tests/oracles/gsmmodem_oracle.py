#!/usr/bin/env python3
"""Oracle helper for tests/sms_oracle.rs: python-gsmmodem-new's PDU codec (gsmmodem.pdu).

Reads one JSON request per line on stdin, writes one JSON answer per line on stdout:
  {"op": "decode", "hex": "<SMSC prefix + TPDU>"}
     -> {"ok": true, "type": "submit"|"deliver", "number", "smsc", "text", "udh" (hex or null),
         "reference", "pid", "validity_minutes" | "validity_abs" [y,mo,d,h,mi,s,tzq],
         "scts" [y,mo,d,h,mi,s], "tz" (quarter-hours)}
  {"op": "encode", "number", "text", "reference", "validity_minutes" (or null), "smsc" (or null),
   "srr", "rd", "flash"} -> {"ok": true, "pdus": ["<hex>", ...]}
Any failure answers {"ok": false, "error": "..."}: one bad input never stops the batch.
"""
import json
import sys
from datetime import datetime, timedelta

from jsonlines import serve

try:
    from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu
except ImportError as e:  # the Rust test reads this line and skips (or fails in CI)
    print(json.dumps({"ok": False, "missing": str(e)}), flush=True)
    sys.exit(0)


def ts(t):
    return [t.year % 100, t.month, t.day, t.hour, t.minute, t.second]


def tzq(t):
    off = t.utcoffset()
    return int(off.total_seconds() // 900) if off is not None else None


def decode(req):
    r = decodeSmsPdu(req["hex"])
    out = {
        "ok": True,
        "type": {"SMS-SUBMIT": "submit", "SMS-DELIVER": "deliver"}.get(r["type"], r["type"]),
        "number": r.get("number"),
        "smsc": r.get("smsc"),
        "text": r.get("text"),
        "pid": r.get("protocol_id"),
    }
    if "udh" in r:
        h = bytearray()
        for ie in r["udh"]:
            h.append(ie.id)
            h.append(ie.dataLength)
            h.extend(ie.data)
        out["udh"] = (bytes([len(h)]) + bytes(h)).hex().upper()
    else:
        out["udh"] = None
    if "reference" in r:
        out["reference"] = r["reference"]
    v = r.get("validity")
    if isinstance(v, timedelta):
        out["validity_minutes"] = int(v.total_seconds() // 60)
    elif isinstance(v, datetime):
        out["validity_abs"] = ts(v) + [tzq(v)]
    if "time" in r:
        out["scts"] = ts(r["time"])
        out["tz"] = tzq(r["time"])
    return out


def encode(req):
    v = req.get("validity_minutes")
    pdus = encodeSmsSubmitPdu(
        req["number"],
        req["text"],
        reference=req.get("reference", 0),
        validity=timedelta(minutes=v) if v is not None else None,
        smsc=req.get("smsc"),
        requestStatusReport=req.get("srr", False),
        rejectDuplicates=req.get("rd", False),
        sendFlash=req.get("flash", False),
    )
    return {"ok": True, "pdus": [bytes(p.data).hex().upper() for p in pdus]}


serve("gsmmodem", decode, encode)
