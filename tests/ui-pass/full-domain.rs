// A whole domain: events, an aggregate with sync commands, a projection and
// queries, run end to end on the in-memory store, by type and by name.

use std::collections::BTreeMap;

use cqrs_core::prelude::*;
use cqrs_core::{EventSet, Registry};

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.opened")]
pub struct AccountOpened {
    pub owner: String,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[event(name = "account.deposited", version = 2)]
pub struct MoneyDeposited {
    pub amount: u64,
}

#[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MoneyWithdrawn(pub u64);

#[derive(Debug)]
pub enum AccountError {
    AlreadyOpen,
    NotOpen,
    InsufficientFunds,
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for AccountError {}

#[derive(Aggregate, Default)]
#[aggregate(
    name = "account",
    events(AccountOpened, MoneyDeposited, MoneyWithdrawn),
    commands(Open, Deposit, Withdraw),
    error = AccountError,
)]
pub struct Account {
    open: bool,
    balance: u64,
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
        self.balance -= e.0;
    }
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account, name = "account.open")]
pub struct Open {
    #[id]
    pub account: u32,
    pub owner: String,
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
pub struct Deposit {
    #[id]
    pub account: u32,
    pub amount: u64,
}

#[derive(Command, Deserialize)]
#[command(aggregate = Account)]
pub struct Withdraw(#[id] pub u32, pub u64);

impl Handle<Open> for Account {
    fn handle(&self, c: &Open) -> Result<Events<Self>, AccountError> {
        if self.open {
            return Err(AccountError::AlreadyOpen);
        }
        Ok(events![AccountOpened {
            owner: c.owner.clone()
        }])
    }
}

impl Handle<Deposit> for Account {
    fn handle(&self, c: &Deposit) -> Result<Events<Self>, AccountError> {
        if !self.open {
            return Err(AccountError::NotOpen);
        }
        Ok(events![MoneyDeposited { amount: c.amount }])
    }
}

impl Handle<Withdraw> for Account {
    fn handle(&self, c: &Withdraw) -> Result<Events<Self>, AccountError> {
        if self.balance < c.1 {
            return Err(AccountError::InsufficientFunds);
        }
        Ok(events![MoneyWithdrawn(c.1)])
    }
}

#[derive(Projection, Default)]
#[projection(name = "balances", events(MoneyDeposited, MoneyWithdrawn))]
pub struct Balances {
    by_account: BTreeMap<String, u64>,
}

impl Project<MoneyDeposited> for Balances {
    fn project(&mut self, e: &Envelope<MoneyDeposited>) {
        *self
            .by_account
            .entry(e.aggregate_id().to_owned())
            .or_default() += e.amount;
    }
}

impl Project<MoneyWithdrawn> for Balances {
    fn project(&mut self, e: &Envelope<MoneyWithdrawn>) {
        *self
            .by_account
            .entry(e.aggregate_id().to_owned())
            .or_default() -= e.0;
    }
}

#[derive(Query, Deserialize)]
#[query(projection = Balances, output = Option<u64>, name = "balance")]
pub struct BalanceOf {
    pub account: String,
}

impl Answer<BalanceOf> for Balances {
    fn answer(&self, q: &BalanceOf) -> Option<u64> {
        self.by_account.get(&q.account).copied()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    Registry::from_inventory().validate().unwrap();
    let app = Engine::builder().build().await.unwrap();
    app.execute(Open {
        account: 1,
        owner: "Ada".into(),
    })
    .await
    .unwrap();
    app.execute(Deposit {
        account: 1,
        amount: 100,
    })
    .await
    .unwrap();
    let receipt = app.execute(Withdraw(1, 30)).await.unwrap();
    assert_eq!((&*receipt.aggregate, receipt.id.as_str()), ("account", "1"));
    let refused = app.execute(Withdraw(1, 1_000)).await;
    assert!(matches!(
        refused,
        Err(CommandError::Domain(AccountError::InsufficientFunds))
    ));
    let balance = app
        .query(BalanceOf {
            account: "1".into(),
        })
        .after(&receipt)
        .await
        .unwrap();
    assert_eq!(balance, Some(70));

    let receipt = app
        .execute_json(
            "account.open",
            serde_json::json!({ "account": 2, "owner": "Bob" }),
        )
        .await
        .unwrap();
    assert_eq!(receipt.id, "2");
    let answer = app
        .query_json("balance", serde_json::json!({ "account": "1" }))
        .await
        .unwrap();
    assert_eq!(answer, serde_json::json!(70));

    assert_eq!(
        AccountEvent::NAMES,
        &["account.opened", "account.deposited", "MoneyWithdrawn"]
    );
    let event = AccountEvent::from(MoneyDeposited { amount: 5 });
    assert_eq!(event.event_version(), 2);
    let text = serde_json::to_string(&event).unwrap();
    assert_eq!(
        text,
        r#"{"event":"account.deposited","version":2,"data":{"amount":5}}"#
    );
    assert_eq!(serde_json::from_str::<AccountEvent>(&text).unwrap(), event);
    let catalog = app.catalog().to_string();
    assert!(catalog.contains("account.open"), "{catalog}");
}
