//! The schema lock against the shapes `#[derive(Event)]` records (issue
//! 11): one event as a first build wrote it, then each change a later
//! build might make to it. A change under the same version fails, with
//! both shapes and the rule; a new version with its upcaster only adds to
//! the lock; the lock file stays as it was when the check fails.

use cqrs_core::Registry;
use cqrs_core::prelude::*;
use cqrs_core::schema::{LockMode, LockReport, check_lock};

/// The first build.
mod first {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Deposited {
        pub(crate) amount: u64,
        pub(crate) note: String,
    }
}

/// The same shape written another way: fields reordered, doc comments,
/// another derive order. Not a change.
mod reordered {
    use cqrs_core::prelude::*;

    /// Documented now.
    #[derive(Clone, Debug, PartialEq, Event, Serialize, Deserialize)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Credited {
        /// A note.
        pub(crate) note: String,
        /// In cents.
        pub(crate) amount: u64,
    }
}

mod changed_type {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Deposited {
        pub(crate) amount: i64,
        pub(crate) note: String,
    }
}

mod renamed_field {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Deposited {
        pub(crate) cents: u64,
        pub(crate) note: String,
    }
}

mod new_required_field {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Deposited {
        pub(crate) amount: u64,
        pub(crate) note: String,
        pub(crate) currency: String,
    }
}

mod serde_rename {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    pub(crate) struct Deposited {
        #[serde(rename = "amt")]
        pub(crate) amount: u64,
        pub(crate) note: String,
    }
}

mod serde_rename_all {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited")]
    #[serde(rename_all = "UPPERCASE")]
    pub(crate) struct Deposited {
        pub(crate) amount: u64,
        pub(crate) note: String,
    }
}

/// The right way: version 2, with its upcaster from version 1.
mod next_version {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited", version = 2, upcast(from = 1, with = v1_to_v2))]
    pub(crate) struct Deposited {
        pub(crate) cents: u64,
        pub(crate) note: String,
    }

    fn v1_to_v2(mut v1: serde_json::Value) -> Result<serde_json::Value, UpcastError> {
        cqrs_core::upcast::rename_field(&mut v1, "amount", "cents")?;
        Ok(v1)
    }
}

/// Version 2 without the upcaster: the stored version 1 is unreadable.
mod next_version_without_upcaster {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.deposited", version = 2)]
    pub(crate) struct Deposited {
        pub(crate) cents: u64,
        pub(crate) note: String,
    }
}

/// Renamed, the old name kept as an alias.
mod renamed_event {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.credited", aliases("lock.deposited"))]
    pub(crate) struct Deposited {
        pub(crate) amount: u64,
        pub(crate) note: String,
    }
}

/// Renamed, the old name forgotten.
mod renamed_event_without_alias {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "lock.credited")]
    pub(crate) struct Deposited {
        pub(crate) amount: u64,
        pub(crate) note: String,
    }
}

struct Lock {
    dir: tempfile::TempDir,
}

impl Lock {
    /// A lock the first build wrote.
    fn first() -> Self {
        let lock = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let report = lock.check::<first::Deposited>(LockMode::Append);
        assert!(report.is_ok() && report.written, "{report}");
        lock
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("cqrs-schema.lock")
    }

    fn text(&self) -> String {
        std::fs::read_to_string(self.path()).unwrap()
    }

    fn check<E: Event + cqrs_core::Registered>(&self, mode: LockMode) -> LockReport {
        check_lock(&self.path(), &Registry::new().register::<E>(), mode).unwrap()
    }
}

