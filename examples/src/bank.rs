//! A bank: accounts you open, deposit into, withdraw from and transfer
//! between, and a balance read model.
//!
//! A transfer spans two aggregates, each its own consistency boundary. The
//! caller sends one command, `SendTransfer`, which debits the source; the
//! [`Transfer`] process manager then credits the destination
//! (`ReceiveTransfer`), or gives the money back (`RefundTransfer`) when the
//! destination refuses it (a closed account). A transfer over
//! [`REVIEW_ABOVE`] waits for `ApproveTransfer`, and is refunded if no
//! approval comes within [`REVIEW_WINDOW`].

use std::collections::BTreeMap;
use std::time::Duration;

use cqrs_core::prelude::*;

// ---- events ----------------------------------------------------------------

/// An account was opened.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.opened")]
pub struct AccountOpened {
    /// Who owns it.
    pub owner: String,
}

/// Money was paid in.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.deposited")]
pub struct MoneyDeposited {
    /// In cents.
    pub amount: u64,
}

/// Money was taken out.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.withdrawn")]
pub struct MoneyWithdrawn {
    /// In cents.
    pub amount: u64,
}

/// Money left this account for another one.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.transfer_sent")]
pub struct TransferSent {
    /// Identifies the transfer on both sides.
    pub transfer: String,
    /// The receiving account.
    pub to: String,
    /// In cents.
    pub amount: u64,
}

/// Money arrived from another account.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.transfer_received")]
pub struct TransferReceived {
    /// Identifies the transfer on both sides.
    pub transfer: String,
    /// The sending account.
    pub from: String,
    /// In cents.
    pub amount: u64,
}

/// A transfer that could not be credited went back to its sender.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.transfer_refunded")]
pub struct TransferRefunded {
    /// Identifies the transfer.
    pub transfer: String,
    /// In cents.
    pub amount: u64,
    /// Why it was refunded.
    pub reason: String,
}

/// A transfer held for review was approved by its sender's bank.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.transfer_approved")]
pub struct TransferApproved {
    /// Identifies the transfer.
    pub transfer: String,
}

/// The account was closed: it takes no more money.
#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.closed")]
pub struct AccountClosed;

// ---- errors and services -----------------------------------------------------

/// Why the bank refuses a command (as JSON in an HTTP problem:
/// `{"code": "insufficient_funds", "balance": .., "requested": ..}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AccountError {
    /// Opening an account twice.
    #[error("account is already open")]
    AlreadyOpen,
    /// Using an account that was never opened.
    #[error("account is not open")]
    NotOpen,
    /// Moving no money.
    #[error("amount must be more than zero")]
    ZeroAmount,
    /// Taking out more than there is.
    #[error("insufficient funds: the balance is {}, {} was requested", money(*.balance), money(*.requested))]
    InsufficientFunds {
        /// What the account holds.
        balance: u64,
        /// What was asked for.
        requested: u64,
    },
    /// Taking out more than the bank allows at once.
    #[error("{} exceeds the limit of {} per withdrawal", money(*.requested), money(*.limit))]
    OverLimit {
        /// The bank's limit.
        limit: u64,
        /// What was asked for.
        requested: u64,
    },
    /// Sending money to the same account.
    #[error("cannot transfer to the same account")]
    SameAccount,
    /// Paying into an account that was closed.
    #[error("account is closed")]
    Closed,
    /// Closing an account that still holds money.
    #[error("account still holds {}: empty it before closing it", money(*.balance))]
    NotEmpty {
        /// What the account holds.
        balance: u64,
    },
}

/// What the bank's handlers consult besides the account itself.
#[derive(Debug, Clone)]
pub struct BankServices {
    /// The largest single withdrawal or transfer, in cents.
    pub withdrawal_limit: u64,
}

impl Default for BankServices {
    fn default() -> Self {
        Self {
            withdrawal_limit: 1_000_000,
        }
    }
}

// ---- commands --------------------------------------------------------------

/// Open an account.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct OpenAccount {
    /// The new account's id.
    #[id]
    pub account: String,
    /// Who owns it.
    pub owner: String,
}

/// Pay money in.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account)]
pub struct Deposit {
    /// The account.
    #[id]
    pub account: String,
    /// In cents.
    pub amount: u64,
}

/// Take money out; checked against the balance and the bank's limit.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account, async)]
pub struct Withdraw {
    /// The account.
    #[id]
    pub account: String,
    /// In cents.
    pub amount: u64,
}

/// First half of a transfer: debit the sending account.
#[derive(Command, Deserialize, Debug)]
#[command(aggregate = Account, async)]
pub struct SendTransfer {
    /// The sending account.
    #[id]
    pub from: String,
    /// The receiving account.
    pub to: String,
    /// Identifies the transfer on both sides.
    pub transfer: String,
    /// In cents.
    pub amount: u64,
}

