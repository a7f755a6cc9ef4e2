//! Message identifiers: the protocol crate's [`MessageId`] (16 random bytes
//! chosen by the sender), re-exported so there is one type from the wire
//! content to the store and the API.
//!
//! The id travels inside the encrypted content, names the message in
//! receipts, and lets a recipient drop a duplicate delivery.
//!
//! Must never: be derived from content or a counter (ids must not leak
//! message order or equality to anyone who sees receipts), or become a
//! second type beside the protocol's.

pub use umbra_protocol::content::MessageId;

#[cfg(test)]
mod tests {
    use super::MessageId;

    #[test]
    fn the_hex_form_round_trips_and_nothing_else_parses() {
        let id = MessageId::random(&mut rand::rngs::OsRng);
        assert_eq!(MessageId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(MessageId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(id.to_string(), id.to_hex());
        let hex = id.to_hex();
        assert!(MessageId::from_hex(&hex[..31]).is_none());
        assert!(MessageId::from_hex(&format!("{hex}0")).is_none());
        assert!(MessageId::from_hex(&format!("+{}", &hex[1..])).is_none());
        assert!(MessageId::from_hex(&format!("g{}", &hex[1..])).is_none());
    }
}
