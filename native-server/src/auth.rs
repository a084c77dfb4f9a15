//! API keys → tenants, and each tenant's limits. Keys are held only as SHA-256 hashes and a
//! presented key is compared with every stored hash in constant time. Limits: requests per
//! minute and tokens per minute (governor's token buckets), streams in flight (a semaphore),
//! the largest `max_tokens`, the models allowed.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use realm_protocol::ErrorCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::TenantConfig;
use crate::error::ApiError;

/// The tenant of requests when the server runs without keys.
pub const OPEN_TENANT: &str = "open";

/// One tenant and its limiters.
pub struct Tenant {
    pub name: String,
    pub max_tokens: Option<u32>,
    models: Vec<String>,
    rpm: Option<DefaultDirectRateLimiter>,
    tpm: Option<(DefaultDirectRateLimiter, u32)>,
    streams: Option<Arc<Semaphore>>,
}

/// Which limit refused a request (a label of `realm_rate_limited_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
    Concurrency,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Requests => "requests_per_minute",
            Limit::Tokens => "tokens_per_minute",
            Limit::Concurrency => "max_concurrent",
        }
    }
}

/// Held while a request runs: its place among the tenant's concurrent streams.
pub struct Admission {
    _stream: Option<OwnedSemaphorePermit>,
}

impl Tenant {
    pub fn new(c: &TenantConfig) -> Tenant {
        let per_min =
            |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::direct(Quota::per_minute(n)));
        Tenant {
            name: c.name.clone(),
            max_tokens: c.max_tokens,
            models: c.models.clone(),
            rpm: c.requests_per_minute.and_then(per_min),
            tpm: c.tokens_per_minute.and_then(|n| per_min(n).map(|l| (l, n))),
            streams: c.max_concurrent.map(|n| Arc::new(Semaphore::new(n as usize))),
        }
    }

    fn unlimited(name: &str) -> Tenant {
        Tenant::new(&TenantConfig { name: name.into(), ..TenantConfig::default() })
    }

    /// Whether this tenant may use the model served as `names` (any of them).
    pub fn may_use(&self, names: &[String]) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| names.contains(m))
    }

    /// Admits a request that will cost `tokens` (prompt tokens plus `max_tokens`, every
    /// choice): a stream place, a request and the tokens, or a 429 saying which limit and when
    /// to retry (`Err` also names the limit, for the metrics).
    pub fn admit(&self, tokens: u64) -> Result<Admission, (Limit, ApiError)> {
        let stream = match &self.streams {
            None => None,
            Some(s) => Some(s.clone().try_acquire_owned().map_err(|_| {
                let e = ApiError::new(
                    ErrorCode::RateLimitExceeded,
                    format!("tenant {}: too many requests in flight at once", self.name),
                );
                (Limit::Concurrency, e.retry_after(1))
            })?),
        };
        let clock = DefaultClock::default();
        let wait =
            |nu: governor::NotUntil<_>| nu.wait_time_from(clock.now()).as_secs_f64().ceil() as u64;
        if let Some(l) = &self.rpm
            && let Err(nu) = l.check()
        {
            let e = ApiError::new(
                ErrorCode::RateLimitExceeded,
                format!("tenant {}: over its requests per minute", self.name),
            );
            return Err((Limit::Requests, e.retry_after(wait(nu))));
        }
        if let Some((l, per_min)) = &self.tpm {
            let over = |msg: String, after| {
                (Limit::Tokens, ApiError::new(ErrorCode::RateLimitExceeded, msg).retry_after(after))
            };
            let n = u32::try_from(tokens).ok().and_then(NonZeroU32::new);
            if let Some(n) = n {
                match l.check_n(n) {
                    Ok(Ok(())) => {}
                    Ok(Err(nu)) => {
                        let msg = format!("tenant {}: over its tokens per minute", self.name);
                        return Err(over(msg, wait(nu)));
                    }
                    Err(_) => {
                        let msg = format!(
                            "tenant {}: this request counts {tokens} tokens (prompt and max_tokens, every choice), more than its {per_min} tokens per minute; ask for fewer max_tokens",
                            self.name
                        );
                        return Err(over(msg, 60));
                    }
                }
            } else if tokens > 0 {
                let msg = format!("tenant {}: {tokens} tokens in one request", self.name);
                return Err(over(msg, 60));
            }
        }
        Ok(Admission { _stream: stream })
    }
}

/// Keys → tenants.
pub struct Auth {
    keys: Vec<([u8; 32], usize)>,
    tenants: Vec<Arc<Tenant>>,
    /// Without keys: everyone is this tenant.
    open: Option<Arc<Tenant>>,
}

pub fn sha256(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The key a request carries: `Authorization: Bearer KEY` or `X-Api-Key: KEY`.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(k) = v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")) {
            return Some(k.trim());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim)
}

