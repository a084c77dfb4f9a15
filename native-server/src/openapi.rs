//! `GET /openapi.json`: the HTTP surface as an OpenAPI 3.0 document, its schemas generated from
//! realm-protocol's types (schemars), so it cannot drift from what the server parses and sends.

use realm_protocol::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Completion, CompletionRequest,
    DetokenizeRequest, DetokenizeResponse, ErrorBody, Health, ModelList, ResponseObject,
    ResponseRequest, TokenizeRequest, TokenizeResponse,
};
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// The document (built once per request; it is small).
pub fn document() -> Value {
    let mut g = SchemaSettings::openapi3().into_generator();
    let r = |s: schemars::Schema| s.to_value();
    let chat_req = r(g.subschema_for::<ChatCompletionRequest>());
    let chat = r(g.subschema_for::<ChatCompletion>());
    let chat_chunk = r(g.subschema_for::<ChatCompletionChunk>());
    let cmpl_req = r(g.subschema_for::<CompletionRequest>());
    let cmpl = r(g.subschema_for::<Completion>());
    let resp_req = r(g.subschema_for::<ResponseRequest>());
    let resp = r(g.subschema_for::<ResponseObject>());
    let models = r(g.subschema_for::<ModelList>());
    let tok_req = r(g.subschema_for::<TokenizeRequest>());
    let tok = r(g.subschema_for::<TokenizeResponse>());
    let detok_req = r(g.subschema_for::<DetokenizeRequest>());
    let detok = r(g.subschema_for::<DetokenizeResponse>());
    let health = r(g.subschema_for::<Health>());
    let error = r(g.subschema_for::<ErrorBody>());
    let schemas = g.take_definitions(true);

    let err = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": error}}});
    let errors = json!({
        "400": err("A malformed body, a field of the wrong type or out of range (`param` names it), or a prompt beyond the context."),
        "401": err("A missing or wrong API key."),
        "403": err("The tenant may not use this model."),
        "404": err("No such model."),
        "413": err("The body is over the size limit."),
        "429": err("Over a tenant limit (Retry-After)."),
        "500": err("A fault in the request's generation."),
        "503": err("Loading, draining for shutdown, or the queue is full (Retry-After)."),
    });
    let with_errors = |ok: Value| {
        let mut m = errors.as_object().cloned().unwrap_or_default();
        m.insert("200".into(), ok);
        Value::Object(m)
    };
    let sse = |desc: &str, chunk: &Value| {
        json!({"description": desc, "content": {
            "application/json": {"schema": chunk},
        }})
    };
    let generate = |summary: &str, req: &Value, whole: &Value, chunk: &Value| {
        let mut ok = sse(
            "The answer, whole (`stream` false) or as server-sent events of chunks ending with `data: [DONE]` (`stream` true).",
            whole,
        );
        ok["content"]["text/event-stream"] = json!({"schema": {"type": "string", "description": format!("`data: <chunk>` lines; each chunk: {}", chunk["$ref"].as_str().unwrap_or(""))}});
        json!({"post": {
            "summary": summary,
            "requestBody": {"required": true, "content": {"application/json": {"schema": req}}},
            "responses": with_errors(ok),
        }})
    };
    let json_ok = |desc: &str, s: &Value| json!({"description": desc, "content": {"application/json": {"schema": s}}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "realm-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OpenAI-compatible HTTP API of Realm's server. The WebSocket protocol (GET /v1/ws, subprotocol realm.v1) is described in native-server/PROTOCOL.md."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v1/chat/completions": generate("Chat completion", &chat_req, &chat, &chat_chunk),
            "/v1/completions": generate("Completion", &cmpl_req, &cmpl, &cmpl),
            "/v1/responses": {
                "post": {
                    "summary": "Response (OpenAI's Responses API, text only: free, or JSON under `text.format`). The same path takes a WebSocket upgrade (GET): response.create messages in, the streamed events out.",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": resp_req}}},
                    "responses": with_errors(json!({"description": "The response, whole (`stream` false) or as typed server-sent events (`event: response.output_text.delta` …) ending with response.completed or response.incomplete (`stream` true).", "content": {
                        "application/json": {"schema": resp},
                        "text/event-stream": {"schema": {"type": "string"}},
                    }})),
                },
            },
            "/v1/models": {"get": {"summary": "The served model", "responses": with_errors(json_ok("The model list.", &models))}},
            "/tokenize": {"post": {
                "summary": "Text to token ids",
                "requestBody": {"required": true, "content": {"application/json": {"schema": tok_req}}},
                "responses": with_errors(json_ok("The ids.", &tok)),
            }},
            "/detokenize": {"post": {
                "summary": "Token ids to text",
                "requestBody": {"required": true, "content": {"application/json": {"schema": detok_req}}},
                "responses": with_errors(json_ok("The text.", &detok)),
            }},
            "/health": {"get": {
                "summary": "Liveness and readiness",
                "security": [],
                "responses": {
                    "200": json_ok("Ready (`ok`).", &health),
                    "503": json_ok("`loading` or `draining`.", &health),
                },
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (text format); needs the metrics key when one is set",
                "security": [],
                "responses": {
                    "200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    "401": err("The metrics key is missing or wrong."),
                },
            }},
            "/openapi.json": {"get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.0.", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
    })
}
