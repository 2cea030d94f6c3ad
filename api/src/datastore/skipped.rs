//! Objects a list or watch could not read: left out, logged with their name and the
//! problem, and counted per kind so the binaries can export the count. One bad
//! object never fails a whole list or watch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Error;

/// An object left out of a list because it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kind: &'static str,
    pub name: String,
    pub problem: String,
}

/// Per kind, how many unreadable objects this process skipped.
static TOTAL: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// How many unreadable objects the lists and watches of this process skipped, per
/// kind (a counter: it only grows).
pub fn skipped_total() -> BTreeMap<&'static str, u64> {
    TOTAL.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Reports an object left out; `error` must name it ([`Error::Corrupt`]), any other
/// error is handed back. For callers that read objects one by one and go on past
/// one they cannot read.
pub fn skip(error: Error) -> Result<Skipped, Error> {
    let Error::Corrupt {
        kind,
        name,
        problem,
    } = error
    else {
        return Err(error);
    };
    let skipped = Skipped {
        kind,
        name,
        problem: problem.to_string(),
    };
    report(&skipped);
    Ok(skipped)
}

fn report(skipped: &Skipped) {
    tracing::warn!(
        kind = skipped.kind,
        name = %skipped.name,
        problem = %skipped.problem,
        "skipping a stored object that cannot be read"
    );
    *TOTAL
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(skipped.kind)
        .or_default() += 1;
}
