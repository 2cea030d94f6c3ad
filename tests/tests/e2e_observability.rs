//! What Prometheus would scrape from a running cluster: two agents peering with
//! a tabby-reflector, the IPAM controller, a pod on each node. Every metric the
//! shipped alerts use is on the page of the binary that serves it, with sane
//! values, and a peer taken down shows as down on the other side. Needs root.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use harness::e2e::{Clients, Cluster, sample};
use harness::manifests::monitoring::{PrometheusRule, selectors};
use harness::manifests::strict::parse;
use harness::manifests::{self, find};
use harness::wait_until;
use telemetry::metrics::catalogue;

const AS: u32 = 64512;
const NODES: [&str; 2] = ["n1", "n2"];
const READY: Duration = Duration::from_secs(60);
const CONVERGED: Duration = Duration::from_secs(30);

/// Every tabby metric the PrometheusRule's alerts select.
fn alerted_metrics() -> BTreeSet<String> {
    let documents = manifests::documents().unwrap();
    let rule: PrometheusRule =
        parse(&find(&documents, "PrometheusRule", "tabby").unwrap().value).unwrap();
    rule.spec
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .flat_map(|r| selectors(&r.expr))
        .map(|s| s.metric)
        .collect()
}

/// The alerted metrics with `prefix` missing from `page` (a histogram's
/// `_bucket` series counts as its family).
fn missing(page: &str, prefix: &str) -> Vec<String> {
    let families: BTreeSet<String> = catalogue::on_page(page)
        .into_iter()
        .map(|f| f.name)
        .collect();
    alerted_metrics()
        .into_iter()
        .filter(|m| m.starts_with(prefix))
        .filter(|m| {
            let base = m.strip_suffix("_bucket").unwrap_or(m);
            !families.contains(m) && !families.contains(base)
        })
        .collect()
}

/// Waits until `series` on the page `scrape` reads satisfies `ok`.
fn wait_sample(
    what: &str,
    mut scrape: impl FnMut() -> anyhow::Result<String>,
    series: &str,
    ok: impl Fn(f64) -> bool,
) {
    wait_until(CONVERGED, what, || {
        let page = scrape()?;
        anyhow::Ok(match sample(&page, series) {
            Some(value) if ok(value) => Ok(()),
            other => Err(format!("{series} is {other:?}")),
        })
    })
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn observability_the_alerted_metrics_are_scraped_from_agents_reflector_and_controller_and_a_peer_down_shows()
 {
    harness::require_root();
    let machines = ["n1", "n2", "rr1"];
    let mut cluster = Cluster::with_reflectors(
        "observability",
        "10.0.1.0/24",
        &machines,
        &["rr1"],
        AS,
        api::datastore::config::DatastoreType::Etcd,
    )
    .unwrap();
    cluster
        .start_reflector("rr1", AS, Ipv4Addr::new(10, 0, 1, 250), Clients::Datastore)
        .unwrap();
    cluster.wait_reflector_ready("rr1", READY).unwrap();
    cluster.start_agents(&NODES, READY).unwrap();
    cluster.start_controller("1s", "1h").unwrap();
    cluster.add_pod_per_node(&NODES).unwrap();
    cluster
        .wait_reflector_established("rr1", &NODES, CONVERGED)
        .unwrap();
    let rr = cluster.lab.node("rr1").address().to_string();
    let n2 = cluster.lab.node("n2").address().to_string();

    // The agent: its session with the reflector up, a workload route, passes timed.
    let up = format!("tabby_agent_bgp_peer_up{{peer=\"{rr}\",type=\"global\"}}");
    wait_sample(
        "n1's session with rr1 up",
        || cluster.agent_metrics("n1"),
        &up,
        |v| v == 1.0,
    );
    let accepted =
        format!("tabby_agent_bgp_peer_prefixes_accepted{{peer=\"{rr}\",type=\"global\"}}");
    wait_sample(
        "n1 learns n2's block from rr1",
        || cluster.agent_metrics("n1"),
        &accepted,
        |v| v >= 1.0,
    );
    let agent = cluster.agent_metrics("n1").unwrap();
    assert_eq!(
        missing(&agent, "tabby_agent_"),
        Vec::<String>::new(),
        "{agent}"
    );
    assert_eq!(sample(&agent, "tabby_agent_ready"), Some(1.0), "{agent}");
    assert!(
        sample(&agent, "tabby_agent_routes{kind=\"workload\"}") >= Some(1.0),
        "{agent}"
    );
    assert!(
        sample(&agent, "tabby_agent_reconcile_duration_seconds_count") >= Some(1.0),
        "{agent}"
    );
    assert_eq!(
        sample(&agent, "tabby_agent_netlink_failed_reconciliations_total"),
        Some(0.0),
        "{agent}"
    );
    assert!(
        sample(&agent, "process_resident_memory_bytes") > Some(0.0),
        "{agent}"
    );

    // The reflector: both clients up, each announcing its block.
    let reflector = cluster.reflector_metrics("rr1").unwrap();
    assert_eq!(
        missing(&reflector, "tabby_reflector_"),
        Vec::<String>::new(),
        "{reflector}"
    );
    let n2_up = format!("tabby_reflector_peer_up{{peer=\"{n2}\"}}");
    assert_eq!(sample(&reflector, &n2_up), Some(1.0), "{reflector}");
    let n2_prefixes = format!("tabby_reflector_prefixes_received{{peer=\"{n2}\"}}");
    assert!(sample(&reflector, &n2_prefixes) >= Some(1.0), "{reflector}");

    // The controller: the pool's size, the two pods' addresses, nothing leaked.
    let pool = "default-ipv4-ippool";
    for node in NODES {
        let in_use = format!("tabby_ipam_allocations_in_use{{pool=\"{pool}\",node=\"{node}\"}}");
        let what = format!("a controller pass counting {node}'s pod");
        wait_sample(
            &what,
            || cluster.controller_metrics(),
            &in_use,
            |v| v >= 1.0,
        );
    }
    let controller = cluster.controller_metrics().unwrap();
    assert_eq!(
        missing(&controller, "tabby_ipam_"),
        Vec::<String>::new(),
        "{controller}"
    );
    let size = format!("tabby_ipam_pool_size{{pool=\"{pool}\"}}");
    assert_eq!(sample(&controller, &size), Some(65536.0), "{controller}");
    let ratio = format!("tabby_ipam_pool_utilization_ratio{{pool=\"{pool}\"}}");
    let ratio = sample(&controller, &ratio).unwrap();
    assert!(ratio > 0.0 && ratio < 0.01, "{controller}");
    let leaked = "tabby_ipam_gc_candidates{kind=\"pod_address\"}";
    assert_eq!(sample(&controller, leaked), Some(0.0), "{controller}");

    // A peer taken down: n2's agent stops, the reflector shows it down; the
    // reflector stops, n1 shows its session down and counts the flap.
    cluster.kill_agent("n2");
    wait_sample(
        "rr1 sees n2 down",
        || cluster.reflector_metrics("rr1"),
        &n2_up,
        |v| v == 0.0,
    );
    cluster.kill_reflector("rr1");
    wait_sample(
        "n1 sees rr1 down",
        || cluster.agent_metrics("n1"),
        &up,
        |v| v == 0.0,
    );
    let flaps = format!("tabby_agent_bgp_peer_flaps_total{{peer=\"{rr}\",type=\"global\"}}");
    assert!(sample(&cluster.agent_metrics("n1").unwrap(), &flaps) >= Some(1.0));
}
