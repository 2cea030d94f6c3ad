//! tabby-cni: the CNI plugin binary; the logic lives in `agent::cni`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let outcome = agent::cni::invoke(|name| std::env::var(name).ok(), std::io::stdin().lock());
    print!("{}", outcome.stdout);
    if outcome.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
