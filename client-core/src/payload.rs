//! The client payload (sender claim plus content) now lives in the protocol
//! crate, `umbra_protocol::payload`, with the other plaintext formats; this
//! module keeps client-core's existing `crate::payload::Payload` paths
//! working and turns an encoding failure into client-core's [`Error`].
//!
//! Must never: define a second payload layout here.

pub(crate) use umbra_protocol::payload::{Payload, PayloadError};

use crate::Error;

impl From<PayloadError> for Error {
    /// Only encoding reaches this (`?` on `Payload::encode`): the content
    /// broke a limit. Decoding failures are mapped by the receiver itself.
    fn from(e: PayloadError) -> Self {
        Error::InvalidMessage(crate::InvalidMessage::Encoding(e))
    }
}
