//! Tables as calicoctl prints them (Go's tabwriter with a minimum cell width of 5 and
//! 3 spaces of padding), without trailing spaces.

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

    pub fn render(&self) -> String {
        let header: Vec<String> = self.headers.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&[String]> = std::iter::once(header.as_slice())
            .chain(self.rows.iter().map(Vec::as_slice))
            .collect();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                let longest = lines
                    .iter()
                    .map(|line| line[column].chars().count())
                    .max()
                    .unwrap_or(0);
                (longest + PADDING).max(MIN_WIDTH)
            })
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
    fn a_narrow_column_is_still_five_wide() {
        let mut table = Table::new(vec!["A", "B"]);
        table.push(vec!["x".into(), "y".into()]);
        assert_eq!(table.render(), "A    B\nx    y\n");
    }
}
