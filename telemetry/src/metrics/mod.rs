//! Prometheus metrics on `prometheus-client`: every process makes one
//! [`Registry`], registers its instruments (counters and gauges it updates as
//! things happen) and its collectors (figures read from a snapshot at each
//! scrape, written through [`Scrape`]), and `/metrics` [`encode`]s it in the
//! Prometheus text format. Nothing here writes the format by hand.
//!
//! [`registry`] starts every process's registry with what every binary shows
//! (`tabby_build_info`, the `process_*` family of [`crate::process`]);
//! [`catalogue`] reads a page and `docs/metrics.md` so a test keeps them equal.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use prometheus_client::registry::Registry;

pub mod catalogue;

/// A process's registry, holding what every binary shows: `tabby_build_info`
/// and the process metrics. Each binary registers its own collectors on it in
/// one place.
pub fn registry(binary: &'static str) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(crate::process::Process { binary }));
    registry
}

/// The registry's page in the Prometheus text format (version 0.0.4).
pub fn encode(registry: &Registry) -> String {
    let mut page = String::new();
    // Writing to a String cannot fail, and every collector writes with `Scrape`.
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut page, registry) {
        tracing::error!(%error, "encoding the metrics page");
    }
    page
}

/// One sample's value: integers stay integers on the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

/// Exact while it fits an integer (an IPv6 pool's size may not).
impl From<u128> for Value {
    fn from(value: u128) -> Self {
        i64::try_from(value).map_or(Self::Float(value as f64), Self::Int)
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Self::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Self::Float(value)
    }
}

/// Figures read at scrape time, one family per call, for a [`Collector`]. Labels
/// are arrays of `(name, value)` pairs. Counter names end in `_total` here as on
/// the page (the encoder adds the suffix to the registered name, so it is taken
/// off first).
#[derive(Debug)]
pub struct Scrape<'a> {
    encoder: DescriptorEncoder<'a>,
}

impl<'a> Scrape<'a> {
    pub fn new(encoder: DescriptorEncoder<'a>) -> Self {
        Self { encoder }
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: impl Into<Value>) -> fmt::Result {
        let family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        sample(family, MetricType::Gauge, value.into())
    }

    pub fn gauges<L: EncodeLabelSet, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> fmt::Result {
        self.family(name, help, MetricType::Gauge, samples)
    }

    pub fn counter(&mut self, name: &str, help: &str, value: impl Into<Value>) -> fmt::Result {
        let name = name.strip_suffix("_total").unwrap_or(name);
        let family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        sample(family, MetricType::Counter, value.into())
    }

    pub fn counters<L: EncodeLabelSet, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> fmt::Result {
        let name = name.strip_suffix("_total").unwrap_or(name);
        self.family(name, help, MetricType::Counter, samples)
    }

    /// A histogram of `observed`, its buckets as given (not cumulative).
    pub fn histogram(&mut self, name: &str, help: &str, observed: &Distribution) -> fmt::Result {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        let buckets: Vec<(f64, u64)> = observed
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(observed.counts.iter().copied())
            .collect();
        family.encode_histogram::<NoLabels>(observed.sum, observed.count, &buckets, None)
    }

    fn family<L: EncodeLabelSet, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> fmt::Result {
        let mut family = self.encoder.encode_descriptor(name, help, None, kind)?;
        for (labels, value) in samples {
            sample(family.encode_family(&labels)?, kind, value.into())?;
        }
        Ok(())
    }
}

type NoLabels = [(&'static str, &'static str); 0];

/// Observations counted into fixed buckets, kept as plain data so a daemon's
/// status snapshot can carry it and a collector write it at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// Upper bounds, ascending; the `+Inf` bucket is implied.
    bounds: &'static [f64],
    /// Per bucket (not cumulative), one more than `bounds`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Distribution {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }
}

fn sample(encoder: MetricEncoder<'_>, kind: MetricType, value: Value) -> fmt::Result {
    match (kind, value) {
        (MetricType::Counter, Value::Int(v)) => {
            ConstCounter::new(u64::try_from(v).unwrap_or(0)).encode(encoder)
        }
        (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(encoder),
        (_, Value::Int(v)) => ConstGauge::new(v).encode(encoder),
        (_, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Figures;

    impl Collector for Figures {
        fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
            let mut scrape = Scrape::new(encoder);
            scrape.gauges(
                "tabby_bgp_peers",
                "Peers by state.",
                [
                    ([("state", "established")], 2_u64),
                    ([("state", "a\"b\\c")], 0),
                ],
            )?;
            scrape.gauge("tabby_up", "Always 1.", true)?;
            scrape.counter("tabby_seconds_total", "Time spent.", 0.5)?;
            let mut took = Distribution::new(&[0.1, 1.0]);
            for seconds in [0.0625, 0.125, 0.5, 7.0] {
                took.observe(seconds);
            }
            scrape.histogram("tabby_pass_seconds", "Pass durations.", &took)
        }
    }

    #[test]
    fn families_carry_help_type_and_escaped_labels_with_the_names_given() {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Figures));
        assert_eq!(
            encode(&registry),
            "# HELP tabby_bgp_peers Peers by state.\n# TYPE tabby_bgp_peers gauge\n\
             tabby_bgp_peers{state=\"established\"} 2\n\
             tabby_bgp_peers{state=\"a\\\"b\\\\c\"} 0\n\
             # HELP tabby_up Always 1.\n# TYPE tabby_up gauge\ntabby_up 1\n\
             # HELP tabby_seconds_total Time spent.\n# TYPE tabby_seconds_total counter\n\
             tabby_seconds_total 0.5\n\
             # HELP tabby_pass_seconds Pass durations.\n# TYPE tabby_pass_seconds histogram\n\
             tabby_pass_seconds_bucket{le=\"0.1\"} 1\n\
             tabby_pass_seconds_bucket{le=\"1\"} 3\n\
             tabby_pass_seconds_bucket{le=\"+Inf\"} 4\n\
             tabby_pass_seconds_sum 7.6875\ntabby_pass_seconds_count 4\n"
        );
    }
}
