//! The wa2crm daemon and CLI, as a library so tests can drive it in-process; `main.rs` only
//! parses arguments and calls [`cli::main`].

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod connectors;
pub mod console;
pub mod heartbeat;
pub mod media_source;
pub mod metrics;
pub mod pipeline;
pub mod removal;
pub mod retention;
pub mod server;
pub mod systemd;
pub mod telemetry;
