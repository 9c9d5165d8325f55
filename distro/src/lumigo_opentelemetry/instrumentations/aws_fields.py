"""The attributes upstream's distro puts on AWS SDK spans, computed from the API call.

Pure functions over the call's service, operation, parameters, region and result, so
the botocore hooks only move values onto the span:

- request: `aws.service` (e.g. `sqs`), `aws.region` and `region`, `http.method` (the
  operation, e.g. `SendMessage`), `http.url` (`https://<service>.<region>.amazonaws.com`),
  `aws.resource.name` (table, queue, function or topic), `aws.dynamodb.method`, and
  `http.request.body`: the API parameters as JSON, or for SQS, SNS and Lambda the message
  or payload alone (`MessageBody`, `Message`, `Payload`), masked and cut;
- response: `messageId` (the message id AWS returned, else the request id).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

if TYPE_CHECKING:
    from lumigo_opentelemetry.config import Config

#: services whose `http.request.body` is upstream's (the message/payload), not the wire body
MESSAGE_FIELDS = {"sqs": "MessageBody", "sns": "Message", "lambda": "Payload"}
MESSAGE_ID = "messageId"

logger = logging.getLogger("lumigo-opentelemetry")


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return f"<binary body: {len(value)} bytes>"
    if hasattr(value, "read"):
        return "<stream>"
    return str(value)


def resource_name(service: str, params: Mapping[str, Any]) -> Optional[str]:
    if service == "dynamodb":
        name = params.get("TableName")
    elif service == "sqs":
        url = params.get("QueueUrl")
        name = url.rstrip("/").rsplit("/", 1)[-1] if isinstance(url, str) else None
    elif service == "lambda":
        name = params.get("FunctionName")
    elif service == "sns":
        arn = params.get("TargetArn") or params.get("TopicArn")
        name = arn.rsplit(":", 1)[-1] if isinstance(arn, str) else None
    elif service == "s3":
        name = params.get("Bucket")
    else:
        name = None
    return name if isinstance(name, str) and name else None


def request_body(service: str, params: Mapping[str, Any], config: Config) -> Optional[str]:
    """The API parameters (or the message/payload) as masked, truncated JSON text."""
    from lumigo_opentelemetry.instrumentations.payloads import body_attribute

    field = MESSAGE_FIELDS.get(service)
    value: Any = params.get(field, params) if field else params
    if isinstance(value, (bytes, bytearray)):
        return body_attribute(bytes(value), config)
    if isinstance(value, str):
        return body_attribute(value, config)
    if hasattr(value, "read"):
        return None  # a stream the app owns
    text = json.dumps(value, default=_json_default, ensure_ascii=False, separators=(",", ":"))
    return body_attribute(text, config, "application/json")


def request_attributes(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    region: Optional[str],
    config: Config,
) -> Dict[str, str]:
    attributes = {"aws.service": service, "http.method": operation}
    if region:
        attributes["aws.region"] = region
        attributes["region"] = region
        attributes["http.url"] = f"https://{service.lower()}.{region}.amazonaws.com"
    name = resource_name(service, params)
    if name:
        attributes["aws.resource.name"] = name
    if service == "dynamodb":
        attributes["aws.dynamodb.method"] = operation
    try:
        body = request_body(service, params, config)
    except Exception:
        logger.debug("AWS request body capture failed; attribute dropped", exc_info=True)
        body = None
    if body is not None:
        attributes["http.request.body"] = body
    return attributes


def message_id(result: Any) -> Optional[str]:
    """The message id AWS returned (send, batch send, receive), else the request id."""
    if not isinstance(result, Mapping):
        return None
    found = result.get("MessageId")
    if not found:
        successful = result.get("Successful")
        if isinstance(successful, list) and successful and isinstance(successful[0], Mapping):
            found = successful[0].get("MessageId")
    if not found:
        messages = result.get("Messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], Mapping):
            found = messages[0].get("MessageId")
    if not found:
        metadata = result.get("ResponseMetadata")
        headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
        if isinstance(headers, Mapping):
            found = headers.get("x-amzn-requestid") or headers.get("x-amz-requestid")
    return str(found) if found else None


def is_empty_sqs_poll(service: str, operation: str, result: Any) -> bool:
    """An SQS ReceiveMessage that returned no message."""
    if service != "sqs" or operation != "ReceiveMessage":
        return False
    return not (isinstance(result, Mapping) and result.get("Messages"))
