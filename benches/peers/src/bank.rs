//! The bank account of `examples/src/bank.rs`, written for cqrs-es: the same
//! event structs (same fields, same serde JSON), the same stored event names,
//! the same checks in the same order.

use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

/// An account was opened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccountOpened {
    pub owner: String,
}

/// Money was paid in.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MoneyDeposited {
    pub amount: u64,
}

/// Money was taken out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MoneyWithdrawn {
    pub amount: u64,
}

/// cqrs-es stores an aggregate's events as one serde enum; the variant tag
/// wraps the same payload structs (`{"MoneyDeposited":{"amount":100}}`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum AccountEvent {
    AccountOpened(AccountOpened),
    MoneyDeposited(MoneyDeposited),
    MoneyWithdrawn(MoneyWithdrawn),
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AccountOpened(_) => "account.opened",
            Self::MoneyDeposited(_) => "account.deposited",
            Self::MoneyWithdrawn(_) => "account.withdrawn",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// The commands of the script.
#[derive(Debug)]
pub enum AccountCommand {
    OpenAccount { owner: String },
    Deposit { amount: u64 },
    Withdraw { amount: u64 },
}

/// Why the bank refuses a command (the subset of `AccountError` the script
/// can meet, with the same meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    AlreadyOpen,
    NotOpen,
    ZeroAmount,
    InsufficientFunds { balance: u64, requested: u64 },
    OverLimit { limit: u64, requested: u64 },
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyOpen => f.write_str("account is already open"),
            Self::NotOpen => f.write_str("account is not open"),
            Self::ZeroAmount => f.write_str("amount must be more than zero"),
            Self::InsufficientFunds { balance, requested } => write!(
                f,
                "insufficient funds: the balance is {balance}, {requested} was requested"
            ),
            Self::OverLimit { limit, requested } => {
                write!(f, "{requested} exceeds the limit of {limit} per withdrawal")
            }
        }
    }
}

impl std::error::Error for AccountError {}

/// What the handlers consult besides the account.
#[derive(Debug, Clone)]
pub struct BankServices {
    pub withdrawal_limit: u64,
}

impl Default for BankServices {
    fn default() -> Self {
        Self {
            withdrawal_limit: 1_000_000,
        }
    }
}

/// One bank account.
#[derive(Default, Debug, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: u64,
}

impl Account {
    fn check_debit(&self, amount: u64, services: &BankServices) -> Result<(), AccountError> {
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
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        if amount == 0 {
            return Err(AccountError::ZeroAmount);
        }
        Ok(())
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = BankServices;

    async fn handle(
        &mut self,
        command: AccountCommand,
        services: &BankServices,
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        let event = match command {
            AccountCommand::OpenAccount { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                AccountEvent::AccountOpened(AccountOpened { owner })
            }
            AccountCommand::Deposit { amount } => {
                self.check_credit(amount)?;
                AccountEvent::MoneyDeposited(MoneyDeposited { amount })
            }
            AccountCommand::Withdraw { amount } => {
                self.check_debit(amount, services)?;
                AccountEvent::MoneyWithdrawn(MoneyWithdrawn { amount })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::AccountOpened(_) => self.open = true,
            AccountEvent::MoneyDeposited(e) => self.balance += e.amount,
            AccountEvent::MoneyWithdrawn(e) => self.balance -= e.amount,
        }
    }
}
