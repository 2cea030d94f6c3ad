//! Next hops by number: a table holds millions of paths but few distinct next hops
//! (one per peer, mostly), so each path keeps a 4-byte number instead of an address.

use std::net::IpAddr;

#[derive(Debug, Default)]
pub(crate) struct NextHops {
    ids: hashbrown::HashMap<IpAddr, u32>,
    /// The address and the number of paths using it, by number.
    entries: Vec<(IpAddr, usize)>,
    free: Vec<u32>,
    /// The last address acquired: the routes of one UPDATE share their next hop.
    last: Option<(IpAddr, u32)>,
}

impl NextHops {
    /// The number of `address`, counting one more user.
    pub fn acquire(&mut self, address: IpAddr) -> u32 {
        if let Some((last, id)) = self.last
            && last == address
        {
            self.entries[id as usize].1 += 1;
            return id;
        }
        let id = self.lookup(address);
        self.last = Some((address, id));
        id
    }

    fn lookup(&mut self, address: IpAddr) -> u32 {
        if let Some(&id) = self.ids.get(&address) {
            self.entries[id as usize].1 += 1;
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = (address, 1);
                id
            }
            None => {
                self.entries.push((address, 1));
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 next hops")
            }
        };
        self.ids.insert(address, id);
        id
    }

    /// One user fewer of `id`; the number is reused once nobody uses it.
    pub fn release(&mut self, id: u32) {
        let entry = &mut self.entries[id as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            self.ids.remove(&entry.0);
            self.free.push(id);
            if self.last.is_some_and(|(_, last)| last == id) {
                self.last = None;
            }
        }
    }

    pub fn get(&self, id: u32) -> IpAddr {
        self.entries[id as usize].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_addresses_share_a_number_until_the_last_user_leaves() {
        let mut hops = NextHops::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        let id = hops.acquire(a);
        assert_eq!(hops.acquire(a), id);
        assert_ne!(hops.acquire(b), id);
        hops.release(id);
        assert_eq!(hops.get(id), a);
        hops.release(id);
        assert_eq!(hops.acquire(b), 1, "b kept its number");
        assert_eq!(hops.acquire("10.0.0.2".parse().unwrap()), id, "reused");
    }
}
