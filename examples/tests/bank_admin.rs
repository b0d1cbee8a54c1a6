//! The bank's admin binary (`cqrs_core::admin`) run as a process on a
//! SQLite file the bank example wrote: every command, `--json` for
//! scripts, and one clear line with a non-zero status for every failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bank_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cqrs-admin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("bank.db");
    let out = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(["--store", &format!("sqlite:{}", db.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

fn admin(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bank-admin"))
        .args(["--store", &format!("sqlite:{}", db.display())])
        .args(args)
        .output()
        .unwrap()
}

fn ok(db: &Path, args: &[&str]) -> String {
    let out = admin(db, args);
    assert!(
        out.status.success(),
        "bank-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(db: &Path, args: &[&str]) -> serde_json::Value {
    let text = ok(db, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} is not JSON ({e}): {text}"))
}

/// Fails with one line on stderr and `status`.
fn fails(db: &Path, args: &[&str], status: i32, says: &str) {
    let out = admin(db, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(status), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
    if status == 1 {
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn listings_as_text_and_json() {
    let db = bank_file("listings");
    let catalog = json(&db, &["catalog", "--json"]);
    let text = catalog.to_string();
    assert!(
        text.contains("\"transfer\"") && text.contains("\"SendTransfer\""),
        "{text}"
    );
    assert!(ok(&db, &["catalog"]).contains("process    transfer"));

    let stream = json(&db, &["stream", "account/carol", "--json"]);
    let names: Vec<&str> = stream
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["account.opened", "account.closed"]);

    let log = ok(&db, &["log", "--limit", "3"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    let last: Vec<serde_json::Value> = ok(&db, &["log", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(last.len(), 17);
    let closed = ok(
        &db,
        &["log", "--from", "0", "--event", "account.closed", "--json"],
    );
    assert_eq!(closed.lines().count(), 1, "{closed}");

    let projections = json(&db, &["projections", "--json"]);
    assert_eq!(projections[0]["name"], "balances");
    assert_eq!(projections[0]["lag"], 0);
    let processes = json(&db, &["processes", "--json"]);
    assert_eq!(
        (
            processes[0]["completed"].as_u64(),
            processes[0]["running"].as_u64()
        ),
        (Some(4), Some(0))
    );
    let instance = json(&db, &["process", "transfer", "t-3-b", "--json"]);
    assert_eq!(instance["status"], "completed");
    let history = ok(&db, &["process", "transfer", "t-3-b"]);
    assert!(
        history.contains("ReceiveTransfer to account/carol (refused: account is closed)"),
        "{history}"
    );
    assert!(ok(&db, &["relays"]).starts_with("relay"));
}

#[test]
fn rebuild_and_checkpoint_reset() {
    let db = bank_file("operate");
    let rebuilt = ok(&db, &["rebuild", "balances"]);
    assert!(
        rebuilt.contains("rebuilt `balances`") && rebuilt.contains("through position 17"),
        "{rebuilt}"
    );
    assert_eq!(json(&db, &["projections", "--json"])[0]["position"], 17);

    ok(&db, &["checkpoint", "reset", "balances", "--to", "5"]);
    assert_eq!(json(&db, &["projections", "--json"])[0]["position"], 5);
    let reset = ok(&db, &["checkpoint", "reset", "balances"]);
    assert!(reset.contains("rebuilds on its next start"), "{reset}");
    assert_eq!(
        json(&db, &["projections", "--json"])[0]["position"],
        serde_json::Value::Null
    );
    // Rebuilt, it holds the whole log again.
    ok(&db, &["rebuild", "balances"]);
    assert_eq!(json(&db, &["projections", "--json"])[0]["position"], 17);
}

#[test]
fn failures_are_one_line_and_a_status() {
    let db = bank_file("failures");
    fails(&db, &["rebuild", "nope"], 1, "unknown projection `nope`");
    fails(
        &db,
        &["checkpoint", "reset", "nope"],
        1,
        "unknown projection `nope`",
    );
    fails(
        &db,
        &["process", "transfer", "t-none"],
        1,
        "has no instance `t-none`",
    );
    fails(
        &db,
        &["process", "payments", "x"],
        1,
        "no process manager named `payments`",
    );
    fails(&db, &["stream", "carol"], 1, "a stream is `<type>/<id>`");
    fails(&db, &["frobnicate"], 2, "frobnicate");
    fails(&db, &["log", "--limit", "many"], 2, "many");
    let out = Command::new(env!("CARGO_BIN_EXE_bank-admin"))
        .args(["--store", "mongo:x", "catalog"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A rebuild while another process holds the projection's lease waits for
/// it: here the holder (the bank serving HTTP) is killed, and the admin
/// tool takes the lease over when its term runs out.
#[test]
fn a_rebuild_waits_for_a_lease_held_elsewhere() {
    use std::io::{BufRead, BufReader};
    let db = bank_file("lease");
    let mut server = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args([
            "--store",
            &format!("sqlite:{}", db.display()),
            "--serve",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = server.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    // Read to the end, so the server never writes to a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    let listening = heard.iter().any(|l: String| l.starts_with("listening on "));
    assert!(listening, "the server started");
    // Its projection takes the lease; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let _ = server.kill();
        let _ = server.wait();
    });
    let out = admin(&db, &["rebuild", "balances"]);
    killer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting for the lease of `balances`"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt `balances`"));
}
