#!/usr/bin/env node
// Renders template cases with handlebars.js, the reference herald's engine is compared
// against (shared/tests/handlebars_js_parity.rs).
//
// stdin:  [{"template": "...", "data": {...}, "partials": {"name": "..."}}, ...]
// stdout: [{"ok": "<output>"} | {"error": "<message>"}, ...], one result per case, in order.
//
// Every case gets its own environment (partials never leak between cases) and is
// compiled as herald compiles: strict (a missing variable is an error), HTML-escaped.
'use strict';

const Handlebars = require('handlebars');

function render(c) {
  const hbs = Handlebars.create();
  try {
    for (const [name, source] of Object.entries(c.partials || {})) {
      hbs.registerPartial(name, source);
    }
    const template = hbs.compile(c.template, { strict: true, noEscape: false });
    return { ok: template(c.data === undefined ? {} : c.data) };
  } catch (e) {
    return { error: String((e && e.message) || e) };
  }
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  input += chunk;
});
process.stdin.on('end', () => {
  let cases;
  try {
    cases = JSON.parse(input);
  } catch (e) {
    process.stderr.write(`render.js: stdin is not JSON: ${e.message}\n`);
    process.exit(2);
  }
  if (!Array.isArray(cases)) {
    process.stderr.write('render.js: stdin must be a JSON array of cases\n');
    process.exit(2);
  }
  process.stdout.write(JSON.stringify(cases.map(render)));
});
