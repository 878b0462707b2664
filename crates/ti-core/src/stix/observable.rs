//! Observable value checks: is this string a valid value for its observable type?
//!
//! Used wherever a record names an observable type (single-comparison STIX patterns here; CSV,
//! text and tiIndicator fields in the decoders), so a bad value is rejected locally with a
//! precise message instead of by the service.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The observable kinds ti-ingest knows how to check and to turn into a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Observable {
    Ipv4,
    Ipv6,
    Domain,
    Url,
    Email,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    FileName,
}

impl Observable {
    /// The STIX object path whose value this observable is, as [`super::pattern::single_comparison`]
    /// returns it (canonical form).
    pub fn pattern_path(self) -> &'static str {
        match self {
            Observable::Ipv4 => "ipv4-addr:value",
            Observable::Ipv6 => "ipv6-addr:value",
            Observable::Domain => "domain-name:value",
            Observable::Url => "url:value",
            Observable::Email => "email-addr:value",
            Observable::Md5 => "file:hashes.MD5",
            Observable::Sha1 => "file:hashes.'SHA-1'",
            Observable::Sha256 => "file:hashes.'SHA-256'",
            Observable::Sha512 => "file:hashes.'SHA-512'",
            Observable::FileName => "file:name",
        }
    }

    /// The observable an object path (canonical, from `single_comparison`) holds, if a known one.
    /// Hash names are matched case-insensitively and with or without the hyphen
    /// (`'SHA-256'`, `SHA256`), as producers spell them both ways.
    pub fn from_pattern_path(path: &str) -> Option<Observable> {
        let known = [
            Observable::Ipv4,
            Observable::Ipv6,
            Observable::Domain,
            Observable::Url,
            Observable::Email,
            Observable::FileName,
        ];
        if let Some(o) = known.into_iter().find(|o| o.pattern_path() == path) {
            return Some(o);
        }
        let algo = path.strip_prefix("file:hashes.")?;
        let algo = algo
            .trim_matches('\'')
            .replace('-', "")
            .to_ascii_uppercase();
        match algo.as_str() {
            "MD5" => Some(Observable::Md5),
            "SHA1" => Some(Observable::Sha1),
            "SHA256" => Some(Observable::Sha256),
            "SHA512" => Some(Observable::Sha512),
            _ => None,
        }
    }

    /// Checks `value` for this observable type; the error says what was expected.
    pub fn check(self, value: &str) -> Result<(), String> {
        let what = self.pattern_path();
        let ok = match self {
            Observable::Ipv4 => is_ipv4_or_cidr(value),
            Observable::Ipv6 => is_ipv6_or_cidr(value),
            Observable::Domain => {
                return check_domain(value)
                    .map_err(|e| format!("{what} '{value}' is not a valid domain name: {e}"))
            }
            Observable::Url => {
                return check_url(value)
                    .map_err(|e| format!("{what} '{value}' is not a valid URL: {e}"))
            }
            Observable::Email => {
                return check_email(value)
                    .map_err(|e| format!("{what} '{value}' is not a valid e-mail address: {e}"))
            }
            Observable::Md5 | Observable::Sha1 | Observable::Sha256 | Observable::Sha512 => {
                let digits = self.hex_digits();
                if value.len() == digits && value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    true
                } else {
                    return Err(format!(
                        "{what} '{value}' is not a {} hash: expected {digits} hex digits",
                        self.hash_name()
                    ));
                }
            }
            Observable::FileName => !value.is_empty(),
        };
        if ok {
            Ok(())
        } else {
            let expected = match self {
                Observable::Ipv4 => "an IPv4 address or CIDR range",
                Observable::Ipv6 => "an IPv6 address or CIDR range",
                _ => "a non-empty value",
            };
            Err(format!("{what} '{value}' is not {expected}"))
        }
    }

    fn hex_digits(self) -> usize {
        match self {
            Observable::Md5 => 32,
            Observable::Sha1 => 40,
            Observable::Sha256 => 64,
            _ => 128,
        }
    }

    fn hash_name(self) -> &'static str {
        match self {
            Observable::Md5 => "MD5",
            Observable::Sha1 => "SHA-1",
            Observable::Sha256 => "SHA-256",
            _ => "SHA-512",
        }
    }
}

