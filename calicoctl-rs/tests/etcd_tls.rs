//! The binary against a real etcd that speaks only TLS and demands client
//! certificates (`--client-cert-auth`), as production etcd clusters are set up; the
//! harness makes the certificates for the run. The CA and the client certificate
//! are given each way an operator can: flags, `TABBY_*` variables, the config file.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use harness::etcd::Etcd;
use harness::logs::LogDir;
use harness::tls::TlsFiles;
use support::{error_line, golden, stdout_of};

fn start(test: &str) -> Etcd {
    let logs = LogDir::new(test).expect("a log directory");
    Etcd::start_tls(&logs).expect("etcd starts with TLS")
}

fn calicoctl(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calicoctl-rs"));
    command.args(args).envs(env.iter().copied());
    command.output().expect("the binary runs")
}

#[test]
fn etcd_over_tls_is_written_and_read_with_certificates_from_flags_variables_or_the_file() {
    let etcd = start("etcd_over_tls_certificates_three_ways");
    let files = etcd.tls().unwrap();
    let (ca, (cert, key)) = (files.ca(), files.client());
    let endpoint = etcd.endpoint();
    let flags = [
        "--etcd-endpoints",
        &endpoint,
        "--etcd-cacert",
        ca.to_str().unwrap(),
        "--etcd-cert",
        cert.to_str().unwrap(),
        "--etcd-key",
        key.to_str().unwrap(),
    ];
    let apply = [&flags[..], &["apply", "-f", "tests/fixtures/cluster.yaml"]].concat();
    let applied = stdout_of(calicoctl(&apply, &[]));
    assert_eq!(applied.lines().count(), 14, "{applied}");
    // etcd's own client sees what went over TLS.
    let keys = etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/tabby/v1/ippools/"])
        .unwrap();
    assert_eq!(keys.lines().filter(|l| !l.is_empty()).count(), 3, "{keys}");

    let wide = stdout_of(calicoctl(
        &[&flags[..], &["get", "ippools", "-o", "wide"]].concat(),
        &[],
    ));
    golden("get-ippools-wide.txt", &wide);

    let variables = [
        ("TABBY_ETCD_ENDPOINTS", Path::new(&endpoint)),
        ("TABBY_ETCD_CA_CERT_FILE", &ca),
        ("TABBY_ETCD_CERT_FILE", &cert),
        ("TABBY_ETCD_KEY_FILE", &key),
    ];
    let nodes = stdout_of(calicoctl(&["get", "nodes"], &variables));
    golden("get-nodes-table.txt", &nodes);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("calicoctl.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: {endpoint}\n  etcdCACertFile: {}\n  \
             etcdCertFile: {}\n  etcdKeyFile: {}\n",
            ca.display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let peers = stdout_of(calicoctl(
        &["-c", config.to_str().unwrap(), "get", "bgppeers"],
        &[],
    ));
    golden("get-bgppeers-table.txt", &peers);
}

#[test]
fn etcd_over_tls_refuses_a_wrong_ca_a_missing_client_certificate_or_no_ca_in_one_line() {
    let etcd = start("etcd_over_tls_refusals");
    let files = etcd.tls().unwrap();
    let (ca, (cert, key)) = (files.ca(), files.client());
    let endpoint = etcd.endpoint();
    let get = |ca: Option<&Path>, client: bool| {
        let mut args = vec!["--etcd-endpoints", &endpoint];
        if let Some(ca) = ca {
            args.extend(["--etcd-ca-cert-file", ca.to_str().unwrap()]);
        }
        if client {
            args.extend(["--etcd-cert-file", cert.to_str().unwrap()]);
            args.extend(["--etcd-key-file", key.to_str().unwrap()]);
        }
        args.extend(["get", "ippools"]);
        calicoctl(&args, &[])
    };

    // A CA that did not sign etcd's certificate: the operator is told it is not
    // trusted and which CA file was used.
    let other = TlsFiles::generate("some-other-ca").unwrap();
    let untrusted = error_line(get(Some(&other.ca()), true), 1);
    assert!(
        untrusted.contains("invalid peer certificate")
            && untrusted.contains(other.ca().to_str().unwrap()),
        "{untrusted}"
    );

    // etcd's --client-cert-auth refuses a client without a certificate.
    let anonymous = error_line(get(Some(&ca), false), 1);
    assert!(
        anonymous.contains(&endpoint) && anonymous.contains("give --etcd-cert-file"),
        "{anonymous}"
    );

    // Without a CA this build has no roots to check etcd's certificate with.
    let no_ca = error_line(get(None, true), 2);
    assert!(no_ca.contains("--etcd-ca-cert-file"), "{no_ca}");

    // A file that is no certificate at all names the file.
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), "not a certificate\n").unwrap();
    let unreadable = error_line(get(Some(garbage.path()), true), 2);
    assert!(
        unreadable.contains(garbage.path().to_str().unwrap()),
        "{unreadable}"
    );

    // With everything right, the same command works.
    stdout_of(get(Some(&ca), true));
}
