//! Tables as calicoctl prints them: resource lists as Go's tabwriter lays them out
//! (a minimum cell width of 5 and 3 spaces of padding, no trailing spaces), and the
//! boxed tables of `node status`.

use api::resources::AsNumber;

/// Facts outside a resource that its row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableContext {
    /// The cluster's AS, shown in parentheses for nodes without their own.
    pub cluster_as: AsNumber,
}

impl Default for TableContext {
    fn default() -> Self {
        Self {
            cluster_as: AsNumber::DEFAULT,
        }
    }
}

const MIN_WIDTH: usize = 5;
const PADDING: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    /// Adds a row; it has one cell per header.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len(), "{row:?}");
        self.rows.push(row);
    }

    /// The widest cell of each column, headers included.
    fn widths(&self) -> Vec<usize> {
        (0..self.headers.len())
            .map(|column| {
                self.rows
                    .iter()
                    .map(|row| row[column].chars().count())
                    .chain([self.headers[column].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&[String]> = std::iter::once(header.as_slice())
            .chain(self.rows.iter().map(Vec::as_slice))
            .collect();
        let widths: Vec<usize> = self
            .widths()
            .into_iter()
            .map(|w| (w + PADDING).max(MIN_WIDTH))
            .collect();
        let mut text = String::new();
        for line in lines {
            let mut rendered = String::new();
            for (cell, width) in line.iter().zip(&widths) {
                rendered.push_str(&format!("{cell:<width$}"));
            }
            text.push_str(rendered.trim_end());
            text.push('\n');
        }
        text
    }
}

impl Table {
    /// With borders, headers centred, as calicoctl's `node status` prints BIRD's peers.
    pub fn render_boxed(&self) -> String {
        let widths = self.widths();
        let rule: String = widths
            .iter()
            .map(|w| format!("+{}", "-".repeat(w + 2)))
            .collect::<String>()
            + "+\n";
        let line = |cells: Vec<String>| {
            let mut text: String = cells.iter().map(|c| format!("| {c} ")).collect();
            text.push_str("|\n");
            text
        };
        let header = self
            .headers
            .iter()
            .zip(&widths)
            .map(|(h, w)| format!("{h:^w$}"))
            .collect();
        let mut text = format!("{rule}{}{rule}", line(header));
        for row in &self.rows {
            text.push_str(&line(
                row.iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect(),
            ));
        }
        text.push_str(&rule);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_longest_cell_plus_three() {
        let mut table = Table::new(vec!["NAME", "CIDR", "SELECTOR"]);
        table.push(vec!["a".into(), "10.0.0.0/16".into(), "all()".into()]);
        table.push(vec!["pool-two".into(), "fd00::/48".into(), "".into()]);
        assert_eq!(
            table.render(),
            "NAME       CIDR          SELECTOR\n\
             a          10.0.0.0/16   all()\n\
             pool-two   fd00::/48\n"
        );
    }

    #[test]
    fn a_boxed_table_centres_its_headers() {
        let mut table = Table::new(vec!["PEER ADDRESS", "STATE"]);
        table.push(vec!["10.0.0.1".into(), "up".into()]);
        assert_eq!(
            table.render_boxed(),
            "+--------------+-------+\n\
             | PEER ADDRESS | STATE |\n\
             +--------------+-------+\n\
             | 10.0.0.1     | up    |\n\
             +--------------+-------+\n"
        );
    }

    #[test]
    fn a_narrow_column_is_still_five_wide() {
        let mut table = Table::new(vec!["A", "B"]);
        table.push(vec!["x".into(), "y".into()]);
        assert_eq!(table.render(), "A    B\nx    y\n");
    }
}
