//! Prometheus metrics on `prometheus-client`: every process makes one
//! [`Registry`], registers its instruments (counters and gauges it updates as
//! things happen) and its collectors (figures read from a snapshot at each
//! scrape, written through [`Scrape`]), and `/metrics` [`encode`]s it in the
//! Prometheus text format. Nothing here writes the format by hand.

use std::fmt;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
pub use prometheus_client::registry::Registry;

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
            scrape.counter("tabby_seconds_total", "Time spent.", 0.5)
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
             tabby_seconds_total 0.5\n"
        );
    }
}
