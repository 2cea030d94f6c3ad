//! tabby-cni: the CNI interface plugin binary; the logic lives in `cni::interface`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // stdout is the protocol; logs go to stderr, which runtimes keep when a call
    // fails, and to the config's log file. A filter that does not parse leaves
    // the plugin without logs, not without a network.
    let stdin = cni::log_file::start("tabby-cni", std::io::stdin().lock());
    cni::interface::invoke(&|name| std::env::var(name).ok(), stdin).finish()
}
