//! The OPAQUE messages a client receives (docs/PROTOCOL.md §11.3), checked
//! as client-core does (exact length, then opaque-ke's deserializer with
//! umbra's suite): 0 RegistrationResponse, 1 KE2, picked by the first
//! input byte. Never a panic; an accepted message re-serializes to its
//! bytes. The client's next step runs Argon2id (64 MiB) before any check
//! that depends on the message, so it is not run per input; what reaches
//! it is what these deserializers accept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opaque_ke::{CredentialResponse, RegistrationResponse};
use umbra_fuzz::assert_canonical;
use umbra_wire::opaque_suite::{
    exact_len, UmbraOpaqueSuite as Suite, KE2_LEN, REGISTRATION_RESPONSE_LEN,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, message)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        if let Some(response) = exact_len(message, REGISTRATION_RESPONSE_LEN)
            .and_then(|b| RegistrationResponse::<Suite>::deserialize(b).ok())
        {
            assert_canonical("RegistrationResponse", message, &response.serialize());
        }
    } else if let Some(ke2) =
        exact_len(message, KE2_LEN).and_then(|b| CredentialResponse::<Suite>::deserialize(b).ok())
    {
        assert_canonical("KE2", message, &ke2.serialize());
    }
});
