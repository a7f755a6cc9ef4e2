//! `umbra verify` arguments: safety numbers and key trust.
//!
//! Part of the stable CLI surface (docs/CLI.md): add, never rename.

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The contact.
    pub username: String,
    /// Mark the contact's key verified. Pass the safety number you compared
    /// with them out of band (spaces optional); it must match the current one.
    #[arg(long, value_name = "SAFETY_NUMBER", conflicts_with = "accept")]
    pub mark_verified: Option<String>,
    /// Accept a changed key without verifying it, so messages can be sent
    /// again. Pass the new safety number shown by `umbra verify USERNAME`.
    #[arg(long, value_name = "SAFETY_NUMBER")]
    pub accept: Option<String>,
}