/// Second half of a transfer: credit the receiving account (sent by the
/// [`Transfer`] process manager).
#[derive(Command, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[command(aggregate = Account)]
pub struct ReceiveTransfer {
    /// The receiving account.
    #[id]
    pub to: String,
    /// The sending account.
    pub from: String,
    /// Identifies the transfer on both sides.
    pub transfer: String,
    /// In cents.
    pub amount: u64,
}

/// Give a transfer that could not be credited back to its sender (sent by
/// the [`Transfer`] process manager).
#[derive(Command, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[command(aggregate = Account)]
pub struct RefundTransfer {
    /// The sending account, paid back.
    #[id]
    pub from: String,
    /// Identifies the transfer.
    pub transfer: String,
    /// In cents.
    pub amount: u64,
    /// Why.
    pub reason: String,
}

/// Approve a transfer held for review.
#[derive(Command, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[command(aggregate = Account)]
pub struct ApproveTransfer {
    /// The sending account.
    #[id]
    pub from: String,
    /// Identifies the transfer.
    pub transfer: String,
}

/// Close an empty account.
#[derive(Command, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[command(aggregate = Account)]
pub struct CloseAccount {
    /// The account.
    #[id]
    pub account: String,
}

// ---- the aggregate -----------------------------------------------------------

/// One bank account: the write model.
#[derive(Aggregate, Default, Debug, Serialize, Deserialize)]
#[aggregate(
    name = "account",
    events(
        AccountOpened,
        MoneyDeposited,
        MoneyWithdrawn,
        TransferSent,
        TransferReceived,
        TransferRefunded,
        TransferApproved,
        AccountClosed,
    ),
    commands(
        OpenAccount,
        Deposit,
        Withdraw,
        SendTransfer,
        ReceiveTransfer,
        RefundTransfer,
        ApproveTransfer,
        CloseAccount,
    ),
    error = AccountError,
    services = BankServices,
    snapshot_every = 100,
)]
pub struct Account {
    open: bool,
    #[serde(default)]
    closed: bool,
    balance: u64,
}

impl Account {
    /// The balance, in cents.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    fn check_debit(&self, amount: u64, services: &BankServices) -> Result<(), AccountError> {
        if self.closed {
            return Err(AccountError::Closed);
        }
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        if amount > services.withdrawal_limit {
            return Err(AccountError::OverLimit {
                limit: services.withdrawal_limit,
                requested: amount,
            });
        }
        if amount > self.balance {
            return Err(AccountError::InsufficientFunds {
                balance: self.balance,
                requested: amount,
            });
        }
        Ok(())
    }

    fn check_credit(&self, amount: u64) -> Result<(), AccountError> {
        if self.closed {
            return Err(AccountError::Closed);
        }
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        Ok(())
    }
}

impl Apply<AccountOpened> for Account {
    fn apply(&mut self, _: &AccountOpened) {
        self.open = true;
    }
}

impl Apply<MoneyDeposited> for Account {
    fn apply(&mut self, e: &MoneyDeposited) {
        self.balance += e.amount;
    }
}

impl Apply<MoneyWithdrawn> for Account {
    fn apply(&mut self, e: &MoneyWithdrawn) {
        self.balance -= e.amount;
    }
}

impl Apply<TransferSent> for Account {
    fn apply(&mut self, e: &TransferSent) {
        self.balance -= e.amount;
    }
}

impl Apply<TransferReceived> for Account {
    fn apply(&mut self, e: &TransferReceived) {
        self.balance += e.amount;
    }
}

impl Apply<TransferRefunded> for Account {
    fn apply(&mut self, e: &TransferRefunded) {
        self.balance += e.amount;
    }
}

impl Apply<TransferApproved> for Account {
    fn apply(&mut self, _: &TransferApproved) {}
}

impl Apply<AccountClosed> for Account {
    fn apply(&mut self, _: &AccountClosed) {
        self.closed = true;
    }
}

impl Handle<RefundTransfer> for Account {
    fn handle(&self, c: &RefundTransfer) -> Result<Events<Self>, AccountError> {
        // A refund returns money this account sent: it lands even on an
        // account closed since.
        if c.amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        Ok(events![TransferRefunded {
            transfer: c.transfer.clone(),
            amount: c.amount,
            reason: c.reason.clone(),
        }])
    }
}

impl Handle<ApproveTransfer> for Account {
    fn handle(&self, c: &ApproveTransfer) -> Result<Events<Self>, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        Ok(events![TransferApproved {
            transfer: c.transfer.clone()
        }])
    }
}

