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
