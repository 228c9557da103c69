//! A YAML tree that remembers where every node was written, so that every rejection can name the
//! file, line and column.
//!
//! We build our own small tree from `saphyr-parser` events instead of deserializing with serde,
//! because serde-based YAML crates lose positions for errors found after parsing (semantic rules,
//! unknown fields deep in a map), and every Spool rejection must carry them.
//!
//! The files come from users (job and conda files, attach files, a conda file in a Livy
//! request's `conf`), so building the tree is bounded: a document is at most
//! [`MAX_DOCUMENT_BYTES`] long, and builds at most [`MAX_NODES`] nodes and [`MAX_TEXT_BYTES`] of
//! text, nested at most [`MAX_DEPTH`] deep, counting everything an alias repeats. A few hundred
//! bytes of nested aliases ("billion laughs") would otherwise expand to millions of nodes.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

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

/// The longest document accepted, in bytes. Job, conda and attach files are a few KiB; this
/// leaves room for long generated `args` or package lists while bounding the parser's work.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The most nodes (scalars, lists, mappings; keys count as scalars) a document may build,
/// counting every node an alias repeats, and once more every node under an anchor (aliases are
/// copied from a kept copy). A large job file builds a few hundred.
pub const MAX_NODES: usize = 100_000;

/// The most text (scalars and keys, in bytes) a document may build, counted like
/// [`MAX_NODES`]. Without aliases a document builds at most about its own size, so this only
/// stops aliases that repeat long strings.
pub const MAX_TEXT_BYTES: usize = 4 * MAX_DOCUMENT_BYTES;

/// The deepest nesting of lists and mappings, counting the levels an alias brings in.
pub const MAX_DEPTH: usize = 128;

/// Why a document was not turned into a tree, with the position of the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// For a document that is valid YAML but past one of the limits above: what is accepted
    /// and what to do. `None` for invalid YAML.
    pub limit: Option<String>,
}

/// Parses one YAML document into a positioned tree. An empty document is `Null`.
///
/// The work is bounded by the limits above, but it is CPU work: async callers run it on a
/// blocking thread (`tokio::task::spawn_blocking`).
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        let (line, column) = line_column_of_byte(text, MAX_DOCUMENT_BYTES);
        return Err(YamlError {
            line,
            column,
            message: format!(
                "the file is {} bytes, at most {MAX_DOCUMENT_BYTES} are accepted (the limit is crossed here)",
                text.len()
            ),
            limit: Some(format!(
                "YAML files of at most {MAX_DOCUMENT_BYTES} bytes (1 MiB); remove what the file does not need"
            )),
        });
    }
    let end = inside(text, usize::MAX, 0);
    let mut builder = Builder {
        text,
        end,
        stack: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        built: Size::default(),
    };
    let parser = Parser::new_from_str(text);
    for item in parser {
        let (event, span) = item.map_err(|e| {
            let (line, column) = inside(text, e.marker().line(), e.marker().col() + 1);
            YamlError {
                line,
                column,
                message: e.info().to_string(),
                limit: None,
            }
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos::At { line: 1, column: 1 },
        value: Value::Null,
    }))
}

/// What a node costs to build: its nodes and text, and how deeply it nests (0 for a scalar).
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    text_bytes: usize,
    height: usize,
}

impl Size {
    fn scalar(text: &str) -> Size {
        Size {
            nodes: 1,
            text_bytes: text.len(),
            height: 0,
        }
    }

    fn add(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.text_bytes = self.text_bytes.saturating_add(other.text_bytes);
    }
}

/// What is being built when a limit is checked, for the message.
#[derive(Clone, Copy)]
enum Cause {
    /// A scalar, list or mapping as written.
    Node,
    /// The copy of an anchored node (of this kind) kept for its aliases.
    Anchor(&'static str),
    /// An alias, at this span, repeating its anchor's node.
    Alias(Span),
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
        size: Size,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(String, Pos, Node)>,
        pending_key: Option<(String, Pos)>,
        size: Size,
    },
}

impl Frame {
    fn size_mut(&mut self) -> &mut Size {
        match self {
            Frame::Seq { size, .. } | Frame::Map { size, .. } => size,
        }
    }
}

