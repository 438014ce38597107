//! The config file (TOML): custom kinds, poll targets, limits, and settings
//! the command line may override.
//!
//! ```toml
//! heartbeat_ttl = "30s"
//! compat_metrics = "on"        # off | on | full
//! # Labels a reporter may attach to a machine (default: the four below), at most 8.
//! identity_labels = ["provider", "key_id", "worker_type", "service", "team"]
//! # Refuse (409) transitions a kind does not expect, instead of applying and
//! # counting them: true for every kind, or a list of kinds.
//! strict_transitions = ["payment_job"]
//!
//! [limits]
//! max_machines = 50000
//! max_label_values = 10000
//! max_events_per_request = 1000
//! max_body_bytes = 1048576
//!
//! [[kinds]]
//! name = "payment_job"
//! initial = "queued"
//! states = [{ name = "queued" }, { name = "running" }, { name = "failed", severity = "critical" }, { name = "done" }]
//! transitions = [["queued", "running"], ["running", "done"], ["*", "failed"]]
//!
//! [[poll]]
//! url = "http://127.0.0.1:8080/health"
//! kind = "circuit_breaker"
//! machine = "payments/stripe"
//! state_pointer = "/breaker/state"
//! value_map = { CLOSED = "closed", OPEN = "open", HALF_OPEN = "half_open" }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use statescope_model::{DefinitionError, Kind, KindSpec, builtin};
use thiserror::Error;

use crate::poll::PollTarget;
use crate::store::{self, Catalog};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Kind { path: PathBuf, source: DefinitionError },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Which seed-compatible `circuit_breaker_*` series `/metrics` serves
/// (`--compat-metrics`, `compat_metrics` in the file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Compat {
    /// None.
    Off,
    /// `circuit_breaker_state` (0/1/2) and `circuit_breaker_trips_total`.
    #[default]
    On,
    /// Also `circuit_breaker_failure_count`, whose `_count` suffix
    /// `promtool check metrics` rejects (it is reserved for histograms).
    Full,
}

/// Limits on what clients may send (see also [`store::Limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_machines: usize,
    pub max_label_values: usize,
    pub max_events_per_request: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        let store = store::Limits::default();
        Limits {
            max_machines: store.max_machines,
            max_label_values: store.max_label_values,
            max_events_per_request: 1000,
            max_body_bytes: 1 << 20,
        }
    }
}

impl Limits {
    pub fn store(&self) -> store::Limits {
        store::Limits {
            max_machines: self.max_machines,
            max_label_values: self.max_label_values,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, with = "humantime_serde_opt")]
    heartbeat_ttl: Option<Duration>,
    compat_metrics: Option<Compat>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    kinds: Vec<KindSpec>,
    #[serde(default)]
    poll: Vec<PollTarget>,
    identity_labels: Option<Vec<String>>,
    #[serde(default)]
    strict_transitions: Strict,
}

/// `strict_transitions = true` (every kind) or `= ["kind", ...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Strict {
    All(bool),
    Kinds(Vec<String>),
}

impl Default for Strict {
    fn default() -> Strict {
        Strict::All(false)
    }
}

/// A checked configuration.
#[derive(Debug)]
pub struct Config {
    pub catalog: Catalog,
    pub limits: Limits,
    pub heartbeat_ttl: Option<Duration>,
    pub compat_metrics: Option<Compat>,
    pub poll: Vec<PollTarget>,
}

