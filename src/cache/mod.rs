//! The answer cache and idempotency, in front of planning (see the
//! architecture's "A request's way"): a repeated idempotency key joins or
//! replays the first request; then the exact cache (a hash of the request's
//! canonical form, `key`), identical requests in flight sharing one upstream
//! call (`flight`), and the semantic cache where a combo enables it
//! (`semantic`, embeddings through the router itself, `crate::embeddings`).
//!
//! The proxy core calls [`serve`] once per chat request; everything else it
//! needs from a request it reads through `ChatCall` in `key`. A request the
//! cache does not apply to (nondeterministic, `no-store`, turned off for its
//! key or combo) costs one policy check and goes straight to the router.
//!
//! Entries are scoped by namespace: a client key's own id unless an admin
//! gives keys a shared namespace. Rows hold the answer as the client got
//! it, a hash of the request and the embedding of its last user turn: never
//! a client key, the request text, or an upstream secret.

pub mod exact;
pub mod flight;
pub mod key;
pub mod rows;
pub mod semantic;
pub mod settings;
pub mod stats;

pub use settings::*;

use crate::catalog::WireFormat;
use crate::gateway::Gateway;
use crate::idempotency::{Begin, Idempotency, Scope};
use crate::proxy::{ChatCall, ChatOutcome, ProxyError, RouteInfo, Usage};
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use bytes::Bytes;
use exact::{Entry, Exact, Semantic};
use flight::{Answer, Body, End, Flight, Joiner, Phase, Recording, Subscriber};
use futures::StreamExt;
use rows::Delta;
use semantic::SemanticIndex;
use serde_json::Value;
use stats::Stats;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cache's clock: wall time in ms, plus an offset tests move forward
/// (TTLs and idempotency windows on virtual time).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        crate::store::now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}

/// Everything the cache keeps; one per gateway.
pub struct Cache {
    pub settings: CacheSettings,
    pub clock: Clock,
    exact: Exact,
    semantic: SemanticIndex,
    stats: Arc<Stats>,
    idempotency: Idempotency,
    /// Cacheable requests in flight, by key hash.
    flights: Mutex<HashMap<[u8; 32], Arc<Flight>>>,
    /// Per-key policies (mode, shared namespace), reloaded with the registry.
    policies: ArcSwap<HashMap<String, KeyCachePolicy>>,
    flush_generation: AtomicI64,
    loaded: AtomicBool,
    /// `/metrics` and the dashboard's hit-rate chart.
    metrics: Arc<crate::metrics::Metrics>,
}

/// What the cache does with one request.
struct Plan {
    key: key::Key,
    /// May be answered from the cache (not `no-cache`).
    lookup: bool,
    /// Only an answer at most this old (`max-age`).
    max_age_ms: Option<i64>,
    ttl: Duration,
    semantic: Option<(SemanticOptions, key::SemanticParts)>,
}

enum Decision {
    Bypass(&'static str),
    Cache(Box<Plan>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    Coalesced,
    Replay,
}

// Returned once per request and matched at once: boxing would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Front {
    Hit(ChatOutcome),
    Join(Subscriber, JoinKind),
    Lead(Lead),
    Mismatch,
}

/// A leader's flight and where it is registered.
struct Lead {
    flight: Arc<Flight>,
    sub: Subscriber,
    coalesce_key: Option<[u8; 32]>,
    idem_scope: Option<Scope>,
}

/// Removes a flight's registrations when its task ends (or is cancelled).
struct Registration {
    gw: Arc<Gateway>,
    flight: Arc<Flight>,
    coalesce_key: Option<[u8; 32]>,
    idem_scope: Option<Scope>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        // A task that ended without an answer (cancelled, or it failed)
        // must not leave anyone waiting.
        match self.flight.phase() {
            Phase::Running => self.flight.publish(Phase::Abandoned),
            Phase::Done(a) => {
                if let Body::Stream(r) = &a.body {
                    r.finish(End::Broken);
                }
            }
            _ => {}
        }
        let cache = &self.gw.cache;
        if let Some(k) = &self.coalesce_key {
            if let Ok(mut m) = cache.flights.lock() {
                if m.get(k).is_some_and(|f| f.id == self.flight.id) {
                    m.remove(k);
                }
            }
        }
        if let Some(scope) = &self.idem_scope {
            if self.flight.failed() {
                cache.idempotency.forget(scope, self.flight.id);
            }
        }
    }
}

