#!/usr/bin/env python3
"""The table scripts/bench.sh prints: metric, herald's value, the reference measured in
the same run, their ratio, the target and whether it is met.

usage: bench_table.py <results.jsonl> [machine description]

Each input line is one measurement from shared/examples/bench_inprocess.rs or
tests/examples/bench_e2e.rs: {"metric", "unit", "samples": [...]} (a median is shown,
with the 10th to 90th percentile) or {"metric", "unit", "value"}.
"""

import json
import statistics
import sys

# List prices, us-east-1, as published on the AWS pricing pages in November 2026.
PRICES = {
    "lambda_arm64_gb_second": 0.0000133334,
    "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB request
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand write request unit
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand read request unit
}
MEMORY_GB = 0.25  # MemorySize of the channel functions in infra/template.yaml
# What the in-process batch does not wait for: admission and completion round trips to
# DynamoDB and the receipts' SendMessageBatch, about 10 ms each inside a region (assumed).
AWS_ROUND_TRIPS_MS = 30.0


def load(path):
    metrics = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                m = json.loads(line)
                metrics[m["metric"]] = m
    return metrics


def percentile(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Figure:
    def __init__(self, m):
        self.unit = m.get("unit", "")
        if "samples" in m and m["samples"]:
            s = m["samples"]
            self.value = statistics.median(s)
            self.spread = (percentile(s, 0.1), percentile(s, 0.9), len(s))
        else:
            self.value = m.get("value")
            self.spread = None
        self.detail = m.get("detail")

    def text(self, digits=1):
        if self.value is None:
            return "n/a"
        v = f"{self.value:,.{digits}f} {self.unit}".strip()
        if self.spread:
            lo, hi, n = self.spread
            v += f" ({lo:,.{digits}f} to {hi:,.{digits}f}, n={n})"
        return v


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    metrics = load(sys.argv[1])
    machine = sys.argv[2] if len(sys.argv) > 2 else ""

    def fig(name):
        f = Figure(metrics[name]) if name in metrics else None
        # A metric without a value (no samples) is left out of the table, not divided.
        return f if f is not None and f.value is not None else None

    rows = []

    def row(what, herald, reference=None, target=None, ratio=None, ok=None, digits=1):
        rows.append(
            [
                what,
                herald.text(digits) if isinstance(herald, Figure) else (herald or "n/a"),
                reference.text(digits) if isinstance(reference, Figure) else (reference or ""),
                f"{ratio:.2f}x" if ratio is not None else "",
                target or "",
                "" if ok is None else ("met" if ok else "MISSED"),
            ]
        )

    h, ref = fig("render.handlebars.newsletter"), fig("render.handlebars.newsletter.reference")
    if h and ref:
        r = h.value / ref.value
        row("Handlebars stage, newsletter subject + body (same files, same context; reference: handlebars.js 4.7.8)",
            h, ref, "ratio < 1.0 (moonshot 0.5)", r, r < 1.0)
    for name, label in [("order-confirmation", "HTML layout"), ("newsletter", "MJML")]:
        f = fig(f"render.email.{name}")
        if f:
            row(f"Full email render, {name} ({label}; CSS inlined; text part)", f, None, "< 25 us",
                None, f.value < 25)
        f = fig(f"render.email.{name}.first_of_shape")
        if f:
            row(f"  the same, first email of its shape (MJML and CSS computed, not reused)", f)
    f = fig("pipeline.cpu_per_message")
    if f:
        row("Pipeline CPU per message (in-memory ports, 1 thread; email mix)", f, None, "< 40 us", None,
            f.value < 40)
    f = fig("batch10.provider50ms")
    if f:
        r = f.value / 50.0
        row("Batch of 10, provider answering in 50 ms", f, "50 ms round trip", "< 1.1x", r, r < 1.1)
    for c in (10, 50, 100):
        t, cpu = fig(f"throughput.c{c}.messages_per_second"), fig(f"throughput.c{c}.cpu_per_message")
        if t and cpu:
            ideal = c / 0.05
            row(f"Throughput, one instance, record concurrency {c} (provider 50 ms)",
                f"{t.value:,.0f} msg/s, CPU {cpu.value:,.0f} us/msg", f"{ideal:,.0f} msg/s if only waiting",
                None, t.value / ideal)
    for label in ("email.transactional", "email.marketing", "sms.transactional", "push.transactional"):
        f = fig(f"aws.{label}.requests_per_message")
        if f:
            parts = ", ".join(
                f"{k.split('.')[-1].removesuffix('_per_message')} {metrics[k]['value']:.2f}"
                for k in sorted(metrics)
                if k.startswith(f"aws.{label}.") and k.endswith("_per_message")
                and not k.endswith(("requests_per_message", "wcu_per_message", "rcu_per_message"))
            )
            row(f"AWS requests per sent message, {label} ({parts})", f, None, "<= 2.2", None,
                f.value <= 2.2, digits=2)
    f = fig("fcm.push.sends_per_message")
    if f:
        grants = fig("fcm.push.token_fetches")
        n = round(grants.value) if grants else 0
        extra = f", plus {n} OAuth grant{'' if n == 1 else 's'} in the whole run" if grants else ""
        row(f"FCM requests per sent push (not AWS: the provider's own API{extra})", f, None, None, None, None,
            digits=2)
    for label, limit in (("email.marketing", 4), ("email.transactional", 3), ("sms.transactional", 3),
                         ("push.transactional", 3)):
        f = fig(f"aws.{label}.wcu_per_message")
        if f:
            row(f"DynamoDB write units per sent message, {label}", f, None, f"<= {limit}", None,
                f.value <= limit, digits=2)
    f = fig("dynamodb.largest_item")
    if f:
        row(f"Largest DynamoDB item after the run ({f.detail} item)", f, None, "< 1,024 bytes", None,
            f.value < 1024, digits=0)
    bare = fig("cold_start.bare")
    for fn in ("email", "sms", "push"):
        f = fig(f"cold_start.{fn}")
        if f and bare:
            r = f.value / bare.value
            row(f"Cold start to first /next, {fn} function", f, bare, "< 2x bare lambda_runtime", r, r < 2.0)
        rss = fig(f"rss.{fn}.peak")
        if rss:
            row(f"Peak RSS, {fn} function after 10-message batches", rss, None, "< 40 MB", None, rss.value < 40)
        size = fig(f"binary.{fn}.size")
        if size:
            row(f"Stripped release binary, {fn} function", size, fig("binary.bare.size"), None, None, None,
                digits=1)

    # Cost per million marketing emails, excluding SES's per-message fee.
    cpu = fig("pipeline.cpu_per_message")
    wcu, rcu = fig("aws.email.marketing.wcu_per_message"), fig("aws.email.marketing.rcu_per_message")
    sqs = fig("aws.email.marketing.sqs_per_message")
    if cpu and wcu:
        # A batch of 10 on Lambda: the provider's 50 ms, the DynamoDB and SQS round trips,
        # and the records' CPU on the function's share of a vCPU (MEMORY_GB of 1,769 MB),
        # at this machine's speed per core (an arm64 core is not the same: an estimate).
        batch_ms = 50.0 + AWS_ROUND_TRIPS_MS + 10 * cpu.value / 1000.0 / (MEMORY_GB * 1024 / 1769)
        seconds = batch_ms / 1000.0 / 10.0
        lam = seconds * MEMORY_GB * PRICES["lambda_arm64_gb_second"] + PRICES["lambda_request"] / 10
        # The event source's ReceiveMessage and DeleteMessageBatch (one each per batch of
        # 10), plus the function's own SQS requests (receipts) counted at the proxy.
        sqs_requests = 0.2 + (sqs.value if sqs else 0.0)
        queue = sqs_requests * PRICES["sqs_request"]
        ddb = wcu.value * PRICES["dynamodb_write_unit"] + (rcu.value if rcu else 0.0) * PRICES["dynamodb_read_unit"]
        total = (lam + queue + ddb) * 1e6
        detail = f"Lambda ${lam * 1e6:.2f} + SQS ${queue * 1e6:.2f} + DynamoDB ${ddb * 1e6:.2f}"
        row(f"Cost per million marketing emails ({detail}; list prices 2026-11, SES fee excluded)",
            f"${total:.2f}", None, "< $2", None, total < 2.0)

    header = ["metric", "herald", "reference (same run)", "ratio", "target", ""]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    lines = []
    if machine:
        lines.append(f"Machine: {machine}")
        lines.append("")
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    print("\n".join(lines))
    for name, m in sorted(metrics.items()):
        if name.endswith(".operations"):
            calls = ", ".join(f"{k} {v / m['sent']:.2f}" for k, v in sorted(m["detail"].items()))
            print(f"\n{name.removesuffix('.operations')}: calls per sent message: {calls}")


if __name__ == "__main__":
    main()
