//! From a captured hit to a page view that identifies nobody: GeoIP location, user-agent
//! classes, the referrer's domain, the path without private query parameters, and the visitor id.

use std::net::IpAddr;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Device, Hit, PageView};

/// Query parameters kept in a recorded path: campaign tags say where visitors came from and are
/// not about the visitor. Everything else (search terms, tokens, ids) is dropped.
const KEPT_PARAMS: [&str; 6] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "ref",
];
pub use roomraft_domain::analytics::MAX_PATH;
/// Longest source (domain or campaign source) kept, in bytes.
const MAX_SOURCE: usize = 100;

/// A country and city, as far as the database knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub country: Option<String>,
    pub city: Option<String>,
}

/// Why a hit is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A crawler or other robot, by its user agent.
    Bot,
}

/// GeoIP lookups and user-agent parsing for one node.
pub struct Enricher {
    geo: Option<maxminddb::Reader<Vec<u8>>>,
    ua: woothee::parser::Parser,
}

impl Enricher {
    /// Opens the GeoIP database if one is given. A database that cannot be read is logged and
    /// treated as absent: analytics still records visits, with their location unknown.
    pub fn open(database: Option<&Path>) -> Self {
        let geo = database.and_then(|path| match maxminddb::Reader::open_readfile(path) {
            Ok(r) => {
                tracing::info!(
                    database = %path.display(),
                    kind = %r.metadata.database_type,
                    "GeoIP database loaded"
                );
                Some(r)
            }
            Err(e) => {
                tracing::warn!(
                    database = %path.display(),
                    error = %e,
                    "cannot read the GeoIP database; visitor locations will be unknown"
                );
                None
            }
        });
        Enricher {
            geo,
            ua: woothee::parser::Parser::new(),
        }
    }

    /// Whether a GeoIP database is loaded.
    pub fn has_geoip(&self) -> bool {
        self.geo.is_some()
    }

    /// The country and city of an address; unknown without a database or a match.
    pub fn locate(&self, ip: IpAddr) -> Location {
        let Some(reader) = &self.geo else {
            return Location::default();
        };
        let ip = canonical(ip);
        match reader.lookup::<maxminddb::geoip2::City>(ip) {
            Ok(Some(rec)) => Location {
                country: rec
                    .country
                    .and_then(|c| c.iso_code)
                    .map(|c| c.to_ascii_uppercase()),
                city: rec
                    .city
                    .and_then(|c| c.names)
                    .and_then(|n| n.get("en").map(|s| s.to_string())),
            },
            Ok(None) => Location::default(),
            Err(e) => {
                tracing::debug!(error = %e, "GeoIP lookup failed");
                Location::default()
            }
        }
    }

    /// Browser family, operating system and device class; robots are skipped.
    pub fn classify(&self, user_agent: &str) -> Result<(String, String, Device), Skip> {
        let Some(r) = self.ua.parse(user_agent) else {
            return Ok(("Unknown".into(), "Unknown".into(), Device::Other));
        };
        if r.category == "crawler" {
            return Err(Skip::Bot);
        }
        let ua = user_agent.to_ascii_lowercase();
        let device = match r.category {
            _ if ua.contains("ipad") || ua.contains("tablet") => Device::Tablet,
            // Android tablets leave "Mobile" out of their user agent.
            "smartphone" if r.os == "Android" && !ua.contains("mobile") => Device::Tablet,
            "smartphone" | "mobilephone" => Device::Mobile,
            "pc" => Device::Desktop,
            _ => Device::Other,
        };
        Ok((known(r.name), known(r.os), device))
    }

    /// The page view to replicate for `hit`, its visitor id keyed by `salt`.
    pub fn enrich(&self, hit: &Hit, salt: &[u8]) -> Result<PageView, Skip> {
        let (browser, os, device) = self.classify(&hit.user_agent)?;
        let path = clean_path(&hit.path);
        let source = campaign_source(&path).or_else(|| {
            hit.referrer
                .as_deref()
                .and_then(|r| referrer_domain(r, hit.host.as_deref()))
        });
        let loc = self.locate(hit.client);
        Ok(PageView {
            tenant: hit.tenant,
            at: hit.at,
            path,
            source,
            browser,
            os,
            device,
            country: loc.country,
            city: loc.city,
            visitor: visitor_id(salt, hit.tenant, hit.client, &hit.user_agent),
        })
    }
}

fn known(s: &str) -> String {
    if s.is_empty() || s == woothee::woothee::VALUE_UNKNOWN {
        "Unknown".into()
    } else {
        s.to_string()
    }
}

/// IPv4-mapped IPv6 addresses as plain IPv4, so one client has one identity and one location.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The first 16 bytes of HMAC-SHA256(salt, tenant ‖ address ‖ user agent).
pub fn visitor_id(salt: &[u8], tenant: u64, client: IpAddr, user_agent: &str) -> [u8; 16] {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes a key of any length");
    mac.update(&tenant.to_be_bytes());
    match canonical(client) {
        IpAddr::V4(a) => mac.update(&a.octets()),
        IpAddr::V6(a) => mac.update(&a.octets()),
    }
    mac.update(user_agent.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut id = [0u8; 16];
    id.copy_from_slice(&full[..16]);
    id
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The path with its fragment and every query parameter but the campaign tags removed.
/// Accepts a path (`/v/oak?x=1`) or a whole URL (its path is kept).
pub fn clean_path(raw: &str) -> String {
    let raw = raw.trim();
    let base = url::Url::parse("http://site.invalid/").expect("a valid base URL");
    let Ok(u) = base.join(raw) else {
        return "/".into();
    };
    let mut path = u.path().to_string();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, v)| KEPT_PARAMS.contains(&k.as_ref()) && !v.is_empty())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !kept.is_empty() {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(kept)
            .finish();
        path.push('?');
        path.push_str(&q);
    }
    clip(&path, MAX_PATH)
}

/// `utm_source`, else `ref`, from a cleaned path.
fn campaign_source(path: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    ["utm_source", "ref"].iter().find_map(|want| {
        pairs
            .iter()
            .find(|(k, _)| k == want)
            .map(|(_, v)| clip(&v.trim().to_lowercase(), MAX_SOURCE))
            .filter(|v| !v.is_empty())
    })
}

/// The referrer's host without `www.`; none for the site's own host or a non-web referrer.
pub fn referrer_domain(referrer: &str, own_host: Option<&str>) -> Option<String> {
    let u = url::Url::parse(referrer.trim()).ok()?;
    if !matches!(u.scheme(), "http" | "https" | "android-app") {
        return None;
    }
    let host = u.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let bare = |h: &str| h.strip_prefix("www.").unwrap_or(h).to_string();
    let own = own_host.map(|h| {
        // A Host header may carry a port.
        let h = h.trim().to_ascii_lowercase();
        let h = match h.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name.to_string(),
            _ => h,
        };
        bare(h.trim_end_matches('.'))
    });
    let host = bare(&host);
    if host.is_empty() || own.as_deref() == Some(host.as_str()) {
        return None;
    }
    Some(clip(&host, MAX_SOURCE))
}
