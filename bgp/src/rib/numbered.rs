//! Values by number, counted: a table holds millions of paths but few distinct
//! next hops and attribute sets, so each path keeps two 4-byte numbers and the
//! table counts users with plain integers (no atomic reference count per path).

use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::Equivalent;

use crate::codec::Attributes;

#[derive(Debug)]
pub(crate) struct Numbered<T> {
    ids: hashbrown::HashMap<T, u32>,
    /// The value and the number of users, by number; `None` while free.
    entries: Vec<Option<(T, usize)>>,
    free: Vec<u32>,
    /// The last value acquired: the routes of one UPDATE share theirs.
    last: Option<(T, u32)>,
}

pub(crate) type NextHops = Numbered<IpAddr>;
pub(crate) type AttributeSets = Numbered<Shared>;

/// Interned attributes, equal when they are the same allocation.
#[derive(Debug, Clone)]
pub(crate) struct Shared(pub Arc<Attributes>);

impl PartialEq for Shared {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Shared {}

impl Hash for Shared {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

/// Looks up a set by its address without taking a reference to it.
pub(crate) struct Address(pub *const Attributes);

impl Hash for Address {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Equivalent<Shared> for Address {
    fn equivalent(&self, key: &Shared) -> bool {
        self.0 == Arc::as_ptr(&key.0)
    }
}

impl<T> Default for Numbered<T> {
    fn default() -> Self {
        Self {
            ids: hashbrown::HashMap::new(),
            entries: Vec::new(),
            free: Vec::new(),
            last: None,
        }
    }
}

impl<T: Clone + Eq + Hash> Numbered<T> {
    /// The number of `value`, counting one more user.
    pub fn acquire(&mut self, value: &T) -> u32 {
        self.acquire_by(value, || value.clone())
    }

    /// The number of the value `probe` stands for, counting one more user;
    /// `make` gives the value when it is new.
    pub fn acquire_by<Q>(&mut self, probe: &Q, make: impl FnOnce() -> T) -> u32
    where
        Q: Hash + Equivalent<T> + ?Sized,
    {
        let id = match &self.last {
            Some((last, id)) if probe.equivalent(last) => *id,
            _ => {
                let id = match self.ids.get(probe) {
                    Some(&id) => id,
                    None => self.insert(make()),
                };
                self.last = Some((self.get(id).clone(), id));
                id
            }
        };
        if let Some((_, users)) = &mut self.entries[id as usize] {
            *users += 1;
        }
        id
    }

    fn insert(&mut self, value: T) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.entries.push(None);
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 values")
            }
        };
        self.entries[id as usize] = Some((value.clone(), 0));
        self.ids.insert(value, id);
        id
    }

    /// One user fewer of `id`; the value is dropped and its number reused once
    /// nobody uses it.
    pub fn release(&mut self, id: u32) {
        let slot = &mut self.entries[id as usize];
        let Some((_, users)) = slot else {
            return;
        };
        *users -= 1;
        if *users == 0 {
            let (value, _) = slot.take().expect("checked above");
            self.ids.remove(&value);
            self.free.push(id);
            if self.last.as_ref().is_some_and(|(_, last)| *last == id) {
                self.last = None;
            }
        }
    }

    pub fn get(&self, id: u32) -> &T {
        &self.entries[id as usize]
            .as_ref()
            .expect("numbers in use have values")
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_a_number_until_the_last_user_leaves() {
        let mut hops = NextHops::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        let id = hops.acquire(&a);
        assert_eq!(hops.acquire(&a), id);
        assert_ne!(hops.acquire(&b), id);
        hops.release(id);
        assert_eq!(*hops.get(id), a);
        hops.release(id);
        assert_eq!(hops.acquire(&b), 1, "b kept its number");
        assert_eq!(hops.acquire(&"10.0.0.2".parse().unwrap()), id, "reused");
    }

    #[test]
    fn attribute_sets_are_told_apart_by_allocation_and_dropped_when_unused() {
        let mut sets = AttributeSets::default();
        let one = Arc::new(Attributes::default());
        let equal_but_other = Arc::new(Attributes::default());
        let id = sets.acquire(&Shared(Arc::clone(&one)));
        assert_ne!(sets.acquire(&Shared(Arc::clone(&equal_but_other))), id);
        assert_eq!(
            Arc::strong_count(&one),
            3,
            "the caller's, the index's, the entry's"
        );
        sets.release(id);
        assert_eq!(Arc::strong_count(&one), 1);
    }
}
