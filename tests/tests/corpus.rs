//! The derives under every input a user writes: a corpus of variants of one
//! small valid domain (`corpus/base.rs`), each one mistake or one legal odd
//! shape (`corpus/variants.rs`).
//!
//! Every legal variant must compile without a warning; every mistake must give
//! exactly one error, its primary span on the mistaken token, its message
//! containing the expected words and none of the runtime's internals.
//!
//! trybuild would compile each variant as its own crate, one after another.
//! Instead this test writes one scratch crate with one `[[bin]]` per variant
//! under `target/tests/cqrs-corpus/` and runs a single `cargo check
//! --keep-going --message-format=json --offline` on it, then reads the
//! diagnostics of each target. The scratch crate keeps its own target dir, so
//! a re-run rebuilds only the variants whose text or whose macros changed.
//!
//! `CQRS_CORPUS=<part of a name>` checks only the matching variants;
//! `CQRS_CORPUS_VERBOSE=1` prints every diagnostic.

#[path = "corpus/variants.rs"]
mod variants;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use variants::{Expect, Variant};

/// The valid domain every variant starts from.
const BASE: &str = include_str!("corpus/base.rs");

/// How long the one `cargo check` may take before the test gives up.
const TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Words a newcomer should never have to read in an error's message or label:
/// the runtime's internals and the placeholders of a fallback expansion.
const JARGON: &[&str] = &[
    "Registered",
    "__cqrs",
    "__private",
    "__S",
    "std::io::Error",
    "proc-macro derive",
    "unparsable",
    "internal error",
    "EventSet",
];

/// A diagnostic of one variant, reduced to what the checks read.
#[derive(Debug)]
struct Diagnostic {
    level: String,
    message: String,
    /// The primary span: file, byte range, label.
    primary: Option<(String, usize, usize, String)>,
    rendered: String,
}

#[test]
fn every_variant_compiles_or_gives_one_error_on_its_token() {
    let variants = variants::all();
    check_corpus_itself(&variants);
    let filter = std::env::var("CQRS_CORPUS").ok();
    let selected: Vec<&Variant> = variants
        .iter()
        .filter(|v| filter.as_deref().is_none_or(|f| v.name.contains(f)))
        .collect();
    assert!(!selected.is_empty(), "no variant matches CQRS_CORPUS");

    let dir = scratch_dir();
    let sources: Vec<(String, String)> = selected
        .iter()
        .map(|v| (bin_name(v), v.source(BASE)))
        .collect();
    write_crate(&dir, &sources);
    let diagnostics = cargo_check(&dir);

    let verbose = std::env::var_os("CQRS_CORPUS_VERBOSE").is_some();
    let mut failures = String::new();
    let (mut legal, mut mistakes) = (0, 0);
    for (variant, (bin, source)) in selected.iter().zip(&sources) {
        let found = diagnostics.get(bin).map(Vec::as_slice).unwrap_or_default();
        if verbose {
            for d in found {
                eprintln!("[{}] {}", variant.name, d.rendered);
            }
        }
        match &variant.expect {
            Expect::Legal => legal += 1,
            Expect::Error { .. } => mistakes += 1,
        }
        if let Err(problem) = judge(variant, source, &format!("src/{bin}.rs"), found) {
            let _ = writeln!(failures, "\n=== {}: {problem}", variant.name);
            for d in found {
                let _ = writeln!(failures, "{}", d.rendered);
            }
        }
    }
    eprintln!(
        "corpus: {} variants ({legal} legal, {mistakes} mistakes)",
        selected.len()
    );
    assert!(failures.is_empty(), "corpus variants failed:{failures}");
}

/// The corpus is what the issue asks for: enough variants, distinct names,
/// every edit applies.
fn check_corpus_itself(variants: &[Variant]) {
    assert!(variants.len() >= 100, "only {} variants", variants.len());
    let mut names = std::collections::BTreeSet::new();
    for v in variants {
        assert!(
            names.insert(v.name),
            "variant `{}` is defined twice",
            v.name
        );
        assert!(
            v.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "variant name `{}`: lowercase, digits and `-` only",
            v.name
        );
        let source = v.source(BASE);
        assert_ne!(source, BASE, "variant `{}` changes nothing", v.name);
        if let Expect::Error { at, .. } = &v.expect {
            let _ = locate(at, &source).unwrap_or_else(|e| panic!("variant `{}`: {e}", v.name));
        }
    }
}

/// Whether one variant's diagnostics are what it expects.
fn judge(variant: &Variant, source: &str, file: &str, found: &[Diagnostic]) -> Result<(), String> {
    let errors: Vec<&Diagnostic> = found.iter().filter(|d| d.level == "error").collect();
    let warnings: Vec<&Diagnostic> = found.iter().filter(|d| d.level == "warning").collect();
    match &variant.expect {
        Expect::Legal => {
            if !errors.is_empty() {
                return Err(format!("legal, but {} error(s)", errors.len()));
            }
            if !warnings.is_empty() {
                return Err(format!("legal, but {} warning(s)", warnings.len()));
            }
            Ok(())
        }
        Expect::Error { at, says } => {
            let [error] = errors.as_slice() else {
                return Err(format!("expected one error, found {}", errors.len()));
            };
            let (start, end) = locate(at, source)?;
            let Some((span_file, span_start, span_end, label)) = &error.primary else {
                return Err("the error has no primary span".to_owned());
            };
            if !span_file.ends_with(file) || (*span_start, *span_end) != (start, end) {
                let seen = source.get(*span_start..*span_end).unwrap_or("?");
                return Err(format!(
                    "the error is on `{seen}` ({span_file} {span_start}..{span_end}), expected `{}` ({start}..{end})",
                    &source[start..end]
                ));
            }
            if !error.message.contains(says) {
                return Err(format!(
                    "the message `{}` does not say `{says}`",
                    error.message
                ));
            }
            for word in JARGON {
                if error.message.contains(word) || label.contains(word) {
                    return Err(format!("the message or label says `{word}`"));
                }
            }
            Ok(())
        }
    }
}

