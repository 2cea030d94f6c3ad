//! The images `scripts/images` builds from `manifests/images` with podman and no
//! registry, and the static binaries it puts in them. Slow (a static build of the
//! binaries, debootstrap on the first run): `scripts/test --slow` runs it, CI's
//! default run does not. Needs root (debootstrap, rootful podman).

mod slow {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use harness::elf::{self, Linking};

    /// The workspace's root.
    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_owned()
    }

    /// Runs `args` in `image` (no network) and returns what it printed.
    fn run_in(storage: &Path, image: &str, env: &[&str], args: &[&str]) -> String {
        let mut command = Command::new("podman");
        command
            .env("CONTAINERS_STORAGE_CONF", storage)
            .args(["run", "--rm", "--network", "none"])
            // podman's default limits are above this host's and raising them needs
            // CAP_SYS_RESOURCE, which even root lacks here: ask for modest ones.
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ]);
        for variable in env {
            command.args(["--env", variable]);
        }
        harness::process::exec(command.arg(image).args(args))
            .unwrap_or_else(|e| panic!("{image} {args:?}: {e:#}"))
    }

    #[test]
    #[ignore = "slow: builds every image with podman (a static build of the binaries, debootstrap): minutes"]
    fn images_every_image_builds_and_runs_its_binaries_which_are_static() {
        harness::require_root();
        let root = root();
        // podman storage of the test's own, kept in the target directory so the
        // Debian base (the dependency layer) is built once, not on every run.
        let podman = root.join("target/images/podman");
        std::fs::create_dir_all(&podman).unwrap();
        let storage = podman.join("storage.conf");
        std::fs::write(
            &storage,
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                podman.join("graph").display(),
                podman.join("run").display(),
            ),
        )
        .unwrap();
        let registry = "localhost/tabby-test";
        // The dev profile: what is checked (static linking, what each image holds)
        // does not depend on optimisation, and it builds minutes faster.
        let mut script = Command::new(root.join("scripts/images"));
        harness::process::exec(
            harness::e2e::plain_environment(&mut script)
                .args(["--profile", "dev"])
                .env("REGISTRY", registry)
                .env("CONTAINERS_STORAGE_CONF", &storage),
        )
        .unwrap();

        // The CNI plugins run on the node, whatever its libc: every binary is static.
        let bins = root.join("target/images/bin");
        let mut built: Vec<String> = std::fs::read_dir(&bins)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        built.sort();
        assert_eq!(
            built,
            [
                "calicoctl-rs",
                "tabby-agent",
                "tabby-cni",
                "tabby-ipam",
                "tabby-ipam-controller",
                "tabby-reflector"
            ]
        );
        for bin in &built {
            assert_eq!(
                elf::linking(&bins.join(bin)).unwrap(),
                Linking::Static,
                "{bin}"
            );
        }

        let version = env!("CARGO_PKG_VERSION");
        let image = |name: &str| format!("{registry}/tabby-{name}:{version}");
        let agent = image("agent");
        for bin in ["tabby-agent", "calicoctl-rs"] {
            let printed = run_in(&storage, &agent, &[], &[bin, "--version"]);
            assert!(printed.contains(version), "{bin}: {printed}");
        }
        // The plugins answer the runtime's VERSION call, as the node's runtime asks.
        for plugin in ["tabby-cni", "tabby-ipam"] {
            let path = format!("/usr/local/lib/tabby/cni/{plugin}");
            let printed = run_in(&storage, &agent, &["CNI_COMMAND=VERSION"], &[&path]);
            assert!(printed.contains("supportedVersions"), "{plugin}: {printed}");
        }
        // What the init container and the NAT code run.
        let printed = run_in(&storage, &agent, &[], &["nft", "--version"]);
        assert!(printed.starts_with("nftables"), "{printed}");
        run_in(
            &storage,
            &agent,
            &[],
            &["sh", "-n", "/usr/local/bin/tabby-install-cni"],
        );

        let reflector = image("reflector");
        let printed = run_in(&storage, &reflector, &[], &["tabby-reflector", "--version"]);
        assert!(printed.contains(version), "{printed}");
        run_in(&storage, &reflector, &[], &["/bin/sh", "-c", "true"]);

        let controller = image("ipam-controller");
        let printed = run_in(
            &storage,
            &controller,
            &[],
            &["tabby-ipam-controller", "--version"],
        );
        assert!(printed.contains(version), "{printed}");
    }
}
