//! crdgen: writes the CustomResourceDefinitions of tabby's kinds, generated from the
//! Rust types, to `manifests/crds/crds.yaml` (or the path given), or to stdout with `-`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| api::crd::MANIFEST_PATH.to_owned());
    let manifest = api::crd::manifest();
    if target == "-" {
        print!("{manifest}");
        return ExitCode::SUCCESS;
    }
    match std::fs::write(&target, manifest) {
        Ok(()) => {
            eprintln!("crdgen: wrote {target}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crdgen: writing {target}: {e}");
            ExitCode::FAILURE
        }
    }
}
