//! The HTTP adapter against a real server on loopback, driven by a real
//! HTTP client (`curl`): every route, every error mapping, the event feed
//! live and resumed, an authentication layer and an authorization hook,
//! concurrent clients.

// Amounts are cents, grouped as money: `100_00` is 100.00.
#![allow(clippy::inconsistent_digit_grouping)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use cqrs_core::http::axum::extract::Request;
use cqrs_core::http::axum::http::StatusCode;
use cqrs_core::http::axum::middleware::{self, Next};
use cqrs_core::http::axum::response::{IntoResponse, Response};
use cqrs_core::http::{Actor, HttpOptions, Problem, axum, router};
use cqrs_core::{Engine, MemoryStore, StreamId};
use cqrs_examples::bank::BankServices;

/// What `curl` got: status, headers (lower-case names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The problem document of an error answer, checked to be one.
    fn problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        problem
    }
}

/// Runs `curl` with `args` against `addr` (`path` appended), on a thread.
async fn curl(addr: SocketAddr, method: &str, path: &str, args: &[&str]) -> Answer {
    let url = format!("http://{addr}{path}");
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-i", "--max-time", "10", "-X", method])
        .args(args)
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("curl runs (install it with apt-get install curl)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&String::from_utf8_lossy(&output.stdout))
}

fn parse(text: &str) -> Answer {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn post_json(addr: SocketAddr, path: &str, body: &str, headers: &[&str]) -> Answer {
    let mut args = vec![
        "-H",
        "content-type: application/json",
        "--data-binary",
        body,
    ];
    for h in headers {
        args.extend(["-H", h]);
    }
    curl(addr, "POST", path, &args).await
}

/// A bearer token names the actor; none is a 401.
async fn bearer(mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    match token {
        Some(token) => {
            request.extensions_mut().insert(Actor(token));
            next.run(request).await
        }
        None => Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a bearer token is needed",
        )
        .into_response(),
    }
}

/// The bank behind the router, with a bearer-token layer on `/secure`, on
/// a loopback port of its own.
async fn serve() -> (SocketAddr, Engine) {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .services(BankServices::default())
        .query_timeout(Duration::from_millis(300))
        .max_body_size(4096)
        .build()
        .await
        .unwrap();
    let options = HttpOptions::new().authorize(|request| {
        if request.name == "CloseAccount" && request.actor != Some("manager") {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only a manager closes accounts",
            ));
        }
        Ok(())
    });
    let api = router(engine.clone(), options);
    let app = axum::Router::new()
        .nest("/secure", api.clone().layer(middleware::from_fn(bearer)))
        .merge(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, engine)
}

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_queries_with_read_your_writes_and_metadata() {
    let (addr, engine) = serve().await;
    let opened = post_json(
        addr,
        "/commands/OpenAccount",
        r#"{"account":"ada","owner":"Ada"}"#,
        // Not a W3C trace context: ignored, not refused.
        &["traceparent: 00-xyz"],
    )
    .await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let correlation = uuid::Uuid::new_v4().to_string();
    let deposit = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"ada","amount":10000}"#,
        &[
            &format!("x-correlation-id: {correlation}"),
            "x-actor: teller-7",
            &format!("traceparent: {TRACEPARENT}"),
        ],
    )
    .await;
    assert_eq!(deposit.status, 200, "{deposit:?}");
    let receipt = deposit.json();
    assert_eq!(receipt["aggregate"], "account");
    assert_eq!(receipt["version"], 2);
    let position = receipt["position"].as_u64().unwrap();
    assert_eq!(deposit.header("x-position"), Some(&*position.to_string()));

    // Read-your-writes: by `after`, and by header.
    let path = format!("/queries/BalanceOf?after={position}");
    let balance = post_json(addr, &path, r#"{"account":"ada"}"#, &[]).await;
    assert_eq!(
        (balance.status, balance.json()),
        (200, serde_json::json!(10000))
    );
    let header = format!("x-read-after: {position}");
    let balance = post_json(
        addr,
        "/queries/BalanceOf",
        r#"{"account":"ada"}"#,
        &[&header],
    )
    .await;
    assert_eq!(balance.json(), serde_json::json!(10000));
    // A query without fields, by GET.
    let all = curl(
        addr,
        "GET",
        &format!("/queries/AllAccounts?after={position}"),
        &[],
    )
    .await;
    assert_eq!(all.json()["ada"]["balance"], 10000);

    let events = engine
        .store()
        .read_stream(&StreamId::new("account", "ada"), 2)
        .await
        .unwrap();
    assert_eq!(
        events[0].metadata.correlation_id.unwrap().to_string(),
        correlation
    );
    assert_eq!(events[0].metadata.actor.as_deref(), Some("teller-7"));
    // No OpenTelemetry layer here: the caller's context is kept as it came.
    assert_eq!(events[0].metadata.traceparent.as_deref(), Some(TRACEPARENT));
    let opened = engine
        .store()
        .read_stream(&StreamId::new("account", "ada"), 0)
        .await
        .unwrap();
    assert_eq!(opened[0].metadata.traceparent, None);

    // The same request again with its idempotency key: the same receipt.
    let key = "idempotency-key: req-41";
    let first = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"ada","amount":5}"#,
        &[key],
    )
    .await;
    let again = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"ada","amount":5}"#,
        &[key],
    )
    .await;
    assert_eq!(first.json(), again.json());
    let stream = engine
        .store()
        .read_stream(&StreamId::new("account", "ada"), 1)
        .await
        .unwrap();
    assert_eq!(stream.len(), 3, "the retry appended again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_problem_with_its_status() {
    let (addr, _engine) = serve().await;
    post_json(
        addr,
        "/commands/OpenAccount",
        r#"{"account":"bob","owner":"Bob"}"#,
        &[],
    )
    .await;

    let refused = post_json(
        addr,
        "/commands/Withdraw",
        r#"{"account":"bob","amount":500}"#,
        &[],
    )
    .await;
    let problem = refused.problem(422);
    assert_eq!(problem["title"], "command refused");
    // The bank's error is `Serialize`: the problem carries it.
    assert_eq!(
        problem["error"],
        serde_json::json!({ "code": "insufficient_funds", "balance": 0, "requested": 500 })
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("insufficient funds"),
        "{problem}"
    );

    let unknown = post_json(addr, "/commands/Deposti", "{}", &[]).await;
    let detail = unknown.problem(404)["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("`Deposti`") && detail.contains("Deposit"),
        "{detail}"
    );
    unknown_query(addr).await;

    let wrong = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"bob","amount":"lots"}"#,
        &[],
    )
    .await;
    let detail = wrong.problem(400)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("at `amount`"), "{detail}");
    let not_json = post_json(addr, "/commands/Deposit", "{account", &[]).await;
    not_json.problem(400);
    let bad_id = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"bob","amount":1}"#,
        &["x-correlation-id: seven"],
    )
    .await;
    bad_id.problem(400);
    let big = format!(r#"{{"account":"{}","amount":1}}"#, "x".repeat(5000));
    post_json(addr, "/commands/Deposit", &big, &[])
        .await
        .problem(413);
    let bad_key = post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"bob","amount":1}"#,
        &[&format!("idempotency-key: {}", "k".repeat(300))],
    )
    .await;
    bad_key.problem(400);

    // Waiting for a position the read model never reaches: 504.
    let late = post_json(
        addr,
        "/queries/BalanceOf?after=999999",
        r#"{"account":"bob"}"#,
        &[],
    )
    .await;
    assert_eq!(late.problem(504)["title"], "read model not caught up");
    post_json(
        addr,
        "/queries/BalanceOf?after=soon",
        r#"{"account":"bob"}"#,
        &[],
    )
    .await
    .problem(400);
    curl(addr, "GET", "/events?after=minus", &[])
        .await
        .problem(400);
}

