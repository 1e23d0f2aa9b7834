//! What one MCP session remembers: the log level the client chose
//! (`logging/setLevel`), the resources it subscribed to, and progress
//! reporting for a request that carries a `progressToken`.
//!
//! MCP logging is marked deprecated in rmcp (SEP-2577 drops it from the
//! 2026-07-28 revision), but it is part of every handshake revision clients
//! speak today (2024-11-05 to 2025-11-25), hence the `allow(deprecated)`.
#![allow(deprecated)]

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam, ProgressNotificationParam};
use rmcp::service::{Peer, RequestContext};
use rmcp::RoleServer;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Severity order of MCP log levels (RFC 5424, as the MCP spec lists them).
pub fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

/// One session's state, shared by its handler clones and its watcher task.
#[derive(Default)]
pub struct Session {
    /// The lowest level the client wants; none until it sends
    /// `logging/setLevel` (the spec leaves the default to the server: this
    /// one stays quiet until asked).
    level: Mutex<Option<u8>>,
    /// Subscribed URI → fingerprint of the content the client last saw.
    subscriptions: Mutex<BTreeMap<String, String>>,
    /// Whether the subscription watcher task runs.
    pub(super) watching: AtomicBool,
}

impl Session {
    pub fn set_level(&self, level: LoggingLevel) {
        if let Ok(mut l) = self.level.lock() {
            *l = Some(rank(level));
        }
    }

    /// Whether a message at `level` goes out.
    pub fn wants(&self, level: LoggingLevel) -> bool {
        self.level
            .lock()
            .ok()
            .and_then(|l| *l)
            .is_some_and(|min| rank(level) >= min)
    }

    /// Send `notifications/message` if the client asked for this level.
    pub async fn log(
        &self,
        peer: &Peer<RoleServer>,
        level: LoggingLevel,
        logger: &str,
        data: Value,
    ) {
        if !self.wants(level) {
            return;
        }
        let mut param = LoggingMessageNotificationParam::new(level, data);
        param.logger = Some(logger.to_string());
        if let Err(e) = peer.notify_logging_message(param).await {
            tracing::debug!(error = %e, "could not send an MCP log message");
        }
    }

    /// Start following `uri` (whose content now has `fingerprint`).
    pub fn subscribe(&self, uri: &str, fingerprint: String) {
        if let Ok(mut s) = self.subscriptions.lock() {
            s.insert(uri.to_string(), fingerprint);
        }
    }

    /// Stop following `uri`; true if it was followed.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        self.subscriptions
            .lock()
            .map(|mut s| s.remove(uri).is_some())
            .unwrap_or(false)
    }

    /// The followed URIs and their last fingerprints.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.subscriptions
            .lock()
            .map(|s| s.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Record a new fingerprint; true if it differs from the last one (and
    /// the URI is still followed).
    pub fn changed(&self, uri: &str, fingerprint: &str) -> bool {
        let Ok(mut s) = self.subscriptions.lock() else {
            return false;
        };
        match s.get_mut(uri) {
            Some(last) if last != fingerprint => {
                *last = fingerprint.to_string();
                true
            }
            _ => false,
        }
    }

    pub fn has_subscriptions(&self) -> bool {
        self.subscriptions.lock().is_ok_and(|s| !s.is_empty())
    }

    /// Mark the watcher as running; false if it already was.
    pub fn start_watching(&self) -> bool {
        !self.watching.swap(true, Ordering::SeqCst)
    }

    pub fn stop_watching(&self) {
        self.watching.store(false, Ordering::SeqCst);
    }
}

/// Progress notifications for one request, when the client sent a
/// `progressToken` (`_meta.progressToken`); otherwise every report is a no-op.
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<rmcp::model::ProgressToken>,
    last: f64,
}

impl Progress {
    pub fn of(ctx: &RequestContext<RoleServer>) -> Progress {
        Progress {
            peer: ctx.peer.clone(),
            token: ctx.meta.get_progress_token(),
            last: f64::NEG_INFINITY,
        }
    }

    /// Report `progress` (of `total`, if known) with a message; a value not
    /// above the last one is dropped (the spec requires progress to increase).
    pub async fn report(&mut self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        let Some(token) = self.token.clone() else {
            return;
        };
        if progress <= self.last {
            return;
        }
        self.last = progress;
        let mut param = ProgressNotificationParam::new(token, progress);
        param.total = total;
        param.message = Some(message.into());
        if let Err(e) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %e, "could not send an MCP progress notification");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_filter_by_severity_once_set() {
        let s = Session::default();
        assert!(!s.wants(LoggingLevel::Emergency), "quiet until setLevel");
        s.set_level(LoggingLevel::Warning);
        assert!(!s.wants(LoggingLevel::Info));
        assert!(s.wants(LoggingLevel::Warning));
        assert!(s.wants(LoggingLevel::Error));
        s.set_level(LoggingLevel::Debug);
        assert!(s.wants(LoggingLevel::Debug));
    }

    #[test]
    fn subscriptions_report_changes_once() {
        let s = Session::default();
        s.subscribe("omniroute://health", "a".into());
        assert!(!s.changed("omniroute://health", "a"));
        assert!(s.changed("omniroute://health", "b"));
        assert!(!s.changed("omniroute://health", "b"));
        assert!(s.unsubscribe("omniroute://health"));
        assert!(!s.changed("omniroute://health", "c"), "no longer followed");
        assert!(!s.has_subscriptions());
    }
}
