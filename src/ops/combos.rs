//! Combos: list, show, create/update (validated first, with a dry run that
//! returns the diff), delete, roll back to the previous version, set the
//! strategy, and test every target with a tiny prompt.

use super::{Actor, OpsError};
use crate::gateway::Gateway;
use crate::routing::combo::{Combo, AUTO};
use crate::routing::plan::{self, Shape};
use crate::routing::strategy::StrategyKind;
use crate::store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ComboView {
    pub combo: Combo,
    pub version: i64,
    pub builtin: bool,
    /// The steps flattened to `prefix/model` targets, in order.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ComboName {
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpsertComboInput {
    pub combo: Combo,
    /// Validate and return the diff without saving.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpsertComboResult {
    pub name: String,
    pub saved: bool,
    pub created: bool,
    pub changed: bool,
    /// The new version (unchanged when nothing was saved).
    pub version: i64,
    pub before: Option<Combo>,
    pub after: Combo,
    /// Fields that differ, as "field: before -> after".
    pub diff: Vec<String>,
    /// Problems that do not block saving (e.g. a provider without a usable account).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SetStrategyInput {
    pub name: String,
    pub strategy: StrategyKind,
}

async fn stored(gw: &Gateway) -> Result<Vec<(Combo, i64)>, OpsError> {
    let rows = gw.store.read(store::list_combos).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            serde_json::from_str::<Combo>(&r.definition)
                .ok()
                .map(|c| (c, r.version))
        })
        .collect())
}

fn view(gw: &Gateway, combo: Combo, version: i64, builtin: bool) -> ComboView {
    let registry = gw.registry();
    let targets = combo
        .flatten(&|n| registry.combo(n).cloned())
        .map(|f| f.into_iter().map(|s| s.model).collect())
        .unwrap_or_default();
    ComboView {
        combo,
        version,
        builtin,
        targets,
    }
}

pub async fn list_combos(gw: &Gateway) -> Result<Vec<ComboView>, OpsError> {
    let mut out: Vec<ComboView> = stored(gw)
        .await?
        .into_iter()
        .map(|(c, v)| view(gw, c, v, false))
        .collect();
    if !out.iter().any(|c| c.combo.name == AUTO) {
        if let Ok(plan) = plan::explain(&gw.registry(), &gw.routing, AUTO, &Shape::default()) {
            if let Some(c) = plan.combo {
                out.push(view(gw, c, 0, true));
            }
        }
    }
    Ok(out)
}

pub async fn get_combo(gw: &Gateway, name: &str) -> Result<ComboView, OpsError> {
    list_combos(gw)
        .await?
        .into_iter()
        .find(|c| c.combo.name == name)
        .ok_or_else(|| OpsError::NotFound(format!("combo {name}")))
}

/// Check a combo against the others and the providers; errors block, warnings do not.
fn validate(gw: &Gateway, combo: &Combo, others: &[(Combo, i64)]) -> Result<Vec<String>, OpsError> {
    combo
        .validate_shape()
        .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    if combo.name == AUTO && combo.models.is_empty() {
        return Err(OpsError::InvalidInput("auto needs models".into()));
    }
    let lookup = |n: &str| {
        if n == combo.name {
            Some(combo.clone())
        } else {
            others
                .iter()
                .find(|(c, _)| c.name == n)
                .map(|(c, _)| c.clone())
        }
    };
    let flat = combo
        .flatten(&lookup)
        .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    let registry = gw.registry();
    let mut warnings = Vec::new();
    for step in &flat {
        let prefix = step.model.split('/').next().unwrap_or_default();
        let Some(provider) = registry
            .providers()
            .iter()
            .find(|p| p.spec.prefix() == prefix)
        else {
            return Err(OpsError::InvalidInput(format!(
                "combo {:?}: step {:?} names no known provider prefix {prefix:?}",
                combo.name, step.model
            )));
        };
        if !registry.is_usable(&provider.spec.id) {
            warnings.push(format!(
                "{}: provider {} has no usable account yet",
                step.model, provider.spec.id
            ));
        }
        if let Some(account) = &step.account {
            if !registry
                .accounts(&provider.spec.id)
                .iter()
                .any(|a| &a.id == account || &a.label == account)
            {
                warnings.push(format!(
                    "{}: pinned account {account} does not exist",
                    step.model
                ));
            }
        }
    }
    if combo.strategy == StrategyKind::Fusion && flat.len() < 2 {
        warnings.push("fusion with fewer than two targets behaves like priority".into());
    }
    Ok(warnings)
}

