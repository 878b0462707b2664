//! The text-list reader: each shape vendors publish, table-driven, and the property tests of
//! issue 11 (refanging gives the observable back; case variants of a domain give one id).

use proptest::prelude::*;
use time::macros::datetime;

use super::*;

fn read(line: &str) -> Reading {
    match read_value(line) {
        ReadValue::Observable(r) => r,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn refused(line: &str) -> Refusal {
    match read_value(line) {
        ReadValue::Refused(r) => r,
        other => panic!("{line:?}: {other:?}"),
    }
}

#[test]
fn each_published_shape_gives_its_observable_comment_and_port() {
    use Observable::*;
    // (line, observable, value as compared, description). Shapes from the vendor lists in
    // ../shared/realworld (Talos, Unit 42, Spamhaus; see its README) and the examples.
    let cases: &[(&str, Observable, &str, Option<&str>)] = &[
        ("198.51.100.7", Ipv4, "198.51.100.7", None),
        ("1.10.16.0/20 ", Ipv4, "1.10.16.0/20", None),
        ("2a12:2640::/29", Ipv6, "2a12:2640::/29", None),
        ("2001:DB8::1", Ipv6, "2001:db8::1", None),
        (
            "17a2dd45f9f57161b4cc40924296c4deab65beea447efb46d3178a9e76815d06 (DKnife downloader)",
            Sha256,
            "17a2dd45f9f57161b4cc40924296c4deab65beea447efb46d3178a9e76815d06",
            Some("DKnife downloader"),
        ),
        (
            "F818c74cbf88bb2a8c79650fb2bdfa6e9a9bd38d58a3433e37756da7d981a130 (server.pem) ",
            Sha256,
            "f818c74cbf88bb2a8c79650fb2bdfa6e9a9bd38d58a3433e37756da7d981a130",
            Some("server.pem"),
        ),
        (
            "2550aa4c4bc0a020ec4b16973df271b81118a7abea77f77fec2f575a32dc3444 (Install.exe, RAR SFX)",
            Sha256,
            "2550aa4c4bc0a020ec4b16973df271b81118a7abea77f77fec2f575a32dc3444",
            Some("Install.exe, RAR SFX"),
        ),
        ("D41D8CD98F00B204E9800998ECF8427E", Md5, "d41d8cd98f00b204e9800998ecf8427e", None),
        ("1.2.3[.]4 (c2)", Ipv4, "1.2.3.4", Some("c2")),
        ("110[.]92[.]64[.]17  (dknife c2)", Ipv4, "110.92.64.17", Some("dknife c2")),
        ("1.2.3.4:443", Ipv4, "1.2.3.4", Some("port 443")),
        (
            "89[.]195[.]5[.]18:4553 (wizardnet downloader)",
            Ipv4,
            "89.195.5.18",
            Some("wizardnet downloader; port 4553"),
        ),
        ("[198.51.100.7]:8080", Ipv4, "198.51.100.7", Some("port 8080")),
        ("[2001:db8::1]:443 c2", Ipv6, "2001:db8::1", Some("c2; port 443")),
        ("evil.example:8443", Domain, "evil.example", Some("port 8443")),
        (
            "hxxps://x[.]com/a  (c2)",
            Url,
            "https://x.com/a",
            Some("c2"),
        ),
        ("http://x.example/#frag", Url, "http://x.example/#frag", None),
        ("HTTP://EVIL.Example/Path", Url, "http://evil.example/Path", None),
        ("fxp://files[.]example/a", Url, "ftp://files.example/a", None),
        ("http://evil.example/a,b", Url, "http://evil.example/a,b", None),
        (
            "host.example/soft/name@_123.exe",
            Url,
            "http://host.example/soft/name@_123.exe",
            None,
        ),
        (
            "128[.]199[.]72[.]218[:]4700/wp-content/x.view/",
            Url,
            "http://128.199.72.218:4700/wp-content/x.view/",
            None,
        ),
        (
            "178stu[.]com/new2_r_login.exe?collcc=739845076&",
            Url,
            "http://178stu.com/new2_r_login.exe?collcc=739845076&",
            None,
        ),
        ("EVIL.COM", Domain, "evil.com", None),
        ("evil.com.", Domain, "evil.com", None),
        ("ad[.]scgawj[.]com (shadowpad C2)", Domain, "ad.scgawj.com", Some("shadowpad C2")),
        ("evil[dot]example", Domain, "evil.example", None),
        ("evil(DOT)example", Domain, "evil.example", None),
        ("evil{.}example", Domain, "evil.example", None),
        ("evil[.]zip", Domain, "evil.zip", None),
        ("sub.example.co.uk", Domain, "sub.example.co.uk", None),
        ("x.github.io", Domain, "x.github.io", None),
        ("github.io", Domain, "github.io", None),
        ("evil.example # seen 2024-01-01", Domain, "evil.example", Some("seen 2024-01-01")),
        ("evil.example\tC2 server", Domain, "evil.example", Some("C2 server")),
        ("198.51.100.7,malware", Ipv4, "198.51.100.7", Some("malware")),
        ("evil.example;c2", Domain, "evil.example", Some("c2")),
        ("- evil.example", Domain, "evil.example", None),
        ("evil [.] example [dot] com (c2)", Domain, "evil.example.com", Some("c2")),
        ("alice [at] evil [.] example", Email, "alice@evil.example", None),
        ("hxxp://evil [.] example/a (dropped at start)", Url, "http://evil.example/a", Some("dropped at start")),
        (
            "SHA256: 17A2DD45F9F57161B4CC40924296C4DEAB65BEEA447EFB46D3178A9E76815D06 (loader)",
            Sha256,
            "17a2dd45f9f57161b4cc40924296c4deab65beea447efb46d3178a9e76815d06",
            Some("loader"),
        ),
        ("md5=d41d8cd98f00b204e9800998ecf8427e", Md5, "d41d8cd98f00b204e9800998ecf8427e", None),
        ("- Domain: evil[.]example", Domain, "evil.example", None),
        ("url:hxxp://evil[.]example/a", Url, "http://evil.example/a", None),
        ("IP = 198.51.100.7", Ipv4, "198.51.100.7", None),
        ("* 198[.]51[.]100[.]7 (c2)", Ipv4, "198.51.100.7", Some("c2")),
        ("• hxxp://evil[.]example/a", Url, "http://evil.example/a", None),
        ("evil.example, c2 // 2024", Domain, "evil.example", Some("c2 // 2024")),
        ("alice[@]evil[.]example", Email, "alice@evil.example", None),
        ("alice[at]Evil.Example", Email, "alice@evil.example", None),
        ("mailto:bob@evil.example", Email, "bob@evil.example", None),
        ("Setup2.exe", FileName, "Setup2.exe", None),
        ("invoice.pdf (lure)", FileName, "invoice.pdf", Some("lure")),
        ("notes.one", FileName, "notes.one", None),
        ("payload.zip", FileName, "payload.zip", None),
        ("evil.pl", Domain, "evil.pl", None),
    ];
    for (line, o, v, desc) in cases {
        let r = read(line);
        assert_eq!(
            (r.observable, r.value.as_str(), r.description().as_deref()),
            (*o, *v, *desc),
            "{line}"
        );
    }
}

#[test]
fn blank_and_comment_lines_are_nothing() {
    for line in [
        "",
        "   ",
        "\t",
        "# IOCs",
        "  # indented comment",
        "#1.2.3.4",
    ] {
        assert_eq!(read_value(line), ReadValue::Empty, "{line:?}");
    }
}

#[test]
fn headings_and_prose_are_not_indicators_and_bad_values_are_invalid() {
    let not: &[&str] = &[
        "LEASHTEST",
        "Startup script for JARLEASH ",
        "Suspicious URLs",
        "C2/Sality-A",
        "Compromised/Abused websites",
        "APPENDIX A:",
        "203 URLS THAT RETURNED SHADE (TROLDESH) RANSOMWARE EXE FROM 2019-03-01 THROUGH 2019-04-24:",
        "localhost",
        "12345",
        "this is prose",
        "[heading]",
        "URL:",
        "Domain: none seen",
    ];
    for line in not {
        let r = refused(line);
        assert_eq!(r.code, Code::NotAnIndicator, "{line}: {}", r.reason);
    }
    let invalid: &[(&str, &str)] = &[
        ("1.2.3", "is not a valid IPv4 address"),
        ("198.51.100.256", "is not a valid IPv4 address"),
        ("1.2.3.0/33", "is not a valid IPv4 CIDR range"),
        ("a@b", "is not a valid e-mail address"),
        ("alice@@evil.example", "is not a valid e-mail address"),
        ("alice@evil.notatld", "is not in the Public Suffix List"),
        (
            "evil.notatld",
            "top-level label 'notatld' is not in the Public Suffix List",
        ),
        ("co.uk", "is a public suffix itself"),
        ("http://exa mple.com", "is not a valid URL"),
        ("http://intranet/x", "is not a valid URL"),
        ("evil.notatld/path", "host 'evil.notatld'"),
        ("1.2.3.4:99999", "is not a valid port"),
        (&"a".repeat(63), "63 hex digits"),
    ];
    for (line, why) in invalid {
        let r = refused(line);
        assert_eq!(r.code, Code::InvalidObservable, "{line}: {}", r.reason);
        assert!(r.reason.contains(why), "{line}: {}", r.reason);
    }
}

#[test]
fn messages_quote_the_line_as_written() {
    let now = datetime!(2025-01-01 0:00 UTC);
    let e = line_to_stix("1[.]2[.]3  (c2)", &Defaults::default(), now)
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, Code::InvalidObservable);
    assert!(
        e.message
            .starts_with("'1[.]2[.]3  (c2)' is not a valid IPv4 address"),
        "{}",
        e.message
    );
    let e = line_to_stix("Startup script for JARLEASH ", &Defaults::default(), now)
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, Code::NotAnIndicator);
    assert!(
        e.message
            .starts_with("'Startup script for JARLEASH' is not an indicator"),
        "{}",
        e.message
    );
    assert!(line_to_stix("# c", &Defaults::default(), now).is_none());
}

