//! The label selector parser on arbitrary text: never a panic or a stack overflow;
//! what parses renders to text that parses to the same selector, and matches.
#![no_main]

use std::collections::BTreeMap;

use api::selector::Selector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(selector) = text.parse::<Selector>() else {
        return;
    };
    let rendered = selector.to_string();
    let again: Selector = rendered.parse().expect("the canonical form parses");
    assert_eq!(again, selector, "{rendered}");
    let labels = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
    assert_eq!(selector.matches(&labels), again.matches(&labels));
});
