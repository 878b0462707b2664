//! The extractor's tricky cases. The fixture reports and their comparison with ioc-finder and
//! iocextract are in `tests/prose_oracle.rs`.

use super::*;
use crate::input::{Decoder, InputFormat, InputOptions};
use time::OffsetDateTime;

fn opts() -> InputOptions {
    let mut o = InputOptions::new(OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap());
    o.format = Some(InputFormat::Prose);
    o
}

/// Decodes `text` as prose, fed in chunks of `size` bytes.
fn decode_with(text: &str, size: usize) -> Vec<Decoded> {
    let mut d = Decoder::new(opts());
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(size.max(1)) {
        d.push(chunk, &mut out).unwrap();
    }
    assert_eq!(d.finish(&mut out), Ok(InputFormat::Prose));
    out
}

/// (pattern, line, description) of each record; every chunking gives the same records.
fn extract(text: &str) -> Vec<(String, u64, String)> {
    let whole = decode_with(text, text.len());
    for size in [1, 3, 64] {
        assert_eq!(decode_with(text, size), whole, "chunk size {size}");
    }
    whole
        .iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!(d.index, i as u64);
            let o = d.object.as_ref().expect("prose records are indicators");
            let desc = o["description"].as_str().unwrap().to_string();
            assert_eq!(d.original.as_deref(), Some(desc.as_str()));
            (o["pattern"].as_str().unwrap().to_string(), d.line, desc)
        })
        .collect()
}

fn patterns(text: &str) -> Vec<String> {
    extract(text).into_iter().map(|(p, _, _)| p).collect()
}

#[test]
fn defanged_forms_are_refanged() {
    let text = "C2 at hxxps://update-check[.]example[.]net/gate.php and evil[dot]example(dot)org, \
                also 198.51.100[.]23 and fxp://files[.]example[.]net/x.bin; mail billing[at]example[.]org \
                or ops[@]example(.)com; hXXp://203.0.113[.]5[:]8080/a and http[:]//plain.example[.]io/.";
    assert_eq!(
        patterns(text),
        [
            "[url:value = 'https://update-check.example.net/gate.php']",
            "[domain-name:value = 'evil.example.org']",
            "[ipv4-addr:value = '198.51.100.23']",
            "[url:value = 'ftp://files.example.net/x.bin']",
            "[email-addr:value = 'billing@example.org']",
            "[email-addr:value = 'ops@example.com']",
            "[url:value = 'http://203.0.113.5:8080/a']",
            "[url:value = 'http://plain.example.io/']",
        ]
    );
}

#[test]
fn spaced_defang_marks_stay_in_the_word() {
    assert_eq!(
        patterns("The domain evil [.] example [dot] com was seen."),
        ["[domain-name:value = 'evil.example.com']"]
    );
}

#[test]
fn sentence_end_punctuation_is_not_part_of_the_indicator() {
    let text =
        "It beacons to https://cdn.example.net/x/y.php. Then (see https://a.example.org/p) it \
                stops! Is it sync.example.com? Yes: \"198.51.100.7\", 'bad.example.biz'.";
    assert_eq!(
        patterns(text),
        [
            "[url:value = 'https://cdn.example.net/x/y.php']",
            "[url:value = 'https://a.example.org/p']",
            "[domain-name:value = 'sync.example.com']",
            "[ipv4-addr:value = '198.51.100.7']",
            "[domain-name:value = 'bad.example.biz']",
        ]
    );
}

#[test]
fn versions_cves_and_file_names_are_not_indicators() {
    let text = "Upgrade to version 10.2.9.1 or build 7.1.0.12 (CVE-2024-3400, CVE-2023-4966). The \
                lure invoice.pdf drops setup.exe, loader.dll and Node.js tools; see README.md, e.g. \
                Fig. 3, U.S. victims, No.1 target, 3.14 per cent, 12:30:45 UTC, std::string, and a \
                number 12345678901234567890123456789012.";
    assert_eq!(patterns(text), Vec::<String>::new());
}

#[test]
fn a_defanged_name_with_a_file_extension_is_a_domain() {
    // `.zip` is a real top-level domain; the author's defanging says it is meant as one.
    assert_eq!(
        patterns("Payloads came from invoices[.]zip and not from invoices.zip."),
        ["[domain-name:value = 'invoices.zip']"]
    );
}

#[test]
fn an_address_not_after_a_version_word_is_kept() {
    assert_eq!(
        patterns("Version 2 talks to 192.0.2.10, and version 10.0.0.1 is the patch."),
        ["[ipv4-addr:value = '192.0.2.10']"]
    );
}

