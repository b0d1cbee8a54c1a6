//! The lock file: its format, and its comparison with the events of a build.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{UPDATE_VARIABLE, fingerprint};
use crate::registry::{EventDescriptor, Registry};

/// One event version in the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEntry {
    /// The stored name.
    pub name: String,
    /// The schema version.
    pub version: u32,
    /// The [`fingerprint`] of the shape.
    pub fingerprint: u64,
    /// The shape, as [`Event::SHAPE`](crate::Event::SHAPE) gives it.
    pub shape: String,
}

impl LockEntry {
    fn of(event: &EventDescriptor) -> Self {
        Self {
            name: event.name.to_owned(),
            version: event.version,
            fingerprint: fingerprint(event.shape),
            shape: event.shape.to_owned(),
        }
    }
}

/// The lock file's content: every event version it lists, sorted by name
/// then version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// The entries.
    pub entries: Vec<LockEntry>,
}

const HEADER: &str = "\
# The shape of every stored event version this program reads, checked by
# `cqrs_core::schema::assert_locked!()`. Check it in.
#
# Events are stored forever: a shape never changes under a version. To
# change an event, bump its version and add an upcaster from the old one;
# the lock then gains a block and keeps the old one. Accept a deliberate
# change with `CQRS_UPDATE_SCHEMA=1 cargo test`.
";

impl Lock {
    /// Reads the text of a lock file.
    ///
    /// # Errors
    ///
    /// [`LockError::Malformed`] naming the line.
    pub fn parse(text: &str) -> Result<Self, LockError> {
        let mut entries = Vec::new();
        let mut current: Option<Partial> = None;
        let mut lines = text.lines().enumerate();
        while let Some((index, line)) = lines.next() {
            let number = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed == "[[event]]" {
                if let Some(done) = current.take() {
                    entries.push(done.finish()?);
                }
                current = Some(Partial::at(number));
                continue;
            }
            let malformed = |reason: &str| LockError::Malformed {
                line: number,
                reason: reason.to_owned(),
            };
            let Some(entry) = current.as_mut() else {
                return Err(malformed("expected `[[event]]` before the first key"));
            };
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(malformed("expected `key = value`"));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "name" => {
                    entry.name =
                        Some(unquote(value).ok_or_else(|| malformed("expected `name = \"..\"`"))?)
                }
                "version" => {
                    entry.version = Some(
                        value
                            .parse()
                            .map_err(|_| malformed("expected `version = <integer>`"))?,
                    );
                }
                "fingerprint" => {
                    let hex = unquote(value)
                        .ok_or_else(|| malformed("expected `fingerprint = \"<16 hex digits>\"`"))?;
                    entry.fingerprint =
                        Some(u64::from_str_radix(&hex, 16).map_err(|_| {
                            malformed("expected `fingerprint = \"<16 hex digits>\"`")
                        })?);
                }
                "shape" => {
                    if value != "'''" {
                        return Err(malformed(
                            "expected `shape = '''`, then the shape, then `'''`",
                        ));
                    }
                    let mut shape = Vec::new();
                    loop {
                        match lines.next() {
                            Some((_, "'''")) => break,
                            Some((_, line)) => shape.push(line),
                            None => {
                                return Err(malformed("the shape is not closed by a line `'''`"));
                            }
                        }
                    }
                    entry.shape = Some(shape.join("\n"));
                }
                _ => return Err(malformed(&format!("unknown key `{key}`"))),
            }
        }
        if let Some(done) = current {
            entries.push(done.finish()?);
        }
        let mut lock = Self { entries };
        lock.sort();
        Ok(lock)
    }

    /// The text of the lock file.
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for entry in &self.entries {
            out.push_str(&format!(
                "\n[[event]]\nname = \"{}\"\nversion = {}\nfingerprint = \"{:016x}\"\nshape = '''\n{}\n'''\n",
                quote(&entry.name),
                entry.version,
                entry.fingerprint,
                entry.shape
            ));
        }
        out
    }

    fn sort(&mut self) {
        self.entries
            .sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    }

    fn get(&self, name: &str, version: u32) -> Option<&LockEntry> {
        self.entries
            .iter()
            .find(|e| e.name == name && e.version == version)
    }
}

/// A block being read.
struct Partial {
    line: usize,
    name: Option<String>,
    version: Option<u32>,
    fingerprint: Option<u64>,
    shape: Option<String>,
}