/// Checks the value of a canonical object path when it is a known observable; `None` when the
/// path is not one this module checks.
pub fn check_path_value(path: &str, value: &str) -> Option<Result<(), String>> {
    Observable::from_pattern_path(path).map(|o| o.check(value))
}

fn split_prefix(value: &str, max: u8) -> Option<(&str, bool)> {
    match value.split_once('/') {
        None => Some((value, true)),
        Some((addr, bits)) => {
            let ok = !bits.is_empty()
                && bits.len() <= 3
                && bits.bytes().all(|b| b.is_ascii_digit())
                && bits.parse::<u8>().is_ok_and(|b| b <= max);
            Some((addr, ok))
        }
    }
}

/// `198.51.100.7` or `198.51.100.0/24` (dotted quad, no leading zeros, prefix 0–32).
pub fn is_ipv4_or_cidr(value: &str) -> bool {
    split_prefix(value, 32).is_some_and(|(addr, ok)| ok && addr.parse::<Ipv4Addr>().is_ok())
}

/// `2001:db8::1` or `2001:db8::/32` (prefix 0–128).
pub fn is_ipv6_or_cidr(value: &str) -> bool {
    split_prefix(value, 128).is_some_and(|(addr, ok)| ok && addr.parse::<Ipv6Addr>().is_ok())
}

