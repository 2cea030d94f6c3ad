//! tabby-cni: the CNI interface plugin binary; the logic lives in `cni::interface`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // stdout is the protocol; logs go to stderr, which runtimes keep. A filter
    // that does not parse leaves the plugin without logs, not without a network.
    let _ = telemetry::LogFlags::from_env().init("tabby-cni", "warn", &Default::default());
    cni::interface::invoke(&|name| std::env::var(name).ok(), std::io::stdin().lock()).finish()
}