impl Handle<CloseAccount> for Account {
    fn handle(&self, _: &CloseAccount) -> Result<Events<Self>, AccountError> {
        if self.closed || !self.open {
            return Err(AccountError::NotOpen);
        }
        if self.balance > 0 {
            return Err(AccountError::NotEmpty {
                balance: self.balance,
            });
        }
        Ok(events![AccountClosed])
    }
}

impl Handle<OpenAccount> for Account {
    fn handle(&self, c: &OpenAccount) -> Result<Events<Self>, AccountError> {
        if self.open || self.closed {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(events![AccountOpened {
            owner: c.owner.clone()
        }])
    }
}

impl Handle<Deposit> for Account {
    fn handle(&self, c: &Deposit) -> Result<Events<Self>, AccountError> {
        self.check_credit(c.amount)?;
        Ok(events![MoneyDeposited { amount: c.amount }])
    }
}

impl HandleAsync<Withdraw> for Account {
    async fn handle(
        &self,
        c: &Withdraw,
        services: &BankServices,
    ) -> Result<Events<Self>, AccountError> {
        self.check_debit(c.amount, services)?;
        Ok(events![MoneyWithdrawn { amount: c.amount }])
    }
}

impl HandleAsync<SendTransfer> for Account {
    async fn handle(
        &self,
        c: &SendTransfer,
        services: &BankServices,
    ) -> Result<Events<Self>, AccountError> {
        if c.from == c.to {
            return Err(AccountError::SameAccount);
        }
        self.check_debit(c.amount, services)?;
        Ok(events![TransferSent {
            transfer: c.transfer.clone(),
            to: c.to.clone(),
            amount: c.amount
        }])
    }
}

impl Handle<ReceiveTransfer> for Account {
    fn handle(&self, c: &ReceiveTransfer) -> Result<Events<Self>, AccountError> {
        self.check_credit(c.amount)?;
        Ok(events![TransferReceived {
            transfer: c.transfer.clone(),
            from: c.from.clone(),
            amount: c.amount,
        }])
    }
}

// ---- the read side -----------------------------------------------------------

/// One account as the read side shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    /// Who owns it.
    pub owner: String,
    /// In cents.
    pub balance: u64,
    /// How many events touched it.
    pub movements: u64,
}

/// Balances of every account, kept from the event log.
///
/// Durable: on SQLite or PostgreSQL the store keeps one document per account
/// together with the projection's checkpoint, and a restart resumes there.
#[derive(Projection, Default, Debug)]
#[projection(
    name = "balances",
    events(
        AccountOpened,
        MoneyDeposited,
        MoneyWithdrawn,
        TransferSent,
        TransferReceived,
        TransferRefunded
    )
)]
pub struct Balances {
    #[document]
    accounts: Documents<AccountSummary>,
}

impl Balances {
    fn account(&mut self, id: &str) -> &mut AccountSummary {
        self.accounts.entry(id).or_insert_with(|| AccountSummary {
            owner: String::new(),
            balance: 0,
            movements: 0,
        })
    }
}

impl Project<AccountOpened> for Balances {
    fn project(&mut self, e: &Envelope<AccountOpened>) {
        let account = self.account(e.aggregate_id());
        account.owner = e.owner.clone();
        account.movements += 1;
    }
}

impl Project<MoneyDeposited> for Balances {
    fn project(&mut self, e: &Envelope<MoneyDeposited>) {
        let account = self.account(e.aggregate_id());
        account.balance += e.amount;
        account.movements += 1;
    }
}

impl Project<MoneyWithdrawn> for Balances {
    fn project(&mut self, e: &Envelope<MoneyWithdrawn>) {
        let account = self.account(e.aggregate_id());
        account.balance = account.balance.saturating_sub(e.amount);
        account.movements += 1;
    }
}

impl Project<TransferSent> for Balances {
    fn project(&mut self, e: &Envelope<TransferSent>) {
        let account = self.account(e.aggregate_id());
        account.balance = account.balance.saturating_sub(e.amount);
        account.movements += 1;
    }
}

impl Project<TransferReceived> for Balances {
    fn project(&mut self, e: &Envelope<TransferReceived>) {
        let account = self.account(e.aggregate_id());
        account.balance += e.amount;
        account.movements += 1;
    }
}

impl Project<TransferRefunded> for Balances {
    fn project(&mut self, e: &Envelope<TransferRefunded>) {
        let account = self.account(e.aggregate_id());
        account.balance += e.amount;
        account.movements += 1;
    }
}

/// The balance of one account, `None` if the read side has not seen it.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Balances, output = Option<u64>)]
pub struct BalanceOf {
    /// The account.
    pub account: String,
}