/// A host name: dot-separated labels of 1–63 letters, digits, `-` or `_` (underscores appear in
/// real DNS names such as `_dmarc.example.com`), not starting or ending with `-`, at most 253
/// characters, and a top-level label that is not all digits (so an IP address is not a domain).
/// Internationalised names are accepted in Unicode or as `xn--` labels; one trailing dot is allowed.
pub fn check_domain(value: &str) -> Result<(), String> {
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.chars().count() > 253 {
        return Err("it is longer than 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("it has an empty label ('..' or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("label '{label}' is longer than 63 bytes"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("label '{label}' contains {c:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the top-level label is all digits".into());
    }
    Ok(())
}

/// `scheme://host[:port][/path][?query][#fragment]`: a scheme, and a host that is a domain name,
/// an IPv4 address or a bracketed IPv6 address (`file:` URLs may have an empty host).
pub fn check_url(value: &str) -> Result<(), String> {
    if let Some(c) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("it contains {c:?}"));
    }
    let Some((scheme, rest)) = value.split_once(':') else {
        return Err("it has no scheme (e.g. http://)".into());
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err("it has no scheme (e.g. http://)".into());
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(format!("'{scheme}:' is not followed by '//' and a host"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err("its IPv6 host has no closing ']'".into());
        };
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("'[{addr}]' is not an IPv6 address"));
        }
        check_port(after)?;
        return Ok(());
    } else {
        match host_port.rsplit_once(':') {
            Some((h, port)) => {
                check_port(&format!(":{port}"))?;
                h
            }
            None => host_port,
        }
    };
    if host.is_empty() {
        if scheme.eq_ignore_ascii_case("file") {
            return Ok(());
        }
        return Err("it has no host".into());
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    check_domain(host).map_err(|e| format!("host '{host}': {e}"))
}

fn check_port(after_host: &str) -> Result<(), String> {
    match after_host.strip_prefix(':') {
        None if after_host.is_empty() => Ok(()),
        None => Err(format!("unexpected '{after_host}' after the host")),
        // An empty port is allowed by RFC 3986 (`http://host:/`).
        Some("") => Ok(()),
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok() => Ok(()),
        Some(p) => Err(format!("port '{p}' is not a number from 0 to 65535")),
    }
}

/// `local@domain`: exactly one `@`, a non-empty local part without spaces, a valid domain.
pub fn check_email(value: &str) -> Result<(), String> {
    let mut parts = value.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("it must contain exactly one '@'".into());
    };
    if local.is_empty() {
        return Err("the part before '@' is empty".into());
    }
    if let Some(c) = local.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("the part before '@' contains {c:?}"));
    }
    check_domain(domain).map_err(|e| format!("domain '{domain}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observable_values() {
        use Observable::*;
        let cases: &[(Observable, &str, bool)] = &[
            (Ipv4, "198.51.100.7", true),
            (Ipv4, "198.51.100.0/24", true),
            (Ipv4, "0.0.0.0/0", true),
            (Ipv4, "198.51.100.256", false),
            (Ipv4, "198.51.100", false),
            (Ipv4, "198.51.100.7/33", false),
            (Ipv4, "198.51.100.7/", false),
            (Ipv4, "198.051.100.7", false),
            (Ipv4, "2001:db8::1", false),
            (Ipv4, " 198.51.100.7", false),
            (Ipv6, "2001:db8::1", true),
            (Ipv6, "2001:db8::/32", true),
            (Ipv6, "::ffff:198.51.100.7", true),
            (Ipv6, "2001:db8::1/129", false),
            (Ipv6, "2001:db8:::1", false),
            (Ipv6, "198.51.100.7", false),
            (Domain, "example.com", true),
            (Domain, "sub.example.co.uk.", true),
            (Domain, "_dmarc.example.com", true),
            (Domain, "xn--bcher-kva.example", true),
            (Domain, "bücher.example", true),
            (Domain, "localhost", true),
            (Domain, "", false),
            (Domain, "exa mple.com", false),
            (Domain, "-bad.example.com", false),
            (Domain, "bad-.example.com", false),
            (Domain, "a..example.com", false),
            (Domain, "198.51.100.7", false),
            (Domain, "http://example.com", false),
            (Domain, &format!("{}.com", "a".repeat(64)), false),
            (Url, "http://example.com", true),
            (Url, "https://user:pw@example.com:8443/a/b?c=d#e", true),
            (Url, "http://198.51.100.7/x", true),
            (Url, "http://[2001:db8::1]:80/x", true),
            (Url, "hxxp://example.com/", true),
            (Url, "file:///etc/passwd", true),
            (Url, "example.com/path", false),
            (Url, "http:/example.com", false),
            (Url, "http://", false),
            (Url, "http://exa mple.com/", false),
            (Url, "http://example.com:99999/", false),
            (Url, "http://[2001:db8::1/", false),
            (Url, "1http://example.com", false),
            (Email, "alice@example.com", true),
            (Email, "first.last+tag@sub.example.org", true),
            (Email, "alice@@example.com", false),
            (Email, "alice@bob@example.com", false),
            (Email, "@example.com", false),
            (Email, "alice", false),
            (Email, "alice@-example.com", false),
            (Md5, "d41d8cd98f00b204e9800998ecf8427e", true),
            (Md5, "D41D8CD98F00B204E9800998ECF8427E", true),
            (Md5, "d41d8cd98f00b204e9800998ecf8427", false),
            (Md5, "g41d8cd98f00b204e9800998ecf8427e", false),
            (Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709", true),
            (Sha1, "d41d8cd98f00b204e9800998ecf8427e", false),
            (Sha256, &"a".repeat(64), true),
            (Sha256, &"a".repeat(63), false),
            (Sha512, &"0".repeat(128), true),
            (FileName, "evil.exe", true),
            (FileName, "", false),
        ];
        for (o, v, valid) in cases {
            let r = o.check(v);
            assert_eq!(r.is_ok(), *valid, "{o:?} {v:?}: {r:?}");
            if let Err(e) = r {
                assert!(e.starts_with(o.pattern_path()), "{e}");
            }
        }
    }

    #[test]
    fn paths_map_to_observables() {
        assert_eq!(
            Observable::from_pattern_path("ipv4-addr:value"),
            Some(Observable::Ipv4)
        );
        assert_eq!(
            Observable::from_pattern_path("file:hashes.MD5"),
            Some(Observable::Md5)
        );
        assert_eq!(
            Observable::from_pattern_path("file:hashes.md5"),
            Some(Observable::Md5)
        );
        assert_eq!(
            Observable::from_pattern_path("file:hashes.'SHA-1'"),
            Some(Observable::Sha1)
        );
        assert_eq!(
            Observable::from_pattern_path("file:hashes.SHA256"),
            Some(Observable::Sha256)
        );
        assert_eq!(Observable::from_pattern_path("file:hashes.'SSDEEP'"), None);
        assert_eq!(Observable::from_pattern_path("process:name"), None);
        for o in [Observable::Sha1, Observable::Sha256, Observable::Domain] {
            assert_eq!(Observable::from_pattern_path(o.pattern_path()), Some(o));
        }
        assert!(check_path_value("x:y", "z").is_none());
        assert!(check_path_value("ipv4-addr:value", "nope")
            .unwrap()
            .is_err());
    }
}
