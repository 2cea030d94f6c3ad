//! tabby-ipam: the CNI IPAM plugin binary; the logic lives in `cni::ipam_plugin`.

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
    runtime
        .block_on(cni::ipam_plugin::invoke(
            &var,
            std::io::stdin().lock(),
            &cni::ipam_plugin::connect,
        ))
        .finish()
}