impl Partial {
    fn at(line: usize) -> Self {
        Self {
            line,
            name: None,
            version: None,
            fingerprint: None,
            shape: None,
        }
    }

    fn finish(self) -> Result<LockEntry, LockError> {
        let missing = |key: &str| LockError::Malformed {
            line: self.line,
            reason: format!("this `[[event]]` has no `{key}`"),
        };
        Ok(LockEntry {
            name: self.name.clone().ok_or_else(|| missing("name"))?,
            version: self.version.ok_or_else(|| missing("version"))?,
            fingerprint: self.fingerprint.ok_or_else(|| missing("fingerprint"))?,
            shape: self.shape.clone().unwrap_or_default(),
        })
    }
}

fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn unquote(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// What the check may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockMode {
    /// Write nothing: a missing block fails like a changed one (CI).
    Check,
    /// Add the blocks of new events and versions; fail on anything else
    /// (the default on a developer's machine).
    Append,
    /// Accept everything: replace changed shapes, drop what this build
    /// cannot read any more, add what is new (`CQRS_UPDATE_SCHEMA=1`).
    Update,
}

impl LockMode {
    /// [`Update`](Self::Update) when `CQRS_UPDATE_SCHEMA` is set to
    /// anything but `0` or empty, else [`Check`](Self::Check) when `CI` is
    /// set (as CI services do), else [`Append`](Self::Append).
    pub fn from_env() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        if set(UPDATE_VARIABLE) {
            Self::Update
        } else if set("CI") {
            Self::Check
        } else {
            Self::Append
        }
    }
}

/// One way the lock and the build disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The shape changed under the same version.
    Changed {
        /// The lock's entry.
        locked: LockEntry,
        /// This build's shape of it.
        now: LockEntry,
    },
    /// The lock lists a version this build cannot read.
    Unreadable {
        /// The lock's entry.
        locked: LockEntry,
        /// Why.
        reason: String,
    },
    /// An event version the lock does not list (only in
    /// [`LockMode::Check`]).
    Missing {
        /// This build's entry.
        now: LockEntry,
    },
    /// Two event types claim one name and version with different shapes.
    Ambiguous {
        /// The name.
        name: String,
        /// The version.
        version: u32,
        /// Both Rust types.
        types: [String; 2],
    },
}

/// What a check found and did.
#[derive(Clone, Debug)]
pub struct LockReport {
    /// The lock file.
    pub path: PathBuf,
    /// The mode it ran in.
    pub mode: LockMode,
    /// What disagrees (empty: the check passed).
    pub problems: Vec<Problem>,
    /// The blocks added to the file.
    pub added: Vec<LockEntry>,
    /// Whether the file was written.
    pub written: bool,
}

impl LockReport {
    /// Whether the check passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// What a passing check wrote, for the test's output.
    pub fn note(&self) -> Option<String> {
        if !self.written {
            return None;
        }
        let mut note = format!("{}: updated", self.path.display());
        for entry in &self.added {
            note.push_str(&format!(
                "\n  added `{}` version {}",
                entry.name, entry.version
            ));
        }
        note.push_str("\n  commit it with your change");
        Some(note)
    }
}

/// The shape with the lines that differ marked, `-` in `old` only and `+`
/// in `new` only.
fn diff(old: &str, new: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    for line in &old_lines {
        if !new_lines.contains(line) {
            out.push_str(&format!("      - {}\n", line.trim()));
        }
    }
    for line in &new_lines {
        if !old_lines.contains(line) {
            out.push_str(&format!("      + {}\n", line.trim()));
        }
    }
    out
}

fn indented(shape: &str) -> String {
    shape.lines().map(|l| format!("      {l}\n")).collect()
}