/// The framer queues every line `is_blank_or_comment` keeps for conversion on the decode workers,
/// which expect `line_to_stix` to make a record of it: the two must agree on every line.
#[test]
fn blank_and_comment_lines_are_exactly_the_lines_that_are_no_record() {
    let now = datetime!(2025-01-01 0:00 UTC);
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("   \t", true),
        ("\u{a0}\u{2003}", true),
        ("# heading", true),
        ("  \u{a0}# indented comment", true),
        ("#", true),
        ("evil.example", false),
        ("- ", false),
        ("Startup script for JARLEASH", false),
        ("1.2.3.4 # c2", false),
        ("\u{feff}", false),
    ];
    for &(line, none) in cases {
        assert_eq!(is_blank_or_comment(line), none, "{line:?}");
        assert_eq!(
            line_to_stix(line, &Defaults::default(), now).is_none(),
            none,
            "{line:?}"
        );
    }
}

#[test]
fn a_line_becomes_an_indicator_with_description_and_one_normalised_warning() {
    let now = datetime!(2025-01-01 0:00 UTC);
    let (o, w) = line_to_stix(
        "89[.]195[.]5[.]18:4553 (wizardnet downloader)",
        &Defaults::default(),
        now,
    )
    .unwrap()
    .unwrap();
    assert_eq!(o["pattern"], "[ipv4-addr:value = '89.195.5.18']");
    assert_eq!(o["name"], "89.195.5.18");
    assert_eq!(o["description"], "wizardnet downloader; port 4553");
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].code, Code::Normalised);
    assert_eq!(
        w[0].message,
        "refanged '89[.]195[.]5[.]18:4553' to '89.195.5.18:4553'; port 4553 kept in the description (a STIX address or domain has no port)"
    );
    let (o, w) = line_to_stix("EVIL.COM", &Defaults::default(), now)
        .unwrap()
        .unwrap();
    assert_eq!(o["pattern"], "[domain-name:value = 'evil.com']");
    assert!(o.get("description").is_none());
    assert!(w.is_empty());
}

