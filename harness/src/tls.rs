//! Certificates made for one test run: a CA, a server certificate for 127.0.0.1 and
//! a client certificate it signed, as PEM files in a temporary directory (removed
//! on drop). Keys are ECDSA P-256, which etcd, etcdctl and rustls all take.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// The files of one CA and the two certificates it signed.
#[derive(Debug)]
pub struct TlsFiles {
    dir: TempDir,
}

impl TlsFiles {
    /// A fresh CA named `ca_name`; two calls give CAs that do not trust each other.
    pub fn generate(ca_name: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tabby-tls-")
            .tempdir()
            .context("creating the certificates' directory")?;
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, ca_name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        write(dir.path(), "ca.crt", &ca.pem())?;
        let leaves = [
            (
                "server",
                vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ),
            ("client", Vec::new()),
        ];
        for (name, names) in leaves {
            let mut params = CertificateParams::new(names)?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            // etcd's gateway dials etcd itself with the server certificate.
            params.extended_key_usages = match name {
                "server" => vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
                _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
            };
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            write(dir.path(), &format!("{name}.crt"), &cert.pem())?;
            write(dir.path(), &format!("{name}.key"), &key.serialize_pem())?;
        }
        Ok(Self { dir })
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The certificate for 127.0.0.1 and localhost, and its key.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.file("server.crt"), self.file("server.key"))
    }

    /// The client certificate, and its key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.file("client.crt"), self.file("client.key"))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<()> {
    std::fs::write(dir.join(name), pem).with_context(|| format!("writing {name}"))
}
