//! One shared copy per distinct attribute set: a /32 per pod means thousands of
//! prefixes with the same attributes, which then cost one allocation.

use hashbrown::HashSet;
use std::sync::Arc;

use crate::codec::Attributes;

#[derive(Debug, Default)]
pub struct Interner {
    sets: HashSet<Arc<Attributes>>,
}

impl Interner {
    /// The shared copy of `attributes`.
    pub fn intern(&mut self, attributes: Attributes) -> Arc<Attributes> {
        if let Some(shared) = self.sets.get(&attributes) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(attributes);
        self.sets.insert(Arc::clone(&shared));
        shared
    }

    /// Drops sets no route uses any more.
    pub fn collect(&mut self) {
        self.sets.retain(|set| Arc::strong_count(set) > 1);
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_sets_share_one_copy_and_unused_ones_are_collected() {
        let mut interner = Interner::default();
        let a = interner.intern(Attributes {
            med: Some(1),
            ..Attributes::default()
        });
        let b = interner.intern(Attributes {
            med: Some(1),
            ..Attributes::default()
        });
        assert!(Arc::ptr_eq(&a, &b));
        let c = interner.intern(Attributes {
            med: Some(2),
            ..Attributes::default()
        });
        assert_eq!(interner.len(), 2);
        drop(c);
        interner.collect();
        assert_eq!(interner.len(), 1);
    }
}
