//! tabby-cni: the CNI interface plugin binary; the logic lives in `cni::interface`.

use std::process::ExitCode;

fn main() -> ExitCode {
    cni::init_logs();
    cni::interface::invoke(&|name| std::env::var(name).ok(), std::io::stdin().lock()).finish()
}
