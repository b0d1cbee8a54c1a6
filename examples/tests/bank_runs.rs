//! The bank example as a newcomer runs it: in memory, and twice on one SQLite
//! file, the second run continuing from the first.

use std::path::PathBuf;
use std::process::Command;

fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(args)
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "bank {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cqrs-bank-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("bank.db")
}

#[test]
fn runs_in_memory_and_tells_the_story() {
    let out = run(&[]);
    for expected in [
        "Store: in memory",
        "open ada   -> account/ada now at version 1",
        "refused by the account itself: insufficient funds: the balance is 25.00, 525.00 was requested",
        "balance of ada: 45.00",
        "balance of bob: 25.00",
        "balances: at position 7 of 7, lag 0, live",
        "account.transfer_received",
        "Done.",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn a_second_run_on_sqlite_continues_from_the_first() {
    let db = temp_file("continue");
    let store = format!("sqlite:{}", db.display());
    let first = run(&["--store", &store]);
    assert!(first.contains("balance of ada: 45.00"), "{first}");
    let second = run(&["--store", &store]);
    for expected in [
        "It already holds 7 events from earlier runs",
        "open ada   -> refused: already open (from an earlier run)",
        "deposit    -> account/ada now at version 5, global position 8",
        "balance of ada: 90.00",
        "balance of bob: 55.00",
    ] {
        assert!(
            second.contains(expected),
            "missing {expected:?} in:\n{second}"
        );
    }
    let _ = std::fs::remove_dir_all(db.parent().unwrap());
}

#[test]
fn a_bad_flag_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(["--store", "mongo:x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown store `mongo:x`") && stderr.contains("usage: bank"),
        "{stderr}"
    );
}