struct Builder<'t> {
    /// The document, to quote an alias's name in messages.
    text: &'t str,
    /// Where the document ends (its last line, and the column after its last character):
    /// where a node the parser places past the end is reported.
    end: (usize, usize),
    stack: Vec<Frame>,
    /// Anchored nodes by the parser's anchor id, with what each costs to repeat.
    anchors: HashMap<usize, (Node, Size)>,
    root: Option<Node>,
    /// Everything built so far, aliases expanded, checked against the limits.
    built: Size,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), YamlError> {
        let (last_line, end_column) = self.end;
        let pos = if span.start.line() > last_line {
            Pos::At {
                line: last_line,
                column: end_column,
            }
        } else {
            Pos::At {
                line: span.start.line(),
                column: span.start.col() + 1,
            }
        };
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let size = Size::scalar(&text);
                self.build(size, pos, Cause::Node)?;
                let value = resolve_scalar(&text, style, tag.is_some());
                let node = Node { pos, value };
                if anchor > 0 {
                    self.keep_anchor(anchor, &node, size, pos)?;
                }
                self.push(node, size)?;
            }
            Event::SequenceStart(anchor, _) => {
                self.open(pos, "a list")?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                    size: Size::scalar(""),
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(pos, "a mapping")?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    size: Size::scalar(""),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor, mut size) = match self.stack.pop() {
                    Some(Frame::Seq {
                        pos,
                        anchor,
                        items,
                        size,
                    }) => (
                        Node {
                            pos,
                            value: Value::Seq(items),
                        },
                        anchor,
                        size,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        size,
                        ..
                    }) => (
                        Node {
                            pos,
                            value: Value::Map(entries),
                        },
                        anchor,
                        size,
                    ),
                    None => return Ok(()),
                };
                size.height += 1;
                if anchor > 0 {
                    self.keep_anchor(anchor, &node, size, node.pos)?;
                }
                self.push(node, size)?;
            }
            Event::Alias(anchor) => {
                let Some((node, size)) = self.anchors.get(&anchor) else {
                    return Err(syntax_error(
                        pos,
                        "alias refers to an anchor that is not defined",
                    ));
                };
                let size = *size;
                let depth = self.stack.len() + size.height;
                if depth > MAX_DEPTH {
                    return Err(limit_error(
                        pos,
                        format!(
                            "alias `{}` brings in {} levels of lists and mappings, nesting them {depth} levels deep here",
                            self.alias_name(span),
                            size.height
                        ),
                        format!(
                            "lists and mappings nested at most {MAX_DEPTH} levels deep, counting the levels an alias brings in; write the values out without aliases"
                        ),
                    ));
                }
                self.check_budget(size, pos, Cause::Alias(span))?;
                let node = Node {
                    pos,
                    ..node.clone()
                };
                self.built.add(size);
                self.push(node, size)?;
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

    /// Checks that a new list or mapping at `pos` stays within [`MAX_DEPTH`], and counts it.
    fn open(&mut self, pos: Pos, what: &str) -> Result<(), YamlError> {
        let depth = self.stack.len() + 1;
        if depth > MAX_DEPTH {
            return Err(limit_error(
                pos,
                format!("{what} nested {depth} levels deep"),
                format!(
                    "lists and mappings nested at most {MAX_DEPTH} levels deep; flatten the structure"
                ),
            ));
        }
        self.build(Size::scalar(""), pos, Cause::Node)
    }

    /// Counts `size` more built at `pos`, failing when that is past a limit.
    fn build(&mut self, size: Size, pos: Pos, cause: Cause) -> Result<(), YamlError> {
        self.check_budget(size, pos, cause)?;
        self.built.add(size);
        Ok(())
    }

    /// Fails when building `size` more at `pos` would pass [`MAX_NODES`] or
    /// [`MAX_TEXT_BYTES`].
    fn check_budget(&self, size: Size, pos: Pos, cause: Cause) -> Result<(), YamlError> {
        let mut total = self.built;
        total.add(size);
        let (what, limit, repeated, built) = if total.nodes > MAX_NODES {
            ("nodes", MAX_NODES, size.nodes, total.nodes)
        } else if total.text_bytes > MAX_TEXT_BYTES {
            (
                "bytes of text",
                MAX_TEXT_BYTES,
                size.text_bytes,
                total.text_bytes,
            )
        } else {
            return Ok(());
        };
        let message = match cause {
            Cause::Alias(span) => format!(
                "alias `{}` repeats {repeated} {what}, and with them the document would build {built}, more than the {limit} accepted",
                self.alias_name(span)
            ),
            Cause::Anchor(kind) => format!(
                "{kind} anchored here has {repeated} {what}, and with the copy kept for its aliases the document would build {built}, more than the {limit} accepted"
            ),
            Cause::Node => format!(
                "the document builds more than the {limit} {what} accepted here, counting what aliases repeat"
            ),
        };
        Err(limit_error(
            pos,
            message,
            format!(
                "documents that build at most {limit} {what}, counting everything an alias repeats; write the values out without aliases"
            ),
        ))
    }

    /// Keeps a copy of an anchored node for its aliases; the copy counts against the budget.
    fn keep_anchor(
        &mut self,
        anchor: usize,
        node: &Node,
        size: Size,
        pos: Pos,
    ) -> Result<(), YamlError> {
        self.build(size, pos, Cause::Anchor(node.value.kind()))?;
        self.anchors.insert(anchor, (node.clone(), size));
        Ok(())
    }

    /// The alias as written (`*name`), for messages.
    fn alias_name(&self, span: Span) -> String {
        let len = span.end.index().saturating_sub(span.start.index());
        let name: String = self
            .text
            .chars()
            .skip(span.start.index())
            .take(len)
            .collect();
        if name.starts_with('*') {
            name
        } else {
            format!("*{name}")
        }
    }

    fn push(&mut self, node: Node, size: Size) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        let parent = frame.size_mut();
        parent.add(size);
        parent.height = parent.height.max(size.height);
        match frame {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                pending_key,
                ..
            } => match pending_key.take() {
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

/// The document's lines as the parser counts them: `\r\n`, `\r` and `\n` each end one.
pub fn lines(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    lines.push(&text[start..]);
    lines
}

/// The 1-based line and column (in characters) of byte `offset`, or of the character it falls
/// inside.
fn line_column_of_byte(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = lines(&text[..offset]);
    let last = before.last().map_or(0, |line| line.chars().count());
    (before.len(), last + 1)
}

/// `line:column` moved inside the document: the parser puts what it finds at the end of a
/// file without a final newline (an error, an empty value) on the line after the last.
fn inside(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = lines(text);
    let line_chars = |line: usize| lines[line - 1].chars().count();
    if line > lines.len() {
        (lines.len(), line_chars(lines.len()) + 1)
    } else {
        let line = line.max(1);
        (line, column.clamp(1, line_chars(line) + 1))
    }
}

fn limit_error(pos: Pos, message: String, accepted: String) -> YamlError {
    YamlError {
        limit: Some(accepted),
        ..syntax_error(pos, &message)
    }
}

fn syntax_error(pos: Pos, message: &str) -> YamlError {
    let (line, column) = match pos {
        Pos::At { line, column } => (line, column),
        Pos::Override => (0, 0),
    };
    YamlError {
        line,
        column,
        message: message.to_string(),
        limit: None,
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

/// "Billion laughs": 272 bytes whose aliases expand to 9^7 (4.8 million) strings. Before the
/// limits it took seconds and hundreds of MB to build.
#[cfg(test)]
pub(crate) const ALIAS_BOMB: &str = "\
a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
";

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use expect_test::{Expect, expect};

    use super::*;

    #[track_caller]
    fn check_error(text: &str, expect: Expect) {
        let err = parse(text).expect_err("rejected");
        expect.assert_eq(&format!(
            "{}:{}: {}\naccepted: {}",
            err.line,
            err.column,
            err.message,
            err.limit.as_deref().unwrap_or("(no limit)")
        ));
    }

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
    fn errors_at_the_end_of_a_file_without_a_final_newline_are_on_its_last_line() {
        // Found by `tests/fuzz.rs`: the parser put these on line 3 of a 2-line file.
        let err = parse("type: spark\ncod").unwrap_err();
        assert_eq!((err.line, err.column), (2, 4), "{err:?}");
        // Also an empty value there (`conf: &conf ` at the end).
        let node = parse("a: 1\nb: &x ").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[1].2.pos, at(2, 7));
        // A lone `\r` ends a line, as for the parser.
        let err = parse("a: 1\r\rb: 2\r\nb: 3").unwrap_err();
        assert_eq!((err.line, err.column), (4, 1), "{err:?}");
        // With the final newline, the empty line after it is where the file ends.
        let err = parse("entry: {file: a.py\n").unwrap_err();
        assert_eq!((err.line, err.column), (2, 1), "{err:?}");
        let err = parse("entry: {file: a.py").unwrap_err();
        assert_eq!((err.line, err.column), (1, 19), "{err:?}");
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "duplicate key `a`");
    }

    #[test]
    fn an_alias_bomb_is_rejected_where_it_crosses_the_limit() {
        assert_eq!(ALIAS_BOMB.len(), 272);
        let started = Instant::now();
        check_error(
            ALIAS_BOMB,
            expect![[r#"
                5:7: a list anchored here has 66430 nodes, and with the copy kept for its aliases the document would build 149470, more than the 100000 accepted
                accepted: documents that build at most 100000 nodes, counting everything an alias repeats; write the values out without aliases"#]],
        );
        // Generous, for a loaded machine: unbounded, this took seconds even in release builds.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn aliases_repeating_long_text_are_limited_by_its_size() {
        let long = "x".repeat(200_000);
        let text = format!("a: &a {long}\nb: [{}]\n", ["*a"; 30].join(", "));
        check_error(
            &text,
            expect![[r#"
                2:77: alias `*a` repeats 200000 bytes of text, and with them the document would build 4200002, more than the 4194304 accepted
                accepted: documents that build at most 4194304 bytes of text, counting everything an alias repeats; write the values out without aliases"#]],
        );
    }

    #[test]
    fn aliases_within_the_limits_are_expanded() {
        let node = parse("base: &base {cores: 1}\ndriver: *base\nexecutor: *base\n").unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[2].2.pos, at(3, 11));
        assert_eq!(entries[2].2.value, entries[0].2.value);
    }

    #[test]
    fn deep_nesting_is_rejected_where_it_passes_the_limit() {
        let block: String = (0..200)
            .map(|i| format!("{}- \n", "  ".repeat(i)))
            .collect();
        check_error(
            &block,
            expect![[r#"
                129:257: a list nested 129 levels deep
                accepted: lists and mappings nested at most 128 levels deep; flatten the structure"#]],
        );
        check_error(
            &format!("a: {}", "{b: ".repeat(200)),
            expect![[r#"
                1:512: a mapping nested 129 levels deep
                accepted: lists and mappings nested at most 128 levels deep; flatten the structure"#]],
        );
        assert!(parse(&format!("{}{}", "[".repeat(128), "]".repeat(128))).is_ok());
    }

    #[test]
    fn aliases_cannot_nest_past_the_depth_limit() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let text = format!("a: &a {deep}\nb: {}*a{}\n", "[".repeat(50), "]".repeat(50));
        check_error(
            &text,
            expect![[r#"
                2:54: alias `*a` brings in 100 levels of lists and mappings, nesting them 151 levels deep here
                accepted: lists and mappings nested at most 128 levels deep, counting the levels an alias brings in; write the values out without aliases"#]],
        );
    }

    #[test]
    fn documents_past_the_size_limit_are_rejected_before_parsing() {
        let line = format!("# {}\n", "x".repeat(1021));
        let text = line.repeat(2048);
        check_error(
            &text,
            expect![[r#"
                1025:1: the file is 2097152 bytes, at most 1048576 are accepted (the limit is crossed here)
                accepted: YAML files of at most 1048576 bytes (1 MiB); remove what the file does not need"#]],
        );
        assert!(parse(&text[..MAX_DOCUMENT_BYTES]).is_ok());
    }
}
