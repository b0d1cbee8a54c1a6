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
        "account.transfer_sent      -> ReceiveTransfer to account/bob",
        "ReceiveTransfer to account/carol (refused: account is closed), then RefundTransfer to account/ada",
        "deadline:review            -> RefundTransfer to account/ada",
        "transfer t-3-c: completed",
        "transfer manager: 0 running, 4 completed, 0 failed",
        "refused by the account itself: insufficient funds: the balance is 275.00, 375.00 was requested",
        "balance of ada: 695.00",
        "balance of bob: 275.00",
        "balances: at position 17 of 17, lag 0, live",
        "account.transfer_refunded",
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
    assert!(first.contains("balance of ada: 695.00"), "{first}");
    let second = run(&["--store", &store]);
    for expected in [
        "It already holds 17 events from earlier runs",
        "open ada   -> refused: already open (from an earlier run)",
        "close carol -> refused: already closed (from an earlier run)",
        "deposit    -> account/ada now at version 11, global position 18",
        "transfer t-12-d: completed",
        "transfer manager: 0 running, 8 completed, 0 failed",
        "balance of ada: 1390.00",
        "balance of bob: 555.00",
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

/// A private `nats-server` with JetStream on a free loopback port, stopped
/// when dropped; `None` (with a visible note) when none is installed,
/// unless the tests must not skip (`CI=true`, `CQRS_REQUIRE_NATS=1`).
struct Nats {
    child: std::process::Child,
    url: String,
    dir: PathBuf,
}

impl Nats {
    fn start() -> Option<Self> {
        let server = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
        let required = std::env::var("CQRS_REQUIRE_NATS").is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let Some(server) = server else {
            assert!(
                !required,
                "nats-server is required (CI=true) but not installed"
            );
            eprintln!("SKIPPED: nats-server is not installed");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = temp_file(&format!("nats-{port}"))
            .parent()
            .unwrap()
            .to_owned();
        let child = Command::new(server)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("js"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            dir,
        })
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The demo of the README: the bank relays to NATS, and `balances`, in
/// another process with a database of its own, reads its writes by the
/// bank's last receipt.
#[test]
fn the_read_side_runs_in_its_own_process_over_nats() {
    let Some(nats) = Nats::start() else { return };
    let store = format!("sqlite:{}", nats.dir.join("bank.db").display());
    let receipt_file = nats.dir.join("receipt.json");
    let output = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(["--store", &store, "--relay", &nats.url])
        .env("BANK_RECEIPT_FILE", &receipt_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("relay: published through position 17 of 17, lag 0"),
        "{stdout}"
    );
    let receipt = std::fs::read_to_string(&receipt_file).unwrap();
    assert!(receipt.contains("\"position\":17"), "{receipt}");

    let reads = format!("sqlite:{}", nats.dir.join("reads.db").display());
    let balances = |extra: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_balances"))
            .args(["--nats", &nats.url, "--read-store", &reads])
            .args(extra)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let out = balances(&["--after", &receipt]);
    for expected in [
        "Waiting until the read model has seen account/bob version 4",
        "ada  Ada Lovelace     695.00  (9 events)",
        "bob  Bob Babbage      280.00  (4 events)",
        "balances: at position 17 of 17, lag 0, stream sequence 17, live",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // A second run resumes from the read model it saved.
    let again = balances(&[]);
    assert!(
        again.contains("bob  Bob Babbage      280.00  (4 events)"),
        "{again}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_balances"))
        .args(["--nats", &nats.url, "--after", "{not json"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--after takes a receipt as JSON"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `bank --serve`: the bank over HTTP, driven with `curl` as the README
/// shows (a command, a query after it, an overdraft as problem+json).
#[test]
fn serves_the_bank_over_http() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_bank"))
        .args(["--serve", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        .expect("the server says where it listens");
    let curl = |args: &[&str]| -> String {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-H",
                "content-type: application/json",
            ])
            .args(args)
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let opened = curl(&[
        "-d",
        r#"{"account":"ada","owner":"Ada"}"#,
        &format!("{url}/commands/OpenAccount"),
    ]);
    assert!(opened.contains(r#""version":1"#), "{opened}");
    let deposited = curl(&[
        "-d",
        r#"{"account":"ada","amount":500}"#,
        &format!("{url}/commands/Deposit"),
    ]);
    let receipt: serde_json::Value = serde_json::from_str(&deposited).unwrap();
    let position = receipt["position"].as_u64().unwrap();
    let balance = curl(&[
        "-d",
        r#"{"account":"ada"}"#,
        &format!("{url}/queries/BalanceOf?after={position}"),
    ]);
    assert_eq!(balance, "500");
    let refused = curl(&[
        "-d",
        r#"{"account":"ada","amount":90000}"#,
        &format!("{url}/commands/Withdraw"),
    ]);
    let problem: serde_json::Value = serde_json::from_str(&refused).unwrap();
    assert_eq!(problem["status"], 422, "{refused}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{refused}"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// One printed span: its name, `trace/span`, parent, links and fields.
struct Printed<'a> {
    name: &'a str,
    id: &'a str,
    parent: Option<&'a str>,
    links: Vec<&'a str>,
    line: &'a str,
}

fn printed(line: &str) -> Option<Printed<'_>> {
    let mut words = line.split_whitespace();
    let name = words.next()?;
    let id = words.next().filter(|id| id.contains('/'))?;
    let mut span = Printed {
        name,
        id,
        parent: None,
        links: Vec::new(),
        line,
    };
    let mut in_links = false;
    while let Some(word) = words.next() {
        match word {
            "<-" => span.parent = words.next(),
            "links:" => in_links = true,
            link if in_links && link.contains('/') && !link.contains('=') => span.links.push(link),
            _ => in_links = false,
        }
    }
    Some(span)
}

#[test]
fn the_traced_bank_links_batches_to_their_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_bank-traced"))
        .output()
        .expect("the example starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "bank-traced failed:\n{stdout}");
    let spans: Vec<_> = stdout.lines().filter_map(printed).collect();
    let command = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == "command" && s.line.contains(&format!(" command={name} ")))
            .unwrap_or_else(|| panic!("no span of {name} in:\n{stdout}"))
    };
    // The deposit continues the caller's trace (`4bf92f35..`, span `00f067aa..`).
    let deposit = command("Deposit");
    assert!(deposit.id.starts_with("4bf92f35/"), "{}", deposit.line);
    assert_eq!(deposit.parent, Some("00f067aa"), "{}", deposit.line);
    let applied = |by: &str, of: &str| {
        spans.iter().any(|s| {
            s.name.ends_with("_batch")
                && s.line.contains(&format!(" {by} "))
                && s.links.contains(&of)
        })
    };
    assert!(applied("projection=balances", deposit.id), "{stdout}");
    // The credit the manager sends is a child of the transfer, in its trace.
    let send = command("SendTransfer");
    let credit = command("ReceiveTransfer");
    let (send_trace, send_span) = send.id.split_once('/').unwrap();
    assert!(
        credit.id.starts_with(&format!("{send_trace}/")),
        "{}",
        credit.line
    );
    assert_eq!(credit.parent, Some(send_span), "{}", credit.line);
    assert!(applied("process=transfer", send.id), "{stdout}");
    assert!(applied("projection=balances", credit.id), "{stdout}");
}
