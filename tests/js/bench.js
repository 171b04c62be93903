#!/usr/bin/env node
// The reference side of scripts/bench.sh: handlebars.js renders the Handlebars stage of
// a herald template (subject and email body, before MJML and CSS inlining) with the
// context herald's own benchmark used, in the same run, on the same machine.
//
// usage: node bench.js <templates dir> <template name> <context.json> <expected.json>
//   context.json:  the template context herald rendered (request data, `herald` object)
//   expected.json: {"<part file>": "<herald's output>", ...}; each part is rendered here
//                  first and must print exactly what herald printed, or the timing means
//                  nothing and the script exits 1 naming the part.
// stdout: {"samples_ns": [...], "iterations": N, "parts": [...]}: per-render nanoseconds,
//         one figure per sample (a sample is a timed loop of N renders).
//
// herald's helpers are given their JavaScript meaning (Intl for numbers and dates, the
// string files for `t`), written for this template set, not a general port.
'use strict';

const fs = require('fs');
const path = require('path');
const Handlebars = require('handlebars');

const [templatesDir, name, contextFile, expectedFile] = process.argv.slice(2);
if (!expectedFile) {
  process.stderr.write('usage: node bench.js <templates dir> <template name> <context.json> <expected.json>\n');
  process.exit(2);
}
const context = JSON.parse(fs.readFileSync(contextFile, 'utf8'));
const expected = JSON.parse(fs.readFileSync(expectedFile, 'utf8'));
const locale = (context.herald && context.herald.locale) || 'en';
const timeZone = (context.herald && context.herald.timezone) || 'UTC';

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code === 'ENOENT') return {};
    throw e;
  }
}
// `t`: the template's string file, then the shared one, for the locale then its language.
const languages = [locale, locale.split('-')[0], 'en'];
const stringFiles = [];
for (const tag of languages) {
  stringFiles.push(readJson(path.join(templatesDir, name, 'locales', `${tag}.json`)));
  stringFiles.push(readJson(path.join(templatesDir, '_locales', `${tag}.json`)));
}
function lookup(key) {
  for (const file of stringFiles) {
    let v = file;
    for (const k of key.split('.')) v = v && typeof v === 'object' ? v[k] : undefined;
    if (typeof v === 'string') return v;
  }
  throw new Error(`t: no string "${key}"`);
}

const hbs = Handlebars.create();
const blank = (v) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
hbs.registerHelper('default', (value, fallback) => (blank(value) ? fallback : value));
hbs.registerHelper('t', function (key, options) {
  const args = options.hash || {};
  const text = lookup(key).replace(/\{(\w+)\}/g, (m, k) =>
    k in args ? Handlebars.escapeExpression(args[k]) : m,
  );
  return new Handlebars.SafeString(text);
});
const currencies = new Map();
hbs.registerHelper('format_currency', (amount, code) => {
  let f = currencies.get(code);
  if (!f) {
    f = new Intl.NumberFormat(locale, { style: 'currency', currency: code });
    currencies.set(code, f);
  }
  return f.format(amount);
});
const dates = new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone });
hbs.registerHelper('format_date', (when, style) => {
  if (style !== 'long') throw new Error(`format_date: this reference knows "long" only, not ${style}`);
  return dates.format(new Date(/^\d{4}-\d{2}-\d{2}$/.test(when) ? `${when}T00:00:00Z` : when));
});

const parts = Object.keys(expected);
const compiled = parts.map((file) => {
  const source = fs.readFileSync(path.join(templatesDir, name, file), 'utf8');
  return hbs.compile(source, { noEscape: false });
});
compiled.forEach((template, i) => {
  const out = template(context);
  if (out !== expected[parts[i]]) {
    let at = 0;
    while (at < out.length && out[at] === expected[parts[i]][at]) at++;
    process.stderr.write(
      `bench.js: handlebars.js and herald differ on ${parts[i]} at character ${at}:\n` +
        `  handlebars.js: ${JSON.stringify(out.slice(Math.max(0, at - 40), at + 40))}\n` +
        `  herald:        ${JSON.stringify(expected[parts[i]].slice(Math.max(0, at - 40), at + 40))}\n`,
    );
    process.exit(1);
  }
});

function renderAll() {
  let n = 0;
  for (const template of compiled) n += template(context).length;
  return n;
}
// Warm up until V8 has optimised the compiled templates (about 2 s), then time samples.
const warmUntil = process.hrtime.bigint() + 2000000000n;
let sink = 0;
while (process.hrtime.bigint() < warmUntil) sink += renderAll();
const iterations = 2000;
const samples = [];
for (let s = 0; s < 50; s++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) sink += renderAll();
  samples.push(Number(process.hrtime.bigint() - start) / iterations);
}
process.stdout.write(JSON.stringify({ samples_ns: samples, iterations, parts, sink: sink > 0 }) + '\n');
