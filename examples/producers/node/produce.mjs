#!/usr/bin/env node
// Send herald delivery requests from Node.js with the AWS SDK v3: each to its channel's
// request queue, or published to the stack's entry topic, which routes it by channel.
//
// Usage:
//   node produce.mjs [--queue CHANNEL=URL]... [--topic-arn ARN] FILE...
//
// Each FILE holds one delivery request, a JSON object (see ../requests/). Every request
// is checked before anything is sent: it must be a JSON object whose "channel" herald
// knows, and that channel must have a destination. A request that fails names its file
// and the reason, never its content (it may hold an address or a phone number), and
// nothing is sent.
//
// Destinations, from the arguments or else the environment (stack outputs in brackets):
//   --queue email=URL   HERALD_EMAIL_QUEUE_URL   (EmailRequestQueueUrl)
//   --queue sms=URL     HERALD_SMS_QUEUE_URL     (SmsRequestQueueUrl)
//   --topic-arn ARN     HERALD_ENTRY_TOPIC_ARN   (EntryTopicArn, with CreateEntryTopic=true)
// With a topic ARN every request is published to the entry topic; otherwise each goes to
// its channel's queue. Prints one line per request: file, channel, destination, message id.
//
// Credentials, Region and endpoint come from the SDK's usual sources (AWS_PROFILE,
// AWS_REGION, AWS_ENDPOINT_URL, ...).

import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { SQSClient, SendMessageCommand } from "@aws-sdk/client-sqs";
import { SNSClient, PublishCommand } from "@aws-sdk/client-sns";

const CHANNELS = ["email", "sms", "push"];
// SNS carries at most 256 KiB per message, herald's own limit for a request.
const MAX_BYTES = 256 * 1024;

class Unroutable extends Error {}

/** The channel a request body names; the error never quotes the body. */
export function channelOf(body) {
  let request;
  try {
    request = JSON.parse(body);
  } catch {
    throw new Unroutable("not valid JSON");
  }
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    throw new Unroutable("expected a JSON object");
  }
  if (request.channel === undefined || request.channel === null) {
    throw new Unroutable("no channel");
  }
  if (!CHANNELS.includes(request.channel)) {
    throw new Unroutable(`the channel is not one of ${CHANNELS.join(", ")}`);
  }
  return request.channel;
}

/** Sends request bodies, exactly as given, to their channel's queue or the entry topic. */
export class Producer {
  constructor(queues, topicArn) {
    this.queues = queues;
    this.topicArn = topicArn;
    this.sqs = topicArn ? null : new SQSClient({});
    this.sns = topicArn ? new SNSClient({}) : null;
  }

  check(body) {
    const channel = channelOf(body);
    if (this.topicArn) {
      if (Buffer.byteLength(body) > MAX_BYTES) {
        throw new Unroutable(`larger than the ${MAX_BYTES} bytes SNS can publish`);
      }
    } else if (!this.queues[channel]) {
      throw new Unroutable(`channel ${channel} has no queue (--queue ${channel}=URL)`);
    }
    return channel;
  }

  /** [destination, message id]. */
  async send(body, channel) {
    if (this.topicArn) {
      const reply = await this.sns.send(new PublishCommand({ TopicArn: this.topicArn, Message: body }));
      return [this.topicArn, reply.MessageId];
    }
    // For many requests, SendMessageBatchCommand takes 10 at a time.
    const url = this.queues[channel];
    const reply = await this.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }));
    return [url, reply.MessageId];
  }

  /** A request built in code: serialised once, checked, sent. */
  async sendRequest(request) {
    const body = JSON.stringify(request);
    return this.send(body, this.check(body));
  }
}

function usage(message) {
  console.error(`produce.mjs: ${message}`);
  console.error("usage: node produce.mjs [--queue CHANNEL=URL]... [--topic-arn ARN] FILE...");
  process.exit(2);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { queue: { type: "string", multiple: true, default: [] }, "topic-arn": { type: "string" } },
    });
  } catch (e) {
    usage(e.message);
  }
  const files = parsed.positionals;
  if (files.length === 0) usage("no request file");
  const topicArn = parsed.values["topic-arn"] || process.env.HERALD_ENTRY_TOPIC_ARN || null;
  const queues = {};
  for (const channel of CHANNELS) {
    const url = process.env[`HERALD_${channel.toUpperCase()}_QUEUE_URL`];
    if (url) queues[channel] = url;
  }
  for (const route of parsed.values.queue) {
    const at = route.indexOf("=");
    const [channel, url] = at < 0 ? [route, ""] : [route.slice(0, at), route.slice(at + 1)];
    if (!CHANNELS.includes(channel) || !url) usage(`--queue takes CHANNEL=URL with CHANNEL one of ${CHANNELS.join(", ")}`);
    queues[channel] = url;
  }
  if (!topicArn && Object.keys(queues).length === 0) {
    usage("no destination: give --topic-arn or --queue CHANNEL=URL (or their environment variables)");
  }

  const producer = new Producer(queues, topicArn);
  const checked = [];
  let refused = 0;
  for (const path of files) {
    const body = readFileSync(path, "utf8").trim();
    try {
      checked.push([path, body, producer.check(body)]);
    } catch (e) {
      if (!(e instanceof Unroutable)) throw e;
      console.error(`${path}: ${e.message}`);
      refused += 1;
    }
  }
  if (refused > 0) {
    console.error(`${refused} of ${files.length} request(s) cannot be sent: nothing was sent`);
    process.exit(4);
  }
  for (const [path, body, channel] of checked) {
    const [destination, messageId] = await producer.send(body, channel);
    console.log(`${path}\t${channel}\t${destination}\t${messageId}`);
  }
}

// Run as a program; imported, it only lends channelOf and Producer.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    // The SDK's error names the call and AWS's reason, not the request.
    console.error(`produce.mjs: ${e.name}: ${e.message}`);
    process.exit(1);
  });
}
