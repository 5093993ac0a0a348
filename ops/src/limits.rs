//! Rate limits (GCRA, via governor): per client address on every route, per address and per
//! account on sign-in, and per tenant on the API.
//!
//! Keyed state is bounded: [`Limiter::housekeeping`] (run every few seconds) drops every key whose
//! bucket has refilled, which is indistinguishable from never having seen it, so a flood of
//! distinct addresses costs memory only for as long as their buckets take to refill.
//!
//! Sign-in failures are counted per account as OWASP advises, but a lock is short
//! (`sign_in_lock_max_seconds`) and only failures count, so an attacker who guesses wrong cannot
//! keep a real user out for long, and the per-address limit slows the attacker first. A real
//! account's failures are counted in the cluster's replicated state (the node passes this
//! policy with each failure); the lock here is for logins that name no account.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Quotas, in requests per period with a burst. Every field has a default (`[limits]` in node.toml).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second from one client address, on every route.
    pub per_address_per_second: u32,
    pub per_address_burst: u32,
    /// Sign-in attempts per minute from one address.
    pub sign_in_per_address_per_minute: u32,
    pub sign_in_per_address_burst: u32,
    /// Failed sign-ins one account absorbs before it is locked briefly; then one per minute.
    pub sign_in_failures_per_account: u32,
    /// The longest an account stays locked after failures.
    pub sign_in_lock_max_seconds: u64,
    /// API requests per second for one tenant, from all its users and tokens.
    pub per_tenant_per_second: u32,
    pub per_tenant_burst: u32,
    /// Hire enquiries per hour from one address, through the public venue websites.
    pub enquiries_per_address_per_hour: u32,
    pub enquiries_per_address_burst: u32,
    /// Load balancers whose `X-Forwarded-For` is believed: addresses or CIDR blocks.
    pub trusted_proxies: Vec<String>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            per_address_per_second: 50,
            per_address_burst: 200,
            sign_in_per_address_per_minute: 20,
            sign_in_per_address_burst: 10,
            sign_in_failures_per_account: 10,
            sign_in_lock_max_seconds: 60,
            per_tenant_per_second: 500,
            per_tenant_burst: 2000,
            enquiries_per_address_per_hour: 10,
            enquiries_per_address_burst: 5,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Why a request was refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The metric label: `address`, `sign_in_address`, `sign_in_account`, `tenant`, `enquiry`
    /// or `analytics`.
    pub scope: &'static str,
    /// Whole seconds, at least 1 (the `Retry-After` header).
    pub retry_after_secs: u64,
}