/// The check fails with the rule, both shapes and the lines that differ,
/// and leaves the file alone.
fn fails_with(lock: &Lock, report: &LockReport, removed: &str, added: &str) {
    let text = report.to_string();
    assert!(!report.is_ok() && !report.written, "{text}");
    for expected in [
        "event `lock.deposited` version 1 changed its shape",
        "bump the event's version and add an upcaster",
        "CQRS_UPDATE_SCHEMA=1 cargo test",
        removed,
        added,
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(lock.text(), Lock::first().text());
}

#[test]
fn the_first_lock_holds_the_shape_in_readable_form() {
    let lock = Lock::first();
    let text = lock.text();
    assert!(
        text.contains("[[event]]\nname = \"lock.deposited\"\nversion = 1\nfingerprint = \""),
        "{text}"
    );
    assert!(
        text.contains("shape = '''\n{\n    amount: u64,\n    note: String,\n}\n'''"),
        "{text}"
    );
    let fingerprint = format!(
        "fingerprint = \"{:016x}\"",
        cqrs_core::schema::fingerprint(first::Deposited::SHAPE)
    );
    assert!(text.contains(&fingerprint), "{text}");
}

#[test]
fn the_same_shape_written_another_way_passes() {
    let lock = Lock::first();
    let report = lock.check::<reordered::Credited>(LockMode::Check);
    assert!(report.is_ok(), "{report}");
}

#[test]
fn a_changed_field_type_fails() {
    let lock = Lock::first();
    let report = lock.check::<changed_type::Deposited>(LockMode::Append);
    fails_with(&lock, &report, "- amount: u64,", "+ amount: i64,");
}

#[test]
fn a_renamed_field_fails() {
    let lock = Lock::first();
    let report = lock.check::<renamed_field::Deposited>(LockMode::Append);
    fails_with(&lock, &report, "- amount: u64,", "+ cents: u64,");
}

#[test]
fn a_new_required_field_fails() {
    let lock = Lock::first();
    let report = lock.check::<new_required_field::Deposited>(LockMode::Append);
    fails_with(&lock, &report, "now (fingerprint", "+ currency: String,");
}

#[test]
fn a_changed_serde_rename_fails() {
    let lock = Lock::first();
    let report = lock.check::<serde_rename::Deposited>(LockMode::Append);
    fails_with(
        &lock,
        &report,
        "- amount: u64,",
        "+ #[serde(rename = \"amt\")] amount: u64,",
    );
    let report = lock.check::<serde_rename_all::Deposited>(LockMode::Append);
    fails_with(
        &lock,
        &report,
        "locked (fingerprint",
        "+ #[serde(rename_all = \"UPPERCASE\")]",
    );
}

#[test]
fn a_new_version_with_its_upcaster_only_appends() {
    let lock = Lock::first();
    let before = lock.text();
    let report = lock.check::<next_version::Deposited>(LockMode::Append);
    assert!(report.is_ok() && report.written, "{report}");
    let after = lock.text();
    assert!(after.starts_with(before.trim_end()), "{after}");
    assert!(
        after.contains("version = 2") && after.contains("cents: u64,"),
        "{after}"
    );
    // Checked again, as CI would: nothing to add.
    assert!(
        lock.check::<next_version::Deposited>(LockMode::Check)
            .is_ok()
    );
}

#[test]
fn a_new_version_without_its_upcaster_fails() {
    let lock = Lock::first();
    let report = lock.check::<next_version_without_upcaster::Deposited>(LockMode::Append);
    let text = report.to_string();
    assert!(!report.is_ok() && !report.written, "{text}");
    assert!(
        text.contains(
            "event `lock.deposited` version 1 is in the lock, but this build cannot read it"
        ) && text.contains("has no upcaster from version 1")
            && text.contains("Old events of these versions are still stored"),
        "{text}"
    );
}

#[test]
fn a_renamed_event_passes_with_its_alias_and_fails_without() {
    let lock = Lock::first();
    let report = lock.check::<renamed_event_without_alias::Deposited>(LockMode::Append);
    assert!(
        report
            .to_string()
            .contains("no event is named `lock.deposited` or lists it in `aliases(..)`"),
        "{report}"
    );
    let report = lock.check::<renamed_event::Deposited>(LockMode::Append);
    assert!(report.is_ok(), "{report}");
    assert!(lock.text().contains("name = \"lock.credited\""));
}

#[test]
fn on_ci_a_missing_block_fails_and_an_update_accepts_a_change() {
    let lock = Lock::first();
    let report = lock.check::<next_version::Deposited>(LockMode::Check);
    assert!(
        report
            .to_string()
            .contains("event `lock.deposited` version 2 is not in the lock"),
        "{report}"
    );
    let report = lock.check::<changed_type::Deposited>(LockMode::Update);
    assert!(report.is_ok() && report.written, "{report}");
    assert!(lock.text().contains("amount: i64,"));
    assert!(
        lock.check::<changed_type::Deposited>(LockMode::Check)
            .is_ok()
    );
}
