//! Statescope panel: Grafana data frames and options in, a state-machine view out (diagram and machine tiles), drawn with Leptos.

// Data core: frames + options -> view model. Plain Rust, tested natively.
pub mod color;
pub mod derive;
pub mod input;
pub mod kinds;
pub mod layout;
pub mod links;
pub mod mapping;
pub mod options;
pub mod problem;
pub mod series;
pub mod shape;
pub mod store;
pub mod timeline;
pub mod view;
pub mod view_model;

pub use input::PanelInput;
pub use problem::DataProblem;
pub use view::{PanelView, build_view};

// Browser side: Leptos views and the wasm-bindgen entry point.
pub mod ui;
#[cfg(target_arch = "wasm32")]
mod wasm;
