//! The sweep removes what a crashed run left behind, and nothing of live runs.

use std::process::Command;
use std::time::Duration;

use harness::{Lab, require_root};

#[test]
#[ignore = "needs root"]
fn harness_sweep_removes_leftovers_of_a_dead_owner_only() {
    require_root();
    let live = Lab::new("harness_sweep_removes_leftovers_of_a_dead_owner_only")
        .subnet("a", "10.0.1.0/24")
        .node("n1", "a")
        .build()
        .unwrap();

    // A crashed run: its registration names an owner that no longer exists (pid 1
    // with the wrong start time), and it left a namespace with a process inside.
    let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let registration = harness::registry::registry_dir().join(&id);
    std::fs::create_dir_all(registration.join("pids")).unwrap();
    std::fs::write(registration.join("owner"), "1 0").unwrap();
    let leftover = format!("tb-{id}-n1");
    harness::process::exec(Command::new("ip").args(["netns", "add", &leftover])).unwrap();
    let mut orphan = harness::netns::command_in(&leftover, "sleep")
        .arg("600")
        .spawn()
        .unwrap();
    // Only once it has entered the namespace is it a leftover the sweep must find
    // (before that, deleting the namespace makes `ip netns exec` fail by itself).
    let pid = orphan.id().to_string();
    harness::wait_until(
        Duration::from_secs(30),
        "the orphan in its namespace",
        || {
            let pids =
                harness::process::exec(Command::new("ip").args(["netns", "pids", &leftover]))?;
            anyhow::Ok(pids.split_whitespace().any(|p| p == pid))
        },
    )
    .unwrap();

    harness::sweep();

    assert!(!harness::netns::list().contains(&leftover));
    assert!(!registration.exists());
    assert!(
        orphan.wait().is_ok_and(|status| !status.success()),
        "killed"
    );
    assert_eq!(live.namespaces().len(), 2, "the live lab is untouched");
    live.node("n1").ping(live.node("n1").address()).unwrap();
}

#[test]
#[ignore = "needs root"]
fn harness_sweep_removes_a_crashed_runtimes_pod_processes_cgroups_and_mounts() {
    require_root();
    // What a crashed run's containerd leaves: a pod's process in a cgroup under
    // `/tb-<id>-<node>`, and a mount inside its directory `<tmp>/tb-<id>-…`.
    let id = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
    let registration = harness::registry::registry_dir().join(&id);
    std::fs::create_dir_all(registration.join("pids")).unwrap();
    std::fs::write(registration.join("owner"), "1 0").unwrap();
    let hierarchy = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup"]
        .into_iter()
        .find(|h| std::path::Path::new(h).join("cgroup.procs").exists())
        .unwrap();
    let root = std::path::Path::new(hierarchy).join(format!("tb-{id}-n1"));
    std::fs::create_dir_all(root.join("pod1")).unwrap();
    let mut pod = Command::new("sleep").arg("600").spawn().unwrap();
    std::fs::write(root.join("pod1/cgroup.procs"), pod.id().to_string()).unwrap();
    let dir = std::env::temp_dir().join(format!("tb-{id}-containerd-n1-x"));
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    harness::process::exec(
        Command::new("mount")
            .args(["-t", "tmpfs", "tmpfs"])
            .arg(dir.join("rootfs")),
    )
    .unwrap();

    // (A sweep running in another test process may be the one that removes them.)
    harness::sweep();

    assert!(pod.wait().is_ok_and(|status| !status.success()), "killed");
    assert!(!root.exists(), "{} is left", root.display());
    assert!(!dir.exists(), "{} is left", dir.display());
    assert!(!registration.exists());
}
