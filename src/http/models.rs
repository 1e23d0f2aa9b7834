//! `GET /v1/models`: every usable `prefix/model`.

use super::AppState;
use axum::extract::State;
use axum::Json;

pub async fn list_models(State(state): State<AppState>) -> Json<serde_json::Value> {
    let registry = state.gw.registry();
    let data: Vec<serde_json::Value> = registry
        .usable_models()
        .map(|(id, provider)| {
            serde_json::json!({
                "id": id,
                "object": "model",
                "created": 0,
                "owned_by": provider.spec.id,
            })
        })
        .collect();
    Json(serde_json::json!({"object": "list", "data": data}))
}
