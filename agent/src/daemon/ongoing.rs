//! What is ongoing: rejections, problems and refused changes recur on every pass
//! while they last, and are worth one log line when they start and one when they
//! end.

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct Ongoing {
    current: BTreeSet<String>,
}

impl Ongoing {
    /// Replaces the current set; returns what appeared and what went.
    pub fn update(
        &mut self,
        items: impl IntoIterator<Item = String>,
    ) -> (Vec<String>, Vec<String>) {
        let next: BTreeSet<String> = items.into_iter().collect();
        let appeared = next.difference(&self.current).cloned().collect();
        let went = self.current.difference(&next).cloned().collect();
        self.current = next;
        (appeared, went)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_reported() {
        let mut ongoing = Ongoing::default();
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ongoing.update(strings(&["a", "b"])),
            (strings(&["a", "b"]), vec![])
        );
        assert_eq!(ongoing.update(strings(&["a", "b"])), (vec![], vec![]));
        assert_eq!(
            ongoing.update(strings(&["b", "c"])),
            (strings(&["c"]), strings(&["a"]))
        );
    }
}
