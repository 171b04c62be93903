//! Differential test: every case of the corpus below is rendered by herald's engine
//! (`engine::registry(Escape::Html)`, sources through `compat::prepare_source`, data
//! through `compat::js_numbers`, as the catalogue and the pipeline do) and by
//! handlebars.js 4.7.8 (`tests/js/render.js`, `strict: true`, HTML-escaped), and the
//! two must agree: the same output, or both an error (messages are not compared).
//!
//! A case where they differ fails the test unless `KNOWN_DIFFERENCES` lists it with the
//! reason; a listed case that agrees fails it too, so the list stays honest.
//!
//! The data of a case is JSON text, handed as is to both sides: herald parses it with
//! serde_json, node with `JSON.parse`, as a producer's request reaches either.
//!
//! Needs node and `tests/js/node_modules/handlebars` (`scripts/test.sh` installs it
//! with `npm ci`); without them the test prints a notice and passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use herald::render::compat::{js_numbers, prepare_source};
use herald::render::engine::{Escape, registry};
use serde_json::Value;

struct Case {
    name: &'static str,
    template: &'static str,
    /// JSON text.
    data: &'static str,
    partials: &'static [(&'static str, &'static str)],
}

const fn case(name: &'static str, template: &'static str, data: &'static str) -> Case {
    Case { name, template, data, partials: &[] }
}

const fn with_partials(
    name: &'static str,
    template: &'static str,
    data: &'static str,
    partials: &'static [(&'static str, &'static str)],
) -> Case {
    Case { name, template, data, partials }
}

