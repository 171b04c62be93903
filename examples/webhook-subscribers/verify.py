"""Verify a herald webhook (Standard Webhooks, HMAC-SHA256) with the standard library only.

Sign the exact bytes received: parse the JSON only after verifying it.
"""
import base64
import hashlib
import hmac
import time


def verify(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """True when one of `webhook-signature`'s v1 entries matches and the timestamp is fresh.

    `secret` is "whsec_..." (the webhook secret's entry for your subscription);
    `headers` maps lower-case header names to values.
    """
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in headers.get("webhook-signature", "").split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return True
    return False


if __name__ == "__main__":
    # Test harness: one case as JSON on stdin -> "ok" or "invalid".
    import json
    import sys

    case = json.load(sys.stdin)
    ok = verify(case["secret"], case["headers"], case["body"].encode())
    print("ok" if ok else "invalid")