/// The byte range of the part between `«` and `»` in `context`, which must
/// occur exactly once in `source` (markers removed).
fn locate(context: &str, source: &str) -> Result<(usize, usize), String> {
    let (Some(open), Some(close)) = (context.find('«'), context.find('»')) else {
        return Err(format!("`{context}` has no «..» markers"));
    };
    let plain = context.replace(['«', '»'], "");
    let mut hits = source.match_indices(&plain);
    let Some((at, _)) = hits.next() else {
        return Err(format!("`{plain}` is not in the source"));
    };
    if hits.next().is_some() {
        return Err(format!("`{plain}` occurs more than once in the source"));
    }
    let start = at + open;
    let end = at + close - '«'.len_utf8();
    Ok((start, end))
}

fn bin_name(variant: &Variant) -> String {
    format!("v-{}", variant.name)
}

/// `target/tests/cqrs-corpus`, beside trybuild's `target/tests/trybuild`.
fn scratch_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target"));
    target.join("tests").join("cqrs-corpus")
}

/// Writes the scratch crate, touching only files whose text changed so cargo
/// rechecks only those variants.
fn write_crate(dir: &Path, sources: &[(String, String)]) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package sits in the workspace")
        .canonicalize()
        .expect("the workspace exists");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("create the scratch crate");
    let mut manifest = format!(
        "# Generated by tests/tests/corpus.rs; do not edit.\n\
         [package]\nname = \"cqrs-corpus\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         publish = false\nautobins = false\n\n\
         [workspace]\n\n\
         [dependencies]\n\
         cqrs-core = {{ path = {:?} }}\n\
         serde = {{ version = \"1\", features = [\"derive\"] }}\n",
        workspace.join("cqrs-core")
    );
    for (bin, _) in sources {
        let _ = write!(
            manifest,
            "\n[[bin]]\nname = \"{bin}\"\npath = \"src/{bin}.rs\"\ntest = false\nbench = false\n"
        );
    }
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    // The workspace's lock file, so the scratch crate builds the same
    // dependency versions, offline.
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(workspace.join("Cargo.lock"), dir.join("Cargo.lock"))
            .expect("copy Cargo.lock");
    }
    for (bin, source) in sources {
        write_if_changed(&src.join(format!("{bin}.rs")), source);
    }
}

fn write_if_changed(path: &Path, contents: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents).expect("write a scratch file");
    }
}

/// Runs one `cargo check` over every variant; the diagnostics by target.
fn cargo_check(dir: &Path) -> BTreeMap<String, Vec<Diagnostic>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut child = Command::new(cargo)
        .current_dir(dir)
        .args([
            "check",
            "--bins",
            "--keep-going",
            "--offline",
            "--quiet",
            "--message-format=json",
        ])
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env("CARGO_TERM_COLOR", "never")
        .env_remove("RUSTFLAGS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cargo check on the corpus");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait for cargo") {
            Some(_) => break,
            None if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                panic!("cargo check on the corpus took more than {TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let stdout = reader.join().unwrap_or_default();
    let stderr = errors.join().unwrap_or_default();
    let mut by_target: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    let mut finished = false;
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-message") => {
                let target = message["target"]["name"].as_str().unwrap_or_default();
                if let Some(diagnostic) = diagnostic(&message["message"]) {
                    by_target
                        .entry(target.to_owned())
                        .or_default()
                        .push(diagnostic);
                }
            }
            Some("build-finished") => finished = true,
            _ => {}
        }
    }
    assert!(
        finished,
        "cargo check on the corpus did not finish:\n{stderr}"
    );
    by_target
}

/// One compiler message, without rustc's summaries ("aborting due to ..",
/// "N warnings emitted").
fn diagnostic(message: &Value) -> Option<Diagnostic> {
    let level = message["level"].as_str()?.to_owned();
    let text = message["message"].as_str()?.to_owned();
    let spans = message["spans"].as_array()?;
    if spans.is_empty()
        && (text.starts_with("aborting due to")
            || text.contains("warning emitted")
            || text.contains("warnings emitted"))
    {
        return None;
    }
    let primary = spans
        .iter()
        .find(|s| s["is_primary"].as_bool() == Some(true))
        .map(|s| {
            (
                s["file_name"].as_str().unwrap_or_default().to_owned(),
                s["byte_start"].as_u64().unwrap_or_default() as usize,
                s["byte_end"].as_u64().unwrap_or_default() as usize,
                s["label"].as_str().unwrap_or_default().to_owned(),
            )
        });
    Some(Diagnostic {
        level,
        message: text,
        primary,
        rendered: message["rendered"].as_str().unwrap_or_default().to_owned(),
    })
}
