//! The STIX pattern parser (`ti_core::stix::pattern`) on arbitrary text.
//!
//! Besides "no panic, no stack overflow": `single_comparison` only recognises valid patterns,
//! and what it returns rebuilds (through `build_single`, i.e. `escape_string`) into a pattern
//! that yields the same path and value; any string survives the escape round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ti_core::stix::pattern;

/// Known issue F4 (FUZZING.md): `single_comparison` unquotes a quoted path key that is a
/// keyword or boolean (`file:hashes.'AND'` → `file:hashes.AND`), which then does not parse.
/// While `true`, such paths are exempt from the rebuild check. Fixed in ti-core (keyword keys
/// keep their quotes): `false`.
const KNOWN_ISSUE_F4_KEYWORD_KEYS_LOSE_THEIR_QUOTES: bool = false;

const KEYWORDS: &[&str] = &[
    "AND",
    "OR",
    "NOT",
    "FOLLOWEDBY",
    "LIKE",
    "MATCHES",
    "ISSUPERSET",
    "ISSUBSET",
    "EXISTS",
    "LAST",
    "IN",
    "START",
    "STOP",
    "SECONDS",
    "WITHIN",
    "REPEATS",
    "TIMES",
    "true",
    "false",
];

fn has_keyword_key(path: &str) -> bool {
    path.split([':', '.', '[', ']'])
        .any(|seg| KEYWORDS.contains(&seg))
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let checked = pattern::check(s);
    if let Err(m) = &checked {
        assert!(!m.is_empty(), "a rejected pattern says why");
    }
    if let Some((path, value)) = pattern::single_comparison(s) {
        assert!(
            checked.is_ok(),
            "single_comparison accepted an invalid pattern"
        );
        let rebuilt = pattern::build_single(&path, &value);
        if KNOWN_ISSUE_F4_KEYWORD_KEYS_LOSE_THEIR_QUOTES && has_keyword_key(&path) {
            return;
        }
        assert_eq!(
            pattern::single_comparison(&rebuilt),
            Some((path.clone(), value.clone())),
            "path {path:?} value {value:?} do not survive build_single: {rebuilt:?}"
        );
    }
    let built = pattern::build_single("ipv4-addr:value", s);
    assert_eq!(
        pattern::single_comparison(&built),
        Some(("ipv4-addr:value".to_string(), s.to_string())),
        "the value does not survive escape_string: {built:?}"
    );
});