impl Auth {
    /// From the tenants of the config file and the command line's keys (tenant `default`).
    pub fn new(tenants: &[TenantConfig], cli_keys: &[String]) -> Auth {
        let mut auth = Auth { keys: Vec::new(), tenants: Vec::new(), open: None };
        for t in tenants {
            let i = auth.tenants.len();
            auth.tenants.push(Arc::new(Tenant::new(t)));
            auth.keys.extend(t.key_sha256.iter().filter_map(|k| parse_hex32(k)).map(|h| (h, i)));
        }
        // An empty key (e.g. REALM_API_KEY set to nothing) is no key: it would match a bare
        // `Bearer `.
        let cli_keys: Vec<&String> = cli_keys.iter().filter(|k| !k.trim().is_empty()).collect();
        if !cli_keys.is_empty() {
            let i = auth.tenants.len();
            auth.tenants.push(Arc::new(Tenant::unlimited("default")));
            auth.keys.extend(cli_keys.iter().map(|k| (sha256(k), i)));
        }
        if auth.keys.is_empty() {
            auth.open = Some(Arc::new(Tenant::unlimited(OPEN_TENANT)));
        }
        auth
    }

    /// Whether requests need no key.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The tenant whose key `headers` carry, or 401.
    pub fn tenant(&self, headers: &HeaderMap) -> Result<Arc<Tenant>, ApiError> {
        self.tenant_of_key(presented_key(headers))
    }

    pub fn tenant_of_key(&self, key: Option<&str>) -> Result<Arc<Tenant>, ApiError> {
        if let Some(t) = &self.open {
            return Ok(t.clone());
        }
        let Some(key) = key else {
            return Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "an API key is required (Authorization: Bearer KEY, or X-Api-Key)",
            ));
        };
        let h = sha256(key);
        // Every stored hash is compared, whatever matches, in constant time.
        let mut found = usize::MAX;
        for (k, i) in &self.keys {
            let eq = k.ct_eq(&h);
            found = usize::conditional_select_ct(found, *i, eq);
        }
        self.tenants
            .get(found)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidApiKey, "the API key is not valid"))
    }

    pub fn tenant_names(&self) -> impl Iterator<Item = &str> {
        self.tenants.iter().chain(&self.open).map(|t| t.name.as_str())
    }
}

/// A constant-time select over `usize` (subtle has none for it).
trait SelectCt {
    fn conditional_select_ct(a: usize, b: usize, choice: subtle::Choice) -> usize;
}

impl SelectCt for usize {
    fn conditional_select_ct(a: usize, b: usize, choice: subtle::Choice) -> usize {
        let mask = (u64::from(choice.unwrap_u8())).wrapping_neg() as usize;
        a ^ (mask & (a ^ b))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(k: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {k}").parse().unwrap());
        h
    }

    #[test]
    fn keys_map_to_tenants() {
        let hex: String = sha256("alpha").iter().map(|b| format!("{b:02x}")).collect();
        let t = TenantConfig { name: "a".into(), key_sha256: vec![hex], ..Default::default() };
        let auth = Auth::new(&[t], &["beta".into()]);
        assert!(!auth.is_open());
        assert_eq!(auth.tenant(&headers("alpha")).unwrap().name, "a");
        assert_eq!(auth.tenant(&headers("beta")).unwrap().name, "default");
        assert_eq!(auth.tenant(&headers("gamma")).err().unwrap().code, ErrorCode::InvalidApiKey);
        assert_eq!(auth.tenant(&HeaderMap::new()).err().unwrap().code, ErrorCode::InvalidApiKey);
        let mut x = HeaderMap::new();
        x.insert("x-api-key", "alpha".parse().unwrap());
        assert_eq!(auth.tenant(&x).unwrap().name, "a");
        let open = Auth::new(&[], &[]);
        assert_eq!(open.tenant(&HeaderMap::new()).unwrap().name, OPEN_TENANT);
        assert!(Auth::new(&[], &["".into(), " ".into()]).is_open());
    }

    #[test]
    fn limits_refuse_with_retry_after() {
        let t = Tenant::new(&TenantConfig {
            name: "t".into(),
            requests_per_minute: Some(2),
            tokens_per_minute: Some(100),
            max_concurrent: Some(1),
            ..Default::default()
        });
        let a = t.admit(10).ok().unwrap();
        let (limit, e) = t.admit(10).err().unwrap();
        assert_eq!(limit, Limit::Concurrency);
        assert_eq!(e.code, ErrorCode::RateLimitExceeded);
        drop(a);
        assert_eq!(t.admit(95).err().unwrap().0, Limit::Tokens);
        let (limit, e) = t.admit(1).err().unwrap();
        assert_eq!(limit, Limit::Requests);
        assert!(e.retry_after.unwrap() >= 1);
        let big = Tenant::new(&TenantConfig {
            name: "b".into(),
            tokens_per_minute: Some(100),
            ..Default::default()
        });
        let (limit, e) = big.admit(1000).err().unwrap();
        assert_eq!((limit, e.retry_after), (Limit::Tokens, Some(60)));
        assert!(big.admit(100).is_ok());
    }
}