impl fmt::Display for LockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the schema lock {} does not match the events of this build:",
            self.path.display()
        )?;
        let mut changed = false;
        let mut unreadable = false;
        for problem in &self.problems {
            writeln!(f)?;
            match problem {
                Problem::Changed { locked, now } => {
                    changed = true;
                    writeln!(
                        f,
                        "- event `{}` version {} changed its shape, but the events stored under version {} keep the old one:",
                        locked.name, locked.version, locked.version
                    )?;
                    writeln!(f, "    locked (fingerprint {:016x}):", locked.fingerprint)?;
                    f.write_str(&indented(&locked.shape))?;
                    writeln!(f, "    now (fingerprint {:016x}):", now.fingerprint)?;
                    f.write_str(&indented(&now.shape))?;
                    writeln!(f, "    the difference:")?;
                    f.write_str(&diff(&locked.shape, &now.shape))?;
                }
                Problem::Unreadable { locked, reason } => {
                    unreadable = true;
                    writeln!(
                        f,
                        "- event `{}` version {} is in the lock, but this build cannot read it: {reason}",
                        locked.name, locked.version
                    )?;
                }
                Problem::Missing { now } => {
                    writeln!(
                        f,
                        "- event `{}` version {} is not in the lock (the `CI` variable is set, so it was not added): run the tests without it and commit the lock",
                        now.name, now.version
                    )?;
                }
                Problem::Ambiguous {
                    name,
                    version,
                    types,
                } => {
                    writeln!(
                        f,
                        "- event `{name}` version {version} has two shapes, of `{}` and of `{}`",
                        types[0], types[1]
                    )?;
                }
            }
        }
        writeln!(f)?;
        if changed {
            writeln!(
                f,
                "Events are stored forever, so a shape never changes under a version: bump the \
                 event's version and add an upcaster from the old one, e.g. \
                 `#[event(version = 2, upcast(from = 1, with = v1_to_v2))]`."
            )?;
        }
        if unreadable {
            writeln!(
                f,
                "Old events of these versions are still stored: keep the event (a renamed one \
                 lists its old name in `aliases(..)`), or its upcaster from that version."
            )?;
        }
        if changed || unreadable {
            write!(
                f,
                "If the change is deliberate (no such event was ever stored, or the JSON does not \
                 change), accept it: `{UPDATE_VARIABLE}=1 cargo test`."
            )?;
        }
        Ok(())
    }
}

/// Why the lock could not be checked at all.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LockError {
    /// Reading or writing the file failed.
    #[error("cannot {action} the schema lock {}: {source}", path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a lock file.
    #[error("the schema lock is malformed at line {line}: {reason}")]
    Malformed {
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Every event version this build writes, once each, sorted: the problem
/// of two types with one name and version is reported.
fn current(registry: &Registry) -> (Vec<(&'static EventDescriptor, LockEntry)>, Vec<Problem>) {
    let mut by_key: BTreeMap<(&str, u32), (&'static EventDescriptor, LockEntry)> = BTreeMap::new();
    let mut problems = Vec::new();
    for event in registry.events() {
        let entry = LockEntry::of(event);
        match by_key.get(&(event.name, event.version)) {
            Some((first, known)) if known.fingerprint != entry.fingerprint => {
                problems.push(Problem::Ambiguous {
                    name: event.name.to_owned(),
                    version: event.version,
                    types: [first.rust_type.to_owned(), event.rust_type.to_owned()],
                });
            }
            Some(_) => {}
            None => {
                by_key.insert((event.name, event.version), (event, entry));
            }
        }
    }
    (by_key.into_values().collect(), problems)
}

/// Whether this build reads what the lock lists as `locked`: `Ok` with
/// the shape to compare it with (same version), `Ok(None)` when an
/// upcaster reads it, else why not.
fn reader<'a>(
    locked: &LockEntry,
    now: &'a [(&'static EventDescriptor, LockEntry)],
) -> Result<Option<&'a LockEntry>, String> {
    let named = now
        .iter()
        .find(|(e, _)| e.name == locked.name)
        .or_else(|| now.iter().find(|(e, _)| e.aliases.contains(&&*locked.name)));
    let Some((event, entry)) = named else {
        return Err(format!(
            "no event is named `{}` or lists it in `aliases(..)`",
            locked.name
        ));
    };
    if locked.version == event.version {
        return Ok(Some(entry));
    }
    if locked.version > event.version {
        return Err(format!(
            "`{}` is at version {}, older than the lock",
            event.rust_type, event.version
        ));
    }
    if event.upcasts.contains(&locked.version) {
        return Ok(None);
    }
    Err(format!(
        "`{}` is at version {} and has no upcaster from version {}",
        event.rust_type, event.version, locked.version
    ))
}

