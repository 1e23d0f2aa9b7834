//! `resources/subscribe`: a session that follows a resource gets
//! `notifications/resources/updated` when it changes. One watcher task per
//! session (started on its first subscription, ended when it has none or
//! the client is gone) compares each followed resource's fingerprint when
//! the configuration changes (the registry generation moves) and every
//! `RECHECK` besides (health and routing state change without a config
//! change).
//!
//! Fingerprints leave out what changes on every read (uptime, latency
//! figures), so a notification means something a client would act on.

use super::session::Session;
use super::{fixtures, resources, tool_error};
use crate::gateway::Gateway;
use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::service::Peer;
use rmcp::{ErrorData, RoleServer};
use std::sync::Arc;
use std::time::Duration;

/// How often followed resources are re-read when the config does not move.
const RECHECK: Duration = Duration::from_secs(5);

/// What a client following `uri` cares about, as a string to compare; an
/// error for a URI that names no resource.
pub async fn fingerprint(gw: &Gateway, fixtures_on: bool, uri: &str) -> Result<String, ErrorData> {
    if uri == resources::HEALTH_URI {
        let h = crate::ops::health::health(gw)
            .await
            .map_err(|e| ErrorData::internal_error(tool_error(e), None))?;
        let providers: Vec<_> = h
            .providers
            .iter()
            .map(|p| (p.id.as_str(), p.usable, p.usable_accounts, p.accounts))
            .collect();
        let digest = serde_json::json!([
            h.status,
            h.usable_providers,
            h.store.ok,
            h.store.writes_failing,
            providers
        ]);
        return Ok(digest.to_string());
    }
    if let Some(name) = uri
        .strip_prefix(resources::COMBO_PREFIX)
        .filter(|n| !n.is_empty())
    {
        // A combo that does not exist yet may be followed: its creation is a change.
        return match crate::ops::combos::get_combo(gw, name).await {
            Ok(view) => Ok(serde_json::to_string(&view.combo).unwrap_or_default()),
            Err(crate::ops::OpsError::NotFound(_)) => Ok("absent".into()),
            Err(e) => Err(ErrorData::internal_error(tool_error(e), None)),
        };
    }
    if fixtures_on && fixtures::is_resource(uri) {
        // Fixture resources never change.
        return Ok(String::new());
    }
    Err(ErrorData::resource_not_found(
        format!(
            "unknown resource {uri:?}: {} and {}{{name}} can be followed",
            resources::HEALTH_URI,
            resources::COMBO_PREFIX
        ),
        None,
    ))
}

/// Start the session's watcher unless it runs already.
pub fn ensure_watcher(gw: Arc<Gateway>, session: Arc<Session>, peer: Peer<RoleServer>) {
    if !session.start_watching() {
        return;
    }
    tokio::spawn(async move {
        watch(&gw, &session, &peer).await;
        session.stop_watching();
        // A subscription that arrived while the loop was ending needs a watcher.
        if session.has_subscriptions() && !peer.is_transport_closed() {
            ensure_watcher(gw, session, peer);
        }
    });
}

async fn watch(gw: &Gateway, session: &Session, peer: &Peer<RoleServer>) {
    let fixtures_on = gw.settings.conformance_fixtures;
    let tick = gw.settings.reload_interval.max(Duration::from_millis(50));
    let mut generation = gw.registry().generation;
    let mut since_check = Duration::ZERO;
    loop {
        tokio::time::sleep(tick).await;
        since_check += tick;
        if peer.is_transport_closed() || !session.has_subscriptions() {
            return;
        }
        let now = gw.registry().generation;
        if now == generation && since_check < RECHECK {
            continue;
        }
        generation = now;
        since_check = Duration::ZERO;
        for (uri, _) in session.subscriptions() {
            let Ok(fp) = fingerprint(gw, fixtures_on, &uri).await else {
                continue;
            };
            if session.changed(&uri, &fp) {
                let sent = peer
                    .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                    .await;
                if let Err(e) = sent {
                    tracing::debug!(error = %e, %uri, "could not send resources/updated; ending the watcher");
                    return;
                }
            }
        }
    }
}
