//! OTLP trace export against a fake collector on 127.0.0.1:0 that decodes
//! what it receives with the OTLP protobuf definitions
//! (`ExportTraceServiceRequest` over OTLP/HTTP, as the spec describes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::fake_upstream::FakeUpstream;
use support::{client, example_config, InProcess, CLIENT_KEY};

type Received = Arc<Mutex<Vec<(Span, Vec<(String, String)>)>>>;

async fn collector() -> (String, Received) {
    let got: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(got): State<Received>, body: Bytes| async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                for rs in req.resource_spans {
                    let resource: Vec<(String, String)> = rs
                        .resource
                        .map(|r| r.attributes)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|kv| (kv.key, format!("{:?}", kv.value)))
                        .collect();
                    for ss in rs.scope_spans {
                        for s in ss.spans {
                            got.lock().unwrap().push((s, resource.clone()));
                        }
                    }
                }
                // OTLP/HTTP: an empty ExportTraceServiceResponse
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }),
        )
        .with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

fn attr(s: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(v) => Some(v.clone()),
            Value::IntValue(v) => Some(v.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test]
async fn each_request_is_a_trace_with_a_span_per_attempt() {
    let (url, got) = collector().await;
    let up = FakeUpstream::start().await;
    let cfg = format!(
        "{}\n[[combos]]\nname = \"team\"\nstrategy = \"priority\"\nmodels = [\"mock/fail-500\", \"mock/gpt-4o-mini\"]\n",
        example_config(&up.base_url()).replace(
            r#"models = ["gpt-4o-mini"]"#,
            r#"models = ["gpt-4o-mini", "fail-500"]"#
        )
    );
    let gw = InProcess::start_with(&cfg, |s| {
        s.telemetry = Some(omniroute::config::TelemetrySection {
            otlp_endpoint: Some(url.clone()),
            service_name: Some("omniroute-test".into()),
            batch_delay: Some("50ms".into()),
            ..Default::default()
        });
    })
    .await;
    let resp = client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(CLIENT_KEY)
        .json(&json!({"model": "team", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let start = std::time::Instant::now();
    while got.lock().unwrap().len() < 3 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spans = got.lock().unwrap().clone();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let (root, resource) = spans
        .iter()
        .find(|(s, _)| s.parent_span_id.is_empty())
        .unwrap()
        .clone();
    assert!(resource
        .iter()
        .any(|(k, v)| k == "service.name" && v.contains("omniroute-test")));
    assert_eq!(root.name, "chat.completions team");
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(attr(&root, "omniroute.combo").as_deref(), Some("team"));
    assert_eq!(attr(&root, "omniroute.attempts").as_deref(), Some("2"));
    assert_eq!(
        attr(&root, "http.response.status_code").as_deref(),
        Some("200")
    );
    let mut children: Vec<&Span> = spans
        .iter()
        .map(|(s, _)| s)
        .filter(|s| s.parent_span_id == root.span_id)
        .collect();
    children.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(children.len(), 2);
    for c in &children {
        assert_eq!(c.trace_id, root.trace_id);
        assert_eq!(c.kind, SpanKind::Client as i32);
        assert!(c.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(c.end_time_unix_nano <= root.end_time_unix_nano);
        assert!(c.end_time_unix_nano >= c.start_time_unix_nano);
        assert_eq!(attr(c, "gen_ai.provider.name").as_deref(), Some("mock"));
    }
    assert!(
        children[0].name.ends_with("/fail-500"),
        "{}",
        children[0].name
    );
    let status = children[0].status.clone().unwrap();
    assert_eq!(status.code, StatusCode::Error as i32);
    assert_eq!(
        attr(children[0], "http.response.status_code").as_deref(),
        Some("500")
    );
    assert!(children[1].name.ends_with("/gpt-4o-mini"));
    assert!(children[0].end_time_unix_nano <= children[1].start_time_unix_nano);
    gw.stop().await;
}

#[tokio::test]
async fn telemetry_is_off_by_default() {
    let up = FakeUpstream::start().await;
    let gw = InProcess::start(&example_config(&up.base_url())).await;
    assert!(gw.gw.telemetry.is_none());
    gw.stop().await;
}