impl Cache {
    pub fn new(settings: CacheSettings, metrics: Arc<crate::metrics::Metrics>) -> Cache {
        Cache {
            exact: Exact::new(settings.max_bytes),
            settings,
            clock: Clock::default(),
            semantic: SemanticIndex::default(),
            stats: Arc::new(Stats::default()),
            idempotency: Idempotency::default(),
            flights: Mutex::new(HashMap::new()),
            policies: ArcSwap::from_pointee(HashMap::new()),
            flush_generation: AtomicI64::new(0),
            loaded: AtomicBool::new(false),
            metrics,
        }
    }

    /// Load the stored entries (a serving gateway does, once): live ones,
    /// newest first, within the byte bound.
    pub async fn load(&self, store: &Store) -> Result<usize, StoreError> {
        if self.loaded.swap(true, Ordering::AcqRel) {
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let max = self.settings.max_bytes;
        let entries = store
            .write(move |tx| rows::load_entries(tx, now, max))
            .await?;
        let n = entries.len();
        let mut contexts = std::collections::HashSet::new();
        // Oldest first, so the newest are the most recently used.
        for e in entries.into_iter().rev() {
            if let Some(s) = &e.semantic {
                self.semantic.add(&s.context, e.hash, &s.vector);
                contexts.insert(s.context.clone());
            }
            self.exact.insert(Arc::new(e));
        }
        for c in contexts {
            if self.semantic_wants_graph(&c) {
                self.semantic.build(&c);
            }
        }
        let gen = store.read(rows::flush_generation).await?;
        self.flush_generation.store(gen, Ordering::Release);
        Ok(n)
    }

    fn semantic_wants_graph(&self, context: &str) -> bool {
        self.semantic.len(context) > semantic::INDEX_AT && !self.semantic.indexed(context)
    }

    /// Re-read key policies, and drop what another process flushed.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let (policies, gen) = store
            .read(|c| Ok((rows::list_policies(c)?, rows::flush_generation(c)?)))
            .await?;
        self.policies
            .store(Arc::new(policies.into_iter().collect()));
        let seen = self.flush_generation.swap(gen, Ordering::AcqRel);
        if gen != seen && self.loaded.load(Ordering::Acquire) {
            let live = store.read(rows::entry_hashes).await?;
            let gone = self.exact.remove_where(|e| !live.contains(&e.hash));
            for e in gone {
                self.forget_semantic(&e);
            }
        }
        Ok(())
    }

    /// The policy in force for a key (tests, reports).
    pub fn policy(&self, key_id: &str) -> Option<KeyCachePolicy> {
        self.policies.load().get(key_id).cloned()
    }

    /// (entries, bytes) held in memory now.
    pub fn size(&self) -> (u64, u64) {
        self.exact.size()
    }

    /// What this process counted since it started.
    pub fn totals(&self) -> Delta {
        self.stats.totals()
    }

    /// Drop entries from memory after the store dropped them (a flush here).
    pub fn forget_where(&self, f: &rows::FlushFilter) -> u64 {
        let gone = self
            .exact
            .remove_where(|e| f.matches(&e.label, &e.namespace));
        let n = gone.len() as u64;
        for e in gone {
            self.forget_semantic(&e);
        }
        n
    }

    fn forget_semantic(&self, e: &Entry) {
        if let Some(s) = &e.semantic {
            self.semantic.remove(&s.context, &e.hash);
        }
    }

    /// Entries the memory bound or their age pushed out: out of the store too.
    fn drop_removed(&self, store: &Store, removed: exact::Removed) {
        if removed.is_empty() {
            return;
        }
        let hashes: Vec<[u8; 32]> = removed.iter().map(|e| e.hash).collect();
        for e in &removed {
            self.forget_semantic(e);
        }
        store.write_detached("cache eviction", move |tx| {
            rows::delete_entries(tx, &hashes)
        });
    }

    fn lookup(&self, store: &Store, p: &Plan, now: i64) -> Option<Arc<Entry>> {
        let (hit, removed) = self.exact.get(&p.key.hash, now);
        self.drop_removed(store, removed);
        hit.filter(|e| p.max_age_ms.is_none_or(|m| now - e.created_ms <= m))
    }

