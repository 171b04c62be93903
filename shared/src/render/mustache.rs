//! Mustache-style sections on data values (`{{#user}}…{{/user}}`), with the
//! semantics of handlebars.js's runtime `blockHelperMissing`, so templates written
//! and tested with handlebars.js tooling render the same here.
//!
//! handlebars-rust calls the helper registered as `blockHelperMissing` for a block
//! whose name is not a helper, with `h.name()` set to the block's path as written
//! and the block's own params; the value itself is not looked up, so this does it.
//!
//! - `true`: the block, in the current context;
//! - `false`, null, absent, `[]`: the `{{else}}` block or nothing. An absent value
//!   is false even in strict mode, as for herald's `#each`/`#with`; a variable
//!   printed inside the block is still checked;
//! - a non-empty array: the block once per item, as `#each` (`@index`, `@first`,
//!   `@last`, block params);
//! - anything else (object, including `{}`, string, number, including `0` and `""`):
//!   the block with the value as context, as `#with`.
//!
//! The section name must be a plain name: handlebars-rust's grammar rejects
//! `{{#user.address}}` or `{{#../user}}` as a block, so those need `#with`/`#each`.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::Value as Json;

use super::blocks::{render_list, render_with};

/// Registered as `blockHelperMissing`.
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
        match value.value() {
            _ if value.is_value_missing() => render_inverse(h, r, ctx, rc, out),
            Json::Bool(false) | Json::Null => render_inverse(h, r, ctx, rc, out),
            Json::Array(list) if list.is_empty() => render_inverse(h, r, ctx, rc, out),
            // Same context, no new block: `../` still means the parent, as in handlebars.js.
            Json::Bool(true) => match h.template() {
                Some(t) => t.render(r, ctx, rc, out),
                None => Ok(()),
            },
            Json::Array(list) => render_list(h, r, ctx, rc, out, &value, list),
            _ => render_with(h, r, ctx, rc, out, &value),
        }
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

fn render_inverse<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    match h.inverse() {
        Some(inverse) => inverse.render(r, ctx, rc, out),
        None => Ok(()),
    }
}
