//! The datastore conformance suite: every case of the `Datastore` contract written
//! once ([`cases`]) and run against every backend through a [`Fixture`]:
//! memory, a real etcd, and the kubernetes backend against the API double
//! ([`crate::kube_api`]).
//!
//! [`conformance_suite!`](crate::conformance_suite) expands to one module of tests per
//! backend, `conformance_<backend>::<case>`, so
//! `cargo nextest run -E 'test(/conformance/)'` runs them all and
//! `-E 'test(/conformance_etcd/)'` one backend.

pub mod cases;
mod fixtures;

use std::net::IpAddr;

use api::datastore::Backend;
use api::resources::Revision;
use async_trait::async_trait;

pub use fixtures::{EtcdFixture, KubeFixture, MemoryFixture};

/// A backend under test, and what the suite needs to do to it from outside the
/// contract.
#[async_trait]
pub trait Fixture: Send + Sync {
    fn store(&self) -> &dyn Backend;

    /// Forgets the history up to `revision`, as etcd's compaction (or the API
    /// server's watch-cache window) does.
    async fn compact(&self, revision: Revision);

    /// Makes the pod exist the way the backend learns of pods: on kubernetes the
    /// kubelet's core Pod, elsewhere the CNI plugin's endpoint.
    async fn start_pod(&self, namespace: &str, pod: &str, node: &str, ip: IpAddr);

    /// The reverse of [`Fixture::start_pod`].
    async fn stop_pod(&self, namespace: &str, pod: &str);

    /// Makes the node exist the way the backend learns of nodes.
    async fn add_node(&self, node: &str);

    /// Whether the backend has multi-object transactions (`Backend::write_all` all
    /// or nothing): etcd and memory do, the Kubernetes API has none.
    fn transactions(&self) -> bool;
}

/// Expands to `mod conformance_<backend>` with one `#[tokio::test]` per case of
/// [`cases`], each on a fresh fixture from `$fixture(test_name).await`.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $fixture:path) => {
        mod $module {
            $crate::conformance_suite!(@cases $module, $fixture,
                create_of_an_existing_name_conflicts,
                cas_conflict_on_a_stale_revision,
                delete_with_a_stale_revision_conflicts,
                get_of_a_missing_resource_is_not_found,
                list_by_selector_returns_exactly_the_matching_objects,
                pagination_over_thousands_of_objects_returns_each_once,
                a_bad_continue_token_is_rejected,
                watch_delivers_every_change_in_order,
                a_watch_resumed_from_a_revision_misses_nothing,
                a_compacted_revision_yields_an_explicit_resync,
                concurrent_writers_on_one_object_have_one_winner_per_round,
                invalid_resources_are_never_stored,
                defaults_are_applied_on_read,
                pods_and_nodes_are_known_on_every_backend,
                hardening_a_stored_object_that_fails_validation_is_skipped_and_reported,
                hardening_fields_of_a_newer_version_are_read_past_and_kept_on_update,
                hardening_overlapping_pools_are_refused_also_when_created_at_once,
                write_all_applies_every_write_at_the_revision_it_returns,
                write_all_with_a_failed_condition_is_all_or_nothing_where_the_backend_has_transactions,
                write_all_refuses_what_one_round_cannot_check,
            );
        }
    };
    (@cases $module:ident, $fixture:path, $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let name = concat!(stringify!($module), "_", stringify!($case));
                let fixture = $fixture(name).await;
                $crate::conformance::cases::$case(&fixture).await;
            }
        )+
    };
}