/// Another process writes to the stream between this one's read and its
/// append, and the engine may not retry: 409, and the client's retry works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_kept_changing_is_a_conflict() {
    let store: std::sync::Arc<dyn cqrs_core::store::Store> =
        std::sync::Arc::new(MemoryStore::new());
    let served = Engine::builder()
        .shared_store(store.clone())
        .services(BankServices::default())
        .max_retries(0)
        .build()
        .await
        .unwrap();
    let elsewhere = Engine::builder()
        .shared_store(store)
        .services(BankServices::default())
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(served.clone(), HttpOptions::new());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let open = r#"{"account":"carl","owner":"Carl"}"#;
    post_json(addr, "/commands/OpenAccount", open, &[]).await;
    // The served engine keeps Carl's account at version 1; the other one
    // moves it to 2.
    elsewhere
        .execute(cqrs_examples::bank::Deposit {
            account: "carl".into(),
            amount: 1_00,
        })
        .await
        .unwrap();
    let deposit = r#"{"account":"carl","amount":200}"#;
    let conflict = post_json(addr, "/commands/Deposit", deposit, &[]).await;
    let problem = conflict.problem(409);
    assert_eq!(problem["title"], "conflict");
    let again = post_json(addr, "/commands/Deposit", deposit, &[]).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.json()["version"], 3);
    served.shutdown();
    elsewhere.shutdown();
}

