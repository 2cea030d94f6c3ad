//! tabby-cni: the CNI plugin binary; the logic lives in `agent::cni`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // stdout is the protocol; logs go to stderr. A filter that does not parse
    // leaves the plugin without logs, not without a network.
    let _ = telemetry::LogFlags::from_env().init("tabby-cni", "warn", &Default::default());
    let outcome = agent::cni::invoke(|name| std::env::var(name).ok(), std::io::stdin().lock());
    print!("{}", outcome.stdout);
    if outcome.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
