//! API misuse: malformed JSON, an unknown context, a missing token, an oversized body and a
//! client over its rate limit each get a clear JSON error with a stable code, and the node stays
//! healthy and keeps serving.

use rhizome_integration::{string_field, NodeProcess, Scratch};
use serde_json::{json, Value};
use std::time::Duration;

fn error_code(response: &mut ureq::http::Response<ureq::Body>) -> String {
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    // REST errors carry `error.code`; JSON-RPC errors a numeric code and `error.data.code`.
    value
        .pointer("/error/data/code")
        .or_else(|| value.pointer("/error/code"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("<no code in {text}>"))
}

#[test]
fn misuse_gets_clear_errors_and_the_node_stays_healthy() -> anyhow::Result<()> {
    let scratch = Scratch::new("api-misuse")?;
    let env = [
        ("RHIZOME_API__RATE_LIMIT__INTERNAL_PER_S", "2"),
        ("RHIZOME_API__RATE_LIMIT__INTERNAL_BURST", "30"),
        ("RHIZOME_API__MAX_JSON_BODY_BYTES", "4096"),
    ];
    let node = NodeProcess::start(&scratch.path().join("node"), &[], &env)?;
    let token = std::fs::read_to_string(node.data_dir.join("api-token"))?.trim().to_owned();
    let base = node.info.api.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let auth = format!("Bearer {token}");

    let mut response = agent
        .post(format!("{base}/admin/contexts"))
        .header("Authorization", &auth)
        .header("Content-Type", "application/json")
        .send("{not json")?;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(error_code(&mut response), "bad_json");

    let unknown = "ab".repeat(32);
    let mut response = agent.get(format!("{base}/admin/contexts/{unknown}")).header("Authorization", &auth).call()?;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(error_code(&mut response), "unknown_context");
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": {"context": unknown, "method": "set", "args": ["k", "v"]}});
    let mut response = agent.post(format!("{base}/jsonrpc")).header("Authorization", &auth).send_json(&call)?;
    assert_eq!(error_code(&mut response), "unknown_context");

    let mut response = agent.get(format!("{base}/admin/status")).call()?;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(error_code(&mut response), "unauthorized");
    let mut response = agent.get(format!("{base}/admin/status")).header("Authorization", "Bearer wrong").call()?;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(error_code(&mut response), "unauthorized");

    let oversized = json!({"app": "00".repeat(4096)});
    let mut response =
        agent.post(format!("{base}/admin/contexts")).header("Authorization", &auth).send_json(&oversized)?;
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(error_code(&mut response), "body_too_large");

    // Over the limit: the burst runs out, then 429 with Retry-After.
    let mut limited = None;
    for _ in 0..200 {
        let response = agent.get(format!("{base}/admin/status")).header("Authorization", &auth).call()?;
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }
    let mut limited = limited.expect("the rate limit was reached within 200 requests");
    let retry_after: u64 = limited
        .headers()
        .get("Retry-After")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse().ok())
        .expect("Retry-After header");
    assert!(retry_after >= 1);
    assert_eq!(error_code(&mut limited), "rate_limited");

    // Still healthy, and serving again once the bucket refills.
    let response = agent.get(format!("{base}/health")).call()?;
    assert_eq!(response.status().as_u16(), 200);
    std::thread::sleep(Duration::from_secs(retry_after + 2));
    let app = node.install_kv_store()?;
    let created = node.api.post_json("/admin/contexts", &json!({"app": app}))?;
    let context = string_field(&created, "context")?;
    node.set(&context, "after", "misuse")?;
    assert_eq!(node.get(&context, "after")?.as_deref(), Some("misuse"));
    Ok(())
}
