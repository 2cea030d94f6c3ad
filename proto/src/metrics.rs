//! The Prometheus text exposition format (version 0.0.4), for the handful of gauges
//! and counters the daemons export.

use std::fmt::Write as _;

/// A page of metric families being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// Whether a family only goes up (`counter`) or moves both ways (`gauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
}

impl Exposition {
    /// Starts family `name` with its help text.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) -> &mut Self {
        let kind = match kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", escape(help, false));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        self
    }

    /// One sample of the family started last.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value, true));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// Backslash and newline are escaped everywhere, double quotes in label values.
fn escape(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_help_type_and_escaped_labels() {
        let mut page = Exposition::default();
        page.family("tabby_bgp_peers", MetricType::Gauge, "Peers by state.")
            .sample("tabby_bgp_peers", &[("state", "established")], 2.0)
            .sample("tabby_bgp_peers", &[("state", "a\"b\\c")], 0.0);
        page.family("tabby_up", MetricType::Gauge, "Always 1.")
            .sample("tabby_up", &[], 1.0);
        assert_eq!(
            page.finish(),
            "# HELP tabby_bgp_peers Peers by state.\n# TYPE tabby_bgp_peers gauge\n\
             tabby_bgp_peers{state=\"established\"} 2\n\
             tabby_bgp_peers{state=\"a\\\"b\\\\c\"} 0\n\
             # HELP tabby_up Always 1.\n# TYPE tabby_up gauge\ntabby_up 1\n"
        );
    }
}
