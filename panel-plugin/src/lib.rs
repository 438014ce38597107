//! Statescope panel (built in its own issue).
