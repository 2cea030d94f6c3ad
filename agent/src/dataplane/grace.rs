//! Deferred deletion of workload routes. `tabby-cni` programs a pod's host route
//! itself, right after IPAM recorded the pod; an agent that has not seen that
//! record yet would delete the route. A workload route the desired state lacks is
//! therefore deleted only after it has been unwanted for a grace period (pods that
//! go away take their route with their veth anyway).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::diff::{KernelChanges, Observed, RouteChange};
use super::model::RouteTarget;

#[derive(Debug, Clone)]
pub struct Grace {
    period: Duration,
    /// Workload routes held back, since when.
    unwanted: BTreeMap<IpNet, Instant>,
}

impl Grace {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            unwanted: BTreeMap::new(),
        }
    }

    /// Drops from `plan` the deletions of workload routes still in their grace
    /// period at `now`.
    pub fn hold(&mut self, plan: &mut KernelChanges, observed: &Observed, now: Instant) {
        if self.period.is_zero() {
            return;
        }
        let mut unwanted = BTreeMap::new();
        plan.routes.retain(|change| {
            let RouteChange::Delete(dst) = change else {
                return true;
            };
            if !matches!(
                observed.routes.get(dst),
                Some(Some(RouteTarget::Workload { .. }))
            ) {
                return true;
            }
            let since = self.unwanted.get(dst).copied().unwrap_or(now);
            let expired = now.duration_since(since) >= self.period;
            if !expired {
                unwanted.insert(*dst, since);
            }
            expired
        });
        self.unwanted = unwanted;
    }

    /// When the first held deletion falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.unwanted
            .values()
            .min()
            .map(|since| *since + self.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::model::{NextHop, Route};
    use crate::dataplane::parse::{ip, net};

    fn kernel() -> Observed {
        let routes = [
            Route::workload(net("10.0.0.1/32"), "cali1").unwrap(),
            Route::via(net("10.0.1.0/26"), [NextHop::via(ip("192.0.2.2"))]).unwrap(),
        ];
        Observed {
            routes: routes
                .into_iter()
                .map(|r| (r.dst, Some(r.target)))
                .collect(),
            ..Observed::default()
        }
    }

    fn deletions() -> KernelChanges {
        KernelChanges {
            routes: vec![
                RouteChange::Delete(net("10.0.0.1/32")),
                RouteChange::Delete(net("10.0.1.0/26")),
            ],
            ..KernelChanges::default()
        }
    }

    #[test]
    fn an_unwanted_workload_route_is_held_for_the_period_and_then_deleted() {
        let mut grace = Grace::new(Duration::from_secs(5));
        let start = Instant::now();
        let mut plan = deletions();
        grace.hold(&mut plan, &kernel(), start);
        assert_eq!(plan.routes, [RouteChange::Delete(net("10.0.1.0/26"))]);
        assert_eq!(grace.next_due(), Some(start + Duration::from_secs(5)));

        let mut plan = deletions();
        grace.hold(&mut plan, &kernel(), start + Duration::from_secs(4));
        assert_eq!(plan.routes.len(), 1, "still held");

        let mut plan = deletions();
        grace.hold(&mut plan, &kernel(), start + Duration::from_secs(5));
        assert_eq!(plan.routes.len(), 2, "due");
        assert_eq!(grace.next_due(), None);
    }

    #[test]
    fn a_route_wanted_again_starts_a_fresh_period_next_time() {
        let mut grace = Grace::new(Duration::from_secs(5));
        let start = Instant::now();
        grace.hold(&mut deletions(), &kernel(), start);
        // Wanted again: no deletion in the plan, so nothing is held.
        grace.hold(
            &mut KernelChanges::default(),
            &kernel(),
            start + Duration::from_secs(1),
        );
        assert_eq!(grace.next_due(), None);
        let mut plan = deletions();
        grace.hold(&mut plan, &kernel(), start + Duration::from_secs(6));
        assert_eq!(plan.routes.len(), 1, "held anew");
    }

    #[test]
    fn without_a_period_nothing_is_held() {
        let mut plan = deletions();
        Grace::new(Duration::ZERO).hold(&mut plan, &kernel(), Instant::now());
        assert_eq!(plan.routes.len(), 2);
    }
}