/// An address, or a CIDR block of them.
#[derive(Debug, Clone, Copy)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(s: &str) -> Result<Net, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("trusted_proxies: {s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("trusted_proxies: bad prefix length in {s:?}"))?
        };
        Ok(Net { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One `X-Forwarded-For` hop: an address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<SocketAddr>().ok().map(|s| s.ip())
}

pub(crate) fn quota(per: Duration, n: u32, burst: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
    Quota::with_period(per / n.get())
        .expect("a positive period")
        .allow_burst(burst)
}

/// Every limit of one node.
pub struct Limiter {
    address: DefaultKeyedRateLimiter<IpAddr>,
    sign_in_address: DefaultKeyedRateLimiter<IpAddr>,
    enquiry_address: DefaultKeyedRateLimiter<IpAddr>,
    sign_in_failures: DefaultKeyedRateLimiter<String>,
    /// Accounts locked after too many failures, until when.
    locked: Mutex<HashMap<String, Instant>>,
    lock_max: Duration,
    tenant: DefaultKeyedRateLimiter<u64>,
    trusted: Vec<Net>,
    clock: DefaultClock,
}

impl Limiter {
    pub fn new(c: &LimitsConfig) -> Result<Self, String> {
        let trusted = c
            .trusted_proxies
            .iter()
            .map(|s| Net::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        Ok(Limiter {
            address: RateLimiter::keyed(quota(
                second,
                c.per_address_per_second,
                c.per_address_burst,
            )),
            sign_in_address: RateLimiter::keyed(quota(
                minute,
                c.sign_in_per_address_per_minute,
                c.sign_in_per_address_burst,
            )),
            enquiry_address: RateLimiter::keyed(quota(
                minute * 60,
                c.enquiries_per_address_per_hour,
                c.enquiries_per_address_burst,
            )),
            sign_in_failures: RateLimiter::keyed(quota(minute, 1, c.sign_in_failures_per_account)),
            locked: Mutex::new(HashMap::new()),
            lock_max: Duration::from_secs(c.sign_in_lock_max_seconds.max(1)),
            tenant: RateLimiter::keyed(quota(second, c.per_tenant_per_second, c.per_tenant_burst)),
            trusted,
            clock: DefaultClock::default(),
        })
    }

    /// The client's address: the socket's, or, when the socket is a trusted proxy, the last
    /// `X-Forwarded-For` hop that is not itself a trusted proxy.
    ///
    /// `forwarded_for` holds every `X-Forwarded-For` header line in the order received (`None`
    /// for a line that is not text). A proxy such as HAProxy with `option forwardfor` appends a
    /// line of its own after whatever the client sent, so only the hops to the right of the
    /// first untrusted one count, across all lines: reading just the first line would believe
    /// the client's own invention.
    pub fn client_address(&self, peer: SocketAddr, forwarded_for: &[Option<&str>]) -> IpAddr {
        let socket = peer.ip();
        if !self.is_trusted(socket) {
            return socket;
        }
        let mut client = socket;
        let hops = forwarded_for.iter().rev().flat_map(|line| match line {
            Some(l) => l.rsplit(',').map(Some).collect::<Vec<_>>(),
            None => vec![None],
        });
        for hop in hops {
            match hop.and_then(|h| parse_hop(h.trim())) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        break;
                    }
                }
                // A malformed hop: stop at the last address we could trust.
                None => break,
            }
        }
        client
    }

    /// Whether `ip` is one of `trusted_proxies`.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &DefaultKeyedRateLimiter<K>,
        key: &K,
        scope: &'static str,
    ) -> Result<(), Refusal> {
        limiter.check_key(key).map_err(|not_until| Refusal {
            scope,
            retry_after_secs: whole_seconds(not_until.wait_time_from(self.clock.now())),
        })
    }

    /// Every request, by client address.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check(&self.address, &ip, "address")
    }

    /// Every API request of a tenant.
    pub fn check_tenant(&self, tenant: u64) -> Result<(), Refusal> {
        self.check(&self.tenant, &tenant, "tenant")
    }

    /// Before checking a password: the address's sign-in budget.
    pub fn check_sign_in(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check(&self.sign_in_address, &ip, "sign_in_address")
    }

    /// Before checking a password for a login that names no account: that login's lock on this
    /// node. (A real account's failures are counted by the whole cluster, in its replicated
    /// state; guesses at accounts that do not exist only need slowing down.)
    pub fn check_login(&self, login: &str) -> Result<(), Refusal> {
        if let Some(until) = self.locked.lock().get(login) {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(Refusal {
                    scope: "sign_in_account",
                    retry_after_secs: whole_seconds(left),
                });
            }
        }
        Ok(())
    }

    /// A hire enquiry from the public website, by client address.
    pub fn check_enquiry(&self, ip: IpAddr) -> Result<(), Refusal> {
        self.check(&self.enquiry_address, &ip, "enquiry")
    }

    /// A sign-in with `login`, which names no account, failed: once its failure budget is
    /// spent, the login is locked on this node until the next failure would be allowed, at most
    /// `sign_in_lock_max_seconds`.
    pub fn login_failed(&self, login: &str) {
        let key = login.to_string();
        if let Err(not_until) = self.sign_in_failures.check_key(&key) {
            let wait = not_until
                .wait_time_from(self.clock.now())
                .min(self.lock_max);
            self.locked.lock().insert(key, Instant::now() + wait);
        }
    }

    /// Drops refilled buckets and ended locks; call every few seconds.
    pub fn housekeeping(&self) {
        for l in [&self.address, &self.sign_in_address, &self.enquiry_address] {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.sign_in_failures.retain_recent();
        self.sign_in_failures.shrink_to_fit();
        self.tenant.retain_recent();
        self.tenant.shrink_to_fit();
        let now = Instant::now();
        let mut locked = self.locked.lock();
        locked.retain(|_, until| *until > now);
        locked.shrink_to_fit();
    }

    /// Keys held in memory across every limit (for tests and a gauge).
    pub fn tracked_keys(&self) -> usize {
        self.address.len()
            + self.sign_in_address.len()
            + self.enquiry_address.len()
            + self.sign_in_failures.len()
            + self.tenant.len()
            + self.locked.lock().len()
    }
}

