//! Datastore object decoding of arbitrary text, for every kind: the first byte picks
//! the kind and the format. JSON goes in as a stored record and is read back through
//! the datastore (unknown fields set aside, defaults, validation); YAML is read as
//! calicoctl-rs reads an operator's file. Whatever reads cleanly must be written and
//! read again to the same object.
#![no_main]

use api::datastore::{Backend, Datastore, Kind, ListOptions, MemoryStore};
use api::resources::*;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;

fn stored<R: Resource>(text: &str) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let store = MemoryStore::new();
    block_on(async {
        store
            .create_record(Kind::of::<R>(), "fuzzed", value)
            .await
            .expect("the memory store stores any JSON");
        let list = store.list::<R>(&ListOptions::default()).await.unwrap();
        let Ok(read) = store.get::<R>("fuzzed").await else {
            assert!(list.items.is_empty() && list.skipped.len() == 1);
            return;
        };
        assert_eq!(list.items, [read.clone()]);
        // Valid as read, so it writes; and it reads back as it was.
        let again = MemoryStore::new();
        let mut written = again.create(&read).await.expect("what was read is valid");
        let mut read = read;
        written.metadata_mut().resource_version = None;
        read.metadata_mut().resource_version = None;
        assert_eq!(written, read);
    });
}

fn operator<R: Resource>(text: &str) {
    if let Ok(resources) = api::yaml::documents::<R>(text) {
        for resource in resources {
            let written = api::yaml::to_string(&resource).unwrap();
            let again: R = api::yaml::from_str(&written).unwrap();
            assert_eq!(again, resource);
        }
    }
}

fn both<R: Resource>(yaml: bool, text: &str) {
    if yaml { operator::<R>(text) } else { stored::<R>(text) }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let yaml = selector & 0x80 != 0;
    match selector & 0x7f {
        0 => both::<IPPool>(yaml, text),
        1 => both::<IPAMBlock>(yaml, text),
        2 => both::<BlockAffinity>(yaml, text),
        3 => both::<IPAMHandle>(yaml, text),
        4 => both::<IPAMConfig>(yaml, text),
        5 => both::<IPReservation>(yaml, text),
        6 => both::<Node>(yaml, text),
        7 => both::<BGPConfiguration>(yaml, text),
        8 => both::<BGPPeer>(yaml, text),
        9 => both::<BGPFilter>(yaml, text),
        10 => both::<WorkloadEndpoint>(yaml, text),
        _ => {}
    }
});
