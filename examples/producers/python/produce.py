#!/usr/bin/env python3
"""Send herald delivery requests from Python with boto3: each to its channel's request
queue, or published to the stack's entry topic, which routes it by channel.

Usage:
    produce.py [--queue CHANNEL=URL]... [--topic-arn ARN] FILE...

Each FILE holds one delivery request, a JSON object (see ../requests/). Every request is
checked before anything is sent: it must be a JSON object whose "channel" herald knows,
and that channel must have a destination. A request that fails names its file and the
reason, never its content (it may hold an address or a phone number), and nothing is sent.

Destinations, from the arguments or else the environment (stack outputs in brackets):
    --queue email=URL   HERALD_EMAIL_QUEUE_URL   (EmailRequestQueueUrl)
    --queue sms=URL     HERALD_SMS_QUEUE_URL     (SmsRequestQueueUrl)
    --topic-arn ARN     HERALD_ENTRY_TOPIC_ARN   (EntryTopicArn, with CreateEntryTopic=true)
With a topic ARN every request is published to the entry topic; otherwise each goes to
its channel's queue. Prints one line per request: file, channel, destination, message id.

Credentials, Region and endpoint come from boto3's usual sources (AWS_PROFILE,
AWS_DEFAULT_REGION, ...; AWS_ENDPOINT_URL with boto3 1.28 or newer).
"""

import argparse
import json
import os
import sys

import boto3

CHANNELS = ("email", "sms", "push")
# SNS carries at most 256 KiB per message, herald's own limit for a request.
MAX_BYTES = 256 * 1024


class Unroutable(Exception):
    """A request that cannot be sent; the message never quotes the request."""


def channel_of(body: str) -> str:
    """The channel a request body names."""
    try:
        request = json.loads(body)
    except ValueError as e:
        # Where, never what: the text may hold an address or a phone number.
        raise Unroutable(f"not valid JSON (line {e.lineno}, column {e.colno})") from None
    if not isinstance(request, dict):
        raise Unroutable("expected a JSON object")
    channel = request.get("channel")
    if channel is None:
        raise Unroutable("no channel")
    if channel not in CHANNELS:
        raise Unroutable(f"the channel is not one of {', '.join(CHANNELS)}")
    return channel


class Producer:
    """Sends request bodies, exactly as given, to their channel's queue or the entry topic."""

    def __init__(self, queues: dict, topic_arn: str | None):
        self.queues = queues
        self.topic_arn = topic_arn
        self.client = None  # made at the first send, after every check

    def _client(self):
        if self.client is None:
            self.client = boto3.client("sns" if self.topic_arn else "sqs")
        return self.client

    def check(self, body: str) -> str:
        channel = channel_of(body)
        if self.topic_arn:
            if len(body.encode()) > MAX_BYTES:
                raise Unroutable(f"larger than the {MAX_BYTES} bytes SNS can publish")
        elif channel not in self.queues:
            raise Unroutable(f"channel {channel} has no queue (--queue {channel}=URL)")
        return channel

    def send(self, body: str, channel: str) -> tuple[str, str]:
        """(destination, message id)."""
        if self.topic_arn:
            reply = self._client().publish(TopicArn=self.topic_arn, Message=body)
            return self.topic_arn, reply["MessageId"]
        # For many requests, SendMessageBatch takes 10 at a time.
        reply = self._client().send_message(QueueUrl=self.queues[channel], MessageBody=body)
        return self.queues[channel], reply["MessageId"]

    def send_request(self, request: dict) -> tuple[str, str]:
        """A request built in code: serialised once, checked, sent."""
        body = json.dumps(request, ensure_ascii=False)
        return self.send(body, self.check(body))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--queue", action="append", default=[], metavar="CHANNEL=URL")
    parser.add_argument("--topic-arn", default=os.environ.get("HERALD_ENTRY_TOPIC_ARN") or None)
    args = parser.parse_args(argv)

    queues = {}
    for channel in CHANNELS:
        url = os.environ.get(f"HERALD_{channel.upper()}_QUEUE_URL")
        if url:
            queues[channel] = url
    for route in args.queue:
        channel, _, url = route.partition("=")
        if channel not in CHANNELS or not url:
            parser.error(f"--queue takes CHANNEL=URL with CHANNEL one of {', '.join(CHANNELS)}")
        queues[channel] = url
    if not args.topic_arn and not queues:
        parser.error("no destination: give --topic-arn or --queue CHANNEL=URL (or their environment variables)")

    producer = Producer(queues, args.topic_arn)
    checked, refused = [], 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            body = f.read().strip()
        try:
            checked.append((path, body, producer.check(body)))
        except Unroutable as e:
            print(f"{path}: {e}", file=sys.stderr)
            refused += 1
    if refused:
        print(f"{refused} of {len(args.files)} request(s) cannot be sent: nothing was sent", file=sys.stderr)
        return 4
    for path, body, channel in checked:
        destination, message_id = producer.send(body, channel)
        print(f"{path}\t{channel}\t{destination}\t{message_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