/// A domain whose handler panics.
mod fuse {
    use cqrs_core::prelude::*;

    #[derive(Event, Serialize, Deserialize, Clone, Debug, PartialEq)]
    #[event(name = "fuse.blown")]
    pub(super) struct Blown;

    #[derive(Command, Deserialize, Debug)]
    #[command(aggregate = Fuse)]
    pub(super) struct Blow {
        #[id]
        pub(super) fuse: String,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("never")]
    pub(super) struct Never;

    #[derive(Aggregate, Default, Debug)]
    #[aggregate(name = "fuse", events(Blown), commands(Blow), error = Never)]
    pub(super) struct Fuse;

    impl Apply<Blown> for Fuse {
        fn apply(&mut self, _: &Blown) {}
    }

    impl Handle<Blow> for Fuse {
        fn handle(&self, _: &Blow) -> Result<Events<Self>, Never> {
            panic!("the vault code is 1234")
        }
    }
}

/// A panic in the domain's code is a 500 saying where, without the
/// panic's message; the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_without_its_message() {
    let (addr, _engine) = serve().await;
    let blown = post_json(addr, "/commands/Blow", r#"{"fuse":"f1"}"#, &[]).await;
    let problem = blown.problem(500);
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("`Blow`") && detail.contains("fuse/f1") && detail.contains("handler"),
        "{detail}"
    );
    assert!(!blown.body.contains("1234"), "{}", blown.body);
    let opened = post_json(
        addr,
        "/commands/OpenAccount",
        r#"{"account":"after","owner":"A"}"#,
        &[],
    )
    .await;
    assert_eq!(opened.status, 200, "{opened:?}");
}

