//! The bank workload every side runs: which command each client sends, in
//! which order. Shared as source with the peer binary (`benches/peers`), so
//! both sides run exactly the same script.

/// One command of the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Open the account.
    Open {
        /// The owner's name.
        owner: String,
    },
    /// Deposit this many cents.
    Deposit(u64),
    /// Withdraw this many cents (refused when the balance is lower).
    Withdraw(u64),
}

/// A withdrawal above any balance the script builds up, and below the bank's
/// withdrawal limit, so it fails with "insufficient funds".
pub(crate) const TOO_MUCH: u64 = 500_000;

/// The id of account number `a`.
pub(crate) fn account_id(a: usize) -> String {
    format!("acc-{a:06}")
}

/// Command number `i` (from 0) on account `a`: open first, then mostly
/// deposits of 100, a withdrawal of 30 every third command, and a
/// withdrawal that fails on insufficient funds every tenth.
pub(crate) fn step(a: usize, i: usize) -> Step {
    if i == 0 {
        Step::Open {
            owner: format!("owner-{a:06}"),
        }
    } else if i % 10 == 5 {
        Step::Withdraw(TOO_MUCH)
    } else if i.is_multiple_of(3) {
        Step::Withdraw(30)
    } else {
        Step::Deposit(100)
    }
}

/// The accounts client `client` of `clients` works on: every `clients`-th one,
/// so clients never share an account.
pub(crate) fn accounts_of(
    client: usize,
    clients: usize,
    accounts: usize,
) -> impl Iterator<Item = usize> {
    (client..accounts).step_by(clients.max(1))
}

/// The order in which one client sends its commands: round-robin over its
/// accounts, command `i` to each before command `i + 1` to any.
pub(crate) fn order(
    client: usize,
    clients: usize,
    accounts: usize,
    commands: usize,
) -> impl Iterator<Item = (usize, usize)> {
    (0..commands).flat_map(move |i| accounts_of(client, clients, accounts).map(move |a| (a, i)))
}

/// Peak resident memory of this process, in KiB (`VmHWM`), if known.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The line a child process prints on stderr to hand its result back:
/// `RESULT key=value key=value ...`.
pub(crate) fn result_line(fields: &[(&str, f64)]) -> String {
    let mut line = String::from("RESULT");
    for (key, value) in fields {
        line.push_str(&format!(" {key}={value}"));
    }
    line
}

/// Resident memory of this process now, in KiB (`VmRSS`), if known.
pub(crate) fn current_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