/// Compares the lock file at `path` (absent: an empty lock) with the events
/// of `registry`, and writes it as `mode` allows.
///
/// # Errors
///
/// When the file cannot be read, parsed or written; a lock that does not
/// match is not an error but a report with problems.
pub fn check_lock(
    path: &Path,
    registry: &Registry,
    mode: LockMode,
) -> Result<LockReport, LockError> {
    let lock = match std::fs::read_to_string(path) {
        Ok(text) => Lock::parse(&text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Lock::default(),
        Err(source) => {
            return Err(LockError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            });
        }
    };
    let (now, mut problems) = current(registry);
    let mut kept = Vec::new();
    for locked in &lock.entries {
        match reader(locked, &now) {
            Ok(Some(entry)) if entry.fingerprint != locked.fingerprint => {
                let mut renamed = entry.clone();
                renamed.name.clone_from(&locked.name);
                problems.push(Problem::Changed {
                    locked: locked.clone(),
                    now: renamed,
                });
                if mode == LockMode::Update {
                    kept.push(LockEntry {
                        name: locked.name.clone(),
                        ..entry.clone()
                    });
                }
            }
            Ok(_) => kept.push(locked.clone()),
            Err(reason) => problems.push(Problem::Unreadable {
                locked: locked.clone(),
                reason,
            }),
        }
    }
    let added: Vec<LockEntry> = now
        .iter()
        .filter(|(e, _)| lock.get(e.name, e.version).is_none())
        .map(|(_, entry)| entry.clone())
        .collect();
    if mode == LockMode::Check {
        problems.extend(
            added
                .iter()
                .map(|now| Problem::Missing { now: now.clone() }),
        );
    }
    let fixable = problems
        .iter()
        .all(|p| !matches!(p, Problem::Ambiguous { .. }));
    let write = match mode {
        LockMode::Check => false,
        LockMode::Append => problems.is_empty() && !added.is_empty(),
        LockMode::Update => fixable && (!problems.is_empty() || !added.is_empty()),
    };
    if mode == LockMode::Update && fixable {
        problems.clear();
    }
    if write {
        let mut next = Lock {
            entries: kept.into_iter().chain(added.iter().cloned()).collect(),
        };
        next.sort();
        next.entries.dedup();
        std::fs::write(path, next.render()).map_err(|source| LockError::Io {
            action: "write",
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(LockReport {
        path: path.to_owned(),
        mode,
        problems,
        added: if write { added } else { Vec::new() },
        written: write,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registration;

    fn event(name: &'static str, version: u32, shape: &'static str) -> &'static EventDescriptor {
        event_with(name, version, shape, &[], &[])
    }

    fn event_with(
        name: &'static str,
        version: u32,
        shape: &'static str,
        aliases: &'static [&'static str],
        upcasts: &'static [u32],
    ) -> &'static EventDescriptor {
        Box::leak(Box::new(EventDescriptor {
            name,
            version,
            rust_type: "bank::Deposited",
            aliases,
            upcasts,
            shape,
        }))
    }

    fn registry(events: &[&'static EventDescriptor]) -> Registry {
        let mut registry = Registry::new();
        for e in events {
            registry.add(Registration::Event(e));
        }
        registry
    }

    const V1: &str = "{\n    amount: u64,\n}";

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Self(tempfile::tempdir().unwrap())
        }
        fn lock(&self) -> PathBuf {
            self.0.path().join("cqrs-schema.lock")
        }
        fn check(&self, events: &[&'static EventDescriptor], mode: LockMode) -> LockReport {
            check_lock(&self.lock(), &registry(events), mode).unwrap()
        }
    }

    #[test]
    fn the_file_round_trips() {
        let lock = Lock {
            entries: vec![
                LockEntry {
                    name: "a\"b".into(),
                    version: 2,
                    fingerprint: 0xab,
                    shape: "#[serde(rename_all = \"camelCase\")]\n{\n    x: u8,\n}".into(),
                },
                LockEntry {
                    name: "unit".into(),
                    version: 1,
                    fingerprint: fingerprint("unit"),
                    shape: "unit".into(),
                },
            ],
        };
        let text = lock.render();
        let mut sorted = lock.clone();
        sorted.sort();
        assert_eq!(Lock::parse(&text).unwrap(), sorted, "{text}");
        assert!(
            text.contains("fingerprint = \"00000000000000ab\""),
            "{text}"
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let e = Lock::parse("name = \"x\"").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = Lock::parse("[[event]]\nname = \"x\"\nversion = one\n").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let e = Lock::parse("[[event]]\nname = \"x\"\nversion = 1\n").unwrap_err();
        assert!(e.to_string().contains("no `fingerprint`"), "{e}");
        let e = Lock::parse("[[event]]\nshape = '''\nx: u8\n").unwrap_err();
        assert!(e.to_string().contains("not closed"), "{e}");
    }

    #[test]
    fn a_first_run_writes_the_lock_and_a_second_passes() {
        let dir = Dir::new();
        let e = event("deposited", 1, V1);
        let first = dir.check(&[e], LockMode::Append);
        assert!(first.is_ok() && first.written, "{first}");
        assert_eq!(first.added.len(), 1);
        let second = dir.check(&[e], LockMode::Append);
        assert!(second.is_ok() && !second.written);
        assert_eq!(second.note(), None);
    }

    #[test]
    fn on_ci_nothing_is_written_and_a_missing_block_fails() {
        let dir = Dir::new();
        let report = dir.check(&[event("deposited", 1, V1)], LockMode::Check);
        assert!(!report.is_ok() && !report.written);
        assert!(!dir.lock().exists());
        assert!(report.to_string().contains("not in the lock"), "{report}");
    }

    #[test]
    fn a_changed_shape_under_one_version_fails_with_both_shapes_and_the_rule() {
        let dir = Dir::new();
        dir.check(&[event("deposited", 1, V1)], LockMode::Append);
        let before = std::fs::read_to_string(dir.lock()).unwrap();
        let changed = event("deposited", 1, "{\n    amount: i64,\n}");
        let report = dir.check(&[changed], LockMode::Append);
        assert!(!report.is_ok());
        let text = report.to_string();
        for expected in [
            "event `deposited` version 1 changed its shape",
            "- amount: u64,",
            "+ amount: i64,",
            "bump the event's version and add an upcaster",
            "CQRS_UPDATE_SCHEMA=1 cargo test",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(std::fs::read_to_string(dir.lock()).unwrap(), before);
        // Accepted on purpose: the lock takes the new shape.
        let update = dir.check(&[changed], LockMode::Update);
        assert!(update.is_ok() && update.written);
        assert!(dir.check(&[changed], LockMode::Check).is_ok());
    }

    #[test]
    fn a_new_version_with_its_upcaster_only_appends() {
        let dir = Dir::new();
        dir.check(&[event("deposited", 1, V1)], LockMode::Append);
        let before = std::fs::read_to_string(dir.lock()).unwrap();
        let v2 = event_with("deposited", 2, "{\n    cents: u64,\n}", &[], &[1]);
        let report = dir.check(&[v2], LockMode::Append);
        assert!(report.is_ok(), "{report}");
        let after = std::fs::read_to_string(dir.lock()).unwrap();
        assert!(after.starts_with(before.trim_end()), "{after}");
        assert_eq!(Lock::parse(&after).unwrap().entries.len(), 2);
        // Without its upcaster, the stored version 1 is unreadable.
        let no_upcaster = event("deposited", 2, "{\n    cents: u64,\n}");
        let report = dir.check(&[no_upcaster], LockMode::Append);
        assert!(
            report.to_string().contains("no upcaster from version 1"),
            "{report}"
        );
    }

    #[test]
    fn a_removed_event_fails_and_a_renamed_one_with_its_alias_passes() {
        let dir = Dir::new();
        dir.check(&[event("deposited", 1, V1)], LockMode::Append);
        let report = dir.check(&[event("credited", 1, V1)], LockMode::Append);
        let text = report.to_string();
        assert!(
            text.contains("no event is named `deposited` or lists it in `aliases(..)`"),
            "{text}"
        );
        assert!(!report.written);
        let renamed = event_with("credited", 1, V1, &["deposited"], &[]);
        let report = dir.check(&[renamed], LockMode::Append);
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.added.len(), 1);
        // The old name's shape is checked too.
        let changed = event_with("credited", 1, "{}", &["deposited"], &[]);
        let report = dir.check(&[changed], LockMode::Append);
        assert_eq!(report.problems.len(), 2, "{report}");
    }

    #[test]
    fn an_update_drops_what_cannot_be_read() {
        let dir = Dir::new();
        dir.check(&[event("deposited", 1, V1)], LockMode::Append);
        let report = dir.check(&[event("credited", 1, V1)], LockMode::Update);
        assert!(report.is_ok());
        let lock = Lock::parse(&std::fs::read_to_string(dir.lock()).unwrap()).unwrap();
        let names: Vec<&str> = lock.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["credited"]);
    }
}