#[test]
fn refang_reads_every_mark_in_any_case() {
    let cases = [
        ("hxxp://evil[.]example/", "http://evil.example/"),
        ("hXXps://evil(.)example", "https://evil.example"),
        ("HXXP[://]evil[DOT]example", "http://evil.example"),
        ("fxp://a{.}example", "ftp://a.example"),
        ("a[at]b(dot)example", "a@b.example"),
        ("a(@)b{dot}example", "a@b.example"),
        ("a{@}b(AT)c", "a@b@c"),
        ("1.2.3.4[:]80", "1.2.3.4:80"),
        ("1.2.3.4(:)80", "1.2.3.4:80"),
        ("evil.example[/]x", "evil.example/x"),
    ];
    for (defanged, plain) in cases {
        assert_eq!(refang(defanged), plain, "{defanged}");
    }
    assert!(matches!(
        refang("example.com"),
        Cow::Borrowed("example.com")
    ));
    assert!(matches!(refang("(loader)"), Cow::Borrowed("(loader)")));
}

#[test]
fn psl_knows_ambiguous_suffixes_and_no_file_extension() {
    // Keeps the two lists honest as the Public Suffix List grows: an ambiguous suffix is a
    // top-level domain, a plain file extension is not (if one becomes a TLD, decide it here).
    for s in AMBIGUOUS_SUFFIXES {
        assert!(psl::suffix(s.as_bytes()).unwrap().is_known(), "{s}");
    }
    for e in FILE_EXTENSIONS {
        assert!(!psl::suffix(e.as_bytes()).unwrap().is_known(), "{e}");
    }
}