#[test]
fn prefixed_and_suffixed_values() {
    let text = "SHA256:4A3C1F0D5E6B7A8C9D0E1F2A3B4C5D6E7F8A9B0C1D2E3F4A5B6C7D8E9F0A1B2C md5=0123456789abcdef0123456789abcdef \
                mailto:abuse@example.org 198.51.100.9:443 c2.example.net:8443 staging.example.com/admin/login.php";
    assert_eq!(
        patterns(text),
        [
            "[file:hashes.'SHA-256' = '4a3c1f0d5e6b7a8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c']",
            "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']",
            "[email-addr:value = 'abuse@example.org']",
            "[ipv4-addr:value = '198.51.100.9']",
            "[domain-name:value = 'c2.example.net']",
            "[domain-name:value = 'staging.example.com']",
        ]
    );
}

#[test]
fn ipv6_and_cidr() {
    assert_eq!(
        patterns("Traffic from 2001:db8:85a3::8a2e:370:7334 and 198.51.100.0/24, not ::."),
        [
            "[ipv6-addr:value = '2001:db8:85a3::8a2e:370:7334']",
            "[ipv4-addr:value = '198.51.100.0/24']",
        ]
    );
}

#[test]
fn one_record_per_indicator_with_its_first_sentence_and_line() {
    let text = "Intro line.\n\nThe actor used evil[.]example[.]com first.\nLater EVIL.example.com again,\nand \
                hxxp://evil[.]example[.]com/ too. Hash 0123456789ABCDEF0123456789abcdef and\n0123456789abcdef0123456789ABCDEF.\n";
    assert_eq!(
        extract(text),
        [
            (
                "[domain-name:value = 'evil.example.com']".into(),
                3,
                "The actor used evil[.]example[.]com first.".into()
            ),
            (
                "[url:value = 'http://evil.example.com/']".into(),
                5,
                "Later EVIL.example.com again, and hxxp://evil[.]example[.]com/ too.".into()
            ),
            (
                "[file:hashes.MD5 = '0123456789abcdef0123456789abcdef']".into(),
                5,
                "Hash 0123456789ABCDEF0123456789abcdef and 0123456789abcdef0123456789ABCDEF."
                    .into()
            ),
        ]
    );
}

#[test]
fn markdown_tables_code_and_links() {
    let text = "# IOCs for sync.example.net\n\
                | Type | Value | Note |\n\
                |------|-------|------|\n\
                | SHA-1 | `da39a3ee5e6b4b0d3255bfef95601890afd80709` | loader |\n\
                | Domain | **cdn-update[.]example[.]com** | C2 |\n\
                \n\
                Read [our earlier post](https://blog.example.com/2024/apt) or `curl hxxp://dl.example[.]org/a.sh`.\n\
                ```\n\
                203.0.113.77\n\
                stage2[.]example[.]net\n\
                ```\n";
    assert_eq!(
        extract(text),
        [
            (
                "[domain-name:value = 'sync.example.net']".into(),
                1,
                "# IOCs for sync.example.net".into()
            ),
            (
                "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']".into(),
                4,
                "| SHA-1 | `da39a3ee5e6b4b0d3255bfef95601890afd80709` | loader |".into()
            ),
            (
                "[domain-name:value = 'cdn-update.example.com']".into(),
                5,
                "| Domain | **cdn-update[.]example[.]com** | C2 |".into()
            ),
            (
                "[url:value = 'http://dl.example.org/a.sh']".into(),
                7,
                "Read [our earlier post] or `curl hxxp://dl.example[.]org/a.sh`.".into()
            ),
            (
                "[ipv4-addr:value = '203.0.113.77']".into(),
                9,
                "203.0.113.77".into()
            ),
            (
                "[domain-name:value = 'stage2.example.net']".into(),
                10,
                "stage2[.]example[.]net".into()
            ),
        ]
    );
}

