//! The test certificate authority: a CA and a `localhost`/`127.0.0.1` leaf signed by it, written as
//! PEM files that Azurite (`--cert`/`--key`) and every TLS client of the stack use.
//!
//! Why a CA and a separate leaf: rustls (through webpki) refuses a self-signed certificate that is
//! its own CA as "CA used as end entity", so the server must present a leaf issued by a CA the
//! client trusts.
//!
//! Why `SSL_CERT_FILE`: the storage SDK builds its own reqwest client with the rustls platform
//! verifier, which on Linux loads its roots through `rustls-native-certs`, and that reads
//! `SSL_CERT_FILE`. Pointing it at [`TestCa::bundle_pem`] makes the production code trust Azurite
//! with no test switch. `SSL_CERT_FILE` *replaces* the system roots instead of adding to them, so
//! the bundle is the test CA followed by the system's roots (when a system bundle is found): a
//! process that trusts the test CA still trusts public endpoints.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// Where Debian/Ubuntu, Fedora/RHEL and Alpine keep the system root bundle.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// A generated CA and leaf certificate, stored as PEM files in a temporary directory that lives as
/// long as this value.
#[derive(Debug)]
pub struct TestCa {
    dir: TempDir,
    ca_pem: String,
}

impl TestCa {
    /// Generates a fresh CA and a leaf for `localhost` and `127.0.0.1`, valid from a day ago for
    /// 30 days, and writes `ca.pem`, `leaf.pem`, `leaf.key` and `bundle.pem` into a new temp dir.
    pub fn generate() -> Result<TestCa> {
        let now = OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate().context("generating the test CA key")?;
        let mut ca_params = CertificateParams::default();
        // A unique name per CA: two CAs with one name make verifiers report a bad signature
        // instead of an unknown issuer, which hides what went wrong.
        let ca_name = format!("ti-ingest devkit test CA {}", uuid::Uuid::new_v4().simple());
        ca_params.distinguished_name = name(&ca_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca_params.not_before = now - Duration::days(1);
        ca_params.not_after = now + Duration::days(30);
        let ca = ca_params
            .self_signed(&ca_key)
            .context("self-signing the test CA")?;

        let leaf_key = KeyPair::generate().context("generating the leaf key")?;
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .context("leaf certificate names")?;
        leaf_params.distinguished_name = name("localhost");
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.not_before = now - Duration::days(1);
        leaf_params.not_after = now + Duration::days(30);
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca, &ca_key)
            .context("signing the leaf certificate")?;

        let dir = crate::process::owned_tempdir("tls")?;
        let ca_pem = ca.pem();
        write(dir.path(), "ca.pem", &ca_pem)?;
        write(dir.path(), "leaf.pem", &leaf.pem())?;
        write(dir.path(), "leaf.key", &leaf_key.serialize_pem())?;

        let mut bundle = ca_pem.clone();
        if let Some(system) = SYSTEM_BUNDLES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
        {
            bundle.push('\n');
            bundle.push_str(&system);
        }
        write(dir.path(), "bundle.pem", &bundle)?;

        Ok(TestCa { dir, ca_pem })
    }

    /// The process-wide CA, generated on first use. Its directory is never deleted while the
    /// process runs, so child processes and Azurite instances can keep reading the files; the
    /// next devkit process removes it once this one is gone.
    pub fn shared() -> Result<&'static TestCa> {
        static SHARED: OnceLock<std::result::Result<TestCa, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                crate::process::sweep_stale_tempdirs();
                TestCa::generate().map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("generating the test CA failed: {e}"))
    }

    /// The directory holding the PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate alone.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate's PEM text.
    pub fn ca_pem_text(&self) -> &str {
        &self.ca_pem
    }

    /// The leaf certificate Azurite presents (`--cert`).
    pub fn leaf_pem(&self) -> PathBuf {
        self.dir.path().join("leaf.pem")
    }

    /// The leaf's private key, PKCS#8 PEM (`--key`).
    pub fn leaf_key(&self) -> PathBuf {
        self.dir.path().join("leaf.key")
    }

    /// The CA plus the system roots: the value for `SSL_CERT_FILE`.
    pub fn bundle_pem(&self) -> PathBuf {
        self.dir.path().join("bundle.pem")
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "ti-ingest devkit");
    dn
}

fn write(dir: &Path, file: &str, contents: &str) -> Result<()> {
    let path = dir.join(file);
    std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_four_pem_files() {
        let ca = TestCa::generate().unwrap();
        for path in [ca.ca_pem(), ca.leaf_pem(), ca.leaf_key(), ca.bundle_pem()] {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.contains("-----BEGIN "),
                "{} is not PEM",
                path.display()
            );
        }
        assert!(std::fs::read_to_string(ca.leaf_key())
            .unwrap()
            .contains("PRIVATE KEY"));
        let bundle = std::fs::read_to_string(ca.bundle_pem()).unwrap();
        assert!(bundle.starts_with(ca.ca_pem_text()));
    }

    #[test]
    fn the_leaf_is_not_the_ca() {
        let ca = TestCa::generate().unwrap();
        let leaf = std::fs::read_to_string(ca.leaf_pem()).unwrap();
        assert_ne!(leaf.trim(), ca.ca_pem_text().trim());
        // Both parse as certificates for reqwest (the same parser the client side uses).
        reqwest::Certificate::from_pem(leaf.as_bytes()).unwrap();
        reqwest::Certificate::from_pem(ca.ca_pem_text().as_bytes()).unwrap();
    }
}
