"""The replication operations of the sandbox OSS server: Put/Get/DeleteBucketReplication, its progress and locations.

Place in the flow: dispatch (routes a request here) -> replication_api (this module: checks a rule as OSS
does and answers in OSS's XML) -> replication (the rules and the copier). Error codes as OSS: a target
bucket that does not exist is NoSuchBucket, a Location that is not the target's region
BadReplicationLocation, a second rule with the same ID or to the same target BucketReplicationAlreadyExist,
no rules NoSuchReplicationConfiguration, an unknown rule ID NoSuchReplicationRule.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from migrator.sandbox.oss_server.protocol import (
    BucketConfig,
    OssError,
    Request,
    Response,
    invalid_argument,
    iso8601,
    sub,
    xml_document,
)
from migrator.sandbox.oss_server.replication import ReplicationRule

if TYPE_CHECKING:
    from migrator.sandbox.oss_server.server import OssServer

_REPLICATION_ACTIONS = frozenset({"ALL", "PUT", "DELETE", "ABORT"})
_REPLICATION_TRANSFER_TYPES = frozenset({"internal", "oss_acc"})
_MAX_REPLICATION_PREFIXES = 10


def put_bucket_replication(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """PutBucketReplication: add the one Rule of the XML body (checked as OSS does)."""
    root = _xml_body(req, "ReplicationConfiguration")
    nodes = root.findall("Rule")
    if len(nodes) != 1:
        raise OssError(400, "MalformedXML", "ReplicationConfiguration needs exactly one Rule.")
    node = nodes[0]
    target = (node.findtext("Destination/Bucket") or "").strip()
    location = (node.findtext("Destination/Location") or "").strip()
    if not target or not location:
        raise OssError(400, "MalformedXML", "A replication Rule needs Destination/Bucket and Destination/Location.")
    transfer_type = node.findtext("Destination/TransferType") or "internal"
    if transfer_type not in _REPLICATION_TRANSFER_TYPES:
        raise invalid_argument("TransferType must be internal or oss_acc.", "TransferType", transfer_type)
    historical = node.findtext("HistoricalObjectReplication") or "enabled"
    if historical not in ("enabled", "disabled"):
        raise invalid_argument(
            "HistoricalObjectReplication must be enabled or disabled.", "HistoricalObjectReplication", historical
        )
    prefixes = [p.text or "" for p in node.findall("PrefixSet/Prefix")]
    if len(prefixes) > _MAX_REPLICATION_PREFIXES:
        raise invalid_argument(
            f"A replication rule takes at most {_MAX_REPLICATION_PREFIXES} prefixes.", "Prefix", str(len(prefixes))
        )
    action = node.findtext("Action") or "ALL"
    actions = [a.strip() for a in action.split(",")]
    if not set(actions) <= _REPLICATION_ACTIONS:
        raise invalid_argument("Action must be ALL or a list of PUT, DELETE and ABORT.", "Action", action)
    if target == bucket.name:
        raise invalid_argument("The target bucket must not be the source bucket.", "Bucket", target)
    target_bucket = server.buckets.get(target)
    if target_bucket is None:
        raise OssError(
            404, "NoSuchBucket", "The target bucket of the replication rule does not exist.", BucketName=target
        )
    if location != target_bucket.region:
        raise OssError(
            400,
            "BadReplicationLocation",
            f"The replication location you choose is invalid: bucket {target} is in {target_bucket.region}.",
        )
    rule = ReplicationRule(
        id=(node.findtext("ID") or "").strip() or str(uuid.uuid4()),
        source=bucket.name,
        target=target,
        location=location,
        prefixes=prefixes,
        actions=actions,
        historical=historical == "enabled",
        created_ns=time.time_ns(),
        transfer_type=transfer_type,
    )
    server.replicator.add(rule)
    return Response(200, {"x-oss-replication-rule-id": rule.id})


def get_bucket_replication(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetBucketReplication: the bucket's rules; NoSuchReplicationConfiguration when none."""
    rules = server.replicator.rules(bucket.name)
    if not rules:
        raise OssError(
            404,
            "NoSuchReplicationConfiguration",
            "The replication configuration does not exist.",
            BucketName=bucket.name,
        )
    root = ET.Element("ReplicationConfiguration")
    for rule in rules:
        _rule_xml(root, rule)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def get_bucket_replication_progress(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetBucketReplicationProgress: a rule's historical fraction and NewObject point."""
    rule = server.replicator.rule(bucket.name, req.params.get("rule-id", ""))
    root = ET.Element("ReplicationProgress")
    node = _rule_xml(root, rule)
    progress = sub(node, "Progress")
    if rule.historical:
        sub(progress, "HistoricalObject", f"{rule.historical_progress:.2f}".rstrip("0").rstrip("."))
    if rule.new_object_progress is not None:
        sub(progress, "NewObject", iso8601(rule.new_object_progress))
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def get_bucket_replication_location(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """GetBucketReplicationLocation: the regions of the server's other buckets."""
    root = ET.Element("ReplicationLocation")
    for region in sorted({b.region for b in server.buckets.values()} - {bucket.region}):
        sub(root, "Location", region)
    return Response(200, {"Content-Type": "application/xml"}, xml_document(root))


def delete_bucket_replication(server: OssServer, req: Request, bucket: BucketConfig) -> Response:
    """DeleteBucketReplication: the rule named by ID starts closing."""
    root = _xml_body(req, "ReplicationRules")
    rule_id = (root.findtext("ID") or "").strip()
    if not rule_id:
        raise OssError(400, "MalformedXML", "ReplicationRules needs the ID of the rule to delete.")
    server.replicator.close(bucket.name, rule_id)
    return Response(200)


def _xml_body(req: Request, tag: str) -> ET.Element:
    """The request's XML document (Content-MD5 checked when sent); MalformedXML unless its root is `tag`."""
    given = req.headers.get("content-md5")
    if given is not None and given != base64.b64encode(hashlib.md5(req.body).digest()).decode():
        raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    try:
        root = ET.fromstring(req.body)
    except ET.ParseError:
        raise OssError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag != tag:
        raise OssError(400, "MalformedXML", f"The XML document must be a {tag}.")
    return root


def _rule_xml(parent: ET.Element, rule: ReplicationRule) -> ET.Element:
    node = sub(parent, "Rule")
    sub(node, "ID", rule.id)
    if rule.prefixes:
        prefix_set = sub(node, "PrefixSet")
        for prefix in rule.prefixes:
            sub(prefix_set, "Prefix", prefix)
    sub(node, "Action", ",".join(rule.actions))
    destination = sub(node, "Destination")
    sub(destination, "Bucket", rule.target)
    sub(destination, "Location", rule.location)
    sub(destination, "TransferType", rule.transfer_type)
    sub(node, "Status", rule.status)
    sub(node, "HistoricalObjectReplication", "enabled" if rule.historical else "disabled")
    return node
