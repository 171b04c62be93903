//! Mustache-style sections on data values (`{{#user}}…{{/user}}`, `{{^user}}…{{/user}}`),
//! with the semantics of handlebars.js's runtime `blockHelperMissing`, so templates
//! written and tested with handlebars.js tooling render the same here.
//!
//! handlebars-rust calls the helper registered as `blockHelperMissing` for a block
//! whose name is not a helper, with `h.name()` set to the block's path as written
//! and the block's own params; the value itself is not looked up, so this does it.
//! Its grammar takes only a plain name after `{{#` and no `{{^name}}` block at all, so
//! compat.rs rewrites `{{#a.b}}` to `{{#herald-section a.b}}` and `{{^x}}` to
//! `{{#herald-inverted x}}`: the helpers below.
//!
//! A section on a value renders:
//! - `true`: the block, in the current context;
//! - `false`, null, absent, `[]`: the `{{else}}` block or nothing. An absent value
//!   is false even in strict mode, as for herald's `#each`/`#with` (handlebars.js
//!   throws there); a variable printed inside the block is still checked;
//! - a non-empty array: the block once per item, as `#each` (`@index`, `@key`,
//!   `@first`, `@last`, block params);
//! - anything else (object, including `{}`, string, number, including `0` and `""`):
//!   the block with the value as context, as `#with`.
//!
//! An inverted section is the same call with its two blocks swapped, as handlebars.js
//! compiles it: `{{^x}}A{{else}}B{{/x}}` renders A where `{{#x}}` would render its
//! `{{else}}`, and B the way `{{#x}}` renders its block.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonRender, Output, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};
use serde_json::Value as Json;

use super::blocks::{
    Blocks, exactly_one, render_block, render_each, render_if, render_list, render_with, render_with_or_inverse,
};
use super::compat::{INVERTED_HELPER, js_lookup};

/// Registered as `blockHelperMissing`: `{{#name}}` where `name` is not a helper.
#[derive(Clone, Copy)]
pub struct SectionHelper;

impl HelperDef for SectionHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        // `{{#name arg}}` is a helper call, never a section: handlebars.js reports the
        // missing helper here too.
        if !h.params().is_empty() || !h.hash().is_empty() {
            return Err(RenderErrorReason::HelperNotFound(h.name().to_owned()).into());
        }
        let value = lookup(h.name(), ctx, rc)?;
        let blocks = Blocks { main: h.template(), inverse: h.inverse() };
        render_section(h, blocks, r, ctx, rc, out, &value)
    }
}

/// `{{#herald-section a.b}}`: a section on a path handlebars-rust's grammar does not
/// take as a block name (compat.rs writes these).
#[derive(Clone, Copy)]
pub struct PathSectionHelper;

impl HelperDef for PathSectionHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = only_value(h)?;
        let blocks = Blocks { main: h.template(), inverse: h.inverse() };
        render_section(h, blocks, r, ctx, rc, out, value)
    }
}

/// `{{#herald-inverted x}}A{{else}}B{{/herald-inverted}}`, written by compat.rs for
/// `{{^x}}A{{else}}B{{/x}}`; `{{#herald-inverted "if" c}}` for `{{^if c}}`, an
/// inverted call of a built-in block helper.
#[derive(Clone, Copy)]
pub struct InvertedSectionHelper;

impl HelperDef for InvertedSectionHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let swapped = Blocks { main: h.inverse(), inverse: h.template() };
        let first = super::helpers::required_param(h, 0, INVERTED_HELPER)?;
        let Some(Json::String(helper)) = first.try_get_constant_value() else {
            let value = only_value(h)?;
            return render_section(h, swapped, r, ctx, rc, out, value);
        };
        let args = &h.params()[1..];
        match helper.as_str() {
            "if" => render_if(h, args, true, swapped, r, ctx, rc, out),
            "unless" => render_if(h, args, false, swapped, r, ctx, rc, out),
            "each" => {
                let value =
                    args.first().ok_or_else(|| RenderErrorReason::Other("Must pass iterator to #each".into()))?;
                render_each(h, swapped, r, ctx, rc, out, value)
            }
            "with" => render_with_or_inverse(h, swapped, r, ctx, rc, out, exactly_one(args, "with")?),
            // Value helpers ignore their blocks: the value, unescaped as a block's output.
            "lookup" => {
                out.write(&js_lookup(args)?.render())?;
                Ok(())
            }
            "log" => Ok(()),
            // handlebars-rust cannot call another helper with its blocks swapped.
            other => Err(RenderErrorReason::Other(format!(
                "an inverted block `{{{{^{other} …}}}}` works on a value or on if, unless, each, with, \
                 lookup and log, not on the helper `{other}`: write `{{{{#{other} …}}}}{{{{else}}}}…{{{{/{other}}}}}`"
            ))
            .into()),
        }
    }
}

/// The one path parameter of a rewritten section; compat.rs writes nothing else, so
/// anything more is a hand-written call.
fn only_value<'a, 'rc>(h: &'a Helper<'rc>) -> Result<&'a PathAndJson<'rc>, RenderError> {
    match h.params().as_slice() {
        [value] if h.hash().is_empty() => Ok(value),
        _ => Err(RenderErrorReason::Other(format!("{} takes exactly one path", h.name())).into()),
    }
}

/// A section on `value`: `blocks.main` for a value that renders, `blocks.inverse` for
/// one that does not (see the module documentation).
pub(super) fn render_section<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    blocks: Blocks<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
) -> HelperResult {
    match value.value() {
        _ if value.is_value_missing() => render_block(blocks.inverse, r, ctx, rc, out),
        Json::Bool(false) | Json::Null => render_block(blocks.inverse, r, ctx, rc, out),
        Json::Array(list) if list.is_empty() => render_block(blocks.inverse, r, ctx, rc, out),
        // Same context, no new block: `../` still means the parent, as in handlebars.js.
        Json::Bool(true) => render_block(blocks.main, r, ctx, rc, out),
        Json::Array(list) => render_list(h, blocks.main, r, ctx, rc, out, value, list),
        _ => render_with(h, blocks.main, r, ctx, rc, out, value, false),
    }
}

/// The value at `name`, resolved the way handlebars-rust resolves a helper parameter.
fn lookup<'reg: 'rc, 'rc>(
    name: &str,
    ctx: &'rc Context,
    rc: &RenderContext<'reg, 'rc>,
) -> Result<PathAndJson<'rc>, RenderError> {
    let value = match rc.context() {
        // A decorator replaced the data; handlebars-rust reads params from it too.
        Some(modified) => match rc.evaluate(&modified, name)? {
            ScopedJson::Missing => ScopedJson::Missing,
            found => ScopedJson::Derived(found.as_json().clone()),
        },
        None => rc.evaluate(ctx, name)?,
    };
    Ok(PathAndJson::new(Some(name.to_owned()), value))
}
