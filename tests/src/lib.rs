//! herald's end-to-end test harness: a throwaway state folder, the real `herald`
//! binary run as a user would run it, receipts and outbox files read back, and the
//! shared external test suites located (or skipped with a notice when absent).

pub mod event_source;
pub mod lambda;
pub mod moto;
pub mod proxy;
pub mod push_providers;
pub mod resilience;
pub mod stack;
pub mod template;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The repository root (the workspace folder).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/spec` beside the repository, if this checkout has it. Prints a notice
/// when it does not, so a skipped suite is visible in the test output.
pub fn spec_dir(suite: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared/spec").join(suite);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec/{suite} not found (a checkout outside the workspace)");
        None
    }
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout parsed as JSON Lines (receipts).
    pub fn receipts(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
            .collect()
    }

    /// (request_id, status, reason) of each receipt, for exact comparisons.
    pub fn outcomes(&self) -> Vec<(String, String, String)> {
        self.receipts()
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                (s("request_id"), s("status"), s("reason"))
            })
            .collect()
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.code, 0, "exit code {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr);
        self
    }
}

/// A private state folder for one test, and the binary to run against it.
pub struct Sandbox {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Working directory of the runs (the repository root by default, so the
    /// shipped `herald.toml`, `templates/` and `examples/` are found).
    pub cwd: PathBuf,
    /// Pinned clock, passed as `--now` unless None.
    pub now: Option<String>,
}

impl Sandbox {
    pub fn new(bin: impl Into<PathBuf>) -> Self {
        Sandbox {
            bin: bin.into(),
            dir: tempfile::tempdir().expect("temp dir"),
            cwd: repo_root(),
            now: Some("2026-11-28T15:00:00Z".to_owned()),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn outbox(&self) -> PathBuf {
        self.state().join("outbox")
    }

    /// A scratch path inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write");
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(&self.cwd).arg("--state").arg(self.state());
        if let Some(now) = &self.now {
            cmd.arg("--now").arg(now);
        }
        cmd.args(args);
        cmd.env_remove("HERALD_CONFIG")
            .env_remove("HERALD_STATE")
            .env_remove("HERALD_NOW")
            .env_remove("HERALD_TEMPLATES")
            .env_remove("HERALD_TABLE");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn herald");
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).expect("stdin");
        }
        let out = child.wait_with_output().expect("wait");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Outbox files (relative paths) and their contents.
    pub fn outbox_files(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        collect(&self.outbox(), &self.outbox(), &mut files);
        files
    }
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            out.insert(rel.to_string_lossy().replace('\\', "/"), text);
        }
    }
}

/// The value of a header in an RFC 5322 message (unfolded), if present.
pub fn header(message: &str, name: &str) -> Option<String> {
    let head = message.split("\r\n\r\n").next().unwrap_or(message);
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}
