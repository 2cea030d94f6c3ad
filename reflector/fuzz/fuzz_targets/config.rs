//! tabby-reflector's configuration file, as `--config` and every reload read it:
//! nothing may panic. What validates must also give the peers the daemon would run
//! (with and without a datastore to fill in the AS and cluster id), and its
//! warnings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reflector::config;
use reflector::desired::Desired;
use reflector::discovery::Discovered;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for datastore in [false, true] {
        if let Ok(config) = config::parse(text, datastore) {
            let _ = config.warnings();
            let _ = Desired::new(&config, &Discovered::default());
        }
    }
});
