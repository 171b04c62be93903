//! `herald templates check [DIR]`: the catalogue checked as CI would, before a send.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::{Subcommand, ValueEnum};
use herald::authoring::check::{self, Severity};
use herald::config::Settings;

#[derive(Subcommand)]
pub enum TemplatesAction {
    /// Compile every template and render it against its fixtures (`fixtures/*.json`) in
    /// every locale it declares, as a send would: syntax errors, unknown helpers and
    /// partials, variables a fixture lacks, missing translations, SMS segments, push
    /// payload bytes, email size, marketing email without its unsubscribe link. One line
    /// per finding (`file:line:column: error[code] ...`); exit status 1 on any error.
    Check {
        /// The templates folder (default: the configured one).
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn run(action: &TemplatesAction, settings: Settings) -> Result<ExitCode> {
    let TemplatesAction::Check { dir, format, deny_warnings } = action;
    let dir = dir.clone().unwrap_or_else(|| settings.templates.clone());
    if !dir.is_dir() {
        bail!("{}: no such templates folder", dir.display());
    }
    let report = check::check_dir(&dir, Arc::new(settings));
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.to_json())?),
        Format::Text => {
            for f in &report.findings {
                println!("{}", f.to_line());
            }
            let failed = report.samples.iter().filter(|s| !s.ok).count();
            eprintln!(
                "herald: {} template(s), {} sample(s) rendered ({} failed): {} error(s), {} warning(s)",
                report.templates,
                report.samples.len(),
                failed,
                report.errors(),
                report.warnings()
            );
        }
    }
    let failing = report.findings.iter().any(|f| f.severity == Severity::Error || *deny_warnings);
    Ok(if failing { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
