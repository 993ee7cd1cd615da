//! Error kinds the CLI turns into exit codes. Everything else is `anyhow`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input: a scenario, manifest or flag the user must fix. Exit code 2.
/// It names the file, the line when known, the field path and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted field path such as `load.stages[0].ramp_to`.
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Bad command-line usage that is not about a file (e.g. a backend not built yet). Exit code 2.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The environment failed us (port in use, cluster unreachable, pod failed to start). Exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InfraError(pub String);

/// The run was interrupted by a signal after cleanup. Exit code 130 (Ctrl-C)
/// or 143 (SIGTERM).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

pub mod exit {
    pub const PASSED: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const INFRA: i32 = 3;
    // Interrupted: 128 + the signal, 130 or 143 (`crate::signal::exit_code`).
}

/// Maps an error to its exit code by looking through the anyhow chain.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.is::<InputError>() || cause.is::<UsageError>() {
            return exit::BAD_INPUT;
        }
        if cause.is::<Interrupted>() {
            return crate::signal::exit_code();
        }
        if cause.is::<InfraError>() {
            return exit::INFRA;
        }
    }
    exit::INFRA
}
