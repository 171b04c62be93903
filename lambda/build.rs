//! Embeds the template catalogue (`templates/` at the repository root) in the
//! binary: the function needs no files beside `bootstrap`, and cold starts read
//! nothing from disk.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            // `<template>/fixtures/`: sample data for `herald templates check` and `preview`,
            // never needed to send (a template or partial folder named so is kept).
            let depth = path.strip_prefix(root).map_or(0, |r| r.components().count());
            let in_template =
                dir != root && !dir.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('_'));
            if depth == 2 && in_template && path.file_name().is_some_and(|n| n == "fixtures") {
                continue;
            }
            // Templates nest three deep at most; a symlink loop must not recurse forever.
            if depth > 8 {
                continue;
            }
            walk(root, &path, out);
        } else if let (Ok(rel), Some(_)) = (path.strip_prefix(root), path.to_str()) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root =
        std::env::var("HERALD_TEMPLATES_DIR").map(PathBuf::from).unwrap_or_else(|_| manifest.join("../templates"));
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-env-changed=HERALD_TEMPLATES_DIR");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Template files embedded at build time: (path, contents).\npub static TEMPLATES: &[(&str, &str)] = &[\n",
    );
    for (rel, path) in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(code, "    ({rel:?}, include_str!({:?})),", path.display().to_string());
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("templates.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
