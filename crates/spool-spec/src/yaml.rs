//! A YAML tree that remembers where every node was written, so that every rejection can name the
//! file, line and column.
//!
//! We build our own small tree from `saphyr-parser` events instead of deserializing with serde,
//! because serde-based YAML crates lose positions for errors found after parsing (semantic rules,
//! unknown fields deep in a map), and every Spool rejection must carry them.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

/// Where a node was written: 1-based line and column, or a `--set` override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    At {
        line: usize,
        column: usize,
    },
    /// The value came from `--set` on the command line, not from the file.
    Override,
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The value of a YAML node, with plain scalars resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string; `quoted` is true when it was written in quotes or as a block scalar.
    Str {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// A mapping, in the order it was written. Keys are strings (other key kinds are rejected).
    Map(Vec<(String, Pos, Node)>),
}

impl Value {
    /// Returns a short noun for error messages (`a string`, `a list`).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Renders a scalar as it would be written (for messages); collections are summarised.
    pub fn display(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str { text, .. } => text.clone(),
            Value::Seq(_) => "[...]".into(),
            Value::Map(_) => "{...}".into(),
        }
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses one YAML document into a positioned tree. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
    };
    let parser = Parser::new_from_str(text);
    for item in parser {
        let (event, span) = item.map_err(|e| SyntaxError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let pos = Pos::At {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        builder.event(event, pos)?;
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos::At { line: 1, column: 1 },
        value: Value::Null,
    }))
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(String, Pos, Node)>,
        pending_key: Option<(String, Pos)>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, pos: Pos) -> Result<(), SyntaxError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.is_some());
                let node = Node { pos, value };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                pos,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            pos,
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Ok(()),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.push(node)?;
            }
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned().ok_or_else(|| {
                    syntax_error(pos, "alias refers to an anchor that is not defined")
                })?;
                self.push(Node { pos, ..node })?;
            }
            Event::DocumentStart(_) if self.root.is_some() => {
                return Err(syntax_error(
                    pos,
                    "more than one YAML document in the file; write one job per file",
                ));
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node) -> Result<(), SyntaxError> {
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                Some((key, key_pos)) => {
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        return Err(syntax_error(key_pos, &format!("duplicate key `{key}`")));
                    }
                    entries.push((key, key_pos, node));
                }
                None => {
                    let key = match node.value {
                        Value::Str { text, .. } => text,
                        Value::Int(i) => i.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Null => "null".to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(syntax_error(
                                node.pos,
                                "mapping keys must be plain strings",
                            ));
                        }
                    };
                    *pending_key = Some((key, node.pos));
                }
            },
        }
        Ok(())
    }
}

fn syntax_error(pos: Pos, message: &str) -> SyntaxError {
    let (line, column) = match pos {
        Pos::At { line, column } => (line, column),
        Pos::Override => (0, 0),
    };
    SyntaxError {
        line,
        column,
        message: message.to_string(),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema, also accepting `True`/`False` as booleans
/// (the Azure samples write `spark.dynamicAllocation.enabled: True`).
pub fn resolve_scalar(text: &str, style: ScalarStyle, tagged: bool) -> Value {
    if style != ScalarStyle::Plain || tagged {
        return Value::Str {
            text: text.to_string(),
            quoted: true,
        };
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    let looks_numeric = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Ok(f) = text.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str {
        text: text.to_string(),
        quoted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Pos {
        Pos::At { line, column }
    }

    #[test]
    fn records_positions_of_keys_and_values() {
        let node = parse("type: spark\nconf:\n  spark.driver.cores: 1\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0, "type");
        assert_eq!(entries[0].1, at(1, 1));
        assert_eq!(entries[0].2.pos, at(1, 7));
        let Value::Map(conf) = &entries[1].2.value else {
            panic!("not a map")
        };
        assert_eq!(conf[0].0, "spark.driver.cores");
        assert_eq!(conf[0].1, at(3, 3));
        assert_eq!(conf[0].2.value, Value::Int(1));
    }

    #[test]
    fn resolves_scalars_like_the_sdk_sees_them() {
        let node = parse("a: 3.4\nb: \"3.4\"\nc: True\nd: 2g\ne: ~\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        let values: Vec<_> = entries.into_iter().map(|(_, _, n)| n.value).collect();
        assert_eq!(values[0], Value::Float(3.4));
        assert_eq!(
            values[1],
            Value::Str {
                text: "3.4".into(),
                quoted: true
            }
        );
        assert_eq!(values[2], Value::Bool(true));
        assert_eq!(
            values[3],
            Value::Str {
                text: "2g".into(),
                quoted: false
            }
        );
        assert_eq!(values[4], Value::Null);
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err:?}");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "duplicate key `a`");
    }
}
