//! Sockets and threads: the listening socket and each client's event loop.

pub mod client;
pub mod follow;
pub mod listener;

pub use client::Limits;
