//! Compiles the subset of the Kubernetes CRI API the harness's CRI client speaks
//! (`proto/runtime/v1/api.proto`) with protox, as `proto/build.rs` compiles
//! tabby's own: building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = "proto/runtime/v1/api.proto";
    println!("cargo:rerun-if-changed={file}");
    let descriptors = protox::compile([file], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(descriptors)?;
    Ok(())
}
