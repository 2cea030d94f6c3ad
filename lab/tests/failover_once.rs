//! `tabby-failover` kept working: one cut of one node's link in a three-node
//! tabby mesh with BFD, measured (the tool's figures come from runs by hand,
//! docs/benchmarks.md). Needs root.

use std::time::Duration;

use lab::failover::{self, Mode, Setup};

#[test]
#[ignore = "needs root"]
fn bfd_failover_tool_measures_one_cut_in_a_mesh_with_bfd() {
    harness::require_root();
    let setup = Setup {
        mode: Mode::Mesh,
        nodes: 3,
        bfd: Some((Duration::from_millis(300), 3)),
        // A guard far below the hold time (90 s): only BFD gets under it.
        cap: Duration::from_secs(30),
    };
    let report = failover::run(setup, 1).unwrap();
    assert_eq!(report.gone.len(), 1, "{report:?}");
    assert_eq!(report.capped, 0, "{report:?}");
}
