//! Printing resources: `-o json|yaml|table`, table by default on a terminal. Data goes to
//! stdout; everything else (progress, status) goes to stderr.

use std::io::IsTerminal;

use clap::ValueEnum;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Yaml,
    Table,
}

/// Picks the format: the flag, else table on a terminal and JSON otherwise (for scripts).
pub fn resolve(flag: Option<Format>) -> Format {
    flag.unwrap_or_else(|| {
        if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        }
    })
}

/// Prints `value` as JSON or YAML, or calls `table` to build a table.
pub fn print<T: Serialize>(
    format: Format,
    value: &T,
    table: impl FnOnce() -> Table,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_norway::to_string(value)?),
        Format::Table => println!("{}", table()),
    }
    Ok(())
}

/// A table with the house style (no colour, so it reads the same everywhere).
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    if !header.is_empty() {
        table.set_header(header.to_vec());
    }
    table
}

/// A two-column table of fields and values.
pub fn fields(rows: &[(&str, String)]) -> Table {
    let mut table = table(&[]);
    for (key, value) in rows {
        if !value.is_empty() {
            table.add_row(vec![key.to_string(), value.clone()]);
        }
    }
    table
}