#[test]
fn html_tags_scripts_comments_and_entities() {
    let text = "<!DOCTYPE html>\n<html><head><title>Report on c2.example.net</title>\n\
                <style>.x { background: url(https://fonts.example.com/a.woff) }</style>\n\
                <script>var u = \"https://analytics.example.com/t.js\";\n\
                track('x.example.org');</script></head>\n\
                <body><p>The loader calls <a href=\"https://ref.example.com/post\">hxxps://gate&#46;example&#x2e;org/p?a=1&amp;b=2</a>.\n\
                <!-- hidden: 198.51.100.99 -->\n\
                Mail&nbsp;from spoof&#64;example&period;com.</p>\n\
                <table><tr><td>4a3c1f0d5e6b7a8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c</td><td>dropper</td></tr></table>\n\
                <p data-x='a > b'>End 203.0.113.9</p></body></html>\n";
    assert_eq!(
        extract(text),
        [
            (
                "[domain-name:value = 'c2.example.net']".into(),
                2,
                "Report on c2.example.net".into()
            ),
            (
                "[url:value = 'https://gate.example.org/p?a=1&b=2']".into(),
                6,
                "The loader calls hxxps://gate.example.org/p?a=1&b=2.".into()
            ),
            (
                "[email-addr:value = 'spoof@example.com']".into(),
                8,
                "Mail from spoof@example.com.".into()
            ),
            (
                "[file:hashes.'SHA-256' = '4a3c1f0d5e6b7a8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c']".into(),
                9,
                "| 4a3c1f0d5e6b7a8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c | | dropper |".into()
            ),
            ("[ipv4-addr:value = '203.0.113.9']".into(), 10, "End 203.0.113.9".into()),
        ]
    );
}

#[test]
fn plain_text_with_angle_brackets_is_not_html() {
    assert_eq!(
        patterns(
            "Fewer than <10 hosts, a<b, reached 192.0.2.44.\n<not a tag at the start> 192.0.2.45\n"
        ),
        [
            "[ipv4-addr:value = '192.0.2.44']",
            "[ipv4-addr:value = '192.0.2.45']"
        ]
    );
}

#[test]
fn long_sentences_are_cut_in_the_description() {
    let text = format!("{} 192.0.2.1 end.", "word ".repeat(300));
    let r = extract(&text);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].2.chars().count(), DESCRIPTION_MAX);
    assert!(r[0].2.ends_with('…'));
}

#[test]
fn a_long_paragraph_is_processed_in_bounded_pieces() {
    // No blank line for far more than PARA_CAP bytes: every indicator is still found, once.
    let mut text = String::new();
    for i in 0..4000 {
        text.push_str(&format!("host{i}.example.com is listed\n"));
    }
    let r = decode_with(&text, 4096);
    assert_eq!(r.len(), 4000);
    assert_eq!(r[3999].line, 4000);
}

#[test]
fn refanged_values_carry_a_normalised_warning() {
    let r = decode_with("Seen: evil[.]example[.]com.", 1000);
    assert_eq!(r.len(), 1);
    let w: Vec<String> = r[0].warnings.iter().map(|p| p.message.clone()).collect();
    assert_eq!(w, ["refanged 'evil[.]example[.]com' to 'evil.example.com'"]);
}

#[test]
fn tokens_keep_marks_and_split_on_brackets() {
    let s = "see (evil[.]com) and [x] a [dot] b";
    let words: Vec<&str> = tokens(s).into_iter().map(|(a, b)| &s[a..b]).collect();
    assert_eq!(words, ["see", "evil[.]com", "and", "x", "a [dot] b"]);
    assert_eq!(canonical("a [dot] b(.)c[AT]d"), "a[.]b[.]c[@]d");
    assert_eq!(canonical("FXP://x"), "ftp://x");
}

#[test]
fn the_format_is_named_prose_and_never_detected() {
    assert_eq!("prose".parse::<InputFormat>(), Ok(InputFormat::Prose));
    assert_eq!(InputFormat::Prose.to_string(), "prose");
    let mut d = Decoder::new(InputOptions::new(
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
    ));
    let mut out = Vec::new();
    d.push(b"The actor used evil.example.com in March.\n", &mut out)
        .unwrap();
    assert_eq!(d.finish(&mut out), Ok(InputFormat::Text));
}

#[test]
fn a_leading_comment_does_not_make_markdown_html() {
    let text = "<!-- written by\nthe team: 192.0.2.1 -->\n\n| a | 192.0.2.2 |\n| b | 192.0.2.3 |\n";
    assert_eq!(
        extract(text),
        [
            (
                "[ipv4-addr:value = '192.0.2.2']".into(),
                4,
                "| a | 192.0.2.2 |".into()
            ),
            (
                "[ipv4-addr:value = '192.0.2.3']".into(),
                5,
                "| b | 192.0.2.3 |".into()
            ),
        ]
    );
    assert_eq!(
        patterns("<!-- x --> <!-- y --><p>Seen 192.0.2.4</p>"),
        ["[ipv4-addr:value = '192.0.2.4']"]
    );
}
