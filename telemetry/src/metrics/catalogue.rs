//! The families a metrics page holds and the ones `docs/metrics.md` lists, in
//! one shape, so that a test per binary can hold the two equal and the
//! monitoring manifests can be checked against the list.
//!
//! The document has a section per binary (`## tabby-agent`) and one for what
//! every binary shows (`## Every binary`), each a table whose rows are
//! `` | `name` | type | `label`, `label` | meaning | ``.

use std::collections::{BTreeMap, BTreeSet};

/// One metric family: its name as scraped (`_total` included), its type and the
/// names of its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub labels: BTreeSet<String>,
}

/// The families on a page in the Prometheus text format: name and type from
/// each `# TYPE` line, labels from its samples (a histogram's `le` aside).
pub fn on_page(page: &str) -> BTreeSet<Family> {
    let mut families: Vec<Family> = Vec::new();
    for line in page.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declared.split_once(' ').unwrap_or((declared, ""));
            families.push(Family {
                name: name.to_owned(),
                kind: kind.to_owned(),
                labels: BTreeSet::new(),
            });
        } else if !line.starts_with('#')
            && let Some(family) = families.last_mut()
        {
            family
                .labels
                .extend(label_names(line).into_iter().filter(|l| l != "le"));
        }
    }
    families.into_iter().collect()
}

/// The label names of one sample line.
fn label_names(sample: &str) -> Vec<String> {
    let Some((_, rest)) = sample.split_once('{') else {
        return Vec::new();
    };
    let mut names = Vec::new();
    let mut chars = rest.chars();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return names;
        }
        names.push(name.trim_start_matches(',').to_owned());
        // The quoted value, with its escapes.
        chars.next();
        let mut escaped = false;
        for c in chars.by_ref() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => escaped = false,
            }
        }
        if chars.next() != Some(',') {
            return names;
        }
    }
}

/// Every section of the document with the families its table lists.
pub fn documented(markdown: &str) -> Result<BTreeMap<String, BTreeSet<Family>>, String> {
    let mut sections: BTreeMap<String, BTreeSet<Family>> = BTreeMap::new();
    let mut section = None;
    for (n, line) in markdown.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = Some(heading.trim().to_owned());
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let at = || format!("docs/metrics.md line {}", n + 1);
        let cells: Vec<&str> = row
            .trim_end()
            .trim_end_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [name, kind, labels, meaning] = cells[..] else {
            return Err(format!("{}: a row needs four cells: {line}", at()));
        };
        let name = name.trim_end_matches('`');
        if meaning.is_empty() {
            return Err(format!("{}: {name} has no meaning", at()));
        }
        let Some(section) = &section else {
            return Err(format!("{}: a row before any section", at()));
        };
        let labels = labels
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        let family = Family {
            name: name.to_owned(),
            kind: kind.to_owned(),
            labels,
        };
        sections.entry(section.clone()).or_default().insert(family);
    }
    Ok(sections)
}

/// What a binary's page must hold by the document: its own section and the
/// one every binary shares.
pub fn expected_for(markdown: &str, binary: &str) -> Result<BTreeSet<Family>, String> {
    let sections = documented(markdown)?;
    let own = sections
        .get(binary)
        .ok_or_else(|| format!("docs/metrics.md has no section \"## {binary}\""))?;
    Ok(own
        .iter()
        .chain(sections.get(EVERY_BINARY).into_iter().flatten())
        .cloned()
        .collect())
}

/// The section listing what [`crate::metrics::registry`] adds to every binary.
pub const EVERY_BINARY: &str = "Every binary";

/// Panics with both differences when `page` and the document disagree about
/// `binary` (for the binaries' tests).
pub fn assert_documented(markdown: &str, binary: &str, page: &str) {
    let expected = expected_for(markdown, binary).unwrap_or_else(|e| panic!("{e}"));
    let found = on_page(page);
    let missing: Vec<_> = expected.difference(&found).collect();
    let undocumented: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "docs/metrics.md and {binary}'s registry differ\n\
         documented but not on the page: {missing:#?}\n\
         on the page but not documented (as is): {undocumented:#?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(name: &str, kind: &str, labels: &[&str]) -> Family {
        Family {
            name: name.into(),
            kind: kind.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn a_page_gives_each_family_with_its_labels_and_escaped_values_do_not_confuse_it() {
        let page = "# HELP a_total A.\n# TYPE a_total counter\n\
                    a_total{peer=\"x,y=\\\"z\\\"\",type=\"mesh\"} 1\n\
                    # TYPE b histogram\nb_sum 1\nb_count 1\nb_bucket{le=\"+Inf\"} 1\n\
                    # TYPE c gauge\nc 3\n";
        assert_eq!(
            on_page(page),
            BTreeSet::from([
                family("a_total", "counter", &["peer", "type"]),
                family("b", "histogram", &[]),
                family("c", "gauge", &[]),
            ])
        );
    }

    #[test]
    fn the_document_gives_each_sections_rows_and_refuses_a_row_without_meaning() {
        let doc = "# Metrics\n\n## Every binary\n\n| name | type | labels | meaning |\n\
                   | --- | --- | --- | --- |\n| `up` | gauge | | Always 1. |\n\n\
                   ## tabby-agent\n\n| `a_total` | counter | `peer`, `type` | Things. |\n";
        assert_eq!(
            expected_for(doc, "tabby-agent").unwrap(),
            BTreeSet::from([
                family("up", "gauge", &[]),
                family("a_total", "counter", &["peer", "type"]),
            ])
        );
        let error = documented("## x\n| `a` | gauge | | |\n").unwrap_err();
        assert!(error.contains("line 2: a has no meaning"), "{error}");
    }
}
