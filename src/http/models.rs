//! `GET /v1/models`: every usable `prefix/model`.

use super::error::ApiError;
use super::AppState;
use axum::extract::State;
use axum::Json;

pub async fn list_models(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let models = crate::ops::models::list_models(&state.gw, Default::default())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let data: Vec<serde_json::Value> = models
        .into_iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
            })
        })
        .collect();
    let mut data = data;
    let combos = crate::ops::combos::list_combos(&state.gw)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    for c in combos {
        data.push(serde_json::json!({
            "id": c.combo.name,
            "object": "model",
            "created": 0,
            "owned_by": "omniroute-combo",
        }));
    }
    Ok(Json(serde_json::json!({"object": "list", "data": data})))
}
