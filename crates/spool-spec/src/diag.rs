//! Diagnostics: what was wrong with a spec, where, and what is accepted.

use std::fmt;

use crate::yaml::Pos;

/// One problem found in a spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Path of the field, e.g. `conf.spark.dynamicAllocation.minExecutors` or `py_files[1]`.
    pub field: String,
    /// Where the field was written, when known (a spec sent as JSON has no positions).
    pub pos: Option<Pos>,
    /// What was wrong, in the Azure ML SDK's words where it has some.
    pub message: String,
    /// The offending value as written.
    pub value: Option<String>,
    /// What would have been accepted.
    pub accepted: Option<String>,
}

impl Diagnostic {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            field: field.into(),
            pos: None,
            message: message.into(),
            value: None,
            accepted: None,
        }
    }

    pub(crate) fn at(mut self, pos: Option<Pos>) -> Diagnostic {
        self.pos = pos;
        self
    }

    pub(crate) fn value(mut self, value: impl Into<String>) -> Diagnostic {
        self.value = Some(value.into());
        self
    }

    pub(crate) fn accepted(mut self, accepted: impl Into<String>) -> Diagnostic {
        self.accepted = Some(accepted.into());
        self
    }

    /// Renders the diagnostic on one line, prefixed with the file name and position.
    pub fn render(&self, file: &str) -> String {
        let location = match self.pos {
            Some(Pos::At { line, column }) => format!("{file}:{line}:{column}"),
            Some(Pos::Override) => format!("{file} (--set)"),
            None => file.to_string(),
        };
        let mut out = format!("{location}: `{}`: {}", self.field, self.message);
        if let Some(value) = &self.value {
            out.push_str(&format!(" (got `{value}`)"));
        }
        if let Some(accepted) = &self.accepted {
            out.push_str(&format!("\n  accepted: {accepted}"));
        }
        out
    }
}

/// All problems found in one spec file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecErrors {
    /// The file the spec came from, as the user named it.
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        writeln!(
            f,
            "job spec `{}` has {n} problem{}:",
            self.file,
            if n == 1 { "" } else { "s" }
        )?;
        for diagnostic in &self.diagnostics {
            writeln!(f, "{}", diagnostic.render(&self.file))?;
        }
        Ok(())
    }
}

/// A YAML document that was not turned into a tree (invalid YAML, or past a limit of
/// `yaml::parse`) as a diagnostic of the whole document, at its position.
pub(crate) fn syntax_error(e: crate::yaml::YamlError) -> Diagnostic {
    let pos = Some(Pos::At {
        line: e.line,
        column: e.column,
    });
    match e.limit {
        Some(accepted) => Diagnostic::new("(document)", e.message)
            .at(pos)
            .accepted(accepted),
        None => Diagnostic::new("(document)", format!("invalid YAML: {}", e.message)).at(pos),
    }
}
