//! Who may do what. A client key carries scopes; every request acts as a
//! `Principal` (a key and its scopes, or the local operator); each surface
//! asks `Principal::require` before an operation and answers a refusal in
//! its own error shape. Knows nothing of HTTP, MCP or A2A.
//!
//! - `inference`: the model routes (`/v1/chat/completions`, `/v1/messages`,
//!   `/v1/responses`, `/v1beta`, `/v1/models`) and the smart-routing skill
//!   or `omniroute_route_request` tool.
//! - `read`: health, models, combos and routes as planned, quota, and the
//!   usage and cost of this key only.
//! - `admin`: everything, including every key's spend and all changes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One permission a client key can carry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send model requests.
    Inference,
    /// Read health, quota, combos and this key's own usage and cost.
    Read,
    /// Everything: configuration changes, budgets, other keys' spend, audit.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Inference, Scope::Read, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Inference => "inference",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s.trim()))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes; `admin` implies the others.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |acc, s| acc | s.bit()))
    }

    pub fn inference() -> Scopes {
        Scopes::of(&[Scope::Inference])
    }

    pub fn admin() -> Scopes {
        Scopes::of(&[Scope::Admin])
    }

    /// Does this set allow what `scope` guards?
    pub fn allows(self, scope: Scope) -> bool {
        self.0 & (Scope::Admin.bit() | scope.bit()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn list(self) -> Vec<Scope> {
        Scope::ALL
            .into_iter()
            .filter(|s| self.0 & s.bit() != 0)
            .collect()
    }

    /// `"inference,read"`: the form kept in the store.
    pub fn to_text(self) -> String {
        let names: Vec<&str> = self.list().into_iter().map(Scope::as_str).collect();
        names.join(",")
    }

    /// Parse a comma- or space-separated list; errors name the bad word.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut out = Scopes::NONE;
        for word in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            let s = Scope::parse(word).ok_or_else(|| {
                format!("unknown scope {word:?}: the scopes are inference, read and admin")
            })?;
            out.0 |= s.bit();
        }
        if out.is_empty() {
            return Err("no scope given: name at least one of inference, read, admin".into());
        }
        Ok(out)
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({})", self.to_text())
    }
}

impl Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scopes, D::Error> {
        let list = Vec::<Scope>::deserialize(d)?;
        Ok(Scopes::of(&list))
    }
}

impl JsonSchema for Scopes {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scopes".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <Vec<Scope>>::json_schema(generator)
    }
}

/// Who a request acts as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    /// The client key's id; None for the local operator (CLI, stdio MCP,
    /// the local bridge, or any caller when keys are turned off).
    pub key_id: Option<String>,
    pub scopes: Scopes,
}

impl Principal {
    /// The person at this machine: the CLI, `omniroute --mcp`, `--no-auth`.
    pub fn operator() -> Principal {
        Principal {
            key_id: None,
            scopes: Scopes::admin(),
        }
    }

    pub fn key(id: impl Into<String>, scopes: Scopes) -> Principal {
        Principal {
            key_id: Some(id.into()),
            scopes,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.scopes.allows(Scope::Admin)
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.allows(scope)
    }

    /// Refuse `what` unless this principal has `scope`.
    pub fn require(&self, scope: Scope, what: &str) -> Result<(), AccessDenied> {
        if self.allows(scope) {
            Ok(())
        } else {
            Err(AccessDenied {
                needed: scope,
                what: what.to_string(),
                key_id: self.key_id.clone(),
                held: self.scopes,
            })
        }
    }

    /// Whose usage this principal may see: None for everyone's (admin).
    pub fn usage_filter(&self) -> Option<String> {
        if self.is_admin() {
            None
        } else {
            // A key-less non-admin sees nothing: an id no row carries.
            Some(self.key_id.clone().unwrap_or_default())
        }
    }
}

/// A refusal that names what was asked, the scope it needs and how to get it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} needs the `{needed}` scope; {} (create one with `omniroute keys create --scope {needed}`)", held_text(.key_id, *.held))]
pub struct AccessDenied {
    pub needed: Scope,
    pub what: String,
    pub key_id: Option<String>,
    pub held: Scopes,
}

fn held_text(key: &Option<String>, held: Scopes) -> String {
    let scopes = if held.is_empty() {
        "no scope".to_string()
    } else {
        held.to_text()
    };
    match key {
        Some(id) => format!("key {id} has {scopes}"),
        None => format!("this caller has {scopes}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_implies_everything_and_others_only_themselves() {
        let admin = Scopes::admin();
        assert!(Scope::ALL.iter().all(|s| admin.allows(*s)));
        let inf = Scopes::inference();
        assert!(inf.allows(Scope::Inference));
        assert!(!inf.allows(Scope::Read) && !inf.allows(Scope::Admin));
        let both = Scopes::parse("inference, read").unwrap();
        assert!(both.allows(Scope::Read) && !both.allows(Scope::Admin));
        assert_eq!(both.to_text(), "inference,read");
        assert_eq!(Scopes::parse(&both.to_text()).unwrap(), both);
    }

    #[test]
    fn bad_scope_lists_are_refused_with_the_word() {
        assert!(Scopes::parse("inference,root")
            .unwrap_err()
            .contains("root"));
        assert!(Scopes::parse(" , ").is_err());
    }

    #[test]
    fn refusal_names_the_scope_and_the_key() {
        let p = Principal::key("key_1", Scopes::inference());
        let e = p.require(Scope::Admin, "omniroute_set_budget").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("omniroute_set_budget needs the `admin` scope"),
            "{text}"
        );
        assert!(text.contains("key key_1 has inference"), "{text}");
        assert!(Principal::operator().require(Scope::Admin, "x").is_ok());
        assert_eq!(p.usage_filter().as_deref(), Some("key_1"));
        assert_eq!(Principal::operator().usage_filter(), None);
    }

    #[test]
    fn scopes_serialise_as_a_list() {
        let s = Scopes::parse("read,admin").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"["read","admin"]"#);
        let back: Scopes = serde_json::from_str(r#"["read","admin"]"#).unwrap();
        assert_eq!(back, s);
    }
}
