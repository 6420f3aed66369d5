//! The `moodwire` command's library: its configuration (`config`), the composition of
//! adapters (`wiring`, `background`, and `app` for the server) and the commands.
//! `main.rs` only parses the command line and dispatches; the integration tests build
//! the server through the same [`app::App`].

pub mod app;
mod background;
pub mod commands;
pub mod config;
mod model_args;
mod telemetry;
mod wiring;
