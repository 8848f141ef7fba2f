#!/usr/bin/env python3
"""Oracle helper for tests/sms_oracle.rs: libgammu's PDU codec through python3-gammu (Debian).

Reads one JSON request per line on stdin, writes one JSON answer per line on stdout:
  {"op": "decode", "hex": "<SMSC prefix + TPDU>"}
     -> {"ok": true, "type": "submit"|"deliver", "number", "smsc", "text" | "data" (hex),
         "coding", "udh" (hex or null), "class" (-1 none), "reference", "rd", "rp",
         "scts" [y,mo,d,h,mi,s], "validity" (gammu's own string)}
  {"op": "encode", "layout": "Submit"|"Deliver", "number", "text" | "data" (hex), "coding",
   "udh" (hex or null), "class", "smsc", "reference", "rd", "scts" [y,mo,d,h,mi,s]}
     -> {"ok": true, "pdus": ["<hex>"]}
Any failure answers {"ok": false, "error": "..."}: one bad input never stops the batch.
"""
import json
import sys
from datetime import datetime

from jsonlines import serve

try:
    import gammu
except ImportError as e:  # the Rust test reads this line and skips (or fails in CI)
    print(json.dumps({"ok": False, "missing": str(e)}), flush=True)
    sys.exit(0)


def decode(req):
    d = gammu.DecodePDU(bytes.fromhex(req["hex"]), True)
    out = {
        "ok": True,
        "type": d["Type"].lower(),
        "number": d["Number"],
        "smsc": d["SMSC"]["Number"] or None,
        "coding": d["Coding"],
        "class": d["Class"],
        "reference": d["MessageReference"],
        "rd": d["RejectDuplicates"],
        "rp": d["ReplyViaSameSMSC"],
        "validity": d["SMSC"]["Validity"],
    }
    t = d["Text"]
    if isinstance(t, bytes):
        out["data"] = t.hex().upper()
    else:
        out["text"] = t
    u = d["UDH"]
    out["udh"] = None if u["Type"] == "NoUDH" else u["Text"].hex().upper()
    if d["Type"] == "Deliver" and d["DateTime"] is not None:
        x = d["DateTime"]
        out["scts"] = [x.year % 100, x.month, x.day, x.hour, x.minute, x.second]
    return out


def encode(req):
    sms = {
        "Number": req["number"],
        "SMSC": {"Location": 0, "Number": req.get("smsc") or "", "Validity": "NA", "Format": "Text"},
        "Coding": req["coding"],
        "Class": req.get("class", -1),
        "Folder": 0,
        "InboxFolder": 0,
        "Memory": "",
        "Location": 0,
        "Name": "",
        "State": "UnSent",
        "Type": req["layout"],
        "DeliveryStatus": 0,
        "ReplyViaSameSMSC": 0,
        "MessageReference": req.get("reference", 0),
        "ReplaceMessage": 0,
        "RejectDuplicates": int(req.get("rd", False)),
        "UDH": {"Type": "NoUDH", "Text": b""},
    }
    if "data" in req:
        sms["Text"] = bytes.fromhex(req["data"])
    else:
        sms["Text"] = req["text"]
    if req.get("udh"):
        sms["UDH"] = {"Type": "UserUDH", "Text": bytes.fromhex(req["udh"])}
    if req["layout"] == "Deliver":
        y, mo, d, h, mi, s = req["scts"]
        sms["DateTime"] = datetime(2000 + y, mo, d, h, mi, s)
    pdu = gammu.EncodePDU(sms, req["layout"])
    return {"ok": True, "pdus": [pdu.hex().upper()]}


serve("gammu", decode, encode)
