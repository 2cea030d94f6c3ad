//! Framing and full message decode of arbitrary bytes, under every session context;
//! whatever decodes must re-encode to bytes that decode to the same message.
#![no_main]

use bgp::codec::{AddPath, Message, SessionContext, decode_message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut stream)) = data.split_first() else {
        return;
    };
    let ctx = SessionContext {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        extended_next_hop: flags & 4 != 0,
        add_path: if flags & 8 != 0 {
            AddPath::BOTH
        } else {
            AddPath::default()
        },
    };
    while let Ok(Some((message, len))) = decode_message(stream, &ctx) {
        stream = &stream[len..];
        let clean = match &message {
            Message::Update(update) => update.malformed.is_empty(),
            _ => true,
        };
        let mut out = BytesMut::new();
        // Re-encoding may legitimately exceed the maximum (2-octet sessions add
        // AS4_PATH); only what encodes is checked.
        if clean && message.encode(&ctx, &mut out).is_ok() {
            let again = decode_message(&out, &ctx).expect("re-encoded message decodes");
            assert_eq!(again.map(|(m, _)| m), Some(message));
        }
    }
});