    fn store_entry(&self, gw: &Arc<Gateway>, entry: Entry, key_id: Option<&str>) {
        if entry.body.len() as u64 > self.settings.max_entry_bytes {
            return;
        }
        let entry = Arc::new(entry);
        let (kept, removed) = self.exact.insert(entry.clone());
        self.drop_removed(&gw.store, removed);
        if !kept {
            return;
        }
        let bytes = entry.body.len() as u64;
        let row = entry.clone();
        gw.store
            .write_detached("cache entry", move |tx| rows::put_entry(tx, &row));
        if let Some(s) = &entry.semantic {
            if self.semantic.add(&s.context, entry.hash, &s.vector) {
                let (gw2, context) = (gw.clone(), s.context.clone());
                tokio::task::spawn_blocking(move || gw2.cache.semantic.build(&context));
            }
        }
        self.stats.record(
            &gw.store,
            self.clock.now_ms(),
            key_id,
            &entry.label,
            Delta {
                bytes_stored: bytes,
                ..Delta::default()
            },
        );
    }

    fn record(&self, store: &Store, key_id: Option<&str>, label: &str, d: Delta) {
        let lookup = if d.replays > 0 {
            Some(("idempotency", true))
        } else if d.semantic_hits > 0 {
            Some(("semantic", true))
        } else if d.coalesced > 0 {
            Some(("coalesced", true))
        } else if d.hits > 0 {
            Some(("exact", true))
        } else if d.misses > 0 {
            Some(("exact", false))
        } else {
            None
        };
        if let Some((cache, hit)) = lookup {
            self.metrics.observe_cache(cache, hit);
            if hit {
                self.metrics.observe_cache_saving(
                    label,
                    d.tokens_saved,
                    d.cost_saved_usd,
                    d.bytes_served,
                );
            }
        }
        self.stats
            .record(store, self.clock.now_ms(), key_id, label, d);
    }