fn diff(before: Option<&Combo>, after: &Combo) -> Vec<String> {
    let b = before
        .map(|c| serde_json::to_value(c).unwrap_or_default())
        .unwrap_or_default();
    let a = serde_json::to_value(after).unwrap_or_default();
    let mut keys: Vec<String> = a
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(o) = b.as_object() {
        for k in o.keys() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
    }
    keys.into_iter()
        .filter(|k| b.get(k) != a.get(k))
        .map(|k| {
            let show = |v: Option<&serde_json::Value>| {
                v.map(|v| v.to_string()).unwrap_or_else(|| "(none)".into())
            };
            format!("{k}: {} -> {}", show(b.get(&k)), show(a.get(&k)))
        })
        .collect()
}

pub async fn upsert_combo(
    gw: &Gateway,
    input: UpsertComboInput,
    actor: Actor,
) -> Result<UpsertComboResult, OpsError> {
    let all = stored(gw).await?;
    let combo = input.combo;
    let others: Vec<(Combo, i64)> = all
        .iter()
        .filter(|(c, _)| c.name != combo.name)
        .cloned()
        .collect();
    let warnings = validate(gw, &combo, &others)?;
    // nothing may refer to this combo in a way that now makes a cycle
    for (other, _) in &others {
        let lookup = |n: &str| {
            if n == combo.name {
                Some(combo.clone())
            } else {
                others
                    .iter()
                    .find(|(c, _)| c.name == n)
                    .map(|(c, _)| c.clone())
            }
        };
        other
            .flatten(&lookup)
            .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    }
    let before = all.iter().find(|(c, _)| c.name == combo.name).cloned();
    let changes = diff(before.as_ref().map(|(c, _)| c), &combo);
    let mut result = UpsertComboResult {
        name: combo.name.clone(),
        saved: false,
        created: before.is_none(),
        changed: !changes.is_empty(),
        version: before.as_ref().map(|(_, v)| *v).unwrap_or(0),
        before: before.map(|(c, _)| c),
        after: combo.clone(),
        diff: changes,
        warnings,
    };
    if input.dry_run || !result.changed {
        return Ok(result);
    }
    let json = serde_json::to_string(&combo).map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    let name = combo.name.clone();
    let before_json = result
        .before
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    let after_json = serde_json::to_value(&combo).unwrap_or_default();
    let actor_s = actor.as_str();
    result.version = gw
        .store
        .write(move |tx| {
            let v = store::put_combo(tx, &name, &json)?;
            store::audit(
                tx,
                actor_s,
                "upsert",
                "combo",
                &name,
                before_json.as_ref(),
                Some(&after_json),
            )?;
            Ok(v)
        })
        .await?;
    result.saved = true;
    gw.reload().await?;
    Ok(result)
}

