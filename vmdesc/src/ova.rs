//! Placeholder until this reader lands.
