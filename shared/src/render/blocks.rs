//! `#each`, `#with`, `#if` and `#unless` with handlebars.js's semantics, and the block
//! rendering that Mustache-style sections (mustache.rs) share with them.
//!
//! handlebars-rust's built-ins differ from handlebars.js where a template author
//! notices: in strict mode `#each`/`#with` raise an error on an absent value without
//! `{{else}}` (handlebars.js renders the `{{else}}` block or nothing); `#with` skips
//! `{}` and `0`, `#if` takes `{}` for false and any count of arguments; `@key` is not
//! set on arrays. The built-ins are not public, so `#each` and `#with` are adapted from
//! handlebars-rust's `helper_each.rs` and `helper_with.rs` (MIT licence, Ning Sun and
//! contributors); `@index`, `@key`, `@first`, `@last`, `this`, `../` and block
//! parameters behave as in the originals.
//!
//! Each block renderer takes its blocks explicitly ([`Blocks`]) so an inverted call
//! (`{{^each xs}}A{{else}}B{{/each}}`, see compat.rs) can run it with the blocks swapped.

use handlebars::{
    BlockContext, BlockParams, Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson,
    RenderContext, RenderError, RenderErrorReason, Renderable, Template, to_json,
};
use serde_json::Value as Json;

pub(super) fn create_block<'rc>(param: &PathAndJson<'rc>) -> BlockContext<'rc> {
    let mut block = BlockContext::new();
    if let Some(path) = param.context_path() {
        block.base_path_mut().clone_from(path);
    } else {
        block.set_base_value(param.value().clone());
    }
    block
}

pub(super) fn update_block_context(
    block: &mut BlockContext<'_>,
    base: Option<&Vec<String>>,
    rel: String,
    first: bool,
    v: &Json,
) {
    if let Some(p) = base {
        if first {
            let mut path = p.clone();
            path.push(rel);
            *block.base_path_mut() = path;
        } else if let Some(last) = block.base_path_mut().last_mut() {
            *last = rel;
        }
    } else {
        block.set_base_value(v.clone());
    }
}

pub(super) fn set_block_param<'rc>(
    block: &mut BlockContext<'rc>,
    h: &Helper<'rc>,
    base: Option<&Vec<String>>,
    k: &Json,
    v: &Json,
) -> Result<(), RenderError> {
    let value_param = |params: &mut BlockParams<'rc>, name: &'rc str| -> Result<(), RenderError> {
        if base.is_some() {
            params.add_path(name, Vec::with_capacity(0))?;
        } else {
            params.add_value(name, v.clone())?;
        }
        Ok(())
    };
    if let Some(name) = h.block_param() {
        let mut params = BlockParams::new();
        value_param(&mut params, name)?;
        block.set_block_params(params);
    } else if let Some((name, key)) = h.block_param_pair() {
        let mut params = BlockParams::new();
        value_param(&mut params, name)?;
        params.add_value(key, k.clone())?;
        block.set_block_params(params);
    }
    Ok(())
}

/// `#each`: handlebars.js's semantics (every item of a non-empty array, every key of a
/// non-empty object, else the `{{else}}` block).
#[derive(Clone, Copy)]
pub struct EachHelper;

impl HelperDef for EachHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = super::helpers::required_param(h, 0, "each")?;
        let blocks = Blocks { main: h.template(), inverse: h.inverse() };
        render_each(h, blocks, r, ctx, rc, out, value)
    }
}

/// `#with`: the block with the value as context unless the value is empty in
/// handlebars.js's sense (absent, null, `false`, `""`, `[]`): `{}` and `0` render it.
#[derive(Clone, Copy)]
pub struct WithHelper;

impl HelperDef for WithHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let param = exactly_one(h.params(), "with")?;
        let blocks = Blocks { main: h.template(), inverse: h.inverse() };
        render_with_or_inverse(h, blocks, r, ctx, rc, out, param)
    }
}

/// `#if` (`positive`) and `#unless` with handlebars.js's truthiness: `{}` is true,
/// `0` is false unless `includeZero=true`, `[]` is false.
#[derive(Clone, Copy)]
pub struct IfHelper {
    pub positive: bool,
}

impl HelperDef for IfHelper {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let blocks = Blocks { main: h.template(), inverse: h.inverse() };
        render_if(h, h.params(), self.positive, blocks, r, ctx, rc, out)
    }
}

/// The two blocks of a block helper call: `main` before `{{else}}`, `inverse` after.
/// An inverted section `{{^x}}A{{else}}B{{/x}}` passes them swapped (main B, inverse
/// A), as handlebars.js does.
#[derive(Clone, Copy)]
pub(super) struct Blocks<'rc> {
    pub main: Option<&'rc Template>,
    pub inverse: Option<&'rc Template>,
}

/// Renders `t` in the current context, if there is a block at all.
pub(super) fn render_block<'reg: 'rc, 'rc>(
    t: Option<&'rc Template>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    match t {
        Some(t) => t.render(r, ctx, rc, out),
        None => Ok(()),
    }
}

/// handlebars.js's `Utils.isEmpty`: absent, null, `false`, `""`, `[]` (not `0`, not `{}`).
pub(super) fn is_empty_js(value: &PathAndJson<'_>) -> bool {
    value.is_value_missing()
        || match value.value() {
            Json::Null | Json::Bool(false) => true,
            Json::String(s) => s.is_empty(),
            Json::Array(a) => a.is_empty(),
            _ => false,
        }
}