const CORPUS: &[Case] = &[
    // --- interpolation and escaping ---------------------------------------------------
    case("escape every special character", "{{s}}", r#"{"s": "<a href=\"x\">Tom & 'Jerry' `=`</a>"}"#),
    case("triple-stash does not escape", "{{{s}}}", r#"{"s": "<b>&\"'`=</b>"}"#),
    case("ampersand does not escape", "{{&s}}", r#"{"s": "<i>&amp;</i>"}"#),
    case("already escaped entities are escaped again", "{{s}}", r#"{"s": "&lt;&#x27;"}"#),
    case("unicode passes through", "{{s}} {{t}}", r#"{"s": "héllo wörld", "t": "👍🏽 日本"}"#),
    case("newlines and tabs in values", "[{{s}}]", r#"{"s": "a\nb\tc\r\n"}"#),
    case("text around tags is kept", "Hi {{name}}, you owe {{amount}}.", r#"{"name": "Ada", "amount": "€5"}"#),
    case("escaped mustache is literal", "\\{{name}} {{name}}", r#"{"name": "Ada"}"#),
    case("escaped backslash then mustache", "\\\\{{name}}", r#"{"name": "Ada"}"#),
    // --- numbers -----------------------------------------------------------------------
    case("integers", "{{a}} {{b}} {{c}}", r#"{"a": 0, "b": 42, "c": -7}"#),
    case("integral float prints without .0", "{{a}} {{b}} {{c}}", r#"{"a": 10.0, "b": -3.0, "c": 0.0}"#),
    case("negative zero prints 0", "{{a}}", r#"{"a": -0.0}"#),
    case("exponent integral float", "{{a}} {{b}}", r#"{"a": 1e3, "b": 2.5E2}"#),
    case("decimals", "{{a}} {{b}} {{c}} {{d}}", r#"{"a": 0.1, "b": 3.14159, "c": -2.50, "d": 0.30000000000000004}"#),
    case("small decimal without exponent in JS", "{{a}} {{b}}", r#"{"a": 0.000001, "b": 0.0000123}"#),
    case("tiny decimal with exponent", "{{a}} {{b}}", r#"{"a": 1.5e-7, "b": 1e-10}"#),
    case("huge number with exponent", "{{a}} {{b}}", r#"{"a": 1e21, "b": 1.5e300}"#),
    case("large float below 1e21", "{{a}} {{b}}", r#"{"a": 123456789012345680000, "b": 1e20}"#),
    case("safe integer boundary", "{{a}} {{b}}", r#"{"a": 9007199254740991, "b": -9007199254740991}"#),
    case("integer beyond 2^53", "{{a}}", r#"{"a": 9007199254740993}"#),
    case("integral float beyond 2^53", "{{a}}", r#"{"a": 1152921504606846976.0}"#),
    case("numbers in each and index", "{{#each xs}}{{@index}}:{{this}} {{/each}}", r#"{"xs": [1.0, 2.5, -0.0, 100]}"#),
    case("number literal as helper argument", "{{#with 5}}{{this}}{{/with}}", "{}"),
    case(
        "integral number literal prints without .0",
        "{{#with 10.0}}{{this}}{{/with}}|{{#with 1.50}}{{this}}{{/with}}",
        "{}",
    ),
    case(
        "prices in a loop",
        "{{#each items}}{{name}}: {{price}} x{{qty}}\n{{/each}}Total: {{total}}",
        r#"{"items": [{"name": "Tea", "price": 4.0, "qty": 2}, {"name": "Cake", "price": 3.75, "qty": 1.0}], "total": 11.75}"#,
    ),
    // --- booleans and null ---------------------------------------------------------------
    case("booleans print as words", "{{t}} {{f}}", r#"{"t": true, "f": false}"#),
    case("null prints nothing", "[{{n}}]", r#"{"n": null}"#),
    case("null field of null parent", "[{{a.b}}]", r#"{"a": {"b": null}}"#),
    // --- paths ---------------------------------------------------------------------------
    case("nested path with dots", "{{a.b.c}}", r#"{"a": {"b": {"c": "deep"}}}"#),
    case("nested path with slashes", "{{a/b/c}}", r#"{"a": {"b": {"c": "deep"}}}"#),
    case("this-prefixed path", "{{this.a}} {{./a}}", r#"{"a": "x"}"#),
    case("bracketed segment with spaces", "{{[first name]}} {{a.[b-c]}}", r#"{"first name": "Ada", "a": {"b-c": 1}}"#),
    case("array index segment", "{{xs.[1]}}", r#"{"xs": ["a", "b"]}"#),
    case("numeric path segment", "{{xs.1}}", r#"{"xs": ["a", "b"]}"#),
    case("dot is this", "{{#each xs}}{{.}},{{/each}}{{#with o}}{{.}}{{/with}}", r#"{"xs": [1, "a"], "o": "s"}"#),
    case("dot in mustache sections", "{{#xs}}<{{.}}>{{/xs}}{{^ys}}none{{/ys}}", r#"{"xs": ["a", "b"], "ys": []}"#),
    case("string literal as a key", "{{\"first name\"}} {{'last'}}", r#"{"first name": "Ada", "last": "L"}"#),
    case("number literal as a key", "{{12.5}}", r#"{"12.5": "twelve"}"#),
    case("unicode keys", "{{héllo}} {{日本}}", r#"{"héllo": 1, "日本": 2}"#),
    case(
        "length of an array",
        "{{items.length}} item(s){{#if items.length}}!{{/if}}{{#unless none.length}} none{{/unless}}",
        r#"{"items": [1, 2], "none": []}"#,
    ),
    case(
        "length in blocks and partial hashes",
        "{{#each xs}}{{@index}}/{{../xs.length}} {{/each}}{{^ys.length}}empty{{/ys.length}}{{{xs.length}}}{{&xs.length}}",
        r#"{"xs": ["a", "b"], "ys": []}"#,
    ),
    case(
        "length of a string as an argument",
        "{{#if s.length}}{{#with s.length}}{{this}}{{/with}}{{/if}}",
        r#"{"s": "héllo👍"}"#,
    ),
    case("length of a string printed", "{{s.length}}", r#"{"s": "abc"}"#),
    case(
        "length key of an object",
        "{{o.length}}|{{#if p.length}}y{{else}}n{{/if}}",
        r#"{"o": {"length": "L"}, "p": {}}"#,
    ),
    case("length of a missing value is an error", "{{#if nope.length}}y{{/if}}", "{}"),
    case("root data variable", "{{#each xs}}{{@root.title}}{{this}} {{/each}}", r#"{"title": "T", "xs": [1, 2]}"#),
    case("this prints a string context", "{{#with s}}{{this}}{{/with}}", r#"{"s": "hello"}"#),
    case("parent path in each", "{{#each xs}}{{../sep}}{{this}}{{/each}}", r#"{"sep": "-", "xs": ["a", "b"]}"#),
    case(
        "parent path in nested with",
        "{{#with a}}{{#with b}}{{c}}{{../x}}{{../../y}}{{/with}}{{/with}}",
        r#"{"y": "Y", "a": {"x": "X", "b": {"c": "C"}}}"#,
    ),
    // --- @data -----------------------------------------------------------------------------
    case(
        "index first last on arrays",
        "{{#each xs}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} {{/each}}",
        r#"{"xs": ["a", "b", "c"]}"#,
    ),
    case(
        "key on objects keeps JSON order",
        "{{#each o}}{{@key}}={{this}},{{/each}}",
        r#"{"o": {"zeta": 1, "alpha": 2, "mid": 3}}"#,
    ),
    case("key on arrays is the index", "{{#each xs}}{{@key}}{{/each}}", r#"{"xs": ["a", "b"]}"#),
    case(
        "integer keys enumerate first",
        "{{#each o}}{{@key}},{{/each}}",
        r#"{"o": {"b": 1, "10": 2, "2": 3, "-1": 4, "01": 5, "a": 6}}"#,
    ),
    case(
        "index first last on objects",
        "{{#each o}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}} {{/each}}",
        r#"{"o": {"a": 1, "b": 2}}"#,
    ),
    case(
        "index of outer each inside with",
        "{{#each xs}}{{#with this}}{{@index}}{{n}}{{/with}}{{/each}}",
        r#"{"xs": [{"n": "a"}, {"n": "b"}]}"#,
    ),
    case(
        "nested each indexes",
        "{{#each rows}}{{#each this}}{{@../index}}.{{@index}} {{/each}}{{/each}}",
        r#"{"rows": [[1, 2], [3]]}"#,
    ),
    // --- #each -------------------------------------------------------------------------------
    case(
        "each over objects in an array",
        "{{#each people}}{{name}} ({{age}}); {{/each}}",
        r#"{"people": [{"name": "Ada", "age": 36}, {"name": "Bob", "age": 4.0}]}"#,
    ),
    case("each with else on empty array", "{{#each xs}}x{{else}}none{{/each}}", r#"{"xs": []}"#),
    case("each with else on empty object", "{{#each o}}x{{else}}none{{/each}}", r#"{"o": {}}"#),
    case("each on missing value", "[{{#each xs}}x{{else}}none{{/each}}][{{#each xs}}x{{/each}}]", "{}"),
    case(
        "each on null, string and number",
        "{{#each n}}x{{else}}1{{/each}}{{#each s}}x{{else}}2{{/each}}{{#each z}}x{{else}}3{{/each}}",
        r#"{"n": null, "s": "abc", "z": 5}"#,
    ),
    case("each else if chain", "{{#each xs}}x{{else if y}}y{{else}}z{{/each}}", r#"{"xs": [], "y": true}"#),
    case(
        "comma separated list with unless last",
        "{{#each xs}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}",
        r#"{"xs": ["a", "b", "c"]}"#,
    ),
    case(
        "root inside nested blocks",
        "{{#each xs}}{{#if this}}{{@root.p}}{{this}}{{/if}}{{/each}}",
        r##"{"p": "#", "xs": [1, 0, 2]}"##,
    ),
    case("each with block params", "{{#each xs as |item i|}}{{i}}={{item}} {{/each}}", r#"{"xs": ["a", "b"]}"#),
    case(
        "each over object with block params",
        "{{#each o as |v k|}}{{k}}:{{v}} {{/each}}",
        r#"{"o": {"x": 1, "y": 2}}"#,
    ),
    // --- #with -------------------------------------------------------------------------------
    case("with on object", "{{#with user}}{{name}}{{/with}}", r#"{"user": {"name": "Ada"}}"#),
    case(
        "with else on null false empty",
        "{{#with a}}A{{else}}a{{/with}}{{#with b}}B{{else}}b{{/with}}{{#with c}}C{{else}}c{{/with}}{{#with d}}D{{else}}d{{/with}}",
        r#"{"a": null, "b": false, "c": "", "d": []}"#,
    ),
    case(
        "with on empty object and zero",
        "{{#with o}}O{{else}}o{{/with}}{{#with z}}[{{this}}]{{else}}z{{/with}}",
        r#"{"o": {}, "z": 0}"#,
    ),
    case("with on missing value", "[{{#with u}}x{{else}}none{{/with}}]", "{}"),
    case("with block param", "{{#with user as |u|}}{{u.name}}{{/with}}", r#"{"user": {"name": "Ada"}}"#),
    // --- #if / #unless -------------------------------------------------------------------
    case("if else", "{{#if a}}yes{{else}}no{{/if}}|{{#if b}}yes{{else}}no{{/if}}", r#"{"a": true, "b": false}"#),
    case(
        "if else if chain",
        "{{#if a}}A{{else if b}}B{{else if c}}C{{else}}D{{/if}}",
        r#"{"a": 0, "b": "", "c": "x"}"#,
    ),
    case(
        "if truthiness of 0 and empty string",
        "{{#if z}}1{{else}}0{{/if}}{{#if s}}1{{else}}0{{/if}}",
        r#"{"z": 0, "s": ""}"#,
    ),
    case("if truthiness of empty array", "{{#if xs}}1{{else}}0{{/if}}", r#"{"xs": []}"#),
    case("if truthiness of empty object", "{{#if o}}1{{else}}0{{/if}}", r#"{"o": {}}"#),
    case(
        "if truthiness of non-empty values",
        "{{#if a}}1{{/if}}{{#if b}}2{{/if}}{{#if c}}3{{/if}}{{#if d}}4{{/if}}",
        r#"{"a": [0], "b": {"k": 0}, "c": "0", "d": -1}"#,
    ),
    case(
        "if on 0.0 and tiny numbers",
        "{{#if a}}1{{else}}0{{/if}}{{#if b}}1{{else}}0{{/if}}",
        r#"{"a": 0.0, "b": 5e-324}"#,
    ),
    case("if includeZero", "{{#if z includeZero=true}}zero{{else}}none{{/if}}", r#"{"z": 0}"#),
    case("if on missing value", "[{{#if nope}}x{{else}}none{{/if}}]", "{}"),
    case("if with two arguments is an error", "{{#if a b}}x{{/if}}", r#"{"a": 1, "b": 2}"#),
    case(
        "unless else",
        "{{#unless a}}not a{{else}}a{{/unless}}|{{#unless b}}not b{{/unless}}",
        r#"{"a": true, "b": 0}"#,
    ),
    case("unless on empty object", "{{#unless o}}empty{{else}}full{{/unless}}", r#"{"o": {}}"#),
    // --- sections on every kind of value -------------------------------------------------------
    case("section on true keeps the context", "{{#t}}{{name}}{{/t}}", r#"{"t": true, "name": "Ada"}"#),
    case(
        "section on false null empty array",
        "[{{#f}}x{{/f}}{{#n}}x{{/n}}{{#e}}x{{/e}}]",
        r#"{"f": false, "n": null, "e": []}"#,
    ),
    case("section else on false", "{{#f}}x{{else}}no{{/f}}", r#"{"f": false}"#),
    case("section on zero and empty string", "{{#z}}[{{this}}]{{/z}}{{#s}}<{{this}}>{{/s}}", r#"{"z": 0, "s": ""}"#),
    case("section on string", "{{#s}}{{this}}!{{/s}}", r#"{"s": "hi"}"#),
    case(
        "section on object",
        "{{#user}}{{name}} at {{../brand}}{{/user}}",
        r#"{"user": {"name": "Ada"}, "brand": "Acme"}"#,
    ),
    case("section on empty object", "{{#o}}yes{{else}}no{{/o}}", r#"{"o": {}}"#),
    case("section on array iterates", "{{#xs}}{{@index}}{{n}}{{/xs}}", r#"{"xs": [{"n": "a"}, {"n": "b"}]}"#),
    case("section on array of scalars", "{{#xs}}[{{this}}]{{/xs}}", r#"{"xs": [1, "two", true]}"#),
    case(
        "section on a dotted path",
        "{{#a.b}}{{c}}{{/a.b}}|{{#a.x}}x{{else}}none{{/a.x}}",
        r#"{"a": {"b": {"c": "C"}, "x": false}}"#,
    ),
    case("section on missing value in strict mode", "[{{#nope}}x{{/nope}}]", "{}"),
    case("section with block params on an array", "{{#xs as |x i|}}{{i}}{{x}}{{/xs}}", r#"{"xs": ["a", "b"]}"#),
    case("section with block params on an object", "{{#o as |x|}}[{{x}}]{{/o}}", r#"{"o": {"k": 1}}"#),
    case("section on a literal name", "{{#\"a b\"}}{{this}}{{/\"a b\"}}", r#"{"a b": "x"}"#),
    case("section on a parent path", "{{#with a}}{{#../b}}{{c}}{{/../b}}{{/with}}", r#"{"a": {}, "b": {"c": "C"}}"#),
    case(
        "section on a data variable",
        "{{#each xs}}{{#@first}}first {{/@first}}{{this}} {{/each}}",
        r#"{"xs": [1, 2]}"#,
    ),
    case("nested sections", "{{#a}}{{#b}}{{c}}{{/b}}{{/a}}", r#"{"a": {"b": {"c": "deep"}}}"#),
    // --- inverted sections -----------------------------------------------------------------------
    case(
        "inverted on false null empty array",
        "{{^f}}F{{/f}}{{^n}}N{{/n}}{{^e}}E{{/e}}",
        r#"{"f": false, "n": null, "e": []}"#,
    ),
    case(
        "inverted on truthy values",
        "[{{^t}}T{{/t}}{{^s}}S{{/s}}{{^o}}O{{/o}}{{^xs}}X{{/xs}}]",
        r#"{"t": true, "s": "x", "o": {"a": 1}, "xs": [1]}"#,
    ),
    case(
        "inverted on 0 empty string empty object",
        "[{{^z}}Z{{/z}}{{^s}}S{{/s}}{{^o}}O{{/o}}]",
        r#"{"z": 0, "s": "", "o": {}}"#,
    ),
    case("inverted with else on true", "{{^t}}no{{else}}yes {{name}}{{/t}}", r#"{"t": true, "name": "Ada"}"#),
    case("inverted with else on array", "{{^xs}}none{{else}}[{{this}}]{{/xs}}", r#"{"xs": [1, 2]}"#),
    case("inverted with else on object", "{{^user}}none{{else}}{{name}}{{/user}}", r#"{"user": {"name": "Ada"}}"#),
    case("inverted with caret else", "{{^xs}}none{{^}}some{{/xs}}", r#"{"xs": [1]}"#),
    case("inverted on a dotted path", "{{^a.b}}no b{{/a.b}}", r#"{"a": {"b": false}}"#),
    case("inverted on missing value in strict mode", "{{^nope}}none{{/nope}}", "{}"),
    case("inverted inside if", "{{#if a}}{{^b}}no b{{/b}}{{/if}}", r#"{"a": true, "b": []}"#),
    case(
        "inverted inside each on this",
        "{{#each xs}}{{^this}}F{{else}}T{{/this}}{{/each}}",
        r#"{"xs": [0, false, 1, null, "", []]}"#,
    ),
    case(
        "inverted inside section",
        "{{#user}}{{^nick}}{{name}}{{/nick}}{{/user}}",
        r#"{"user": {"name": "Ada", "nick": null}}"#,
    ),
    case("inverted nested in inverted", "{{^a}}A{{^b}}B{{/b}}{{/a}}", r#"{"a": false, "b": false}"#),
    case("inverted whitespace control", "x  {{~^f~}}  F  {{~/f~}}  y", r#"{"f": false}"#),
    case(
        "inverted whitespace control with else",
        "[ {{~^a~}}  A  {{~else~}}  B  {{~/a~}} ]|  {{~^b}}  A  {{~else~}}  B  {{/b~}}  |",
        r#"{"a": false, "b": true}"#,
    ),
    case("inverted whitespace control with caret else", "{{^x~}}  A  {{~^~}}  B  {{~/x}}", r#"{"x": [1]}"#),
    case("inverted standalone else on mixed lines", "a\n{{^x}}\nA{{else}}\nB\n{{/x}}\nz", r#"{"x": true}"#),
    case("inverted lookup prints the value", "{{^lookup o \"k\"}}A{{/lookup}}", r#"{"o": {"k": "v"}}"#),
    case("inverted standalone lines", "a\n{{^f}}\n  F\n{{/f}}\nb\n", r#"{"f": false}"#),
    case(
        "inverted standalone with else",
        "a\n  {{^xs}}\n  none\n  {{else}}\n  {{this}}\n  {{/xs}}\nb",
        r#"{"xs": [1, 2]}"#,
    ),
    case("inverted if", "{{^if a}}not a{{else}}a{{/if}}|{{^if b}}not b{{/if}}", r#"{"a": 0, "b": {}}"#),
    case("inverted unless", "{{^unless a}}a{{/unless}}", r#"{"a": 1}"#),
    case(
        "inverted each",
        "{{^each xs}}none{{else}}{{this}}{{/each}}|{{^each ys}}none{{/each}}",
        r#"{"xs": [1, 2], "ys": []}"#,
    ),
    case(
        "inverted with",
        "{{^with o}}none{{else}}{{k}}{{/with}}|{{^with n}}none{{/with}}",
        r#"{"o": {"k": "v"}, "n": null}"#,
    ),
    case("inverted each over an object", "{{^each o}}none{{else}}{{@key}}{{/each}}", r#"{"o": {"a": 1, "b": 2}}"#),
    case("inverted if includeZero", "{{^if z includeZero=true}}none{{else}}zero{{/if}}", r#"{"z": 0}"#),
    case(
        "inverted with else if chain is an error",
        "{{^a}}A{{else if b}}B{{else}}C{{/a}}",
        r#"{"a": {"k": 1}, "b": false}"#,
    ),
    case(
        "else if chain in a block inside an inverted section",
        "{{^a}}{{#if b}}B{{else if c}}C{{/if}}{{/a}}",
        r#"{"a": false, "b": false, "c": true}"#,
    ),
    case("inverted inside an inverted else", "{{^a}}A{{else}}{{^b}}not b{{/b}}{{/a}}", r#"{"a": true, "b": 0}"#),
    case("inverted section in a partial block", "{{#> layout}}{{^xs}}empty{{/xs}}{{/layout}}", r#"{"xs": []}"#),
    case("inverted if without argument is an error", "{{^if}}x{{/if}}", "{}"),
    case("inverted section closed by another name is an error", "{{^a}}x{{/b}}", r#"{"a": false}"#),
    case("unclosed inverted section is an error", "{{#if t}}{{^a}}x{{/if}}", r#"{"t": true, "a": false}"#),
    // --- partials ---------------------------------------------------------------------------------
    with_partials("partial with current context", "<{{> p}}>", r#"{"name": "Ada"}"#, &[("p", "Hi {{name}}")]),
    with_partials(
        "partial with explicit context",
        "{{> p user}}",
        r#"{"user": {"name": "Ada"}}"#,
        &[("p", "Hi {{name}}")],
    ),
    with_partials(
        "partial with hash",
        "{{> p greeting=\"Hello\"}}",
        r#"{"name": "Ada"}"#,
        &[("p", "{{greeting}} {{name}}")],
    ),
    with_partials(
        "partial with context and hash",
        "{{> p user greeting=g}}",
        r#"{"g": "Yo", "user": {"name": "Ada"}}"#,
        &[("p", "{{greeting}} {{name}}")],
    ),
    with_partials(
        "partial in each",
        "{{#each xs}}{{> item}}{{/each}}",
        r#"{"xs": [{"n": 1}, {"n": 2}]}"#,
        &[("item", "[{{n}}]")],
    ),
    with_partials("partial escapes values", "{{> p}}", r#"{"s": "<&>"}"#, &[("p", "{{s}}|{{{s}}}")]),
    with_partials("standalone partial is indented", "a\n  {{> p}}\nb", r#"{"x": "X"}"#, &[("p", "1{{x}}\n2\n")]),
    with_partials("partial with inverted section", "{{> p}}", r#"{"xs": []}"#, &[("p", "{{^xs}}empty{{/xs}}")]),
    with_partials("partial block uses the partial", "{{#> p}}fallback{{/p}}", r#"{"x": 1}"#, &[("p", "P{{x}}")]),
    with_partials(
        "partial block renders the block",
        "{{#> layout}}body {{x}}{{/layout}}",
        r#"{"x": 1}"#,
        &[("layout", "<main>{{> @partial-block}}</main>")],
    ),
    case("partial block fallback for a missing partial", "{{#> missing}}fallback {{x}}{{/missing}}", r#"{"x": 1}"#),
    case(
        "inline partial",
        "{{#*inline \"row\"}}<{{this}}>{{/inline}}{{#each xs}}{{> row}}{{/each}}",
        r#"{"xs": [1, 2]}"#,
    ),
    case("missing partial is an error", "{{> nope}}", "{}"),
    with_partials(
        "quoted partial name",
        "{{> \"footer\"}}|{{> 'footer'}}|{{> [footer]}}",
        r#"{"x": 1}"#,
        &[("footer", "F{{x}}")],
    ),
    with_partials("partial name with a slash", "{{> layouts/main}}", r#"{"x": 1}"#, &[("layouts/main", "M{{x}}")]),
    with_partials(
        "dynamic partial name",
        "{{> (lookup this \"which\")}}",
        r#"{"which": "b"}"#,
        &[("a", "A"), ("b", "B")],
    ),
    with_partials(
        "partial with dot context",
        "{{#each xs}}{{> p .}}{{/each}}",
        r#"{"xs": ["a", "b"]}"#,
        &[("p", "[{{this}}]")],
    ),
    with_partials("partial with number literal hash", "{{> p n=2.0 m=-0.0}}", "{}", &[("p", "{{n}}/{{m}}")]),
    // A partial's hash over the current context: its keys, `this`, `..` and nesting
    // (herald reads the context in place and builds the merged object only for these).
    with_partials(
        "partial hash shadows a context key",
        "{{> p name=\"hash\"}}|{{name}}",
        r#"{"name": "ctx", "other": "o"}"#,
        &[("p", "{{name}} {{other}} {{this.name}} {{./other}}")],
    ),
    with_partials(
        "partial with hash iterates this",
        "{{> p extra=1}}",
        r#"{"a": "A", "b": {"c": "C"}}"#,
        &[("p", "{{#each this}}{{@key}}:{{#if c}}{{c}}{{else}}{{.}}{{/if}};{{/each}}")],
    ),
    with_partials(
        "partial with hash, parent context from each",
        "{{#each xs}}{{> p tag=../tag}}{{/each}}",
        r#"{"tag": "T", "xs": [{"n": 1}, {"n": 2, "tag": "own"}]}"#,
        &[("p", "[{{tag}}:{{n}}:{{this.n}}]")],
    ),
    with_partials(
        "each inside a partial with hash reads the hash through ..",
        "{{> p label=\"L\"}}",
        r#"{"items": [{"v": 1}, {"v": 2}], "label": "ctx"}"#,
        &[("p", "{{#each items}}{{../label}}{{v}},{{/each}}")],
    ),
    with_partials(
        "nested partials with hashes",
        "{{> outer a=\"A\"}}",
        r#"{"c": "C", "a": "ctx"}"#,
        &[("outer", "({{a}}{{> inner b=\"B\"}})"), ("inner", "{{a}}{{b}}{{c}}")],
    ),
    with_partials(
        "partial without hash in a partial with hash",
        "{{> outer a=\"A\" b=\"B\"}}",
        r#"{"c": "C", "a": "ctx"}"#,
        &[
            ("outer", "({{> inner b=\"b\"}}|{{> inner}})"),
            ("inner", "{{a}}{{b}}{{c}}[{{#each this}}{{@key}}{{.}}{{/each}}]"),
        ],
    ),
    with_partials(
        "nested partial hashes add their keys outer first",
        "{{> outer a=\"A\"}}",
        r#"{"c": "C"}"#,
        &[("outer", "{{> inner b=\"B\"}}"), ("inner", "{{#each this}}{{@key}}{{/each}}")],
    ),
    with_partials(
        "partial hash keys in reverse source order",
        "{{> p a=\"1\" b=\"2\"}}",
        r#"{"c": "C"}"#,
        &[("p", "{{#each this}}{{@key}}{{/each}}")],
    ),
    with_partials(
        "partial hash keys, two new ones",
        "{{> p y=\"1\" x=\"2\"}}",
        r#"{"c": "C"}"#,
        &[("p", "{{#each this}}{{@key}}{{/each}}")],
    ),
    with_partials(
        "partial block content sees the hash",
        "{{#> layout title=\"Hi\"}}<{{title}} {{name}}>{{/layout}}",
        r#"{"name": "Ada", "title": "ctx"}"#,
        &[("layout", "<h1>{{title}}</h1>{{> @partial-block}}")],
    ),
    with_partials(
        "partial with hash over an array context",
        "{{#with xs}}{{> p k=\"K\"}}{{/with}}",
        r#"{"xs": ["a", "b"]}"#,
        &[("p", "{{k}}{{length}}{{[0]}}")],
    ),
    with_partials(
        "partial with hash in a with block",
        "{{#with user}}{{> p greeting=../g}}{{/with}}",
        r#"{"g": "Yo", "user": {"name": "Ada", "greeting": "own"}}"#,
        &[("p", "{{greeting}} {{name}} {{#with this}}{{greeting}}{{/with}}")],
    ),
    with_partials(
        "partial block inside with in the layout",
        "{{#> layout}}{{name}}{{/layout}}",
        r#"{"name": "outer", "inner": {"name": "inner"}}"#,
        &[("layout", "{{#with inner}}{{> @partial-block}}{{/with}}")],
    ),
    with_partials("inline partial is not indented", "<div>\n  {{> p}}</div>", "{}", &[("p", "line1\nline2")]),
    with_partials("partial whitespace control", "a  {{~> p~}}  b", "{}", &[("p", "P")]),
    with_partials("nested partials", "{{> outer}}", r#"{"x": "X"}"#, &[("outer", "<{{> inner}}>"), ("inner", "{{x}}")]),
    // --- whitespace control and standalone lines ----------------------------------------------------
    case("tilde strips both sides", "a  {{~x~}}  b", r#"{"x": "X"}"#),
    case("tilde strips newlines", "a\n\n{{~x}}\n\nb", r#"{"x": "X"}"#),
    case("tilde on block tags", "{{#each xs~}}\n  {{this}}\n{{~/each}}", r#"{"xs": [1, 2]}"#),
    case("tilde on else", "{{#if f}}x{{~else~}}   y   {{/if}}", r#"{"f": false}"#),
    case(
        "standalone block lines are removed",
        "<ul>\n  {{#each xs}}\n  <li>{{this}}</li>\n  {{/each}}\n</ul>\n",
        r#"{"xs": ["a", "b"]}"#,
    ),
    case("standalone else line", "{{#if f}}\nyes\n{{else}}\nno\n{{/if}}\n", r#"{"f": false}"#),
    case("non-standalone tag keeps the line", "a {{#if t}}b{{/if}} c\n", r#"{"t": true}"#),
    case("crlf standalone lines", "a\r\n{{#if t}}\r\nb\r\n{{/if}}\r\nc", r#"{"t": true}"#),
    // --- raw blocks and comments -------------------------------------------------------------------
    case("raw block keeps mustaches", "{{{{raw}}}}{{x}} {{^y}}{{{{/raw}}}}", r#"{"raw": true, "x": 1}"#),
    case("raw block without a raw field", "{{{{raw}}}}{{x}}{{{{/raw}}}}", "{}"),
    case("comment with whitespace control", "a  {{~! c ~}}  b  {{~!-- d --~}}\n c", "{}"),
    case("short comment", "a{{! a comment }}b", "{}"),
    case("long comment with mustaches", "a{{!-- {{x}} }} --}}b", "{}"),
    case("standalone comment line", "a\n{{! comment }}\nb", "{}"),
    // --- lookup and subexpressions ------------------------------------------------------------------
    case("lookup on object", "{{lookup o k}}", r#"{"o": {"a": "A"}, "k": "a"}"#),
    case("lookup on array", "{{lookup xs 1}}", r#"{"xs": ["a", "b"]}"#),
    case(
        "lookup with parent index",
        "{{#each xs}}{{lookup ../names @index}} {{/each}}",
        r#"{"xs": [1, 2], "names": ["one", "two"]}"#,
    ),
    case(
        "lookup subexpression in with",
        "{{#with (lookup o \"inner\")}}{{v}}{{/with}}",
        r#"{"o": {"inner": {"v": "V"}}}"#,
    ),
    case("lookup subexpression in if", "{{#if (lookup o \"flag\")}}on{{else}}off{{/if}}", r#"{"o": {"flag": 0}}"#),
    case("lookup subexpression in each", "{{#each (lookup o \"xs\")}}{{this}}{{/each}}", r#"{"o": {"xs": [1, 2]}}"#),
    case("lookup of a missing key prints nothing", "[{{lookup o \"nope\"}}]", r#"{"o": {}}"#),
    // --- strict mode --------------------------------------------------------------------------------
    case("missing variable is an error", "Hi {{name}}", "{}"),
    case("missing nested variable is an error", "{{user.name}}", r#"{"user": {}}"#),
    case("missing variable inside each is an error", "{{#each xs}}{{nope}}{{/each}}", r#"{"xs": [1]}"#),
    case("missing variable inside section is an error", "{{#user}}{{nope}}{{/user}}", r#"{"user": {"name": "Ada"}}"#),
    case("missing variable in skipped branch is fine", "{{#if f}}{{nope}}{{/if}}ok", r#"{"f": false}"#),
    case("parent path above the root", "{{../x}}", r#"{"x": 1}"#),
    case("missing parent of a path is an error", "{{a.b.c}}", r#"{"x": 1}"#),
    case("unknown helper is an error", "{{shout name}}", r#"{"name": "Ada"}"#),
    case("unknown block helper is an error", "{{#shout name}}x{{/shout}}", r#"{"name": "Ada"}"#),
    case("lookup needs two arguments", "{{lookup o}}", r#"{"o": {}}"#),
    // --- printing compound values -------------------------------------------------------------------
    case("array prints comma separated", "{{xs}}", r#"{"xs": [1, 2, "three"]}"#),
    case("object prints as object", "{{o}}", r#"{"o": {"a": 1}}"#),
    // --- compile errors -------------------------------------------------------------------------------
    case("unclosed block is an error", "{{#if a}}x", r#"{"a": true}"#),
    case("mismatched closer is an error", "{{#if a}}x{{/each}}", r#"{"a": true}"#),
];

/// (case name, reason). handlebars.js is the reference; each entry is a place where
/// herald's engine cannot or deliberately does not follow it.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "partial hash keys in reverse source order",
        "by design of the parsed template: handlebars-rust keeps a hash as a map, not in source \
         order, so herald adds a partial's new keys to `this` by name (`cab`); handlebars.js \
         adds them in reverse source order (`cba`). Only iterating `this` in a partial shows it",
    ),
    (
        "integer beyond 2^53",
        "herald's choice: serde_json reads an integer exactly, while JSON.parse rounds one beyond \
         2^53 to a double (9007199254740993 prints 9007199254740992): an id that large survives",
    ),
    (
        "section on missing value in strict mode",
        "herald's choice: a section on an absent value renders its `{{else}}` or nothing, as \
         herald's #each/#with do; handlebars.js strict mode throws on such an ambiguous block",
    ),
    (
        "inverted on missing value in strict mode",
        "herald's choice: an inverted section on an absent value renders its block, as for \
         `{{#x}}`; handlebars.js strict mode throws on such an ambiguous block",
    ),
    (
        "array prints comma separated",
        "handlebars-rust prints an array as `[1, 2, three]`, handlebars.js as JavaScript's \
         `1,2,three`; the value must stay an array for #each, so the data cannot change it",
    ),
    ("object prints as object", "handlebars-rust prints an object as `[object]`, handlebars.js as `[object Object]`"),
    (
        "numeric path segment",
        "handlebars-rust accepts `{{xs.1}}` (item 1), which handlebars.js rejects as a parse error \
         (`{{xs.[1]}}` works in both)",
    ),
    (
        "partial block inside with in the layout",
        "handlebars-rust renders `{{> @partial-block}}` in the context of the `{{#> layout}}` call, \
         handlebars.js in the context where the layout invokes it (here inside its `{{#with}}`)",
    ),
    (
        "length of a string printed",
        "handlebars.js fails on `{{s.length}}` for a string in strict mode (a JavaScript TypeError \
         from its `in` check); herald prints the length, as handlebars.js does for `s.length` as an \
         argument",
    ),
    (
        "parent path above the root",
        "handlebars-rust resolves `../x` at the root against the root; handlebars.js strict mode \
         throws (no parent context)",
    ),
    (
        "inverted standalone else on mixed lines",
        "handlebars.js decides which lines of `{{^x}}A{{else}}B{{/x}}` are standalone after swapping \
         its blocks (B's first line for the opener, A's last for the closer); handlebars-rust \
         decides in source order. Alike when every tag of the section stands alone on its line or \
         none does",
    ),
    (
        "raw block without a raw field",
        "handlebars-rust has a built-in `raw` helper for `{{{{raw}}}}`; handlebars.js has none, so \
         in strict mode it looks up `raw` in the data and throws",
    ),
];

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js")
}

/// Why handlebars.js cannot run here, if it cannot.
fn reference_missing() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Some("node is not installed".to_owned()),
    }
    let module = js_dir().join("node_modules/handlebars/package.json");
    if !module.is_file() {
        return Some(format!("{} is missing", module.display()));
    }
    None
}

/// Renders every case with handlebars.js: `Ok(output)` or `Err(message)` per case.
fn render_js(cases: &[Case]) -> Vec<Result<String, String>> {
    let mut input = String::from("[");
    for (i, c) in cases.iter().enumerate() {
        if i > 0 {
            input.push(',');
        }
        let partials: serde_json::Map<String, Value> =
            c.partials.iter().map(|(n, s)| ((*n).to_owned(), Value::String((*s).to_owned()))).collect();
        // The data text as is, so node parses the same JSON text herald does.
        input.push_str(&format!(
            "{{\"template\":{},\"partials\":{},\"data\":{}}}",
            Value::String(c.template.to_owned()),
            Value::Object(partials),
            c.data
        ));
    }
    input.push(']');
    let mut child = Command::new("node")
        .arg(js_dir().join("render.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing the cases to node");
    let out = child.wait_with_output().expect("running node");
    assert!(out.status.success(), "render.js failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).expect("render.js prints a JSON array");
    assert_eq!(results.len(), cases.len(), "one result per case");
    results
        .into_iter()
        .map(|r| match (r.get("ok"), r.get("error")) {
            (Some(Value::String(s)), _) => Ok(s.clone()),
            (_, Some(e)) => Err(e.as_str().unwrap_or("error").to_owned()),
            _ => panic!("render.js result is neither ok nor error: {r}"),
        })
        .collect()
}

/// Renders one case with herald's engine, as the catalogue and the pipeline do.
fn render_herald(c: &Case) -> Result<String, String> {
    let mut h = registry(Escape::Html);
    for (name, source) in c.partials {
        let source = prepare_source(source).map_err(|e| format!("partial {name}: {e}"))?;
        h.register_partial(name, source.as_ref()).map_err(|e| format!("partial {name}: {e}"))?;
    }
    let template = prepare_source(c.template)?;
    h.register_template_string("case", template.as_ref()).map_err(|e| e.to_string())?;
    let mut data: Value = serde_json::from_str(c.data).unwrap_or_else(|e| panic!("{}: data is not JSON: {e}", c.name));
    js_numbers(&mut data);
    h.render("case", &data).map_err(|e| e.to_string())
}

fn agree(herald: &Result<String, String>, js: &Result<String, String>) -> bool {
    match (herald, js) {
        (Ok(a), Ok(b)) => a == b,
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

fn show(r: &Result<String, String>) -> String {
    match r {
        Ok(s) => format!("{s:?}"),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn corpus_has_unique_names_and_enough_cases() {
    assert!(CORPUS.len() >= 80, "{} cases", CORPUS.len());
    let mut names: Vec<&str> = CORPUS.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names must be unique");
    for (name, _) in KNOWN_DIFFERENCES {
        assert!(CORPUS.iter().any(|c| c.name == *name), "KNOWN_DIFFERENCES lists {name:?}, which is not in the corpus");
    }
}

#[test]
fn herald_renders_as_handlebars_js() {
    if let Some(why) = reference_missing() {
        eprintln!("skipping the handlebars.js parity test: {why}; scripts/test.sh installs it (npm ci in tests/js)");
        return;
    }
    let js = render_js(CORPUS);
    let mut problems = Vec::new();
    let mut known = 0;
    for (c, js) in CORPUS.iter().zip(&js) {
        let herald = render_herald(c);
        let listed = KNOWN_DIFFERENCES.iter().find(|(n, _)| *n == c.name).map(|(_, reason)| *reason);
        match (agree(&herald, js), listed) {
            (true, None) => {}
            (false, Some(_)) => known += 1,
            (true, Some(reason)) => problems.push(format!(
                "{:?} agrees now but is listed in KNOWN_DIFFERENCES ({reason}); remove it from the list\n  \
                 both:   {}",
                c.name,
                show(&herald)
            )),
            (false, None) => problems.push(format!(
                "{:?} differs\n  template: {:?}\n  data:     {}\n  herald:   {}\n  handlebars.js: {}",
                c.name,
                c.template,
                c.data,
                show(&herald),
                show(js)
            )),
        }
    }
    let summary = format!(
        "handlebars.js parity: {} cases, {} agree, {known} known differences, {} unexpected",
        CORPUS.len(),
        CORPUS.len() - known - problems.len(),
        problems.len()
    );
    let _ = writeln!(std::io::stderr(), "{summary}");
    assert!(problems.is_empty(), "{} problem(s):\n\n{}\n\n{summary}", problems.len(), problems.join("\n\n"));
}
