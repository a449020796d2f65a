//! Where a request comes from: its socket peer, whether it arrived over
//! HTTPS, and whether the browser says it comes from this site.
//!
//! A cookie is ambient (the browser sends it on any request to this site),
//! so a cookie-authenticated write or WebSocket upgrade must come from this
//! site's own pages: its `Origin` (when the browser sends one) must be this
//! site's, and `Sec-Fetch-Site` must not say `cross-site`. Bearer tokens are
//! not ambient and need no such check. The API's extractors apply these
//! checks.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use ipnet::IpNet;

/// The socket peer's address.
pub fn peer(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// IPv4 addresses mapped into IPv6 compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn trusted(peer: IpAddr, proxies: &[IpNet]) -> bool {
    let peer = canonical(peer);
    proxies.iter().any(|net| net.contains(&peer))
}

/// Whether the request arrived over HTTPS: directly, or per a trusted
/// proxy's `X-Forwarded-Proto`.
pub fn is_https(parts: &Parts, proxies: &[IpNet]) -> bool {
    if parts.uri.scheme_str() == Some("https") {
        return true;
    }
    trusted(peer(parts), proxies)
        && forwarded(&parts.headers, "x-forwarded-proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The first value of a proxy header.
fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// This site's origin as the request names it (`scheme://host[:port]`).
fn site_origin(parts: &Parts, proxies: &[IpNet]) -> Option<String> {
    let host = if trusted(peer(parts), proxies) {
        forwarded(&parts.headers, "x-forwarded-host")
    } else {
        None
    }
    .or_else(|| {
        parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
    })
    .or_else(|| parts.uri.authority().map(|a| a.as_str()))?;
    let scheme = if is_https(parts, proxies) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

/// False when the browser says the request comes from another site.
/// Clients that send neither `Origin` nor `Sec-Fetch-Site` (curl, SDKs) are
/// not browsers and carry no ambient cookie of a victim.
pub fn same_site(parts: &Parts, proxies: &[IpNet]) -> bool {
    if let Some(site) = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return false;
        }
    }
    match parts.headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            site_origin(parts, proxies).is_some_and(|site| origin.eq_ignore_ascii_case(&site))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = Request::builder().uri("/api/v1/rooms/general/messages");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn same_origin_and_originless_requests_pass_foreign_origins_do_not() {
        let host = ("host", "chat.example:8080");
        assert!(same_site(&parts(&[host]), &[]));
        assert!(same_site(
            &parts(&[host, ("origin", "http://chat.example:8080")]),
            &[]
        ));
        assert!(!same_site(
            &parts(&[host, ("origin", "http://evil.example")]),
            &[]
        ));
        assert!(!same_site(
            &parts(&[host, ("origin", "https://chat.example:8080")]),
            &[]
        ));
        assert!(!same_site(&parts(&[host, ("origin", "null")]), &[]));
        assert!(!same_site(
            &parts(&[host, ("sec-fetch-site", "cross-site")]),
            &[]
        ));
        assert!(same_site(
            &parts(&[host, ("sec-fetch-site", "same-origin")]),
            &[]
        ));
    }

    #[test]
    fn https_is_believed_only_from_trusted_proxies() {
        let proto = ("x-forwarded-proto", "https");
        // No ConnectInfo: the peer counts as 127.0.0.1.
        assert!(!is_https(&parts(&[proto]), &[]));
        let local: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(is_https(&parts(&[proto]), &local));
        assert!(!is_https(&parts(&[("x-forwarded-proto", "http")]), &local));
        let behind = parts(&[
            ("host", "internal:8080"),
            ("x-forwarded-host", "chat.example"),
            proto,
            ("origin", "https://chat.example"),
        ]);
        assert!(same_site(&behind, &local));
        assert!(!same_site(&behind, &[]));
    }
}
