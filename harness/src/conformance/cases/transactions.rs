//! `Backend::write_all`: several writes in one round trip, all or nothing where the
//! backend has transactions ([`Fixture::transactions`]), each alone where it has not.

use api::datastore::stored::decode;
use api::datastore::{Datastore, Error, Write};
use api::resources::{IPAMHandle, IPPool, IPPoolSpec, Resource};

use super::{handle, holding, store};
use crate::conformance::Fixture;

pub async fn write_all_applies_every_write_at_the_revision_it_returns(fixture: &dyn Fixture) {
    let store = store(fixture);
    let read = store.create(&handle("h1")).await.unwrap();
    let writes = vec![
        Write::update(&holding(read.clone(), 1)).unwrap(),
        Write::create(&holding(handle("h2"), 2)).unwrap(),
    ];
    let written: Vec<IPAMHandle> = store
        .write_all(writes)
        .await
        .into_iter()
        .map(|r| decode(r.unwrap()).unwrap())
        .collect();
    assert_eq!(written.len(), 2);
    assert!(written[0].revision() > read.revision());
    assert_eq!(store.get::<IPAMHandle>("h1").await.unwrap(), written[0]);
    assert_eq!(store.get::<IPAMHandle>("h2").await.unwrap(), written[1]);
    assert_eq!(written[1].spec, holding(handle("h2"), 2).spec);
}

pub async fn write_all_with_a_failed_condition_is_all_or_nothing_where_the_backend_has_transactions(
    fixture: &dyn Fixture,
) {
    let store = store(fixture);
    let read = store.create(&handle("h1")).await.unwrap();
    let current = store.update(&holding(read.clone(), 1)).await.unwrap();
    store.create(&handle("taken")).await.unwrap();

    // A stale update beside a create that would succeed.
    let stale = vec![
        Write::update(&holding(read.clone(), 2)).unwrap(),
        Write::create(&handle("fresh")).unwrap(),
    ];
    let results = store.write_all(stale).await;
    assert!(
        matches!(&results[0], Err(Error::Conflict { name, .. }) if name == "h1"),
        "{results:?}"
    );
    assert_eq!(store.get::<IPAMHandle>("h1").await.unwrap(), current);
    let fresh = store.get::<IPAMHandle>("fresh").await;
    if fixture.transactions() {
        assert!(
            matches!(&results[1], Err(Error::NotWritten { name, .. }) if name == "fresh"),
            "{results:?}"
        );
        assert!(matches!(fresh, Err(Error::NotFound { .. })), "{fresh:?}");
    } else {
        let written: IPAMHandle = decode(results[1].as_ref().unwrap().clone()).unwrap();
        assert_eq!(fresh.unwrap(), written);
    }

    // A current update beside a create of a name that is taken.
    let clash = vec![
        Write::update(&holding(current.clone(), 3)).unwrap(),
        Write::create(&handle("taken")).unwrap(),
    ];
    let results = store.write_all(clash).await;
    assert!(
        matches!(&results[1], Err(Error::AlreadyExists { name, .. }) if name == "taken"),
        "{results:?}"
    );
    let h1 = store.get::<IPAMHandle>("h1").await.unwrap();
    if fixture.transactions() {
        assert!(
            matches!(&results[0], Err(Error::NotWritten { .. })),
            "{results:?}"
        );
        assert_eq!(h1, current, "nothing of a failed transaction is stored");
    } else {
        assert_eq!(h1.spec, holding(current, 3).spec);
    }
}

pub async fn write_all_refuses_what_one_round_cannot_check(fixture: &dyn Fixture) {
    let store = store(fixture);
    let twice = vec![
        Write::create(&handle("h1")).unwrap(),
        Write::create(&holding(handle("h1"), 1)).unwrap(),
    ];
    let results = store.write_all(twice).await;
    if fixture.transactions() {
        let error = results[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("written twice"), "{error}");
        let gone = store.get::<IPAMHandle>("h1").await;
        assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    } else {
        // Two requests: one create wins, the other finds the name taken.
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
    }
    // Pools are checked against every other pool, which one round cannot do.
    let pool = IPPool::new("p", IPPoolSpec::new("10.0.0.0/16".parse().unwrap()));
    let error = Write::create(&pool).unwrap_err().to_string();
    assert!(error.contains("cannot carry"), "{error}");
}
