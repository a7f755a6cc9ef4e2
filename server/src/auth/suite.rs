//! The OPAQUE ciphersuite the relay runs: the protocol crate's, so relay and
//! clients cannot drift apart (see `umbra_wire::opaque_suite`).
//!
//! Must never: define a second suite here.

pub use umbra_wire::opaque_suite::{
    umbra_ksf, UmbraOpaqueSuite, ARGON2_ITERATIONS, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM,
};