pub async fn delete_combo(gw: &Gateway, name: &str, actor: Actor) -> Result<Combo, OpsError> {
    let all = stored(gw).await?;
    let Some((combo, _)) = all.iter().find(|(c, _)| c.name == name).cloned() else {
        return Err(OpsError::NotFound(format!("combo {name}")));
    };
    let users: Vec<&str> = all
        .iter()
        .filter(|(c, _)| {
            c.name != name
                && c.flatten(&|n| {
                    all.iter()
                        .find(|(x, _)| x.name == n && n != name)
                        .map(|(x, _)| x.clone())
                })
                .is_err()
        })
        .map(|(c, _)| c.name.as_str())
        .collect();
    if !users.is_empty() {
        return Err(OpsError::InvalidInput(format!(
            "combo {name} is used by {}; change those first",
            users.join(", ")
        )));
    }
    let name_s = name.to_string();
    let before = serde_json::to_value(&combo).unwrap_or_default();
    let actor_s = actor.as_str();
    gw.store
        .write(move |tx| {
            store::delete_combo(tx, &name_s)?;
            store::audit(tx, actor_s, "delete", "combo", &name_s, Some(&before), None)
        })
        .await?;
    gw.reload().await?;
    Ok(combo)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RollbackResult {
    pub name: String,
    /// The combo now in force; None when the rollback removed a newly created combo.
    pub restored: Option<Combo>,
    /// The audit entry whose change was undone.
    pub undid_audit_id: i64,
}

/// Undo the last change to a combo (from the audit log's before-image).
pub async fn rollback_combo(
    gw: &Gateway,
    name: &str,
    actor: Actor,
) -> Result<RollbackResult, OpsError> {
    let name_s = name.to_string();
    let entries = gw
        .store
        .read(move |c| {
            store::audit_list(c, Some("combo"), 1000).map(|v| {
                v.into_iter()
                    .filter(|e| e.entity_id == name_s)
                    .collect::<Vec<_>>()
            })
        })
        .await?;
    let last = entries
        .first()
        .ok_or_else(|| OpsError::NotFound(format!("no recorded change to combo {name}")))?
        .clone();
    let restored: Option<Combo> =
        match &last.before {
            Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| {
                OpsError::InvalidInput(format!("stored version is unreadable: {e}"))
            })?),
            None => None,
        };
    let name_s = name.to_string();
    let current = gw.store.read(move |c| store::get_combo(c, &name_s)).await?;
    let current_json =
        current.and_then(|r| serde_json::from_str::<serde_json::Value>(&r.definition).ok());
    let restored_json = restored
        .as_ref()
        .map(|c| serde_json::to_value(c).unwrap_or_default());
    let name_s = name.to_string();
    let actor_s = actor.as_str();
    let def = restored
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| OpsError::InvalidInput(e.to_string()))?;
    gw.store
        .write(move |tx| {
            match &def {
                Some(d) => {
                    store::put_combo(tx, &name_s, d)?;
                }
                None => {
                    store::delete_combo(tx, &name_s)?;
                }
            }
            store::audit(
                tx,
                actor_s,
                "rollback",
                "combo",
                &name_s,
                current_json.as_ref(),
                restored_json.as_ref(),
            )
        })
        .await?;
    gw.reload().await?;
    Ok(RollbackResult {
        name: name.to_string(),
        restored,
        undid_audit_id: last.id,
    })
}

pub async fn set_routing_strategy(
    gw: &Gateway,
    input: SetStrategyInput,
    actor: Actor,
) -> Result<UpsertComboResult, OpsError> {
    let current = stored(gw)
        .await?
        .into_iter()
        .find(|(c, _)| c.name == input.name)
        .ok_or_else(|| OpsError::NotFound(format!("combo {}", input.name)))?;
    let mut combo = current.0;
    combo.strategy = input.strategy;
    upsert_combo(
        gw,
        UpsertComboInput {
            combo,
            dry_run: false,
        },
        actor,
    )
    .await
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TargetTest {
    pub target: String,
    pub ok: bool,
    pub latency_ms: f64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ComboTest {
    pub name: String,
    pub results: Vec<TargetTest>,
    pub ok: usize,
    pub failed: usize,
}

/// Send a tiny prompt through each target of a combo (each account), in parallel.
pub async fn test_combo(gw: &Gateway, name: &str) -> Result<ComboTest, OpsError> {
    let registry = gw.registry();
    let view = get_combo(gw, name).await?;
    let mut targets = Vec::new();
    let mut results = Vec::new();
    for model in &view.targets {
        match registry.resolve(model) {
            Ok(ts) => targets.extend(ts),
            Err(e) => results.push(TargetTest {
                target: model.clone(),
                ok: false,
                latency_ms: 0.0,
                status: None,
                error: Some(e.to_string()),
            }),
        }
    }
    let probed =
        futures::future::join_all(targets.iter().map(|t| crate::proxy::probe(gw, t))).await;
    results.extend(probed.into_iter().map(|p| TargetTest {
        target: p.target,
        ok: p.ok,
        latency_ms: p.latency_ms,
        status: p.status,
        error: p.error,
    }));
    let ok = results.iter().filter(|r| r.ok).count();
    Ok(ComboTest {
        name: name.to_string(),
        failed: results.len() - ok,
        ok,
        results,
    })
}
