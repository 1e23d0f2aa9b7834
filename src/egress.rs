//! Where the gateway may send requests. A provider base URL is the user's to
//! set, so it could aim the gateway (and the provider key it carries) at a
//! cloud metadata service or a private network. Refused unless an allow rule
//! in `server.allowed_upstreams` names them: link-local (169.254.0.0/16,
//! fe80::/10, where metadata services live), the metadata names, private and
//! shared ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7),
//! unspecified, multicast and broadcast addresses. Loopback stays allowed for
//! local model servers. IP literals are checked when a provider is defined
//! and when the registry is built; names are checked on every connection by
//! the upstream client's resolver (so a name that resolves to a private
//! address later is refused too).

use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// Host names of cloud metadata services.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

#[derive(Debug, Clone)]
enum Rule {
    Net(IpNet),
    /// An exact name, or `*.suffix`.
    Name(String),
}

/// The allow rules, shared by the resolver and the checks.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    rules: Arc<Vec<Rule>>,
}

/// Why an address is refused, if it is.
pub fn refused_range(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if ip.is_loopback() {
        return None;
    }
    let net = |s: &str| s.parse::<IpNet>().ok();
    let ranges: [(&str, &str); 10] = [
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("fe80::/10", "link-local"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("fc00::/7", "private (unique local)"),
        ("0.0.0.0/8", "unspecified"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
    ];
    for (range, why) in ranges {
        if net(range).is_some_and(|n| n.contains(&ip)) {
            return Some(why);
        }
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        return Some("broadcast");
    }
    None
}

impl EgressPolicy {
    /// Rules are CIDR ranges or addresses (`10.0.0.0/8`, `192.168.1.20`) and
    /// host names (`gpu-box.lan`, `*.corp.example`).
    pub fn new(rules: &[String]) -> Result<EgressPolicy, String> {
        let mut out = Vec::new();
        for r in rules {
            let r = r.trim().to_ascii_lowercase();
            if r.is_empty() {
                continue;
            }
            if let Ok(n) = r.parse::<IpNet>() {
                out.push(Rule::Net(n));
            } else if let Ok(ip) = r.parse::<IpAddr>() {
                out.push(Rule::Net(IpNet::from(ip)));
            } else if r
                .trim_start_matches("*.")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                out.push(Rule::Name(r));
            } else {
                return Err(format!(
                    "server.allowed_upstreams: {r:?} is neither an address, a CIDR range nor a host name"
                ));
            }
        }
        Ok(EgressPolicy {
            rules: Arc::new(out),
        })
    }

    fn name_allowed(&self, host: &str) -> bool {
        self.rules.iter().any(|r| match r {
            Rule::Name(n) => match n.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => n == host,
            },
            Rule::Net(_) => false,
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.rules.iter().any(|r| match r {
            Rule::Net(n) => n.contains(&ip),
            Rule::Name(_) => false,
        })
    }

    /// May a connection go to `ip`, reached by the name `host`?
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        match refused_range(ip) {
            None => Ok(()),
            Some(_) if self.ip_allowed(ip) || self.name_allowed(host) => Ok(()),
            Some(why) => Err(format!(
                "{host} is {ip}, a {why} address; upstreams there are refused unless server.allowed_upstreams names them"
            )),
        }
    }

    /// Check a base URL's host: metadata names always, IP literals now
    /// (names are checked again when they resolve).
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("is not a URL: {e}"))?;
        let host = parsed
            .host_str()
            .ok_or("has no host")?
            .trim_matches(|c| c == '[' || c == ']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if METADATA_NAMES.contains(&host.as_str()) && !self.name_allowed(&host) {
            return Err(format!(
                "{host} is a cloud metadata service; upstreams there are refused unless server.allowed_upstreams names it"
            ));
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(&host, ip),
            Err(_) => Ok(()),
        }
    }
}

/// The upstream client's resolver: the system's answer, without refused addresses.
#[derive(Debug, Clone)]
pub struct CheckedResolver {
    pub policy: EgressPolicy,
}

impl CheckedResolver {
    /// The system's addresses for `name`, each checked against the policy.
    async fn resolve_checked(
        policy: EgressPolicy,
        name: String,
    ) -> Result<Vec<std::net::SocketAddr>, String> {
        let host = name.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_NAMES.contains(&host.as_str()) && !policy.name_allowed(&host) {
            return Err(format!("{host} is a cloud metadata service"));
        }
        let found: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|e| format!("{host} did not resolve: {e}"))?
            .collect();
        let mut first_refusal = None;
        let allowed: Vec<std::net::SocketAddr> = found
            .into_iter()
            .filter(|a| match policy.check_ip(&host, a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    first_refusal.get_or_insert(e);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(first_refusal.unwrap_or_else(|| format!("{host} did not resolve")));
        }
        Ok(allowed)
    }
}

/// The reqwest client's resolver (sign-in and token calls).
impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = Self::resolve_checked(self.policy.clone(), name.as_str().to_string());
        Box::pin(async move {
            let allowed = lookup.await?;
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The hot path's resolver (hyper's connector asks it for every new connection).
impl tower::Service<hyper_util::client::legacy::connect::dns::Name> for CheckedResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        let lookup = Self::resolve_checked(self.policy.clone(), name.as_str().to_string());
        Box::pin(async move {
            lookup
                .await
                .map(Vec::into_iter)
                .map_err(std::io::Error::other)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_link_local_and_private_are_refused_loopback_is_not() {
        let p = EgressPolicy::default();
        for bad in [
            "http://169.254.169.254/latest",
            "http://metadata.google.internal/computeMetadata/v1",
            "http://[fd00::1]:8080/v1",
            "http://[fe80::1]/v1",
            "http://10.1.2.3/v1",
            "http://172.20.0.1/v1",
            "http://192.168.1.5:1234/v1",
            "http://100.100.100.200/v1",
            "http://0.0.0.0:11434/v1",
            "http://[::ffff:169.254.169.254]/v1",
        ] {
            assert!(p.check_url(bad).is_err(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:1234/v1",
            "http://[::1]:8080",
            "https://api.openai.com/v1",
            "https://8.8.8.8/v1",
        ] {
            assert!(p.check_url(ok).is_ok(), "{ok}");
        }
        let e = p.check_url("http://169.254.169.254/").unwrap_err();
        assert!(
            e.contains("link-local") && e.contains("server.allowed_upstreams"),
            "{e}"
        );
    }

    #[test]
    fn allow_rules_open_what_they_name() {
        let p = EgressPolicy::new(&["192.168.1.0/24".into(), "10.0.0.7".into(), "gpu.lan".into()])
            .unwrap();
        assert!(p.check_url("http://192.168.1.5:1234/v1").is_ok());
        assert!(p.check_url("http://192.168.2.5:1234/v1").is_err());
        assert!(p.check_url("http://10.0.0.7/v1").is_ok());
        assert!(p.check_ip("gpu.lan", "10.9.9.9".parse().unwrap()).is_ok());
        assert!(p
            .check_ip("other.lan", "10.9.9.9".parse().unwrap())
            .is_err());
        assert!(EgressPolicy::new(&["not a rule!".into()]).is_err());
    }
}

#[cfg(test)]
mod catalog_tests {
    #[test]
    fn every_catalog_base_url_is_allowed_by_default() {
        let p = super::EgressPolicy::default();
        for spec in crate::catalog::embedded() {
            assert!(
                p.check_url(&spec.base_url).is_ok(),
                "{}: {}",
                spec.id,
                spec.base_url
            );
        }
    }
}
