//! Linking a device (docs/PROTOCOL.md §15.7). The first byte picks what the
//! rest is: `0x00` a msg1 the creator of docs/test-vectors/link.json's code
//! answers, `0x01` a msg2 its joiner (seeds of link.json, so the vector's
//! msg2 opens) finishes with, `0x02` a provisioning plaintext, `0x03` a
//! typed link code. Any bytes give a result or a named error, never a
//! panic; an accepted provisioning is its one canonical encoding, and an
//! accepted code reads back from its own text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use umbra_fuzz::{assert_canonical, vector_hex};
use umbra_protocol::identity::IdentityKeyPair;
use umbra_protocol::link::{CreatorHandshake, JoinerHandshake, LinkCode, LinkSecret, Provisioning};
use umbra_protocol::wire::{AccountId, LinkTicketId, Username};

const LINK_JSON: &str = include_str!("../../../docs/test-vectors/link.json");

fn code() -> &'static LinkCode {
    static CODE: OnceLock<LinkCode> = OnceLock::new();
    CODE.get_or_init(|| {
        let ticket: [u8; 16] = vector_hex(LINK_JSON, "/ticket")
            .try_into()
            .expect("a 16-byte ticket");
        let secret: [u8; 32] = vector_hex(LINK_JSON, "/secret")
            .try_into()
            .expect("a 32-byte secret");
        LinkCode::from_parts(
            LinkTicketId::from_bytes(ticket),
            LinkSecret::from_bytes(secret),
        )
    })
}

fn provisioning() -> &'static Provisioning {
    static PROVISIONING: OnceLock<Provisioning> = OnceLock::new();
    PROVISIONING.get_or_init(|| Provisioning {
        account: AccountId::from_bytes([0xa1; 16]),
        username: Username::parse("alice").expect("a valid username"),
        identity: IdentityKeyPair::generate(&mut ChaCha20Rng::from_seed([0x49; 32])),
        export_key: None,
        snapshot: None,
    })
}

fn canonical(provisioning: &Provisioning, input: Option<&[u8]>) {
    let encoded = provisioning.encode();
    let again = Provisioning::decode(&encoded).expect("an accepted provisioning decodes again");
    assert_canonical("provisioning", &encoded, &again.encode());
    if let Some(input) = input {
        assert_canonical("provisioning", input, &encoded);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&layer, rest)) = data.split_first() else {
        return;
    };
    match layer {
        0 => {
            let creator = CreatorHandshake::new(code());
            let _ = creator.answer(
                rest,
                provisioning(),
                &mut ChaCha20Rng::from_seed([0x43; 32]),
            );
        }
        1 => {
            let (joiner, _) =
                JoinerHandshake::start(code(), &mut ChaCha20Rng::from_seed([0x4a; 32]));
            if let Ok(received) = joiner.finish(rest) {
                canonical(&received, None);
            }
        }
        2 => {
            if let Ok(received) = Provisioning::decode(rest) {
                canonical(&received, Some(rest));
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(parsed) = LinkCode::parse(text) {
                    let again =
                        LinkCode::parse(&parsed.to_text()).expect("a code's own text parses");
                    assert!(
                        again.ticket() == parsed.ticket()
                            && again.secret().expose_secret() == parsed.secret().expose_secret(),
                        "a code's text reads back as another code"
                    );
                }
            }
        }
    }
});