    /// The idempotency key this request carries, checked.
    fn idempotency_key(&self, call: &ChatCall) -> Result<Option<String>, ProxyError> {
        let k = call.hints.idempotency_key.clone().or_else(|| {
            self.settings
                .request_id_header
                .then(|| call.hints.request_id.clone())
                .flatten()
        });
        if let Some(k) = &k {
            if k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(ProxyError::BadRequest(format!(
                    "the idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                )));
            }
        }
        Ok(k)
    }

    fn decide(&self, gw: &Gateway, call: &ChatCall, requested: &str) -> Decision {
        if !self.settings.enabled {
            return Decision::Bypass("the cache is turned off");
        }
        let registry = gw.registry();
        let combo = registry.combo(requested);
        let combo_cache = combo.and_then(|c| c.cache.as_ref());
        let policies = self.policies.load();
        let policy = call.key_id.as_ref().and_then(|k| policies.get(k));
        let key_mode = policy.and_then(|p| p.mode);
        let combo_mode = combo_cache.and_then(|c| c.mode);
        let modes = [key_mode, combo_mode];
        let mode = if modes.contains(&Some(CacheMode::Off)) {
            CacheMode::Off
        } else if modes.contains(&Some(CacheMode::Always)) {
            CacheMode::Always
        } else {
            key_mode.or(combo_mode).unwrap_or(self.settings.mode)
        };
        if mode == CacheMode::Off {
            return Decision::Bypass("the cache is off for this key or combo");
        }
        if call.hints.no_store {
            return Decision::Bypass("Cache-Control: no-store");
        }
        let semantic_opts = combo_cache.and_then(|c| c.semantic.clone());
        if mode == CacheMode::Auto && semantic_opts.is_none() && !key::deterministic(call) {
            return Decision::Bypass("not deterministic (set temperature 0 or a seed)");
        }
        let namespace = policy
            .and_then(|p| p.namespace.clone())
            .or_else(|| call.key_id.clone())
            .unwrap_or_else(|| "local".into());
        let resolved = match combo {
            Some(c) => {
                use sha2::Digest;
                let def = serde_json::to_vec(c).unwrap_or_default();
                let digest = sha2::Sha256::digest(&def);
                format!("combo:{}:{}", c.name, hex::encode(&digest[..8]))
            }
            None => requested.to_string(),
        };
        let Some(key) = key::key_for(call, &resolved, requested, &namespace) else {
            return Decision::Bypass("the request has no canonical form");
        };
        let semantic = semantic_opts.and_then(|o| {
            key::semantic_parts(call, &resolved, &namespace, &o.embedding_model).map(|p| (o, p))
        });
        let ttl = combo_cache
            .and_then(|c| c.ttl.as_deref())
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(self.settings.ttl);
        Decision::Cache(Box::new(Plan {
            key,
            lookup: !call.hints.no_cache,
            max_age_ms: call.hints.max_age_s.map(|s| s as i64 * 1000),
            ttl,
            semantic,
        }))
    }

    /// Idempotency, then the exact cache, then requests in flight: what
    /// answers this request, or the flight it leads. Takes no await.
    fn front(
        &self,
        gw: &Gateway,
        call: &ChatCall,
        plan: Option<&Plan>,
        idem: Option<&str>,
    ) -> Front {
        let now = self.clock.now_ms();
        let mut idem_lead = None;
        if let Some(k) = idem {
            let scope = (call.key_id.clone().unwrap_or_default(), k.to_string());
            let window = self.settings.idempotency_window.as_millis() as i64;
            match self
                .idempotency
                .begin(scope.clone(), key::fingerprint(call), now, window)
            {
                Begin::Mismatch => return Front::Mismatch,
                Begin::Join(s) => return Front::Join(s, JoinKind::Replay),
                Begin::Lead(f, s) => idem_lead = Some((f, s, scope)),
            }
        }
        let Some(p) = plan else {
            return match idem_lead {
                Some((flight, sub, scope)) => Front::Lead(Lead {
                    flight,
                    sub,
                    coalesce_key: None,
                    idem_scope: Some(scope),
                }),
                // Not reached: a request neither cached nor idempotent goes straight on.
                None => Front::Mismatch,
            };
        };
        let hit = |this: &Cache| -> Option<(ChatOutcome, Arc<Entry>)> {
            let entry = if p.lookup {
                this.lookup(&gw.store, p, now)?
            } else {
                return None;
            };
            this.record(
                &gw.store,
                call.key_id.as_deref(),
                &p.key.label,
                Delta {
                    hits: 1,
                    bytes_served: entry.body.len() as u64,
                    tokens_saved: entry.tokens(),
                    cost_saved_usd: entry.cost_usd.unwrap_or(0.0),
                    ..Delta::default()
                },
            );
            let outcome = this.hit_outcome(gw, call, &entry, HitKind::Exact, None, now);
            Some((outcome, entry))
        };
        if let Some((flight, sub, scope)) = idem_lead {
            if let Some((outcome, entry)) = hit(self) {
                // A retry under this key gets the same answer.
                let route = match &outcome {
                    ChatOutcome::Complete { route, .. } | ChatOutcome::Stream { route, .. } => {
                        route.clone()
                    }
                };
                flight.publish(Phase::Done(Arc::new(answer_of_entry(&entry, route))));
                flight.done_ms.store(now.max(1), Ordering::Release);
                let _ = flight.figures.set((entry.usage, entry.cost_usd));
                drop(sub);
                return Front::Hit(outcome);
            }
            let mut coalesce_key = None;
            if self.settings.coalesce {
                if let Ok(mut m) = self.flights.lock() {
                    if let std::collections::hash_map::Entry::Vacant(v) = m.entry(p.key.hash) {
                        v.insert(flight.clone());
                        coalesce_key = Some(p.key.hash);
                    }
                }
            }
            return Front::Lead(Lead {
                flight,
                sub,
                coalesce_key,
                idem_scope: Some(scope),
            });
        }
        if let Some((outcome, _)) = hit(self) {
            return Front::Hit(outcome);
        }
        if !self.settings.coalesce {
            let (flight, sub) = Flight::start([0; 32], false);
            return Front::Lead(Lead {
                flight,
                sub,
                coalesce_key: None,
                idem_scope: None,
            });
        }
        let Ok(mut m) = self.flights.lock() else {
            let (flight, sub) = Flight::start([0; 32], false);
            return Front::Lead(Lead {
                flight,
                sub,
                coalesce_key: None,
                idem_scope: None,
            });
        };
        if let Some(s) = m.get(&p.key.hash).and_then(|f| f.subscribe()) {
            return Front::Join(s, JoinKind::Coalesced);
        }
        // A flight that just ended stored its answer before leaving the map.
        if let Some((outcome, _)) = hit(self) {
            return Front::Hit(outcome);
        }
        let (flight, sub) = Flight::start([0; 32], false);
        m.insert(p.key.hash, flight.clone());
        Front::Lead(Lead {
            flight,
            sub,
            coalesce_key: Some(p.key.hash),
            idem_scope: None,
        })
    }

    /// A stored entry as this request's answer.
    fn hit_outcome(
        &self,
        gw: &Gateway,
        call: &ChatCall,
        entry: &Entry,
        kind: HitKind,
        similarity: Option<f32>,
        now: i64,
    ) -> ChatOutcome {
        let route = hit_route(call, entry, kind, similarity, now);
        let map = responses_mapper(gw, call, entry.stream);
        if entry.stream {
            let rec = Recording::complete(flight::split_events(&entry.body));
            ChatOutcome::Stream {
                status: entry.status,
                events: rec.subscribe(None, map),
                route,
            }
        } else {
            let body = match map {
                Some(mut f) => f(entry.body.clone()),
                None => entry.body.clone(),
            };
            ChatOutcome::Complete {
                status: entry.status,
                body,
                route,
                usage: Some(entry.usage),
            }
        }
    }
}

fn hit_route(
    call: &ChatCall,
    entry: &Entry,
    kind: HitKind,
    similarity: Option<f32>,
    now: i64,
) -> RouteInfo {
    let mut route = entry.route.clone();
    route.attempts = 0;
    route.upstream_ms = 0.0;
    route.overhead_ms = call.started.elapsed().as_secs_f64() * 1000.0;
    route.failed.clear();
    route.skipped.clear();
    route.cost_usd = Some(0.0);
    route.cache = Some(CacheInfo {
        status: CacheStatus::Hit,
        kind: Some(kind),
        similarity,
        age_s: Some(((now - entry.created_ms).max(0) / 1000) as u64),
        saved_usd: entry.cost_usd,
        ..CacheInfo::default()
    });
    route
}

/// A stored entry as a flight's answer (so an idempotent retry replays it).
fn answer_of_entry(entry: &Entry, route: RouteInfo) -> Answer {
    Answer {
        status: entry.status,
        route,
        usage: Some(entry.usage),
        body: if entry.stream {
            Body::Stream(Recording::complete(flight::split_events(&entry.body)))
        } else {
            Body::Whole(entry.body.clone())
        },
    }
}

/// A Responses client's answer from someone else's: its own response id,
/// and the conversation stored under it (so `previous_response_id` works).
fn responses_mapper(
    gw: &Gateway,
    call: &ChatCall,
    stream: bool,
) -> Option<Box<dyn FnMut(Bytes) -> Bytes + Send>> {
    let native = call.native.as_ref()?;
    if native.format != WireFormat::OpenaiResponses {
        return None;
    }
    let conversation = native.conversation.clone()?;
    let store = gw.store.clone();
    Some(Box::new(move |b: Bytes| {
        if !stream {
            let Ok(mut v) = serde_json::from_slice::<Value>(&b) else {
                return b;
            };
            v["id"] = Value::String(conversation.id.clone());
            conversation.save(&store, &v);
            return serde_json::to_vec(&v).map(Bytes::from).unwrap_or(b);
        }
        // A chunk may hold several events (a translated stream writes them together).
        let events = flight::split_events(&b);
        let mut out = Vec::with_capacity(b.len() + 64);
        for ev in events {
            out.extend_from_slice(&map_response_event(&ev, &conversation, &store));
        }
        Bytes::from(out)
    }))
}

/// One Responses stream event with the response id set to this client's;
/// the completed response is stored under it.
fn map_response_event(
    ev: &Bytes,
    conversation: &crate::proxy::native::Conversation,
    store: &Store,
) -> Bytes {
    let (name, data) = crate::formats::observe::split_event(ev);
    let (Some(name), [data]) = (name, data.as_slice()) else {
        return ev.clone();
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(data) else {
        return ev.clone();
    };
    if !v.get("response").is_some_and(Value::is_object) {
        return ev.clone();
    }
    v["response"]["id"] = Value::String(conversation.id.clone());
    let name = String::from_utf8_lossy(name).to_string();
    if name == "response.completed" {
        conversation.save(store, &v["response"]);
    }
    Bytes::from(crate::formats::sse::named(&name, &v))
}

fn with_cache(mut o: ChatOutcome, info: CacheInfo) -> ChatOutcome {
    match &mut o {
        ChatOutcome::Complete { route, .. } | ChatOutcome::Stream { route, .. } => {
            route.cache = Some(info)
        }
    }
    o
}

/// Serve one chat request: from the cache or a request in flight when one
/// answers it, else through the router (`proxy::forward`), keeping the
/// answer when it may be kept.
pub async fn serve(
    gw: &Gateway,
    call: ChatCall,
    requested: String,
    stream: bool,
) -> Result<ChatOutcome, ProxyError> {
    let cache = &gw.cache;
    let idem = cache.idempotency_key(&call)?;
    let mut bypass = "the request is not cacheable";
    let plan = match cache.decide(gw, &call, &requested) {
        Decision::Cache(p) => Some(p),
        Decision::Bypass(reason) => {
            if idem.is_none() {
                let out = Box::pin(crate::proxy::forward(gw, &call, &requested, stream)).await?;
                return Ok(with_cache(out, CacheInfo::bypass(reason)));
            }
            bypass = reason;
            None
        }
    };
    let Some(me) = gw.handle() else {
        // Not reached: the gateway always lives in an Arc.
        return Box::pin(crate::proxy::forward(gw, &call, &requested, stream)).await;
    };
    let lead = loop {
        match cache.front(gw, &call, plan.as_deref(), idem.as_deref()) {
            Front::Hit(outcome) => return Ok(outcome),
            Front::Mismatch => {
                return Err(ProxyError::IdempotencyConflict(
                    "this Idempotency-Key was used with a different request body; use a new key for a new request".into(),
                ))
            }
            Front::Join(sub, kind) => {
                let flight = sub.flight().clone();
                match flight.wait().await {
                    // Cancelled before it answered: run it again.
                    None => continue,
                    Some(Err(e)) => return Err(e),
                    Some(Ok(answer)) => {
                        let label = plan.as_ref().map_or(requested.as_str(), |p| p.key.label.as_str());
                        join_figures(gw, &flight, &call, label, kind, &answer);
                        let mut route = answer.route.clone();
                        let map = match kind {
                            JoinKind::Replay => {
                                let mut info = route.cache.clone().unwrap_or_default();
                                info.idempotent_replay = true;
                                route.cache = Some(info);
                                None
                            }
                            JoinKind::Coalesced => {
                                route.cache = Some(CacheInfo {
                                    status: CacheStatus::Hit,
                                    kind: Some(HitKind::Coalesced),
                                    saved_usd: answer.route.cost_usd,
                                    ..CacheInfo::default()
                                });
                                route.cost_usd = Some(0.0);
                                responses_mapper(gw, &call, matches!(answer.body, Body::Stream(_)))
                            }
                        };
                        return Ok(flight::outcome(&answer, route, Some(sub), map));
                    }
                }
            }
            Front::Lead(lead) => break lead,
        }
    };
    let Lead {
        flight,
        sub,
        coalesce_key,
        idem_scope,
    } = lead;
    let from_store = plan.as_ref().is_some_and(|p| p.semantic.is_some());
    let mapper_call = from_store
        .then(|| responses_mapper(gw, &call, stream))
        .flatten();
    let reg = Registration {
        gw: me.clone(),
        flight: flight.clone(),
        coalesce_key,
        idem_scope,
    };
    let task = tokio::spawn(run(
        me,
        flight.clone(),
        call,
        (requested, stream),
        plan,
        bypass,
        reg,
    ));
    flight.set_task(task.abort_handle());
    match flight.wait().await {
        Some(Ok(answer)) => {
            // A semantic hit is someone else's answer: a Responses client gets its own id.
            let semantic_hit = answer
                .route
                .cache
                .as_ref()
                .is_some_and(|c| c.kind == Some(HitKind::Semantic));
            let map = if semantic_hit { mapper_call } else { None };
            Ok(flight::outcome(
                &answer,
                answer.route.clone(),
                Some(sub),
                map,
            ))
        }
        Some(Err(e)) => Err(e),
        None => Err(ProxyError::BadRequest(
            "the request was cancelled before it was answered".into(),
        )),
    }
}

/// A joiner's figures: counted now when the answer's are known, else by
/// the leader when they are.
fn join_figures(
    gw: &Gateway,
    flight: &Flight,
    call: &ChatCall,
    label: &str,
    kind: JoinKind,
    answer: &Answer,
) {
    let joiner = Joiner {
        key_id: call.key_id.clone(),
        label: label.to_string(),
        replay: kind == JoinKind::Replay,
        bytes: match &answer.body {
            Body::Whole(b) => b.len() as u64,
            Body::Stream(_) => 0,
        },
    };
    let Ok(mut list) = flight.joiners.lock() else {
        return;
    };
    match flight.figures.get() {
        Some(f) => gw.cache.record_joiner(&gw.store, &joiner, f),
        None => list.push(joiner),
    }
}

impl Cache {
    fn record_joiner(&self, store: &Store, j: &Joiner, f: &(Usage, Option<f64>)) {
        let d = Delta {
            hits: u64::from(!j.replay),
            coalesced: u64::from(!j.replay),
            replays: u64::from(j.replay),
            bytes_served: j.bytes,
            tokens_saved: f.0.input_tokens + f.0.output_tokens,
            cost_saved_usd: f.1.unwrap_or(0.0),
            ..Delta::default()
        };
        self.record(store, j.key_id.as_deref(), &j.label, d);
    }

    /// The answer's figures are known: count the joiners that waited for them.
    fn settle_figures(&self, store: &Store, flight: &Flight, usage: Usage, cost: Option<f64>) {
        let _ = flight.figures.set((usage, cost));
        let waiting: Vec<Joiner> = match flight.joiners.lock() {
            Ok(mut l) => l.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        if let Some(f) = flight.figures.get() {
            for j in &waiting {
                self.record_joiner(store, j, f);
            }
        }
    }

    /// The best stored answer whose last user turn is similar enough.
    fn semantic_lookup(
        &self,
        context: &str,
        vector: &[f32],
        threshold: f32,
        p: &Plan,
        now: i64,
    ) -> Option<(Arc<Entry>, f32)> {
        for (hash, sim) in self.semantic.nearest(context, vector) {
            if sim < threshold {
                break;
            }
            if let Some(e) = self.exact.peek(&hash, now) {
                if p.max_age_ms.is_none_or(|m| now - e.created_ms <= m) {
                    return Some((e, sim));
                }
            }
        }
        None
    }
}

/// A leader's task: the semantic cache where enabled, else the router;
/// the answer is published to the flight as soon as it starts, a stream
/// recorded as it arrives, and kept in the cache once whole and good.
async fn run(
    gw: Arc<Gateway>,
    flight: Arc<Flight>,
    call: ChatCall,
    (requested, stream): (String, bool),
    plan: Option<Box<Plan>>,
    bypass: &'static str,
    reg: Registration,
) {
    let cache = &gw.cache;
    let mut semantic_row: Option<Semantic> = None;
    if let Some((opts, parts)) = plan.as_ref().and_then(|p| p.semantic.as_ref()) {
        let p = plan.as_deref();
        match crate::embeddings::embed_text(
            &gw,
            call.key_id.clone(),
            &call.request_id,
            &opts.embedding_model,
            &parts.text,
        )
        .await
        {
            Ok(v) => {
                if let (Some(v), Some(p)) = (semantic::normalise(v), p) {
                    let now = cache.clock.now_ms();
                    let threshold = opts.threshold.unwrap_or(DEFAULT_SIMILARITY);
                    let found = if p.lookup {
                        cache.semantic_lookup(&parts.context, &v, threshold, p, now)
                    } else {
                        None
                    };
                    if let Some((entry, sim)) = found {
                        cache.record(
                            &gw.store,
                            call.key_id.as_deref(),
                            &p.key.label,
                            Delta {
                                hits: 1,
                                semantic_hits: 1,
                                bytes_served: entry.body.len() as u64,
                                tokens_saved: entry.tokens(),
                                cost_saved_usd: entry.cost_usd.unwrap_or(0.0),
                                ..Delta::default()
                            },
                        );
                        let route = hit_route(&call, &entry, HitKind::Semantic, Some(sim), now);
                        flight.publish(Phase::Done(Arc::new(answer_of_entry(&entry, route))));
                        flight.done_ms.store(now.max(1), Ordering::Release);
                        cache.settle_figures(&gw.store, &flight, entry.usage, entry.cost_usd);
                        drop(reg);
                        return;
                    }
                    semantic_row = Some(Semantic {
                        context: parts.context.clone(),
                        model: opts.embedding_model.clone(),
                        vector: v,
                    });
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, model = %opts.embedding_model, "semantic cache: embedding failed; answering without it")
            }
        }
    }
    if let Some(p) = &plan {
        cache.record(
            &gw.store,
            call.key_id.as_deref(),
            &p.key.label,
            Delta {
                misses: 1,
                ..Delta::default()
            },
        );
    }
    let info = match &plan {
        Some(_) => CacheInfo::miss(),
        None => CacheInfo::bypass(bypass),
    };
    let started_ms = crate::store::now_ms() - 1000;
    let result = Box::pin(crate::proxy::forward(&gw, &call, &requested, stream)).await;
    let keep = |status: u16| plan.is_some() && (200..300).contains(&status);
    let entry = |status: u16, body: Bytes, route: &RouteInfo, usage: Usage, cost: Option<f64>| {
        let p = plan.as_ref()?;
        let now = cache.clock.now_ms();
        let mut route = route.clone();
        route.cache = None;
        Some(Entry {
            hash: p.key.hash,
            namespace: p.key.namespace.clone(),
            label: p.key.label.clone(),
            format: p.key.format,
            stream: p.key.stream,
            status,
            body,
            route,
            usage,
            cost_usd: cost,
            created_ms: now,
            expires_ms: now + p.ttl.as_millis() as i64,
            semantic: semantic_row.clone(),
        })
    };
    match result {
        Err(e) => flight.publish(Phase::Failed(e)),
        Ok(ChatOutcome::Complete {
            status,
            body,
            mut route,
            usage,
        }) => {
            route.cache = Some(info);
            flight.publish(Phase::Done(Arc::new(Answer {
                status,
                route: route.clone(),
                usage,
                body: Body::Whole(body.clone()),
            })));
            let u = usage.unwrap_or_default();
            if keep(status) {
                if let Some(e) = entry(status, body, &route, u, route.cost_usd) {
                    cache.store_entry(&gw, e, call.key_id.as_deref());
                }
            }
            cache.settle_figures(&gw.store, &flight, u, route.cost_usd);
        }
        Ok(ChatOutcome::Stream {
            status,
            mut events,
            mut route,
        }) => {
            route.cache = Some(info);
            let rec = Recording::new();
            flight.publish(Phase::Done(Arc::new(Answer {
                status,
                route: route.clone(),
                usage: None,
                body: Body::Stream(rec.clone()),
            })));
            while let Some(Ok(chunk)) = events.next().await {
                rec.push(chunk);
            }
            rec.finish(End::Complete);
            // The relay has written the stream's usage row: its outcome says
            // whether the stream ended well, its figures what it cost.
            drop(events);
            let _ = gw.store.flush().await;
            let (rid, endpoint) = (call.request_id.clone(), call.endpoint);
            let row = gw
                .store
                .read(move |c| rows::usage_of_request(c, &rid, endpoint, started_ms))
                .await
                .ok()
                .flatten();
            if let Some((outcome, usage, cost)) = row {
                if outcome == "ok" && keep(status) {
                    if let Some(e) = entry(status, rec.bytes(), &route, usage, cost) {
                        cache.store_entry(&gw, e, call.key_id.as_deref());
                    }
                }
                cache.settle_figures(&gw.store, &flight, usage, cost);
            } else {
                cache.settle_figures(&gw.store, &flight, Usage::default(), None);
            }
        }
    }
    flight
        .done_ms
        .store(cache.clock.now_ms().max(1), Ordering::Release);
    drop(reg);
}
