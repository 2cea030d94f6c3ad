//! The Kubernetes API double (`harness::kube_api`) as a process of its own, for the
//! lab and the e2e clusters whose binaries reach the API over the network, as they
//! reach a real API server. It lives in the harness because the double does: the
//! harness starts it ([`harness::kube_api::process`]) in the namespace of a lab's
//! router, as it starts etcd there.
//!
//! ```text
//! tabby-kube-api --listen 10.0.0.1:0 --address-file FILE [--tokens FILE] \
//!     [--admission-policies] [--rbac]
//! ```
//!
//! `--address-file` receives the address listened on once requests are served
//! (port 0 picks a free one). `--tokens` is a JSON object of bearer token → user
//! (`harness::kube_api::admission::UserInfo`), the API server's token
//! authentication; a request without a token is a cluster admin's.
//! `--admission-policies` judges writes by the ValidatingAdmissionPolicies of
//! `manifests/`; `--rbac` authorizes every service account by the Roles and
//! bindings of `manifests/` (the admin is in `system:masters`). The CRDs are
//! installed by the client, through the API. Each field
//! pruned from a write (it is not in its CRD's schema) is a line on stderr.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use harness::kube_api::admission::UserInfo;
use harness::kube_api::process::PRUNED;
use harness::kube_api::{KubeApi, KubeApiOptions};

struct Args {
    listen: SocketAddr,
    address_file: PathBuf,
    tokens: Option<PathBuf>,
    policies: bool,
    rbac: bool,
}

fn parse() -> Result<Args> {
    let (mut listen, mut address_file, mut tokens) = (None, None, None);
    let (mut policies, mut rbac) = (false, false);
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let mut value = || {
            words
                .next()
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                listen = Some(
                    text.parse()
                        .with_context(|| format!("--listen: {text:?} is not an address:port"))?,
                );
            }
            "--address-file" => address_file = Some(PathBuf::from(value()?)),
            "--tokens" => tokens = Some(PathBuf::from(value()?)),
            "--admission-policies" => policies = true,
            "--rbac" => rbac = true,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        listen: listen.context("--listen is required")?,
        address_file: address_file.context("--address-file is required")?,
        tokens,
        policies,
        rbac,
    })
}

async fn run(args: Args) -> Result<()> {
    let api = KubeApi::start_on(args.listen, KubeApiOptions::default()).await?;
    if let Some(path) = &args.tokens {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let tokens: BTreeMap<String, UserInfo> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON object of token → user", path.display()))?;
        for (token, user) in tokens {
            api.add_token(&token, user);
        }
    }
    if args.policies || args.rbac {
        let documents = harness::manifests::documents()?;
        if args.policies {
            for policy in harness::manifests::policies(&documents)? {
                api.install_policy(policy);
            }
        }
        if args.rbac {
            authorize(&api, &documents).map_err(anyhow::Error::msg)?;
        }
    }
    // Written beside and renamed, so a reader never sees half an address.
    let partial = args.address_file.with_extension("partial");
    std::fs::write(&partial, api.address().to_string())?;
    std::fs::rename(&partial, &args.address_file)?;
    eprintln!("tabby-kube-api: serving on {}", api.url());
    // What the server prunes shows in its log, where the harness reads it.
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for field in api.take_pruned() {
            eprintln!("{PRUNED}{field}");
        }
    }
}

/// Installs what the bindings of `documents` grant each service account.
fn authorize(api: &KubeApi, documents: &[harness::manifests::Document]) -> Result<(), String> {
    use harness::manifests::rbac::{granted, service_accounts};
    for (namespace, account) in service_accounts(documents)? {
        let user = UserInfo::service_account(&namespace, &account);
        api.authorize(&user.username, granted(documents, &namespace, &account)?);
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("tabby-kube-api: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tabby-kube-api: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tabby-kube-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}
