//! Statescope panel (built in its own issue).

// Data core: frames + options -> view model. Plain Rust, tested natively.
pub mod input;
pub mod options;
pub mod problem;
pub mod view;

pub use input::PanelInput;
pub use problem::DataProblem;
pub use view::{PanelView, build_view};
