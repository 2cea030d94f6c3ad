//! Removes what crashed harness runs left behind (namespaces, processes, container
//! runtimes' cgroups and mounts, registrations); runs whose owner is still alive
//! are left alone.

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("tabby-test-sweep: needs root");
        std::process::exit(1);
    }
    let swept = harness::sweep();
    for name in &swept.namespaces {
        println!("removed namespace {name}");
    }
    for pid in &swept.processes {
        println!("killed process {pid}");
    }
    for leftover in &swept.runtime_leftovers {
        println!("removed {leftover}");
    }
    for id in &swept.registrations {
        println!("removed registration {id}");
    }
}
