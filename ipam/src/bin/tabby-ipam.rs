//! tabby-ipam: the CNI IPAM plugin binary; the logic lives in `ipam::cni`.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // stdout is the protocol; logs go to stderr, which runtimes keep. A filter
    // that does not parse leaves the plugin without logs, not without addresses.
    let _ = telemetry::LogFlags::from_env().init("tabby-ipam", "warn", &Default::default());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tabby-ipam: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let var = |name: &str| std::env::var(name).ok();
    let outcome = runtime.block_on(ipam::cni::invoke(
        &var,
        std::io::stdin().lock(),
        &ipam::cni::connect,
    ));
    let mut stdout = std::io::stdout().lock();
    let printed = match outcome.stdout.is_empty() {
        true => Ok(()),
        false => writeln!(stdout, "{}", outcome.stdout).and_then(|()| stdout.flush()),
    };
    if printed.is_err() || !outcome.success {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
