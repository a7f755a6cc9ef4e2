//! umbra client core
