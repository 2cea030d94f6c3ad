//! Framing and full message decode of arbitrary bytes, under every session context
//! the first byte picks; whatever decodes cleanly must re-encode (from the sender's
//! side of the session) to bytes that decode to the same message.
#![no_main]

use bgp::codec::{AddPath, Message, SessionContext, decode_message, frame};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut stream)) = data.split_first() else {
        return;
    };
    let bit = |n: u8| flags & (1 << n) != 0;
    let ctx = SessionContext {
        four_octet_as: bit(0),
        extended_message: bit(1),
        extended_next_hop: bit(2),
        add_path: AddPath {
            receive_ipv4: bit(3),
            receive_ipv6: bit(4),
            send_ipv4: bit(5),
            send_ipv6: bit(6),
        },
        external: bit(7),
    };
    loop {
        // The framing helper and the decoder agree on where a message ends.
        let framed = frame(stream, &ctx);
        let Ok(Some((message, len))) = decode_message(stream, &ctx) else {
            break;
        };
        assert_eq!(framed.map(|f| f.map(|f| f.len)), Ok(Some(len)));
        stream = &stream[len..];
        let clean = match &message {
            Message::Update(update) => update.malformed.is_empty(),
            _ => true,
        };
        let mut out = BytesMut::new();
        // Re-encoding may legitimately exceed the maximum (2-octet sessions add
        // AS4_PATH); only what encodes is checked.
        if clean && message.encode(&ctx.peer_view(), &mut out).is_ok() {
            let again = decode_message(&out, &ctx).expect("re-encoded message decodes");
            assert_eq!(again.map(|(m, _)| m), Some(message));
        }
    }
});
