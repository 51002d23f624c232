"""Points API signing: JSON canonicalised as JavaScript writes it, HMAC-SHA256 both ways.

    canonical(body) = "" for GET or an empty body; otherwise the parsed JSON re-serialised as
                      JSON.stringify writes it with object keys sorted recursively
    payload   = METHOD + path + X-API-REQUEST + canonical(body)
    signature = lowercase hex of HMAC-SHA256(secret, payload), UTF-8

The partner's client is JavaScript, so numbers are written by ECMAScript's Number::toString
(5.0 -> "5", 1e21 -> "1e+21", 1e-7 -> "1e-7"), integers beyond 2^53 as the doubles JavaScript
would read them, and keys in UTF-16 code-unit order, as Array.prototype.sort orders them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_SAFE_INTEGER = 2**53


def js_number(value: int | float) -> str:
    if isinstance(value, int) and abs(value) <= _MAX_SAFE_INTEGER:
        return str(value)
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    stripped = all_digits.lstrip("0")
    # n: where the decimal point falls relative to the first significant digit (ECMA-262).
    n = len(whole) + int(exponent or 0) - (len(all_digits) - len(stripped))
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = (digits[0] + ("." + digits[1:] if k > 1 else "")) + "e" + ("+" if e >= 0 else "-")
        text += str(abs(e))
    return sign + text


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def canonical_json(value) -> str:
    """`value` (parsed JSON) written as JSON.stringify would, with keys sorted recursively."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return js_number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: _utf16_order(item[0]))
        return "{" + ",".join(_string(k) + ":" + canonical_json(v) for k, v in items) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def payload(method: str, path: str, request_id: str, canonical_body: str) -> str:
    return method.upper() + path + request_id + canonical_body


def sign(secret: str, method: str, path: str, request_id: str, canonical_body: str) -> str:
    message = payload(method, path, request_id, canonical_body).encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace"))
