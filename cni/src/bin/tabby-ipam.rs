//! tabby-ipam: the CNI IPAM plugin binary; the logic lives in `cni::ipam_plugin`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // stdout is the protocol; logs go to stderr, which runtimes keep when a call
    // fails, and to the config's log file. A filter that does not parse leaves
    // the plugin without logs, not without addresses.
    let stdin = cni::log_file::start("tabby-ipam", std::io::stdin().lock());
    let runtime = tracing::debug_span!(target: "stage", "ipam.runtime").in_scope(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    });
    let runtime = match runtime {
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
            stdin,
            &cni::ipam_plugin::connect,
        ))
        .finish()
}
