"""Who may call the sandbox OSS server: OSS V1 and V4 request signatures, an optional STS token, clock skew.

Place in the flow: http -> dispatch -> server.handle -> auth (this module, before any handler runs) ->
an OssError (AccessDenied, InvalidAccessKeyId, InvalidSecurityToken, SignatureDoesNotMatch,
RequestTimeTooSkewed) or nothing. The strings to sign are rebuilt as OSS documents them; a mismatch
answers the expected string to sign, as OSS does, never the secret.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from migrator.sandbox.oss_server.protocol import SELECTORS, BucketConfig, OssError, Request, invalid_argument

_MAX_CLOCK_SKEW_S = 15 * 60
# Query parameters that V1 signs (a subset of OSS's list: those this server's operations can receive).
_V1_SUBRESOURCES = frozenset(
    {
        "acl",
        "append",
        "bucketInfo",
        "comp",
        "continuation-token",
        "delete",
        "location",
        "objectMeta",
        "partNumber",
        "position",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "security-token",
        "stat",
        "uploadId",
        "uploads",
        "versionId",
        "x-oss-process",
    }
)
_V4_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


# Rebuilds the string to sign; returns (string to sign, expected signature, given signature).
SignatureCheck = Callable[[], tuple[str, str, str]]


@dataclass(frozen=True)
class Credentials:
    """The one key pair (and optional STS token) the server accepts; the secret stays out of repr."""

    access_key_id: str
    secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def authenticate(req: Request, bucket: BucketConfig, credentials: Credentials) -> None:
    """Raise the OssError OSS answers unless `req` is signed (V1 or V4) with `credentials`, in time."""
    auth = req.headers.get("authorization", "")
    if not auth:
        raise OssError(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
    if auth.startswith("OSS4-HMAC-SHA256"):
        access_key_id, check = _v4(req, bucket, auth, credentials.secret)
    elif auth.startswith("OSS "):
        access_key_id, check = _v1(req, auth, credentials.secret)
    else:
        raise OssError(403, "AccessDenied", "Authorization must be OSS (V1) or OSS4-HMAC-SHA256 (V4).")
    if access_key_id != credentials.access_key_id:
        raise OssError(
            403,
            "InvalidAccessKeyId",
            "The OSS Access Key Id you provided does not exist in our records.",
            OSSAccessKeyId=access_key_id,
        )
    if credentials.security_token is not None and req.headers.get("x-oss-security-token") != credentials.security_token:
        raise OssError(403, "InvalidSecurityToken", "The security token you provided is invalid.")
    string_to_sign, expected, given = check()
    if not hmac.compare_digest(expected, given):
        raise OssError(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match "
            "the signature you provided. Check your key and signing method.",
            StringToSign=string_to_sign,
        )


def _check_skew(when: datetime | None, header: str) -> None:
    if when is None:
        raise OssError(403, "AccessDenied", f"The request needs a valid {header} header.")
    if abs(when.timestamp() - time.time()) > _MAX_CLOCK_SKEW_S:
        raise OssError(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
        )


def _v1(req: Request, auth: str, secret: str) -> tuple[str, SignatureCheck]:
    access_key_id, _, signature = auth[len("OSS ") :].strip().rpartition(":")
    date = req.headers.get("x-oss-date") or req.headers.get("date", "")
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        when = None
    _check_skew(when, "Date")

    def check() -> tuple[str, str, str]:
        oss_headers = sorted((k.lower(), v) for k, v in req.header_items if k.lower().startswith("x-oss-"))
        canonical = "".join(f"{k}:{v}\n" for k, v in oss_headers)
        sub = sorted((k, v) for k, v in req.params.items() if k in _V1_SUBRESOURCES or k in SELECTORS)
        resource = f"/{req.bucket}/{req.key}"
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        headers = req.headers
        text = "\n".join(
            [
                req.method,
                headers.get("content-md5", ""),
                headers.get("content-type", ""),
                date,
                canonical + resource,
            ]
        )
        mac = hmac.new(secret.encode(), text.encode("utf-8"), hashlib.sha1)
        return text, base64.b64encode(mac.digest()).decode(), signature

    return access_key_id, check


def _v4(req: Request, bucket: BucketConfig, auth: str, secret: str) -> tuple[str, SignatureCheck]:
    fields: dict[str, str] = {}
    for item in auth[len("OSS4-HMAC-SHA256") :].split(","):
        name, _, value = item.strip().partition("=")
        fields[name] = value.strip()
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or not fields.get("Signature") or scope[4] != "aliyun_v4_request":
        raise OssError(
            400,
            "InvalidArgument",
            "The V4 Authorization header needs "
            "Credential=<ak>/<date>/<region>/oss/aliyun_v4_request and Signature=<hex>.",
        )
    access_key_id, day, region, product, _ = scope
    if product != "oss" or region != bucket.region_id:
        raise invalid_argument(
            f"Invalid signing region in Authorization header: bucket {bucket.name} is in region "
            f"{bucket.region_id} (product oss).",
            "Credential",
            fields["Credential"],
        )
    stamp = req.headers.get("x-oss-date", "")
    try:
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        when = None
    _check_skew(when, "x-oss-date")
    additional = sorted({h.strip().lower() for h in fields.get("AdditionalHeaders", "").split(";") if h.strip()})

    def check() -> tuple[str, str, str]:
        signed = sorted(
            (
                (k.lower(), v)
                for k, v in req.header_items
                if k.lower().startswith("x-oss-") or k.lower() in ("content-type", "content-md5", *additional)
            ),
            key=lambda item: item[0],
        )
        query = sorted((_v4_encode(k, False), _v4_encode(v, False)) for k, v in req.params.items())
        canonical_request = "\n".join(
            [
                req.method,
                _v4_encode(f"/{req.bucket}/{req.key}", True),
                "&".join(f"{k}={v}" if v else k for k, v in query),
                "".join(f"{k}:{v}\n" for k, v in signed),
                ";".join(additional),
                req.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
            ]
        )
        text = "\n".join(
            [
                "OSS4-HMAC-SHA256",
                stamp,
                f"{day}/{region}/oss/aliyun_v4_request",
                hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
            ]
        )
        key = ("aliyun_v4" + secret).encode()
        for part in (day, region, "oss", "aliyun_v4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return text, hmac.new(key, text.encode(), hashlib.sha256).hexdigest(), fields["Signature"]

    return access_key_id, check


def _v4_encode(text: str, keep_slash: bool) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte in _V4_UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)
