// Verify a herald webhook (Standard Webhooks, HMAC-SHA256) with Node's crypto only.
// Sign the exact bytes received: parse the JSON only after verifying it.
import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * True when one of `webhook-signature`'s v1 entries matches and the timestamp is fresh.
 * `secret` is "whsec_..." (the webhook secret's entry for your subscription);
 * `headers` maps lower-case header names to values; `body` is the raw Buffer.
 */
export function verify(secret, headers, body, toleranceSeconds = 300) {
  const id = headers["webhook-id"] ?? "";
  const timestamp = headers["webhook-timestamp"] ?? "";
  if (!id || !/^\d+$/.test(timestamp)) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  return (headers["webhook-signature"] ?? "").split(" ").some((entry) => {
    const [version, signature] = entry.split(",", 2);
    if (version !== "v1" || !signature) return false;
    const given = Buffer.from(signature, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

// Test harness: one case as JSON on stdin -> "ok" or "invalid".
if (import.meta.url === `file://${process.argv[1]}`) {
  let input = "";
  for await (const chunk of process.stdin) input += chunk;
  const c = JSON.parse(input);
  console.log(verify(c.secret, c.headers, Buffer.from(c.body)) ? "ok" : "invalid");
}