impl Default for Config {
    /// The built-in kinds and default limits: what runs without a config file.
    fn default() -> Config {
        Config {
            catalog: Catalog::new(builtin::all()).expect("built-in kinds have distinct names"),
            limits: Limits::default(),
            heartbeat_ttl: None,
            compat_metrics: None,
            poll: Vec::new(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses and checks `text`; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let mut kinds = builtin::all();
        for spec in file.kinds {
            let kind = Kind::from_spec(spec).map_err(|source| ConfigError::Kind {
                path: path.to_owned(),
                source,
            })?;
            kinds.push(kind);
        }
        let mut catalog =
            Catalog::new(kinds).map_err(|e| invalid(format!("{e} (circuit_breaker and worker are built in)")))?;
        if let Some(names) = file.identity_labels {
            catalog = catalog.with_identity_labels(names).map_err(invalid)?;
        }
        let strict = match file.strict_transitions {
            Strict::All(true) => catalog.names(),
            Strict::All(false) => Vec::new(),
            Strict::Kinds(kinds) => kinds,
        };
        let catalog = catalog.with_strict(strict).map_err(invalid)?;
        let l = file.limits;
        if l.max_machines == 0 || l.max_label_values == 0 || l.max_events_per_request == 0 || l.max_body_bytes < 1024 {
            return Err(invalid("limits must be positive (max_body_bytes at least 1024)".into()));
        }
        if file.heartbeat_ttl.is_some_and(|t| t < Duration::from_secs(1)) {
            return Err(invalid("heartbeat_ttl must be at least 1s".into()));
        }
        for (i, target) in file.poll.iter().enumerate() {
            target
                .check(|name| catalog.get(name), catalog.identity_labels())
                .map_err(|e| invalid(format!("poll target {} ({}): {e}", i + 1, target.url)))?;
        }
        Ok(Config {
            catalog,
            limits: l,
            heartbeat_ttl: file.heartbeat_ttl,
            compat_metrics: file.compat_metrics,
            poll: file.poll,
        })
    }
}

/// `"30s"`-style durations in TOML.
mod humantime_serde_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("statescope.toml"), text)
    }

    #[test]
    fn custom_kinds_join_the_built_ins() {
        let c = parse(
            r#"
            heartbeat_ttl = "45s"
            [[kinds]]
            name = "payment_job"
            initial = "queued"
            states = [{ name = "queued" }, { name = "running" }, { name = "failed", severity = "critical" }]
            transitions = [["queued", "running"], ["*", "failed"]]
            "#,
        )
        .unwrap();
        assert_eq!(c.catalog.names(), ["circuit_breaker", "worker", "payment_job"]);
        assert_eq!(c.heartbeat_ttl, Some(Duration::from_secs(45)));
    }

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let err = parse("[[kinds]]\nname = \"x\"\ninitial = \"a\"\nstates = [{ name = \"b\" }]\n").unwrap_err();
        assert!(err.to_string().starts_with("statescope.toml: "), "{err}");
        assert!(err.to_string().contains("\"a\""), "{err}");
        let err = parse("limitz = 3").unwrap_err();
        assert!(err.to_string().contains("unknown field `limitz`"), "{err}");
        let err = parse("[[kinds]]\nname = \"worker\"\ninitial = \"a\"\nstates = [{ name = \"a\" }]\n").unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
        let err = parse("heartbeat_ttl = \"soon\"").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn identity_labels_are_configurable_and_capped() {
        let c = parse(r#"identity_labels = ["provider", "team", "region"]"#).unwrap();
        assert_eq!(c.catalog.identity_labels(), ["provider", "team", "region"]);
        assert_eq!(
            Config::default().catalog.identity_labels(),
            ["provider", "key_id", "worker_type", "service"]
        );
        let nine = (0..9).map(|i| format!("\"l{i}\"")).collect::<Vec<_>>().join(", ");
        let err = parse(&format!("identity_labels = [{nine}]")).unwrap_err();
        assert!(err.to_string().contains("at most 8"), "{err}");
        for bad in ["machine", "Team", "__x", "1a", "le"] {
            let err = parse(&format!("identity_labels = [\"{bad}\"]")).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{bad}: {err}");
        }
        // A poll target may use a configured label, and no longer a default one.
        let poll = r#"
            [[poll]]
            url = "http://127.0.0.1:1/health"
            kind = "worker"
            machine = "w"
            state_pointer = "/state"
            labels = { team = "payments" }
        "#;
        assert!(parse(poll).is_err());
        assert!(parse(&format!("identity_labels = [\"team\"]\n{poll}")).is_ok());
    }

    #[test]
    fn strict_transitions_is_every_kind_or_a_list() {
        let c = parse("strict_transitions = true").unwrap();
        assert!(c.catalog.is_strict("circuit_breaker") && c.catalog.is_strict("worker"));
        let c = parse(r#"strict_transitions = ["worker"]"#).unwrap();
        assert!(!c.catalog.is_strict("circuit_breaker") && c.catalog.is_strict("worker"));
        assert!(!Config::default().catalog.is_strict("worker"));
        let err = parse(r#"strict_transitions = ["toaster"]"#).unwrap_err();
        assert!(err.to_string().contains("toaster"), "{err}");
    }
}