async fn unknown_query(addr: SocketAddr) {
    let unknown = post_json(addr, "/queries/BalanceOff", "{}", &[]).await;
    unknown.problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_layer_sets_the_actor_and_the_hook_authorizes() {
    let (addr, engine) = serve().await;
    let open = r#"{"account":"cy","owner":"Cy"}"#;
    post_json(addr, "/secure/commands/OpenAccount", open, &[])
        .await
        .problem(401);
    let opened = post_json(
        addr,
        "/secure/commands/OpenAccount",
        open,
        &["authorization: Bearer teller-9"],
    )
    .await;
    assert_eq!(opened.status, 200, "{opened:?}");
    let events = engine
        .store()
        .read_stream(&StreamId::new("account", "cy"), 1)
        .await
        .unwrap();
    assert_eq!(events[0].metadata.actor.as_deref(), Some("teller-9"));
    // The layer's actor wins over a header.
    let close = r#"{"account":"cy"}"#;
    let forbidden = post_json(
        addr,
        "/secure/commands/CloseAccount",
        close,
        &["authorization: Bearer teller-9", "x-actor: manager"],
    )
    .await;
    assert_eq!(
        forbidden.problem(403)["detail"],
        "only a manager closes accounts"
    );
    let closed = post_json(
        addr,
        "/secure/commands/CloseAccount",
        close,
        &["authorization: Bearer manager"],
    )
    .await;
    assert_eq!(closed.status, 200, "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_routes_answer_json() {
    let (addr, _engine) = serve().await;
    let projections = curl(addr, "GET", "/projections", &[]).await;
    assert_eq!(projections.status, 200);
    assert_eq!(projections.json()[0]["name"], "balances");
    let processes = curl(addr, "GET", "/processes", &[]).await.json();
    assert_eq!(processes[0]["name"], "transfer");
    let catalog = curl(addr, "GET", "/catalog", &[]).await.json();
    let text = catalog.to_string();
    assert!(
        text.contains("\"Deposit\"") && text.contains("\"transfer\""),
        "{text}"
    );
}

/// SSE events in `text`: (id, event name, data).
fn sse(text: &str) -> Vec<(u64, String, serde_json::Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id:") {
                id = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if let Some(id) = id {
            out.push((id, name, serde_json::from_str(&data).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_feed_follows_live_filters_and_resumes() {
    let (addr, _engine) = serve().await;
    for id in ["d1", "d2"] {
        post_json(
            addr,
            "/commands/OpenAccount",
            &format!(r#"{{"account":"{id}","owner":"D"}}"#),
            &[],
        )
        .await;
        post_json(
            addr,
            "/commands/Deposit",
            &format!(r#"{{"account":"{id}","amount":7}}"#),
            &[],
        )
        .await;
    }
    post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"d1","amount":9}"#,
        &[],
    )
    .await;
    let heard = run_sse(addr, "/events?event=account.deposited", &[]).await;
    let events = sse(&heard);
    let ids: Vec<u64> = events.iter().map(|e| e.0).collect();
    assert_eq!(ids, [2, 4, 5], "{heard}");
    assert!(events.iter().all(|e| e.1 == "account.deposited"));
    assert_eq!(events[2].2["payload"]["amount"], 9);
    assert_eq!(events[2].2["stream"]["id"], "d1");

    // Resumed after id 2, as a reconnecting EventSource asks.
    let resumed = sse(&run_sse(
        addr,
        "/events?aggregate=account",
        &["-H", "last-event-id: 2"],
    )
    .await);
    let ids: Vec<u64> = resumed.iter().map(|e| e.0).collect();
    assert_eq!(ids, [3, 4, 5]);

    // Live: a listener sees a command sent after it connected.
    let live = tokio::spawn(run_sse(addr, "/events?after=5", &[]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    post_json(
        addr,
        "/commands/Deposit",
        r#"{"account":"d2","amount":11}"#,
        &[],
    )
    .await;
    let live = sse(&live.await.unwrap());
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(
        (live[0].0, live[0].2["payload"]["amount"].clone()),
        (6, serde_json::json!(11))
    );
}

/// The feed at `path` as `curl -N` printed it in one second.
async fn run_sse(addr: SocketAddr, path: &str, args: &[&str]) -> String {
    let url = format!("http://{addr}{path}");
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-N", "--max-time", "1"])
        .args(args)
        .arg(url);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("curl runs");
    // 28: the time ran out, as it does for a stream that never ends.
    assert_eq!(output.status.code(), Some(28), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_each_get_their_receipt() {
    let (addr, _engine) = serve().await;
    post_json(
        addr,
        "/commands/OpenAccount",
        r#"{"account":"c","owner":"C"}"#,
        &[],
    )
    .await;
    let clients: Vec<_> = (0..16)
        .map(|n| {
            tokio::spawn(async move {
                post_json(
                    addr,
                    "/commands/Deposit",
                    &format!(r#"{{"account":"c","amount":{}}}"#, n + 1),
                    &[],
                )
                .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    let mut last = 0;
    for client in clients {
        let answer = client.await.unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        let receipt = answer.json();
        versions.push(receipt["version"].as_u64().unwrap());
        last = last.max(receipt["position"].as_u64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=17).collect::<Vec<_>>());
    let balance = post_json(
        addr,
        &format!("/queries/BalanceOf?after={last}"),
        r#"{"account":"c"}"#,
        &[],
    )
    .await;
    assert_eq!(balance.json(), serde_json::json!((1..=16).sum::<u64>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_command_and_query() {
    let (addr, _engine) = serve().await;
    let doc = curl(addr, "GET", "/openapi.json", &[]).await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let deposit = &doc["paths"]["/commands/Deposit"]["post"];
    let body = &deposit["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(body["properties"]["account"]["type"], "string");
    assert_eq!(body["properties"]["amount"]["type"], "integer");
    assert_eq!(body["required"], serde_json::json!(["account", "amount"]));
    assert_eq!(body["additionalProperties"], false);
    assert!(deposit["responses"]["422"].is_object());
    let balance = &doc["paths"]["/queries/BalanceOf"]["post"];
    let answer = &balance["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(
        answer["anyOf"],
        serde_json::json!([{ "type": "integer", "minimum": 0 }, { "type": "null" }])
    );
    let all = &doc["paths"]["/queries/AllAccounts"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"];
    assert_eq!(all["type"], "null");
    assert!(doc["paths"]["/events"]["get"].is_object());
}