/// JavaScript truthiness: false for absent, null, `false`, `0`, `""`; true for any
/// array or object, even empty.
pub(super) fn is_truthy_js(value: &PathAndJson<'_>) -> bool {
    !value.is_value_missing()
        && match value.value() {
            Json::Null | Json::Bool(false) => false,
            Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Json::String(s) => !s.is_empty(),
            _ => true,
        }
}

/// The single argument of `#if`, `#unless`, `#with`: handlebars.js refuses any other count.
pub(super) fn exactly_one<'a, 'rc>(
    args: &'a [PathAndJson<'rc>],
    name: &'static str,
) -> Result<&'a PathAndJson<'rc>, RenderError> {
    match args {
        [one] => Ok(one),
        _ => Err(RenderErrorReason::Other(format!("#{name} requires exactly one argument")).into()),
    }
}

/// `#if` / `#unless` on `args` (the call's parameters) with handlebars.js's rules.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_if<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    args: &[PathAndJson<'rc>],
    positive: bool,
    blocks: Blocks<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    let cond = exactly_one(args, if positive { "if" } else { "unless" })?;
    let include_zero = h.hash_get("includeZero").is_some_and(is_truthy_js);
    let is_zero = !cond.is_value_missing() && cond.value().as_f64() == Some(0.0);
    let truthy = if is_zero { include_zero } else { is_truthy_js(cond) && !is_empty_js(cond) };
    let chosen = if truthy == positive { blocks.main } else { blocks.inverse };
    render_block(chosen, r, ctx, rc, out)
}

/// `#each` on `value`: `main` per item or key, `inverse` when there is none. An absent
/// value is empty even in strict mode, as in handlebars.js.
pub(super) fn render_each<'reg: 'rc, 'rc>(
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
        Json::Array(list) if !list.is_empty() => render_list(h, blocks.main, r, ctx, rc, out, value, list),
        Json::Object(obj) if !obj.is_empty() => {
            let Some(t) = blocks.main else { return Ok(()) };
            rc.push_block(create_block(value));
            let len = obj.len();
            let base = value.context_path();
            for (i, (k, v)) in obj.iter().enumerate() {
                if let Some(block) = rc.block_mut() {
                    let key = to_json(k);
                    block.set_local_var("first", to_json(i == 0));
                    block.set_local_var("last", to_json(i + 1 == len));
                    block.set_local_var("key", key.clone());
                    block.set_local_var("index", to_json(i));
                    update_block_context(block, base, k.clone(), i == 0, v);
                    set_block_param(block, h, base, &key, v)?;
                }
                t.render(r, ctx, rc, out)?;
            }
            rc.pop_block();
            Ok(())
        }
        // Null, empty or not a collection (handlebars.js iterates objects only).
        _ => render_block(blocks.inverse, r, ctx, rc, out),
    }
}

/// `#with` on `value`: `main` with the value as context, or `inverse` when it is empty.
pub(super) fn render_with_or_inverse<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    blocks: Blocks<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
) -> HelperResult {
    if is_empty_js(value) {
        render_block(blocks.inverse, r, ctx, rc, out)
    } else {
        render_with(h, blocks.main, r, ctx, rc, out, value, true)
    }
}

/// Renders `t` once per item of `list`, with @index/@key/@first/@last and block
/// parameters (`#each` on an array, and Mustache sections on a list).
#[allow(clippy::too_many_arguments)]
pub(super) fn render_list<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    t: Option<&'rc Template>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
    list: &[Json],
) -> HelperResult {
    let Some(t) = t else { return Ok(()) };
    rc.push_block(create_block(value));
    let len = list.len();
    let base = value.context_path();
    for (i, v) in list.iter().enumerate() {
        if let Some(block) = rc.block_mut() {
            let index = to_json(i);
            block.set_local_var("first", to_json(i == 0));
            block.set_local_var("last", to_json(i + 1 == len));
            // handlebars.js sets @key to the index on arrays too.
            block.set_local_var("key", index.clone());
            block.set_local_var("index", index.clone());
            update_block_context(block, base, i.to_string(), i == 0, v);
            set_block_param(block, h, base, &index, v)?;
        }
        t.render(r, ctx, rc, out)?;
    }
    rc.pop_block();
    Ok(())
}

/// Renders `t` with `value` as its context (`#with` on a value that renders,
/// and Mustache sections on an object or scalar). `#with` passes the value as its block
/// parameter (`as |u|`); handlebars.js's `blockHelperMissing` passes none, so a section
/// (`with_param` false) sets it to null: it prints nothing and is no strict-mode error.
#[allow(clippy::too_many_arguments)]
pub(super) fn render_with<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    t: Option<&'rc Template>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
    with_param: bool,
) -> HelperResult {
    let Some(t) = t else { return Ok(()) };
    let mut block = create_block(value);
    // Keep @index/@key of an enclosing #each visible, as handlebars.js does.
    if let Some(parent) = rc.block() {
        block.local_variables_mut().clone_from(parent.local_variables());
    }
    if let Some(name) = h.block_param() {
        let mut params = BlockParams::new();
        if !with_param {
            params.add_value(name, Json::Null)?;
        } else if value.context_path().is_some() {
            params.add_path(name, Vec::with_capacity(0))?;
        } else {
            params.add_value(name, value.value().clone())?;
        }
        block.set_block_params(params);
    }
    rc.push_block(block);
    t.render(r, ctx, rc, out)?;
    rc.pop_block();
    Ok(())
}