pub(crate) fn whole_seconds(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(f: impl FnOnce(&mut LimitsConfig)) -> Limiter {
        let mut c = LimitsConfig::default();
        f(&mut c);
        Limiter::new(&c).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_gets_its_burst_then_a_retry_after() {
        let l = limiter(|c| {
            c.per_address_per_second = 1;
            c.per_address_burst = 3;
        });
        for _ in 0..3 {
            l.check_address(ip("192.0.2.1")).unwrap();
        }
        let r = l.check_address(ip("192.0.2.1")).unwrap_err();
        assert_eq!(r.scope, "address");
        assert_eq!(r.retry_after_secs, 1);
        // Another address is unaffected.
        l.check_address(ip("192.0.2.2")).unwrap();
    }

    #[test]
    fn failures_lock_a_login_naming_no_account_briefly() {
        let l = limiter(|c| {
            c.sign_in_failures_per_account = 3;
            c.sign_in_lock_max_seconds = 30;
            c.sign_in_per_address_burst = 100;
        });
        for _ in 0..3 {
            l.check_login("oak/ann").unwrap();
            l.login_failed("oak/ann");
        }
        // The budget is spent but no lock yet: the lock comes with the next failure.
        l.check_login("oak/ann").unwrap();
        l.login_failed("oak/ann");
        let r = l.check_login("oak/ann").unwrap_err();
        assert_eq!(r.scope, "sign_in_account");
        assert!((1..=30).contains(&r.retry_after_secs), "{r:?}");
        // Other logins sign in as usual.
        l.check_login("oak/bob").unwrap();
    }

    #[test]
    fn sign_in_attempts_are_limited_per_address() {
        let l = limiter(|c| c.sign_in_per_address_burst = 2);
        let a = ip("2001:db8::1");
        l.check_sign_in(a).unwrap();
        l.check_sign_in(a).unwrap();
        assert_eq!(l.check_sign_in(a).unwrap_err().scope, "sign_in_address");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let l = limiter(|c| c.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()]);
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.50:5000".parse().unwrap();
        let xff = [Some("203.0.113.5, 10.9.9.9")];
        assert_eq!(l.client_address(proxy, &xff), ip("203.0.113.5"));
        assert_eq!(l.client_address(stranger, &xff), ip("192.0.2.50"));
        assert_eq!(l.client_address(proxy, &[]), ip("10.1.2.3"));
        // A client cannot forge its way past the proxy: only the hops the proxy added count.
        let forged = [Some("1.1.1.1, 198.51.100.4")];
        assert_eq!(l.client_address(proxy, &forged), ip("198.51.100.4"));
        assert_eq!(l.client_address(proxy, &[Some("garbage")]), ip("10.1.2.3"));
        let v6: SocketAddr = "[::1]:1".parse().unwrap();
        assert_eq!(l.client_address(v6, &[Some("192.0.2.8")]), ip("192.0.2.8"));
        assert_eq!(
            l.client_address(v6, &[Some("[2001:db8::7]:443")]),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn every_forwarded_for_line_counts_not_just_the_first() {
        // HAProxy's `option forwardfor` keeps the client's line and adds its own after it.
        let l = limiter(|c| c.trusted_proxies = vec!["10.0.0.0/8".into()]);
        let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let client_wrote = Some("6.6.6.6");
        let proxy_wrote = Some("198.51.100.20");
        assert_eq!(
            l.client_address(proxy, &[client_wrote, proxy_wrote]),
            ip("198.51.100.20")
        );
        // Two trusted proxies in a row, each adding a line.
        assert_eq!(
            l.client_address(proxy, &[client_wrote, proxy_wrote, Some("10.0.0.9")]),
            ip("198.51.100.20")
        );
        // A line that is not text ends the walk like a malformed hop.
        assert_eq!(
            l.client_address(proxy, &[client_wrote, None]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn bad_trusted_proxies_are_refused_with_a_reason() {
        let err = Limiter::new(&LimitsConfig {
            trusted_proxies: vec!["10.0.0.0/40".into()],
            ..LimitsConfig::default()
        })
        .err()
        .unwrap();
        assert!(err.contains("prefix"), "{err}");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_addresses() {
        // A generous per-address refill so buckets refill within the test.
        let l = limiter(|c| {
            c.per_address_per_second = 1000;
            c.per_address_burst = 1;
        });
        for i in 0..100_000u32 {
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            l.check_address(a).unwrap();
        }
        assert_eq!(l.tracked_keys(), 100_000);
        // Each bucket holds one request and refills in 1 ms; wait until that has surely passed.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            l.housekeeping();
            if l.tracked_keys() == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} keys still held",
                l.tracked_keys()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
