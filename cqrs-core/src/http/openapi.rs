//! `GET /openapi.json`: an OpenAPI 3.1 document of the routes, with each
//! command's and query's body (and each query's answer) as JSON Schema.

use serde_json::{Value, json};

use crate::engine::Engine;

/// The document for `engine`'s registry.
pub(super) fn document(engine: &Engine, title: &str) -> Value {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
        })
    };
    let schema = |text: &str| serde_json::from_str::<Value>(text).unwrap_or_else(|_| json!({}));
    let mut paths = serde_json::Map::new();
    for command in engine.registry().commands() {
        paths.insert(
            format!("/commands/{}", command.name),
            json!({ "post": {
                "operationId": format!("command_{}", command.name),
                "summary": format!("Runs command `{}` on an aggregate `{}`", command.name, command.aggregate),
                "tags": ["commands"],
                "parameters": [
                    { "name": "Idempotency-Key", "in": "header", "required": false,
                      "description": "A retry with the same key gets the first receipt instead of running again",
                      "schema": { "type": "string", "minLength": 1, "maxLength": crate::store::MAX_IDEMPOTENCY_KEY } },
                    { "name": "X-Correlation-Id", "in": "header", "required": false,
                      "schema": { "type": "string", "format": "uuid" } },
                    { "name": "X-Actor", "in": "header", "required": false,
                      "description": "Who sends it, unless the application's authentication sets it",
                      "schema": { "type": "string" } }
                ],
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema(command.body_schema) } } },
                "responses": {
                    "200": { "description": "Done: where its events went",
                             "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Receipt" } } } },
                    "400": problem("The body does not decode (the detail names the field)"),
                    "404": problem("No command of this name"),
                    "409": problem("The stream kept changing through every retry"),
                    "413": problem("The body is too large"),
                    "422": problem("The aggregate refused the command"),
                    "503": problem("The store cannot be reached")
                }
            }}),
        );
    }
    for query in engine.registry().queries() {
        paths.insert(
            format!("/queries/{}", query.name),
            json!({ "post": {
                "operationId": format!("query_{}", query.name),
                "summary": format!("Answers query `{}` from projection `{}`", query.name, query.projection),
                "tags": ["queries"],
                "parameters": [
                    { "name": "after", "in": "query", "required": false,
                      "description": "Answer once the projection includes this global position (a receipt's `position`)",
                      "schema": { "type": "integer", "minimum": 0 } }
                ],
                "requestBody": { "required": false, "content": { "application/json": { "schema": schema(query.body_schema) } } },
                "responses": {
                    "200": { "description": "The answer",
                             "content": { "application/json": { "schema": schema(query.output_schema) } } },
                    "400": problem("The body does not decode"),
                    "404": problem("No query of this name"),
                    "504": problem("The projection did not reach `after` in time")
                }
            }}),
        );
    }
    let listing = |summary: &str| {
        json!({ "get": { "summary": summary, "tags": ["status"],
        "responses": { "200": { "description": summary, "content": { "application/json": { "schema": {} } } } } } })
    };
    paths.insert(
        String::from("/projections"),
        listing("Every projection's status"),
    );
    paths.insert(
        String::from("/processes"),
        listing("Every process manager's status"),
    );
    paths.insert(String::from("/catalog"), listing("Everything registered"));
    paths.insert(
        String::from("/events"),
        json!({ "get": {
            "summary": "The global log as Server-Sent Events (`id` = global position)",
            "tags": ["events"],
            "parameters": [
                { "name": "aggregate", "in": "query", "required": false, "description": "Comma-separated stream types", "schema": { "type": "string" } },
                { "name": "event", "in": "query", "required": false, "description": "Comma-separated event names", "schema": { "type": "string" } },
                { "name": "after", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 } },
                { "name": "Last-Event-ID", "in": "header", "required": false, "schema": { "type": "integer", "minimum": 0 } }
            ],
            "responses": { "200": { "description": "The feed", "content": { "text/event-stream": { "schema": { "type": "string" } } } },
                           "400": problem("`after` or `Last-Event-ID` is not a position") }
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": { "title": title, "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": { "schemas": {
            "Receipt": {
                "type": "object",
                "properties": {
                    "aggregate": { "type": "string" },
                    "id": { "type": "string" },
                    "version": { "type": "integer", "minimum": 0 },
                    "position": { "anyOf": [{ "type": "integer", "minimum": 1 }, { "type": "null" }] },
                    "events": { "type": "integer", "minimum": 0 },
                    "retries": { "type": "integer", "minimum": 0 }
                },
                "required": ["aggregate", "id", "version", "position", "events", "retries"]
            },
            "Problem": {
                "type": "object",
                "properties": {
                    "type": { "type": "string" },
                    "status": { "type": "integer" },
                    "title": { "type": "string" },
                    "detail": { "type": "string" }
                },
                "required": ["type", "status", "title", "detail"]
            }
        }}
    })
}