/// A defanged form of `plain`: each `.`, `@`, a `:` after the host, and the scheme, replaced by
/// one of its marks chosen by `picks`.
fn defang(plain: &str, picks: &[u8]) -> String {
    let mut p = picks.iter().cycle();
    let mut next = |n: usize| usize::from(*p.next().unwrap()) % n;
    let mut s = String::new();
    let mut rest = plain;
    for (scheme, marks) in [
        (
            "http://",
            &["hxxp://", "hXXp://", "hxxp[://]", "http[://]"][..],
        ),
        ("https://", &["hxxps://", "HXXPS://", "hxxps[://]"][..]),
        ("ftp://", &["fxp://", "fxp[://]"][..]),
    ] {
        if let Some(r) = rest.strip_prefix(scheme) {
            s.push_str(marks[next(marks.len())]);
            rest = r;
            break;
        }
    }
    for c in rest.chars() {
        let marks: &[&str] = match c {
            '.' => &[".", "[.]", "(.)", "{.}", "[dot]", "(dot)", "{dot}", "[DOT]"],
            '@' => &["@", "[@]", "(@)", "{@}", "[at]", "(at)", "{at}"],
            ':' => &[":", "[:]", "(:)"],
            _ => {
                s.push(c);
                continue;
            }
        };
        s.push_str(marks[next(marks.len())]);
    }
    s
}

fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

fn domain() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(label(), 1..4),
        prop::sample::select(vec![
            "com", "net", "org", "co.uk", "ru", "example", "info", "de",
        ]),
    )
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

/// Observables as a list holds them (already in the form `read_value` stores).
fn observable() -> impl Strategy<Value = (Observable, String)> {
    prop_oneof![
        domain().prop_map(|d| (Observable::Domain, d)),
        (any::<[u8; 4]>()).prop_map(|b| (
            Observable::Ipv4,
            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
        )),
        (label(), domain()).prop_map(|(l, d)| (Observable::Email, format!("{l}@{d}"))),
        (
            prop::sample::select(vec!["http", "https", "ftp"]),
            domain(),
            "(/[a-zA-Z0-9_-]{1,8}){0,3}"
        )
            .prop_map(|(s, d, p)| (Observable::Url, format!("{s}://{d}{p}"))),
        (domain(), 1u16..).prop_map(|(d, p)| (Observable::Url, format!("http://{d}:{p}/x"))),
    ]
}

proptest! {
    #[test]
    fn refanging_any_defanged_form_gives_the_observable_back(
        (o, plain) in observable(),
        picks in prop::collection::vec(any::<u8>(), 1..16),
    ) {
        let defanged = defang(&plain, &picks);
        let back = refang(&defanged);
        prop_assert_eq!(back.as_ref(), plain.as_str());
        let r = read(&defanged);
        prop_assert_eq!(r.observable, o);
        prop_assert_eq!(&r.value, &plain);
        prop_assert_eq!(r.changes.is_empty(), defanged == plain);
    }

    #[test]
    fn case_variants_of_a_domain_give_one_id(
        d in domain(),
        flips in prop::collection::vec(any::<bool>(), 1..64),
        defanged in any::<bool>(),
    ) {
        let variant: String = d
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
            .collect();
        let variant = if defanged { variant.replace('.', "[.]") } else { variant };
        let now = datetime!(2025-01-01 0:00 UTC);
        let id = |line: &str| {
            let (o, _) = line_to_stix(line, &Defaults::default(), now).unwrap().unwrap();
            o["id"].as_str().unwrap().to_string()
        };
        prop_assert_eq!(id(&variant), id(&d));
        // And as the host of a URL, and the domain of an e-mail address.
        prop_assert_eq!(
            id(&format!("HTTP://{variant}/Path")),
            id(&format!("http://{d}/Path"))
        );
        prop_assert_eq!(id(&format!("Alice@{variant}")), id(&format!("Alice@{d}")));
    }
}

proptest! {
    /// Whatever a line holds, reading it does not panic; what it accepts passes the observable
    /// check STIX validation applies, and what it refuses has one of the two refusal codes.
    #[test]
    fn any_line_reads_to_a_checked_observable_or_a_refusal(
        line in prop_oneof![
            "\\PC{0,60}",
            "[a-fA-F0-9.:/@\\[\\](){}#,; \\t_xXhtpsdoamz-]{0,70}",
        ]
    ) {
        match read_value(&line) {
            ReadValue::Empty => prop_assert!(line.trim().is_empty() || line.trim().starts_with('#')),
            ReadValue::Observable(r) => {
                let checked = r.observable.check(&r.value);
                prop_assert!(checked.is_ok(), "{:?} -> {:?}: {:?}", line, r, checked);
            }
            ReadValue::Refused(r) => prop_assert!(
                matches!(r.code, Code::NotAnIndicator | Code::InvalidObservable),
                "{:?}",
                r
            ),
        }
    }
}
