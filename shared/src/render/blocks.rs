//! `#each` and `#with` that treat an absent or null value as empty, even in strict
//! mode: a template author writes `{{#each items}}` for optional lists and expects
//! nothing rendered, as handlebars.js does in strict mode for block helpers.
//!
//! handlebars-rust 6 raises a strict-mode error from these two helpers when the
//! value is missing and the block has no `{{else}}`. The built-in helpers are not
//! public, so these are adapted from handlebars-rust's `helper_each.rs` and
//! `helper_with.rs` (MIT licence, Ning Sun and contributors), changing only that
//! case and, in `#with`, rendering the block for `{}` as handlebars.js does. `@index`,
//! `@key`, `@first`, `@last`, `this`, `../` and block parameters behave as in the
//! originals.

use handlebars::{
    BlockContext, BlockParams, Context, Handlebars, Helper, HelperDef, HelperResult, JsonTruthy, Output, PathAndJson,
    RenderContext, RenderError, RenderErrorReason, Renderable, to_json,
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
        let value = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(t) = h.template() else { return Ok(()) };
        match value.value() {
            Json::Array(list) if !list.is_empty() || h.inverse().is_none() => {
                render_list(h, r, ctx, rc, out, value, list)
            }
            Json::Object(obj) if !obj.is_empty() || h.inverse().is_none() => {
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
            // Absent, null, empty or not a collection: the `{{else}}` block, or nothing.
            _ => match h.inverse() {
                Some(inverse) => inverse.render(r, ctx, rc, out),
                None => Ok(()),
            },
        }
    }
}

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
        let param = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex("with", 0))?;
        // `{}` renders the block, as in handlebars.js (and herald's Mustache sections).
        if param.value().is_truthy(false) || param.value().is_object() {
            render_with(h, r, ctx, rc, out, param)
        } else if let Some(inverse) = h.inverse() {
            inverse.render(r, ctx, rc, out)
        } else {
            Ok(())
        }
    }
}

/// Renders the block once per item of `list`, with @index/@first/@last and block
/// parameters (`#each` on an array, and Mustache sections on a list).
pub(super) fn render_list<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
    list: &[Json],
) -> HelperResult {
    let Some(t) = h.template() else { return Ok(()) };
    rc.push_block(create_block(value));
    let len = list.len();
    let base = value.context_path();
    for (i, v) in list.iter().enumerate() {
        if let Some(block) = rc.block_mut() {
            let index = to_json(i);
            block.set_local_var("first", to_json(i == 0));
            block.set_local_var("last", to_json(i + 1 == len));
            block.set_local_var("index", index.clone());
            update_block_context(block, base, i.to_string(), i == 0, v);
            set_block_param(block, h, base, &index, v)?;
        }
        t.render(r, ctx, rc, out)?;
    }
    rc.pop_block();
    Ok(())
}

/// Renders the block with `value` as its context (`#with` on a value that renders,
/// and Mustache sections on an object or scalar).
pub(super) fn render_with<'reg: 'rc, 'rc>(
    h: &Helper<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
    value: &PathAndJson<'rc>,
) -> HelperResult {
    let Some(t) = h.template() else { return Ok(()) };
    let mut block = create_block(value);
    // Keep @index/@key of an enclosing #each visible, as handlebars.js does.
    if let Some(parent) = rc.block() {
        block.local_variables_mut().clone_from(parent.local_variables());
    }
    if let Some(name) = h.block_param() {
        let mut params = BlockParams::new();
        if value.context_path().is_some() {
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
