//! The API end to end over in-process nodes: requests go through the whole router (auth, rate
//! limit, body limits, handlers) with `oneshot`; the WebSocket tests use a real listener.

use super::test_support::*;
use super::{router, serve, HttpConfig, PeerView};
use axum::http::{Method, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Installs kv-store and creates a context on the API's node: (app, context), hex.
async fn kv_context(api: &Router) -> (String, String) {
    app_context(api, kv_store()).await
}

/// Installs `module` and creates a context on the API's node: (app, context), hex.
async fn app_context(api: &Router, module: Vec<u8>) -> (String, String) {
    let (status, _, body) = send(api, request(Method::POST, "/admin/apps", module)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let app = body["app"].as_str().expect("app id").to_owned();
    let (status, _, body) = send(api, json_request(Method::POST, "/admin/contexts", &json!({"app": app}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, body["context"].as_str().expect("context id").to_owned())
}

async fn rpc_call(api: &Router, method: &str, params: Value) -> Value {
    let (status, _, body) = send(api, json_request(Method::POST, "/jsonrpc", &rpc(method, params))).await;
    assert_eq!(status, StatusCode::OK, "JSON-RPC answers 200: {body}");
    body
}

#[tokio::test]
async fn health_is_open_and_reports_a_stopped_node() {
    let node = start_node(1);
    let api = router(state(node.clone(), config()));
    let no_token = request_from(SocketAddr::from(([203, 0, 113, 1], 1)), Method::GET, "/health", None, "");
    let (status, _, body) = send(&api, no_token).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    node.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !node.is_stopped() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the node loop ends");
    let (status, _, body) = send(&api, request(Method::GET, "/health", "")).await;
    assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, json!({"status": "stopping"})));
}

#[tokio::test]
async fn guarded_routes_need_the_bearer_token() {
    let api = router(state(start_node(2), config()));
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    for token in [None, Some("wrong"), Some("")] {
        let (status, headers, body) = send(&api, request_from(peer, Method::GET, "/admin/status", token, "")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "token {token:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(headers["www-authenticate"], "Bearer");
    }
    let mut lowercase = request_from(peer, Method::GET, "/admin/status", None, "");
    lowercase.headers_mut().insert("authorization", format!("bearer {TOKEN}").parse().unwrap());
    let (status, _, body) = send(&api, lowercase).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["author_key"].as_str().unwrap().len(), 64);

    // An empty configured token opens nothing.
    let mut closed = state(start_node(3), config());
    closed.admin_token = String::new();
    let (status, _, _) = send(&router(closed), request_from(peer, Method::GET, "/admin/status", Some(""), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn install_create_call_and_query_through_jsonrpc() {
    let node = start_node(4);
    let api = router(state(node.clone(), config()));
    let (app, context) = kv_context(&api).await;

    let set =
        rpc_call(&api, "call", json!({"context": context, "method": "set", "args": ["k", "v"], "returns": "unit"}))
            .await;
    let result = &set["result"];
    assert_eq!(result["output"], Value::Null, "{set}");
    assert_eq!(result["output_hex"], "");
    assert_eq!(result["delta"].as_str().expect("a write has a delta").len(), 64);

    let get = rpc_call(
        &api,
        "query",
        json!({"context": context, "method": "get", "args": ["k"], "returns": "option_string"}),
    )
    .await;
    assert_eq!(get["result"]["output"], "v", "{get}");
    assert!(get["result"].get("delta").is_none(), "a query has no delta");
    let missing = rpc_call(
        &api,
        "query",
        json!({"context": context, "method": "get", "args": ["nope"], "returns": "option_string"}),
    )
    .await;
    assert_eq!(missing["result"]["output"], Value::Null);
    let list = rpc_call(&api, "query", json!({"context": context, "method": "list", "returns": "string_pairs"})).await;
    assert_eq!(list["result"]["output"], json!([["k", "v"]]));
    // Raw input and the default (bytes) output.
    let input_hex = hex::encode(borsh::to_vec(&"k".to_owned()).unwrap());
    let raw = rpc_call(&api, "query", json!({"context": context, "method": "get", "input_hex": input_hex})).await;
    assert_eq!(raw["result"]["output"], hex::encode(borsh::to_vec(&Some("v".to_owned())).unwrap()));
    // A shape that does not fit still reports the call, with the reason.
    let wrong =
        rpc_call(&api, "query", json!({"context": context, "method": "get", "args": ["k"], "returns": "u64"})).await;
    assert_eq!(wrong["result"]["output"], Value::Null);
    assert!(wrong["result"]["output_error"].as_str().unwrap().contains("u64"));

    let (status, _, apps) = send(&api, request(Method::GET, "/admin/apps", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(apps, json!({"apps": [{"app": app, "contexts": 1}]}));
    let (_, _, listed) = send(&api, request(Method::GET, "/admin/contexts", "")).await;
    let entry = &listed["contexts"][0];
    assert_eq!(
        (entry["context"].as_str(), entry["applied"].as_u64()),
        (Some(context.as_str()), Some(2)),
        "the genesis and the set"
    );
    assert_eq!(entry["heads"][0], set["result"]["delta"]);
    assert_eq!(entry["member_count"], 1);
    let (status, _, one) = send(&api, request(Method::GET, &format!("/admin/contexts/{context}"), "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["members"], json!([node.author_key().to_string()]));
    let (_, _, status_body) = send(&api, request(Method::GET, "/admin/status", "")).await;
    assert_eq!(status_body["peer_id"], node.peer_id().to_string());
    assert_eq!(status_body["counters"]["calls_committed"], 1);
    assert_eq!(status_body["contexts"][0]["pending"], 0);
}

#[tokio::test]
async fn jsonrpc_errors_carry_stable_codes() {
    let api = router(state(start_node(5), config()));
    let (_, context) = kv_context(&api).await;
    let unknown = "ab".repeat(32);

    let cases = [
        (rpc("call", json!({"context": unknown, "method": "set", "args": ["k", "v"]})), -32001, "unknown_context"),
        (rpc("query", json!({"context": context, "method": "set", "args": ["k", "v"]})), -32005, "query_wrote"),
        (rpc("call", json!({"context": context, "method": "no_such_method"})), -32012, "no_such_method"),
        (rpc("query", json!({"context": context, "method": "nope", "args": ["k"]})), -32012, "no_such_method"),
        (rpc("call", json!({"context": context, "method": "set", "args": [1.5]})), -32013, "bad_args"),
        (rpc("call", json!({"context": context, "method": "set", "args": [null]})), -32013, "bad_args"),
        // Arguments with a borsh form the app cannot decode as its own: the app says bad_args.
        (rpc("call", json!({"context": context, "method": "set", "args": ["only a key"]})), -32013, "bad_args"),
        (rpc("query", json!({"context": context, "method": "get", "input_hex": "ff"})), -32013, "bad_args"),
        (rpc("call", json!({"context": "xyz", "method": "set"})), -32602, "bad_request"),
        (rpc("call", json!({"context": context, "method": "set", "args": [], "input_hex": ""})), -32602, "bad_request"),
        (rpc("call", json!({"context": context, "method": "set", "surprise": 1})), -32602, "bad_request"),
        (rpc("delete", json!({})), -32601, "not_found"),
        (json!({"id": 1, "method": "call"}), -32600, "bad_request"),
        (json!([rpc("call", json!({}))]), -32600, "bad_request"),
    ];
    for (request_body, code, stable) in cases {
        let (status, _, answer) = send(&api, json_request(Method::POST, "/jsonrpc", &request_body)).await;
        assert_eq!(status, StatusCode::OK, "{request_body}");
        assert_eq!(answer["error"]["code"], code, "{request_body} → {answer}");
        assert_eq!(answer["error"]["data"]["code"], stable, "{request_body} → {answer}");
        assert_eq!(answer["jsonrpc"], "2.0");
    }

    let (status, _, answer) = send(&api, request(Method::POST, "/jsonrpc", "{not json")).await;
    assert_eq!(status, StatusCode::OK, "a parse error is a JSON-RPC answer");
    assert_eq!((answer["error"]["code"].as_i64(), answer["id"].clone()), (Some(-32700), Value::Null));
    assert_eq!(answer["error"]["data"]["code"], "bad_json");

    // A notification is carried out and not answered.
    let notification = json!({"jsonrpc": "2.0", "method": "call", "params": {"context": context, "method": "set", "args": ["n", "1"]}});
    let (status, _, _) = send(&api, json_request(Method::POST, "/jsonrpc", &notification)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let get = rpc_call(
        &api,
        "query",
        json!({"context": context, "method": "get", "args": ["n"], "returns": "option_string"}),
    )
    .await;
    assert_eq!(get["result"]["output"], "1");
}

#[tokio::test]
async fn well_formed_requests_answer_as_the_general_way_does() {
    let api = router(state(start_node(12), config()));
    let (_, context) = kv_context(&api).await;
    let set = rpc_call(&api, "call", json!({"context": context, "method": "set", "args": ["k", "v"]})).await;
    assert_eq!(set["result"]["delta"].as_str().map(str::len), Some(64), "{set}");

    // A duplicated member is valid JSON the typed reader refuses; the general way takes the
    // last value. Both must give the same answer to the same request.
    let params = format!(r#"{{"context":"{context}","method":"get","args":["k"],"returns":"option_string"}}"#);
    let typed = format!(r#"{{"jsonrpc":"2.0","id":"q","method":"query","params":{params}}}"#);
    let general = format!(r#"{{"jsonrpc":"2.0","jsonrpc":"2.0","id":"q","method":"query","params":{params}}}"#);
    let (_, _, typed) = send(&api, request(Method::POST, "/jsonrpc", typed)).await;
    let (_, _, general) = send(&api, request(Method::POST, "/jsonrpc", general)).await;
    assert_eq!(typed, json!({"jsonrpc": "2.0", "id": "q", "result": {"output": "v", "output_hex": "010100000076"}}));
    assert_eq!(typed, general);

    // Escaped strings are read too, and `"id": null` is answered (it is not a notification).
    let escaped = format!(
        r#"{{"jsonrpc":"2.0","id":null,"method":"call","params":{{"context":"{context}","method":"set","args":["k2","v2"]}}}}"#
    );
    let (status, _, answer) = send(&api, request(Method::POST, "/jsonrpc", escaped)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["id"], Value::Null);
    assert_eq!(answer["result"]["delta"].as_str().map(str::len), Some(64), "{answer}");

    // An array is a batch, refused, even one whose items line up with a request's members.
    let positional = format!(r#"["2.0","q","query",{params}]"#);
    let (_, _, answer) = send(&api, request(Method::POST, "/jsonrpc", positional)).await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");

    // A bad id is refused whichever way: the typed reader leaves it to the general one.
    let bad_id = format!(r#"{{"jsonrpc":"2.0","id":[1],"method":"query","params":{params}}}"#);
    let (_, _, answer) = send(&api, request(Method::POST, "/jsonrpc", bad_id)).await;
    assert_eq!((answer["error"]["code"].as_i64(), answer["id"].clone()), (Some(-32600), Value::Null), "{answer}");
}

#[tokio::test]
async fn a_failing_app_answers_with_the_class_of_its_failure() {
    let api = router(state(start_node(21), config()));
    let (_, context) = app_context(&api, hostile()).await;
    let cases = [
        ("spin", -32014, "out_of_fuel"),
        ("bomb", -32015, "out_of_memory"),
        ("spam", -32016, "limit_exceeded"),
        ("panics", -32017, "aborted"),
        ("no_such_export", -32012, "no_such_method"),
    ];
    for (method, code, stable) in cases {
        let answer = rpc_call(&api, "call", json!({"context": context, "method": method})).await;
        assert_eq!(answer["error"]["code"], code, "{method} → {answer}");
        assert_eq!(answer["error"]["data"]["code"], stable, "{method} → {answer}");
    }
    // The node survives all of them: a well-behaved call still writes.
    let behave = rpc_call(&api, "call", json!({"context": context, "method": "behave", "returns": "u64"})).await;
    assert_eq!(behave["result"]["output"], 1, "{behave}");
}

#[tokio::test]
async fn rest_errors_are_json_with_their_status() {
    let api = router(state(start_node(6), config()));
    let unknown = "cd".repeat(32);
    let cases = [
        (request(Method::GET, &format!("/admin/contexts/{unknown}"), ""), StatusCode::NOT_FOUND, "unknown_context"),
        (
            request(Method::GET, &format!("/admin/contexts/{unknown}/members"), ""),
            StatusCode::NOT_FOUND,
            "unknown_context",
        ),
        (request(Method::GET, "/admin/contexts/not-hex", ""), StatusCode::BAD_REQUEST, "bad_request"),
        (request(Method::POST, "/admin/contexts", "{\"app\": "), StatusCode::BAD_REQUEST, "bad_json"),
        (request(Method::POST, "/admin/contexts", "{\"application\": 1}"), StatusCode::BAD_REQUEST, "bad_request"),
        (json_request(Method::POST, "/admin/contexts", &json!({"app": unknown})), StatusCode::NOT_FOUND, "unknown_app"),
        (request(Method::POST, "/admin/apps", "not wasm"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_module"),
        (request(Method::GET, "/no/such/route", ""), StatusCode::NOT_FOUND, "not_found"),
        (request(Method::DELETE, "/admin/apps", ""), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (request(Method::GET, "/jsonrpc", ""), StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        (request(Method::GET, &format!("/ws/contexts/{unknown}/events"), ""), StatusCode::NOT_FOUND, "unknown_context"),
    ];
    for (request, expected_status, code) in cases {
        let what = format!("{} {}", request.method(), request.uri());
        let (status, headers, body) = send(&api, request).await;
        assert_eq!(status, expected_status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|message| !message.is_empty()));
        assert_eq!(headers["content-type"], "application/json", "{what}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            // A 405 names the methods the route takes (RFC 9110, 15.5.6).
            let allow = headers.get("allow").and_then(|value| value.to_str().ok());
            let expected = if what.ends_with("/jsonrpc") { "POST" } else { "GET,HEAD,POST" };
            assert_eq!(allow, Some(expected), "{what}");
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_413() {
    let config = HttpConfig { max_json_body_bytes: 1_024, ..config() };
    let api = router(state(start_node(7), config));
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {"pad": "x".repeat(2_000)}});
    for uri in ["/jsonrpc", "/admin/contexts"] {
        let (status, _, body) = send(&api, json_request(Method::POST, uri, &big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(body["error"]["code"], "body_too_large");
    }
    // The module upload has its own, larger limit.
    let (status, _, body) = send(&api, request(Method::POST, "/admin/apps", kv_store())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let config = HttpConfig { max_wasm_body_bytes: 1_024, ..super::test_support::config() };
    let api = router(state(start_node(8), config));
    let (status, _, body) = send(&api, request(Method::POST, "/admin/apps", kv_store())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));
}

fn limited_config(burst: f64, per_s: f64) -> HttpConfig {
    let mut config = config();
    config.rate_limit.enabled = true;
    config.rate_limit.external_burst = burst;
    config.rate_limit.external_per_s = per_s;
    config
}

#[tokio::test]
async fn an_empty_bucket_gets_429_with_retry_after_and_health_is_never_limited() {
    let api_state = state(start_node(9), limited_config(2.0, 0.5));
    let metrics = api_state.metrics.clone();
    let api = router(api_state);
    let client = SocketAddr::from(([203, 0, 113, 5], 5555));
    for _ in 0..2 {
        let (status, _, _) = send(&api, request_from(client, Method::GET, "/admin/status", Some(TOKEN), "")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = send(&api, request_from(client, Method::GET, "/admin/status", Some(TOKEN), "")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(headers["retry-after"], "2", "one token at 0.5/s is two seconds away");
    // Without a token it is still limited: guesses spend the same bucket.
    let (status, _, _) = send(&api, request_from(client, Method::GET, "/admin/status", None, "")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    for _ in 0..100 {
        let (status, _, _) = send(&api, request_from(client, Method::GET, "/health", None, "")).await;
        assert_eq!(status, StatusCode::OK);
    }
    // Another client, and the loopback (internal) class, are unaffected.
    let other = SocketAddr::from(([203, 0, 113, 6], 5555));
    assert_eq!(send(&api, request_from(other, Method::GET, "/admin/status", Some(TOKEN), "")).await.0, StatusCode::OK);
    assert_eq!(send(&api, request(Method::GET, "/admin/status", "")).await.0, StatusCode::OK);
    assert_eq!(metrics.rate_limited(), 2);
}

#[tokio::test]
async fn forwarded_for_is_honoured_only_from_a_trusted_proxy() {
    let proxy = SocketAddr::from(([10, 0, 0, 9], 443));
    let mut config = limited_config(1.0, 0.01);
    config.rate_limit.trusted_proxies = vec![proxy.ip()];
    let api = router(state(start_node(10), config));
    let via = |from: SocketAddr, forwarded_for: &str| {
        let mut request = request_from(from, Method::GET, "/admin/status", Some(TOKEN), "");
        request.headers_mut().insert("x-forwarded-for", forwarded_for.parse().unwrap());
        request
    };
    // Through the proxy, each forwarded client has its own (external) bucket of one, even
    // though the proxy itself is on an internal network.
    assert_eq!(send(&api, via(proxy, "203.0.113.7")).await.0, StatusCode::OK);
    assert_eq!(send(&api, via(proxy, "203.0.113.7")).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(send(&api, via(proxy, "203.0.113.8")).await.0, StatusCode::OK);
    // From anyone else the header is ignored: the TCP peer is the client, so naming a fresh
    // address does not buy a fresh bucket.
    let direct = SocketAddr::from(([198, 51, 100, 20], 1));
    assert_eq!(send(&api, via(direct, "203.0.113.99")).await.0, StatusCode::OK);
    assert_eq!(send(&api, via(direct, "203.0.113.100")).await.0, StatusCode::TOO_MANY_REQUESTS);
}

/// `POST /admin/contexts/{id}/invite` for `key`: the answer's body.
async fn invite(api: &Router, context: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, body) =
        send(api, json_request(Method::POST, &format!("/admin/contexts/{context}/invite"), &body)).await;
    (status, body)
}

/// `POST /admin/contexts/join` with `token`: status and error code (if any).
async fn join(api: &Router, token: &str) -> (StatusCode, Option<String>, Value) {
    let request = json_request(Method::POST, "/admin/contexts/join", &json!({ "invitation": token }));
    let (status, _, body) = send(api, request).await;
    (status, body["error"]["code"].as_str().map(str::to_owned), body)
}

#[tokio::test]
async fn two_concurrent_invites_both_take_effect() {
    // Each invite used to read the members, then write them back with its key added: run
    // together, the second write dropped the first one's key.
    let a = start_node(17);
    let api = router(state(a.clone(), config()));
    let (_, context) = kv_context(&api).await;
    let keys: Vec<String> =
        (18..=21u8).map(|n| rhizome_core::Keypair::from_secret_bytes([n; 32]).author_key().to_string()).collect();
    let answers = futures::future::join_all(keys.iter().map(|key| invite(&api, &context, json!({"key": key})))).await;
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK), "{answers:?}");
    let (_, _, listed) = send(&api, request(Method::GET, &format!("/admin/contexts/{context}/members"), "")).await;
    let members: Vec<&str> = listed["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    for key in &keys {
        assert!(members.contains(&key.as_str()), "{key} was dropped: {listed}");
    }
    assert_eq!(members.len(), keys.len() + 1, "the invited keys and this node");
}

#[tokio::test]
async fn invite_and_join_by_token_and_each_refusal_has_its_code_and_counter() {
    let (a, b) = (start_node(11), start_node(12));
    let state_b = state(b.clone(), config());
    let metrics_b = state_b.metrics.clone();
    let (api_a, api_b) = (router(state(a.clone(), config())), router(state_b));
    let (app, context) = kv_context(&api_a).await;
    let b_key = b.author_key().to_string();

    let (status, body) = invite(&api_a, &context, json!({"key": b_key, "expires_in_secs": 3600})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["invitation"].as_str().expect("a token").to_owned();
    assert!(token.starts_with(rhizome_core::seal::TEXT_PREFIX), "{token}");
    assert_eq!((body["invitee"].as_str(), body["role"].as_str()), (Some(b_key.as_str()), Some("member")));
    assert_eq!(body["expires_at_ms"], 1_000_000 + 3_600_000, "the node clock's wall time plus the ttl");
    let (_, _, listed) = send(&api_a, request(Method::GET, &format!("/admin/contexts/{context}/members"), "")).await;
    assert_eq!(listed["members"].as_array().unwrap().len(), 2, "a's own list now has b: {listed}");
    for bad in
        [json!({"key": b_key, "role": "owner"}), json!({"key": b_key, "expires_in_secs": 0}), json!({"keys": [b_key]})]
    {
        assert_eq!(invite(&api_a, &context, bad.clone()).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The token names the app; it must be installed here first.
    let (status, code, _) = join(&api_b, &token).await;
    assert_eq!((status, code.as_deref()), (StatusCode::NOT_FOUND, Some("unknown_app")));
    let (status, _, _) = send(&api_b, request(Method::POST, "/admin/apps", kv_store())).await;
    assert_eq!(status, StatusCode::CREATED);

    // Tampered: one hex digit of the expiry (fixed offset: version, context, app, inviter,
    // invitee, role, id), so the token still decodes but its signature no longer verifies.
    let at = rhizome_core::seal::TEXT_PREFIX.len() + 2 * (1 + 4 * 32 + 1 + 16);
    let mut tampered = token.clone().into_bytes();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (status, code, body) = join(&api_b, &tampered).await;
    assert_eq!((status, code.as_deref()), (StatusCode::FORBIDDEN, Some("invitation_forged")), "{body}");
    let (status, code, _) = join(&api_b, "rhz-invite-2:zz").await;
    assert_eq!((status, code.as_deref()), (StatusCode::BAD_REQUEST, Some("invitation_malformed")));

    // Expired: a token a signed with no time left at the node clock's instant.
    let a_keys = rhizome_core::Keypair::from_secret_bytes([11; 32]);
    let context_id = rhizome_core::ContextId::from_bytes(hex_id(&context));
    let accepted_by_b = rhizome_core::seal::SignedInvitation::from_text(&token).unwrap();
    let key = {
        let b_keys = rhizome_core::Keypair::from_secret_bytes([12; 32]);
        accepted_by_b.accept(&b_keys, None, 0, |_| false).unwrap().key
    };
    let terms = rhizome_core::seal::InvitationTerms {
        context: context_id,
        app: hex_id(&app),
        invitee: b.author_key(),
        role: rhizome_core::Role::Member,
        invitation_id: [7; 16],
        expires_at_ms: 1_000_000,
        bootstrap: Vec::new(),
    };
    let expired = rhizome_core::seal::Invitation::issue(&a_keys, terms, &key).unwrap().to_text();
    let (status, code, body) = join(&api_b, &expired).await;
    assert_eq!((status, code.as_deref()), (StatusCode::GONE, Some("invitation_expired")), "{body}");

    let (status, code, body) = join(&api_b, &token).await;
    assert_eq!((status, code), (StatusCode::CREATED, None), "{body}");
    assert_eq!((body["context"].as_str(), body["app"].as_str()), (Some(context.as_str()), Some(app.as_str())));
    assert_eq!(body["inviter"], a.author_key().to_string());
    let (status, code, body) = join(&api_b, &token).await;
    assert_eq!((status, code.as_deref()), (StatusCode::CONFLICT, Some("invitation_replayed")), "{body}");
    // These two nodes share no transport, so b has not synced: the real-process tests show
    // the data arriving (and the node crate's tests, over a loopback network).

    // A node the token is not addressed to cannot use it.
    let c = start_node(13);
    let api_c = router(state(c, config()));
    send(&api_c, request(Method::POST, "/admin/apps", kv_store())).await;
    let (status, code, body) = join(&api_c, &token).await;
    assert_eq!((status, code.as_deref()), (StatusCode::FORBIDDEN, Some("invitation_not_for_this_node")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("another node's key"), "{body}");

    for reason in ["forged", "malformed", "expired", "replayed"] {
        assert_eq!(metrics_b.invitations_refused(reason), 1, "{reason}");
    }
    let (_, _, text) = send(&api_b, request(Method::GET, "/metrics", "")).await;
    let text = text.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("rhizome_invitations_refused_total{reason=\"replayed\"} 1"), "{text}");
    assert!(text.contains("rhizome_invitations_accepted_total 1"), "{text}");
}

#[tokio::test]
async fn removing_a_member_takes_it_off_the_list() {
    let a = start_node(14);
    let api = router(state(a.clone(), config()));
    let (_, context) = kv_context(&api).await;
    let guest = rhizome_core::Keypair::from_secret_bytes([15; 32]).author_key().to_string();
    assert_eq!(invite(&api, &context, json!({"key": guest})).await.0, StatusCode::OK);
    let remove =
        |keys: Value| json_request(Method::POST, &format!("/admin/contexts/{context}/remove"), &json!({"keys": keys}));
    let (status, _, body) = send(&api, remove(json!([guest]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["members"], json!([a.author_key().to_string()]));
    assert_eq!(send(&api, remove(json!([]))).await.0, StatusCode::BAD_REQUEST);
}

fn hex_id(text: &str) -> [u8; 32] {
    hex::decode(text).unwrap().try_into().unwrap()
}

#[tokio::test]
async fn peers_come_from_the_directory() {
    let peer = |connected| PeerView {
        peer_id: "01".repeat(32),
        libp2p_id: "12D3KooW".into(),
        addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
        connected,
        healthy: connected,
        last_seen_ms_ago: connected.then_some(10),
        success_rate: 1.0,
    };
    let mut api_state = state(start_node(14), config());
    api_state.peers = Arc::new(StaticPeers(vec![peer(true), peer(false)]));
    let (status, _, body) = send(&router(api_state), request(Method::GET, "/admin/peers", "")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["connected"], 1);
    assert_eq!(body["peers"][0]["libp2p_id"], "12D3KooW");
    assert_eq!(body["peers"][1]["last_seen_ms_ago"], Value::Null);
}

#[tokio::test]
async fn metrics_expose_the_required_series_without_a_token() {
    let api = router(state(start_node(15), config()));
    let (_, context) = kv_context(&api).await;
    rpc_call(&api, "call", json!({"context": context, "method": "set", "args": ["k", "v"]})).await;
    let scrape = request_from(SocketAddr::from(([203, 0, 113, 1], 1)), Method::GET, "/metrics", None, "");
    let (status, headers, body) = send(&api, scrape).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = body.as_str().expect("text");
    for series in [
        "rhizome_delta_apply_seconds_bucket",
        "rhizome_pending_deltas 0",
        "rhizome_applied_deltas 2",
        "rhizome_peers 0",
        "rhizome_syncs_started_total",
        "rhizome_syncs_failed_total",
        "rhizome_gossip_received_total",
        "rhizome_gossip_sent_total",
        "rhizome_divergences_detected_total",
        "rhizome_wasm_fuel_used_total",
        "rhizome_deltas_applied_total 2",
        "rhizome_calls_total{outcome=\"committed\"} 1",
        "rhizome_http_rate_limited_total",
        "rhizome_ws_clients_dropped_slow_total",
        "rhizome_http_requests_total{class=\"2xx\"}",
        "rhizome_node_running 1",
    ] {
        assert!(text.contains(series), "missing {series} in\n{text}");
    }
    assert!(text.contains("# TYPE rhizome_syncs_started counter"), "node totals are counters");
    assert!(!text.contains(&context), "an unauthenticated scrape names no context:\n{text}");
    assert!(!text.contains("context="), "an unauthenticated scrape has no per-context series:\n{text}");
}

#[tokio::test]
async fn metrics_name_contexts_only_for_a_scrape_with_the_token() {
    let api = router(state(start_node(16), config()));
    let (_, context) = kv_context(&api).await;
    rpc_call(&api, "call", json!({"context": context, "method": "set", "args": ["k", "v"]})).await;
    let scrape = |token| request_from(SocketAddr::from(([203, 0, 113, 1], 1)), Method::GET, "/metrics", token, "");
    let (status, _, body) = send(&api, scrape(Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().expect("text");
    assert!(text.contains(&format!("rhizome_applied_deltas{{context=\"{context}\"}} 2")), "{text}");
    // A wrong token is refused, as on the guarded routes (and spends the rate limit), so the
    // open route is no oracle for guessing it.
    let (status, _, body) = send(&api, scrape(Some("not-the-token"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!body.to_string().contains(&context));
}

#[tokio::test]
async fn connections_past_the_bound_wait_until_one_closes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let node = start_node(18);
    let api_state = state(node, HttpConfig { max_connections: 2, ..config() });
    let metrics = api_state.metrics.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, api_state, async move {
        let _ = stopped.await;
    }));
    let health = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n";
    // Answered within `wait`: a generous wait where an answer is due, a short one where none is.
    async fn answered(stream: &mut tokio::net::TcpStream, wait: Duration) -> bool {
        let mut buffer = [0u8; 512];
        let read = tokio::time::timeout(wait, stream.read(&mut buffer)).await;
        matches!(read, Ok(Ok(n)) if buffer[..n].starts_with(b"HTTP/1.1 200"))
    }
    let (due, not_due) = (Duration::from_secs(10), Duration::from_millis(300));

    let mut first = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(address).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(health).await.unwrap();
        assert!(answered(stream, due).await, "within the bound, connections are served");
    }
    // The kernel completes the handshake, but the node does not take the connection.
    let mut third = tokio::net::TcpStream::connect(address).await.unwrap();
    third.write_all(health).await.unwrap();
    assert!(!answered(&mut third, not_due).await, "the third connection waits");
    assert_eq!(metrics.connection_limit_reached(), 1);
    drop(first);
    assert!(answered(&mut third, due).await, "served once a connection closed");
    second.write_all(health).await.unwrap();
    assert!(answered(&mut second, due).await, "the others are still served");

    stop.send(()).unwrap();
    drop((second, third));
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
}

#[tokio::test]
async fn a_connection_that_sends_no_complete_header_in_time_is_closed() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let node = start_node(19);
    let (_, context) = kv_context(&router(state(node.clone(), config()))).await;
    let api_state = state(node.clone(), HttpConfig { header_read_timeout_ms: 200, ..config() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, api_state, async move {
        let _ = stopped.await;
    }));
    // Everything the server sends until it closes the connection (or 10 s pass).
    async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut received = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
        assert!(read.is_ok(), "the server closes the connection");
        received
    }

    // Silent from the start.
    let mut silent = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = std::time::Instant::now();
    assert!(until_closed(&mut silent).await.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150), "not before the timeout");
    // Half a header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: te").await.unwrap();
    let answer = until_closed(&mut slow).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    // Served, then idle on keep-alive.
    let mut idle = tokio::net::TcpStream::connect(address).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut idle).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "answered, then closed: {}", String::from_utf8_lossy(&answer));
    // A WebSocket session, once upgraded, is not cut by it.
    {
        use futures::StreamExt as _;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = format!("ws://{address}/ws/contexts/{context}/events").into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let context_id = rhizome_core::ContextId::from_bytes(super::extract::parse_id("context", &context).unwrap());
        node.call(context_id, "set", borsh::to_vec(&("k".to_owned(), "v".to_owned())).unwrap()).await.unwrap();
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame").unwrap();
        assert!(frame.is_ok_and(|frame| frame.is_text()), "the session outlived the header timeout");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_loses_its_connection() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let node = start_node(20);
    let config = HttpConfig { max_connections: 1, write_stall_timeout_ms: 300, ..config() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state(node, config), async move {
        let _ = stopped.await;
    }));

    // Thousands of pipelined /metrics requests (open, not rate limited), and no reading: the
    // answers fill the socket buffers and the node's writes block.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut hog = socket.connect(address).await.unwrap();
    let pipelined = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n".repeat(4000);
    let writer = tokio::spawn(async move {
        let _ = hog.write_all(&pipelined).await;
        hog
    });
    // The only place is the hog's until the stalled write times out; then this one is served.
    let mut next = tokio::net::TcpStream::connect(address).await.unwrap();
    next.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut buffer = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(20), next.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(n)) if buffer[..n].starts_with(b"HTTP/1.1 200")), "served after the hog was cut");

    drop(writer.await.unwrap());
    drop(next);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
}

#[tokio::test]
async fn websocket_streams_applied_events_and_closes_on_shutdown() {
    use futures::StreamExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

    let node = start_node(16);
    let api = router(state(node.clone(), config()));
    let (_, context) = kv_context(&api).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state(node.clone(), config()), async move {
        let _ = stopped.await;
    }));

    let connect = |context: String, token: &str| {
        let mut request = format!("ws://{address}/ws/contexts/{context}/events").into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(request)
    };
    match connect("ef".repeat(32), TOKEN).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("an unknown context must be refused before the upgrade: {other:?}"),
    }
    match connect(context.clone(), "wrong").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a wrong token must be refused: {other:?}"),
    }
    let (mut socket, _) = connect(context.clone(), TOKEN).await.expect("upgrade");

    let context_id = rhizome_core::ContextId::from_bytes(super::extract::parse_id("context", &context).unwrap());
    let reply = node.call(context_id, "set", borsh::to_vec(&("k".to_owned(), "v".to_owned())).unwrap()).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame").unwrap().unwrap();
    let Message::Text(text) = frame else { panic!("expected a text frame, got {frame:?}") };
    let event: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(event["type"], "applied");
    assert_eq!(event["context"], context.as_str());
    assert_eq!(event["delta"], reply.delta.unwrap().to_string());
    assert_eq!(event["author"], node.author_key().to_string());
    assert_eq!(event["local"], true);
    assert_eq!(event["events"], json!([{"kind": "Inserted", "data_hex": hex::encode("k"), "data_utf8": "k"}]));

    stop.send(()).unwrap();
    let close =
        tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a close frame").unwrap().unwrap();
    let Message::Close(Some(close)) = close else { panic!("expected a close frame, got {close:?}") };
    assert_eq!((u16::from(close.code), close.reason.as_str()), (1001, "server shutting down"));
    drop(socket);
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
}

#[tokio::test]
async fn a_websocket_client_that_does_not_read_is_closed_as_slow() {
    use axum::extract::ws::Message;
    use futures::StreamExt as _;

    let node = start_node(17);
    let api = router(state(node.clone(), config()));
    let (_, context) = kv_context(&api).await;
    let context_id = rhizome_core::ContextId::from_bytes(super::extract::parse_id("context", &context).unwrap());
    let subscription = node.subscribe(context_id).await.unwrap();
    let metrics = Arc::new(crate::metrics::Metrics::new());
    // A socket whose peer reads nothing until we say: one frame fits in the channel's slot,
    // then every send waits.
    let (sink, mut client) = futures::channel::mpsc::channel::<Message>(0);
    let (_keep_open, shutdown) = tokio::sync::watch::channel(false);
    let session = tokio::spawn({
        let metrics = metrics.clone();
        async move {
            let incoming = futures::stream::pending::<Result<Message, std::convert::Infallible>>();
            super::ws::run_session(sink, incoming, subscription, 2, shutdown, &metrics).await
        }
    });
    for index in 0..8 {
        node.call(context_id, "set", borsh::to_vec(&(format!("k{index}"), "v".to_owned())).unwrap()).await.unwrap();
    }
    let mut frames = Vec::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), client.next()).await.expect("frames") {
        frames.push(frame);
    }
    let end = session.await.unwrap();
    assert!(matches!(&end, super::ws::SessionEnd::Slow(reason) if reason.starts_with("slow consumer:")), "{end:?}");
    let Some(Message::Close(Some(close))) = frames.last() else { panic!("the last frame must be a close: {frames:?}") };
    assert_eq!(close.code, super::ws::CLOSE_SLOW);
    assert!(close.reason.as_str().starts_with("slow consumer:"), "{}", close.reason.as_str());
    assert!(frames.len() < 8, "the slow client did not get every event: {}", frames.len());
    assert_eq!(metrics.ws_dropped_slow(), 1);
    assert!(metrics.render(None, crate::metrics::Detail::PerContext).contains("rhizome_ws_clients 0"));
}