impl Answer<BalanceOf> for Balances {
    fn answer(&self, q: &BalanceOf) -> Option<u64> {
        self.accounts.get(&q.account).map(|a| a.balance)
    }
}

/// Every account, by id.
#[derive(Query, Deserialize, Debug)]
#[query(projection = Balances, output = BTreeMap<String, AccountSummary>)]
pub struct AllAccounts;

impl Answer<AllAccounts> for Balances {
    fn answer(&self, _: &AllAccounts) -> BTreeMap<String, AccountSummary> {
        self.accounts
            .iter()
            .map(|(id, account)| (id.clone(), account.clone()))
            .collect()
    }
}

// ---- the transfer workflow ---------------------------------------------------

/// Transfers above this many cents wait for an `ApproveTransfer`.
pub const REVIEW_ABOVE: u64 = 20_000;

/// How long a transfer held for review waits for its approval before it is
/// refunded.
pub const REVIEW_WINDOW: Duration = Duration::from_secs(5 * 60);

/// One transfer, from the debit to the credit or the refund: a process
/// manager, one instance per transfer id.
#[derive(ProcessManager, Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[process(
    name = "transfer",
    events(TransferSent, TransferApproved, TransferReceived, TransferRefunded),
    commands(ReceiveTransfer, RefundTransfer)
)]
pub struct Transfer {
    /// The transfer's id (the instance's key).
    pub transfer: String,
    /// The sending account.
    pub from: String,
    /// The receiving account.
    pub to: String,
    /// In cents.
    pub amount: u64,
    /// Whether it waits for an approval.
    pub held: bool,
}

impl Transfer {
    fn credit(&self) -> ReceiveTransfer {
        ReceiveTransfer {
            to: self.to.clone(),
            from: self.from.clone(),
            transfer: self.transfer.clone(),
            amount: self.amount,
        }
    }

    fn refund(&self, reason: &str) -> RefundTransfer {
        RefundTransfer {
            from: self.from.clone(),
            transfer: self.transfer.clone(),
            amount: self.amount,
            reason: reason.to_owned(),
        }
    }
}

impl Correlate<TransferSent> for Transfer {
    fn correlate(e: &Envelope<TransferSent>) -> Correlation {
        Correlation::start(&e.transfer)
    }
}

impl Correlate<TransferApproved> for Transfer {
    fn correlate(e: &Envelope<TransferApproved>) -> Correlation {
        Correlation::join(&e.transfer)
    }
}

impl Correlate<TransferReceived> for Transfer {
    fn correlate(e: &Envelope<TransferReceived>) -> Correlation {
        Correlation::join(&e.transfer)
    }
}

impl Correlate<TransferRefunded> for Transfer {
    fn correlate(e: &Envelope<TransferRefunded>) -> Correlation {
        Correlation::join(&e.transfer)
    }
}

impl React<TransferSent> for Transfer {
    fn react(&mut self, e: &Envelope<TransferSent>) -> Reaction<Self> {
        self.transfer = e.transfer.clone();
        self.from = e.aggregate_id().to_owned();
        self.to = e.to.clone();
        self.amount = e.amount;
        if e.amount > REVIEW_ABOVE {
            self.held = true;
            return Reaction::new().deadline("review", REVIEW_WINDOW);
        }
        Reaction::new().send(self.credit())
    }
}

impl React<TransferApproved> for Transfer {
    fn react(&mut self, _: &Envelope<TransferApproved>) -> Reaction<Self> {
        if !self.held {
            return Reaction::new();
        }
        self.held = false;
        Reaction::new()
            .cancel_deadline("review")
            .send(self.credit())
    }
}

impl React<TransferReceived> for Transfer {
    fn react(&mut self, _: &Envelope<TransferReceived>) -> Reaction<Self> {
        Reaction::new().complete()
    }
}

impl React<TransferRefunded> for Transfer {
    fn react(&mut self, _: &Envelope<TransferRefunded>) -> Reaction<Self> {
        Reaction::new().complete()
    }
}

impl Recover<ReceiveTransfer> for Transfer {
    fn recover(&mut self, refused: &Refused<ReceiveTransfer>) -> Reaction<Self> {
        let reason = format!("the receiving account refused it: {}", refused.error);
        Reaction::new().send(self.refund(&reason))
    }
}

impl Timeout for Transfer {
    fn timeout(&mut self, _: &Deadline) -> Reaction<Self> {
        self.held = false;
        Reaction::new().send(self.refund("not approved within the review window"))
    }
}

/// Formats cents as `12.34`.
pub fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_are_durable() {
        let mut b = Balances::default();
        assert_eq!(b.document_collections().len(), 1);
    }
}
